// The agency behind a request on the agency port: its TLS client certificate, registered to an enabled partner and
// acceptable now (path, validity, usage, revocation). Shared by every connector on that port.
import type { IncomingMessage } from 'node:http';
import { SwxError } from './errors.ts';
import { peerCertificate } from './http.ts';
import { thumbprint, type TrustStore } from './pki/index.ts';
import type { PartnerKey, Registry } from './registry.ts';
import type { Purpose } from './trust/path.ts';

/** The thumbprint of the TLS client certificate, computed once per connection ('' when none was presented). */
const peerPrints = new WeakMap<object, string>();

/**
 * The registered (pinned) certificate must also be acceptable now for what it is used for; asked on every request,
 * so a revocation also stops open keep-alive connections.
 */
export async function admit(trust: Pick<TrustStore, 'check'>, key: PartnerKey, purpose: Purpose, what: string): Promise<void> {
  const refusal = await trust.check(key.parsed, purpose);
  if (refusal) throw new SwxError(refusal.code, `${what} ${key.thumbprint} of ${key.partner.id}: ${refusal.detail}`);
}

/**
 * The partner behind the TLS client certificate. Only the thumbprint is kept per connection: the registry is asked on
 * every request, so disabling or removing a partner also stops its open keep-alive connections.
 */
export async function authenticate(req: IncomingMessage, registry: Pick<Registry, 'keyByThumbprint'>, trust: Pick<TrustStore, 'check'>): Promise<PartnerKey> {
  let print = peerPrints.get(req.socket);
  if (print === undefined) {
    const der = peerCertificate(req);
    print = der ? thumbprint(der) : '';
    peerPrints.set(req.socket, print);
  }
  if (!print) throw new SwxError('SWX_AUTH_REQUIRED', 'present your agency certificate as the TLS client certificate');
  const known = registry.keyByThumbprint(print);
  if (!known || !known.partner.enabled) throw new SwxError('SWX_AUTH_UNKNOWN_CERT', 'the TLS client certificate is not registered to any enabled partner');
  await admit(trust, known, 'tls-client', 'the TLS client certificate');
  return known;
}
