// How the hub trusts a partner's HTTPS server when it calls it (deliveries, queries, the connection test): the
// hub's own CA unless the partner's endpoint names other CAs, Node's bundled roots, or pins the server certificate.
// Every HTTP-borne connector builds its connections here, so a delivery and the connection test trust alike.
import { createHash, X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import { checkServerIdentity, createSecureContext, rootCertificates, type PeerCertificate, type SecureContext } from 'node:tls';
import { z } from 'zod';

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The problem with a PEM bundle of trust anchors, or undefined when each of its certificates is a CA certificate. */
function caBundleProblem(pem: string): string | undefined {
  const blocks = pem.match(pemBlock) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  for (const [index, block] of blocks.entries()) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block);
    } catch (error) {
      return `certificate ${index + 1} does not parse: ${(error as Error).message}`;
    }
    if (!certificate.ca) return `certificate ${index + 1} (${certificate.subject.replace(/\n/g, ', ')}) is not a CA certificate (basicConstraints cA)`;
    if (Date.parse(certificate.validTo) < Date.now()) return `certificate ${index + 1} (${certificate.subject.replace(/\n/g, ', ')}) expired ${certificate.validTo}`;
  }
  return undefined;
}

const sha256Pin = z.string().trim().regex(/^(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'a SHA-256 fingerprint: 64 hex digits, colons between the bytes allowed')
  .transform((pin) => pin.replace(/:/g, '').toLowerCase());

/** A partner endpoint's `tls` setting: which server certificates the hub accepts from it. */
export const serverTrust = z.object({
  serverCa: z.string().max(1024 * 1024).superRefine((pem, context) => {
    const problem = caBundleProblem(pem);
    if (problem) context.addIssue({ code: 'custom', message: `serverCa ${problem}` });
  }).optional().describe('PEM bundle of the CAs the partner\'s server certificate chains to (a commercial CA, a national PKI); replaces the hub\'s CA for this endpoint'),
  systemCa: z.boolean().default(false).describe('also trust the root CAs bundled with Node (tls.rootCertificates); replaces the hub\'s CA for this endpoint unless serverCa is set too'),
  pinSha256: z.array(sha256Pin).min(1).max(16).optional()
    .describe('the SHA-256 fingerprints of the server certificates accepted (openssl x509 -fingerprint -sha256); the certificate must also chain to a trusted CA'),
}).strict();

export type ServerTrust = z.infer<typeof serverTrust>;

/** The hub's TLS client credential, and its CA, trusted when the endpoint says nothing else. */
export interface ClientCredential { key: string; cert: string; ca: string | string[] }

/** What a connection to a partner's server is made with: one secure context, and the server identity check. */
export interface PartnerConnection {
  secureContext: SecureContext;
  checkServerIdentity(host: string, certificate: PeerCertificate): Error | undefined;
}

/** Raised by the handshake when the server certificate chains but is not one of the endpoint's pins. */
export const pinMismatch = 'ERR_TLS_CERT_PIN_MISMATCH';

export function partnerConnection(hub: ClientCredential, trust: ServerTrust | undefined): PartnerConnection {
  const anchors = [
    ...(trust?.serverCa ? [trust.serverCa] : []),
    ...(trust?.systemCa ? rootCertificates : []),
  ];
  const pins = trust?.pinSha256 ? new Set(trust.pinSha256) : undefined;
  return {
    secureContext: createSecureContext({ key: hub.key, cert: hub.cert, ca: anchors.length > 0 ? anchors : hub.ca }),
    checkServerIdentity(host, certificate) {
      const refusal = checkServerIdentity(host, certificate);
      if (refusal || !pins) return refusal;
      const fingerprint = createHash('sha256').update(certificate.raw).digest('hex');
      if (pins.has(fingerprint)) return undefined;
      return Object.assign(new Error(`the server certificate's SHA-256 ${fingerprint} is not one of the endpoint's tls.pinSha256`), { code: pinMismatch });
    },
  };
}

/** OpenSSL's certificate verification codes, Node's host name check, and the pin check: the server was not trusted. */
const untrusted = /CERT|ISSUER|LEAF_SIGNATURE|SELF_SIGNED|^ERR_TLS_/;

export const untrustedServer = (error: Error & { code?: string }): boolean => error.code !== undefined && untrusted.test(error.code);

/**
 * A transport failure as an operator reads it: a server certificate the hub does not trust is named as such, with
 * the settings that widen the trust; any other failure as it is.
 */
export function describeTransportFailure(error: Error & { code?: string }): string {
  if (untrustedServer(error)) {
    return `TLS handshake refused, the server certificate is not trusted (${error.code}: ${error.message}); the endpoint's tls.serverCa, tls.systemCa or tls.pinSha256 says which servers are`;
  }
  return `${error.code ? `${error.code}: ` : ''}${error.message}`;
}

/**
 * Keep-alive HTTPS agents to partners' servers, one per partner and trust setting: a changed setting takes a new
 * agent (its connections made under the new trust) and closes the old one. All connections of an agent share one
 * secure context (given the PEMs instead, Node builds one per connection, ~1.3 ms, paid on the event loop).
 */
export class PartnerAgents {
  private readonly agents = new Map<string, { setting: string; agent: Agent }>();

  constructor(private readonly hub: ClientCredential, private readonly maxSockets: number) {}

  for(partnerId: string, trust: ServerTrust | undefined): Agent {
    const setting = JSON.stringify(trust ?? {});
    const known = this.agents.get(partnerId);
    if (known?.setting === setting) return known.agent;
    known?.agent.destroy();
    const connection = partnerConnection(this.hub, trust);
    const agent = new Agent({ keepAlive: true, maxSockets: this.maxSockets, ...connection });
    this.agents.set(partnerId, { setting, agent });
    return agent;
  }

  close(): void {
    for (const { agent } of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
