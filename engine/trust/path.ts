// Certificate paths: from a signer through the certificates a message carries to a trust anchor, every certificate
// valid at the instant that matters (signing or time-stamping time, or now). One home for CMS and RFC 3161 alike.
import type { X509Certificate } from 'node:crypto';

export interface PathRefusal { code: 'SWX_CERT_EXPIRED' | 'SWX_CERT_UNTRUSTED'; detail: string }

const name = (cert: X509Certificate) => cert.subject.split('\n').join(', ');

export function validityRefusal(cert: X509Certificate, at: Date): PathRefusal | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (at >= from && at <= to) return undefined;
  return { code: 'SWX_CERT_EXPIRED', detail: `${name(cert)} is valid from ${from.toISOString()} to ${to.toISOString()}, not at ${at.toISOString()}` };
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return parent.ca && child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/** Finds a path (at most 8 deep, backtracking over candidate issuers); undefined when one holds. */
export function pathRefusal(signer: X509Certificate, pool: X509Certificate[], anchors: X509Certificate[], at: Date): PathRefusal | undefined {
  const isAnchor = (cert: X509Certificate) => anchors.some((anchor) => anchor.raw.equals(cert.raw));
  let expired: PathRefusal | undefined;
  const walk = (cert: X509Certificate, path: X509Certificate[]): boolean => {
    const invalid = validityRefusal(cert, at);
    if (invalid) { expired ??= invalid; return false; }
    if (isAnchor(cert)) return true;
    if (path.length >= 8) return false;
    for (const parent of [...anchors, ...pool]) {
      if (parent.raw.equals(cert.raw) || path.some((p) => p.raw.equals(parent.raw))) continue;
      if (issuedBy(cert, parent) && walk(parent, [...path, cert])) return true;
    }
    return false;
  };
  if (walk(signer, [])) return undefined;
  return expired ?? { code: 'SWX_CERT_UNTRUSTED', detail: `${name(signer)} does not chain to a trusted certificate` };
}
