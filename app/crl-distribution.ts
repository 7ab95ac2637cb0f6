// The hub CA's CRL distribution point on the operator port: the URL written into the certificates the hub CA issues.
import { SwxError } from '../engine/errors.ts';
import type { RouteTable } from '../engine/admin.ts';

const crlPath = '/pki/crl';

/** GET /pki/crl: the hub CA's current CRL (DER) as `ownCrl` answers it (TrustStore.ownCrl); 404 without a CA of its own. */
export function mountCrlDistribution(router: RouteTable, ownCrl: () => Buffer | undefined): void {
  router.add('GET', crlPath, (_req, res) => {
    const der = ownCrl();
    if (!der) throw new SwxError('SWX_NOT_FOUND', 'this hub has no CA of its own');
    res.writeHead(200, { 'content-type': 'application/pkix-crl', 'content-length': der.length, 'cache-control': 'no-cache' });
    res.end(der);
  });
}

/** The distribution point URL for a hub whose operator port is `opsPort`, when SWX_CRL_URL does not name one. */
export function defaultCrlUrl(opsPort: number): string {
  return `http://localhost:${opsPort}${crlPath}`;
}
