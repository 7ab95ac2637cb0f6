// Certificate paths: from a signer through the certificates a message carries to a trust anchor, every certificate
// valid at the instant that matters (signing or time-stamping time, or now), every issuer a CA allowed to issue, and
// the end certificate issued for the purpose it is used for. One home for CMS, RFC 3161, XMLDSig and the connectors.
import type { X509Certificate } from 'node:crypto';
import type { ParsedCert } from './certs.ts';
import { oid, type KeyUsageName } from './x509.ts';

export interface PathRefusal { code: 'SWX_CERT_EXPIRED' | 'SWX_CERT_UNTRUSTED'; detail: string }

export type CertCode = 'SWX_CERT_EXPIRED' | 'SWX_CERT_UNTRUSTED' | 'SWX_CERT_USAGE' | 'SWX_CERT_REVOKED' | 'SWX_CERT_REVOCATION_UNKNOWN';
export interface CertRefusal { code: CertCode; detail: string }

/**
 * What a certificate is used for. agency-signing: signatures on messages (digitalSignature or nonRepudiation);
 * tls-client / tls-server: the TLS roles (clientAuth / serverAuth when an EKU is present); tsa: RFC 3161 time-stamping
 * (timeStamping, the only EKU, critical); ca: issuing certificates (basicConstraints cA and keyCertSign).
 */
export type Purpose = 'agency-signing' | 'tls-client' | 'tls-server' | 'tsa' | 'ca';

/** The deployment's judgement of a certificate (engine/pki's TrustStore gives it): a refusal, or undefined when it may serve `purpose` now. */
export interface CertificateCheck {
  check(cert: ParsedCert, purpose: Purpose): Promise<CertRefusal | undefined>;
}

const anyExtendedKeyUsage = '2.5.29.37.0';
const maxDepth = 8;

const name = (cert: X509Certificate) => cert.subject.split('\n').join(', ');

export function validityRefusal(cert: X509Certificate, at: Date): PathRefusal | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (at >= from && at <= to) return undefined;
  return { code: 'SWX_CERT_EXPIRED', detail: `${name(cert)} is valid from ${from.toISOString()} to ${to.toISOString()}, not at ${at.toISOString()}` };
}

/** Validity from the cached epoch numbers (no date parsing on the hot path); NaN fails both comparisons. */
function expiry(cert: ParsedCert, at: number): CertRefusal | undefined {
  if (at >= cert.notBefore && at <= cert.notAfter) return undefined;
  const iso = (ms: number) => (Number.isNaN(ms) ? 'an unreadable date' : new Date(ms).toISOString());
  return { code: 'SWX_CERT_EXPIRED', detail: `${cert.subject} is valid from ${iso(cert.notBefore)} to ${iso(cert.notAfter)}, not at ${iso(at)}` };
}

function withEku(cert: ParsedCert, wanted: string, label: string): CertRefusal | undefined {
  const eku = cert.extKeyUsage;
  if (!eku || eku.includes(wanted) || eku.includes(anyExtendedKeyUsage)) return undefined;
  return { code: 'SWX_CERT_USAGE', detail: `${cert.subject} is not issued for ${label}: its extended key usage is ${eku.join(', ')}` };
}

function withKeyUsage(cert: ParsedCert, allowed: KeyUsageName[], label: string): CertRefusal | undefined {
  const usage = cert.keyUsage;
  if (!usage || allowed.some((bit) => usage.has(bit))) return undefined;
  return { code: 'SWX_CERT_USAGE', detail: `${cert.subject} is not issued for ${label}: its key usage is ${[...usage].join(', ') || 'empty'} (needs ${allowed.join(' or ')})` };
}

