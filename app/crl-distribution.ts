// The public pieces of the hub's PKI on the operator port, no token needed: the hub CA's CRL distribution point (the URL
// written into the certificates the hub CA issues), and the hub's certificates a partner's MSH registers: the one it
// signs with (and, when RSA, is encrypted to under eDelivery AS4 1.x) and its X25519 encryption certificate (2.0).
import { SwxError } from '../engine/errors.ts';
import type { RouteTable } from '../engine/admin.ts';
import type { HubIdentity } from '../engine/identity.ts';

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

/** GET /pki/hub-sign.pem and /pki/hub-enc.pem: the hub's signing and X25519 encryption certificates (PEM). */
export function mountHubCertificates(router: RouteTable, identity: HubIdentity): void {
  const serve = (path: string, pem: () => string | undefined, what: string) => router.add('GET', path, (_req, res) => {
    const text = pem();
    if (!text) throw new SwxError('SWX_NOT_FOUND', `this hub has no ${what}`);
    const body = Buffer.from(text, 'utf8');
    res.writeHead(200, { 'content-type': 'application/x-pem-file', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(body);
  });
  serve('/pki/hub-sign.pem', () => identity.signing.certPem, 'signing certificate');
  serve('/pki/hub-enc.pem', () => identity.encryption.x25519?.certPem, 'X25519 encryption certificate (pki/hub-enc)');
}

/** The distribution point URL for a hub whose operator port is `opsPort`, when SWX_CRL_URL does not name one. */
export function defaultCrlUrl(opsPort: number): string {
  return `http://localhost:${opsPort}${crlPath}`;
}
