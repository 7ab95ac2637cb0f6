// The agency behind a request on the agency port: its TLS client certificate, registered to an enabled partner and
// acceptable now (path, validity, usage, revocation). Shared by every connector on that port.
import type { IncomingMessage } from 'node:http';
import { SwxError, type ErrorCode } from './errors.ts';
import { peerCertificate } from './http.ts';
import { thumbprint } from './pki/index.ts';
import type { PartnerKey, Registry } from './registry.ts';
import type { CertificateCheck, Purpose } from './trust/index.ts';

/**
 * A request refused because no registered certificate names its sender: it is known only by the address it came
 * from (and the thumbprint of the certificate it showed, if any), never by the agency its headers claim.
 */
export class Unauthenticated extends SwxError {
  constructor(code: ErrorCode, detail: string, readonly source: string, readonly certificate: string) {
    super(code, detail);
  }
}

/** The address a request came from: an IPv4 address mapped into IPv6 is written as IPv4, a zone is left out. */
function sourceAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '').replace(/%.*$/, '');
}

/** The thumbprint of the TLS client certificate, computed once per connection ('' when none was presented). */
const peerPrints = new WeakMap<object, string>();

/**
 * The registered (pinned) certificate must also be acceptable now for what it is used for; asked on every request,
 * so a revocation also stops open keep-alive connections.
 */
export async function admit(trust: CertificateCheck, key: PartnerKey, purpose: Purpose, what: string): Promise<void> {
  const refusal = await trust.check(key.parsed, purpose);
  if (refusal) throw new SwxError(refusal.code, `${what} ${key.thumbprint} of ${key.partner.id}: ${refusal.detail}`);
}

/**
 * The partner behind the TLS client certificate. Only the thumbprint is kept per connection: the registry is asked on
 * every request, so disabling or removing a partner also stops its open keep-alive connections.
 */
export async function authenticate(req: IncomingMessage, registry: Pick<Registry, 'keyByThumbprint'>, trust: CertificateCheck): Promise<PartnerKey> {
  let print = peerPrints.get(req.socket);
  if (print === undefined) {
    const der = peerCertificate(req);
    print = der ? thumbprint(der) : '';
    peerPrints.set(req.socket, print);
  }
  if (!print) throw new Unauthenticated('SWX_AUTH_REQUIRED', 'present your agency certificate as the TLS client certificate', sourceAddress(req), '');
  const known = registry.keyByThumbprint(print);
  if (!known || !known.partner.enabled) {
    throw new Unauthenticated('SWX_AUTH_UNKNOWN_CERT', 'the TLS client certificate is not registered to any enabled partner', sourceAddress(req), print);
  }
  await admit(trust, known, 'tls-client', 'the TLS client certificate');
  return known;
}