/** Whether the certificate's key usage, extended key usage and CA constraints allow the purpose. */
export function usageRefusal(cert: ParsedCert, purpose: Purpose): CertRefusal | undefined {
  switch (purpose) {
    case 'agency-signing':
      return withKeyUsage(cert, ['digitalSignature', 'nonRepudiation'], 'signing');
    case 'tls-client':
      return withKeyUsage(cert, ['digitalSignature'], 'TLS client authentication') ?? withEku(cert, oid.clientAuth, 'TLS client authentication');
    case 'tls-server':
      return withKeyUsage(cert, ['digitalSignature', 'keyEncipherment'], 'a TLS server') ?? withEku(cert, oid.serverAuth, 'a TLS server');
    case 'tsa': {
      // RFC 3161 2.3: exactly one extended key usage, id-kp-timeStamping, marked critical.
      const eku = cert.extKeyUsage;
      if (!eku || eku.length !== 1 || eku[0] !== oid.timeStamping || !cert.extKeyUsageCritical) {
        return { code: 'SWX_CERT_USAGE', detail: `${cert.subject} is not a time-stamping certificate: RFC 3161 wants timeStamping as its only extended key usage, critical` };
      }
      return withKeyUsage(cert, ['digitalSignature', 'nonRepudiation'], 'time-stamping');
    }
    case 'ca':
      if (!cert.ca) return { code: 'SWX_CERT_USAGE', detail: `${cert.subject} is not a CA certificate (basicConstraints cA is not set)` };
      return withKeyUsage(cert, ['keyCertSign'], 'issuing certificates');
  }
}

/**
 * Whether `parent`'s key signed `child`, per pair of certificates: the answer is fixed by their bytes, and a
 * signature check costs ~0.1 ms where every request checks its certificates' paths.
 */
const signedBy = new WeakMap<ParsedCert, Map<string, boolean>>();

/** Name, key identifier and signature say that `parent` issued `child`. */
export function issuedBy(child: ParsedCert, parent: ParsedCert): boolean {
  if (child.issuer !== parent.subject) return false;
  if (child.authorityKeyId && parent.subjectKeyId && child.authorityKeyId !== parent.subjectKeyId) return false;
  let known = signedBy.get(child);
  if (!known) signedBy.set(child, known = new Map());
  let signed = known.get(parent.thumbprint);
  if (signed === undefined) {
    try {
      signed = child.x509.verify(parent.publicKey);
    } catch {
      signed = false;
    }
    known.set(parent.thumbprint, signed);
  }
  return signed;
}

const selfIssued = (cert: ParsedCert) => cert.subject === cert.issuer;

/**
 * Finds a path from `leaf` to one of `anchors` (at most 8 deep, backtracking over candidate issuers), every certificate
 * valid at `at` (epoch ms). Returns the path, leaf first and anchor last, or the most telling refusal: an issuer that
 * is not allowed to issue (SWX_CERT_USAGE), else a certificate outside its validity (SWX_CERT_EXPIRED), else none
 * found (SWX_CERT_UNTRUSTED). Usage of the leaf itself and revocation are the caller's.
 */
export function buildPath(leaf: ParsedCert, pool: readonly ParsedCert[], anchors: readonly ParsedCert[], at: number): { path: ParsedCert[] } | CertRefusal {
  const anchorPrints = new Set(anchors.map((anchor) => anchor.thumbprint));
  let refused: CertRefusal | undefined;
  let expired: CertRefusal | undefined;
  const walk = (path: ParsedCert[]): ParsedCert[] | undefined => {
    const cert = path.at(-1)!;
    const invalid = expiry(cert, at);
    if (invalid) { expired ??= invalid; return undefined; }
    if (cert.unknownCritical.length) {
      refused ??= { code: 'SWX_CERT_UNTRUSTED', detail: `${cert.subject} carries critical extension ${cert.unknownCritical.join(', ')}, which swx does not process` };
      return undefined;
    }
    if (anchorPrints.has(cert.thumbprint)) return path;
    if (path.length >= maxDepth) return undefined;
    // Intermediate CAs between this issuer and the leaf, for the issuer's pathLenConstraint (self-issued ones do not count).
    const below = path.slice(1).filter((c) => !selfIssued(c)).length;
    for (const parent of [...anchors, ...pool]) {
      if (path.some((p) => p.thumbprint === parent.thumbprint) || !issuedBy(cert, parent)) continue;
      const notCa = usageRefusal(parent, 'ca');
      if (notCa) { refused ??= { code: 'SWX_CERT_USAGE', detail: `${cert.subject} was issued by a certificate not allowed to issue: ${notCa.detail}` }; continue; }
      if (parent.pathLen !== undefined && below > parent.pathLen) {
        refused ??= { code: 'SWX_CERT_USAGE', detail: `${parent.subject} allows ${parent.pathLen} intermediate CA(s) below it, the path has ${below}` };
        continue;
      }
      const found = walk([...path, parent]);
      if (found) return found;
    }
    return undefined;
  };
  const path = walk([leaf]);
  if (path) return { path };
  return refused ?? expired ?? { code: 'SWX_CERT_UNTRUSTED', detail: `${leaf.subject} does not chain to a trusted certificate` };
}
