// The one verdict shape every signature check returns (XMLDSig, CMS, RFC 3161, and the messages that carry them),
// so that `swx verify`, the connectors and evidence records report the same fields with the same codes.
import type { ErrorCode } from '../errors.ts';
import type { ParsedCert } from './certs.ts';

export type VerdictKind = 'xmldsig' | 'soap-wss' | 'ebms2' | 'as4' | 'cms' | 'timestamp';

export interface SignerSummary {
  /** e.g. "C=NO, O=SPEARE AS, CN=..." */
  subject: string;
  issuer?: string;
  /** Hex, lower case. */
  serial?: string;
  /** base64url SHA-256 of the certificate DER (absent when the key came without a certificate). */
  thumbprint?: string;
  validFrom?: string;
  validTo?: string;
}

export interface ReferenceCheck {
  uri: string;
  digestAlgorithm: string;
  transforms: string[];
  valid: boolean;
  detail?: string;
}

export interface CertificateStatus {
  /** 'unchecked' when neither a pin nor a trust anchor was given: the verdict then proves integrity only. */
  status: 'valid' | 'expired' | 'untrusted' | 'revoked' | 'wrong-usage' | 'revocation-unknown' | 'unchecked';
  /** ISO instant at which validity was judged. */
  at: string;
  trust: 'chain' | 'pinned' | 'none';
  detail?: string;
}

export interface SignatureVerdict {
  /** Every reference and the signature check out, and the signer's certificate is valid at `certificate.at`. */
  valid: boolean;
  code: 'SWX_OK' | ErrorCode;
  /** What failed, in words; empty when valid. */
  detail: string;
  kind: VerdictKind;
  signer?: SignerSummary;
  algorithms?: { signature: string; digest: string[]; canonicalization?: string[] };
  references?: ReferenceCheck[];
  certificate?: CertificateStatus;
  /** Legacy algorithms accepted for archived content (policy 'archive'); refused on live traffic. */
  weak?: string[];
  /** Signing or time-stamping time claimed inside the signed thing, ISO. */
  signedAt?: string;
}

/** An element an XML signature's valid reference covers. */
export interface SignedElement {
  uri: string;
  namespace: string | null;
  localName: string;
  /** e.g. "/Envelope/Body": local names, with [n] where siblings share a local name. */
  path: string;
  /** Paths the reference's transforms leave out (the enveloped Signature, what an XPath filter drops). */
  excludes: string[];
}

/** The verdict of an XML signature (verifyXml and verifyXmlFast reach the same one). */
export interface XmlVerdict extends SignatureVerdict {
  /** The elements the valid references cover; empty unless the verdict is valid. */
  signedElements: SignedElement[];
  /** Content-IDs of the attachments the valid references cover; empty unless the verdict is valid. */
  signedAttachments: string[];
}

/** live refuses legacy algorithms (SHA-1, DSA); archive accepts them for stored content and lists them in `weak`. */
export type AlgorithmPolicy = 'live' | 'archive';

/** The detail of a valid verdict reached without a pin or trust anchor. */
export const uncheckedCaveat = 'neither a pin nor a trust anchor was given: integrity and the signer certificate\'s validity only, not who signed';

/** Who signed, from the certificate: every field present. */
export function signerSummary(cert: ParsedCert): Required<SignerSummary> {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serial,
    thumbprint: cert.thumbprint,
    validFrom: new Date(cert.notBefore).toISOString(),
    validTo: new Date(cert.notAfter).toISOString(),
  };
}

/** The certificate's standing each code states; codes absent here end a check before the certificate was judged. */
const standing: Partial<Record<SignatureVerdict['code'], CertificateStatus['status']>> = {
  SWX_CERT_EXPIRED: 'expired',
  SWX_CERT_UNTRUSTED: 'untrusted',
  SWX_SIG_KEY_MISMATCH: 'untrusted',
  SWX_TSP_SIGNER_NOT_TSA: 'wrong-usage',
  SWX_CERT_USAGE: 'wrong-usage',
  SWX_CERT_REVOKED: 'revoked',
};

const isWeak = (name: string) => name === 'SHA-1' || /SHA1$/.test(name) || /^DSA/.test(name);

export interface Judgement {
  /** The trust the caller asked for: anchors, a pin, or neither. */
  trust: CertificateStatus['trust'];
  at: Date;
  policy: AlgorithmPolicy;
  /** Names of every algorithm the verdict rests on. */
  algorithms: string[];
}

/**
 * The common ending of the verifiers that judge the signer by a refusal code (CMS, RFC 3161): the certificate's
 * standing, the caveat of a verdict without pin or anchor, and the algorithm policy, applied last as `swx verify`
 * always applied it. The verdict type's codes must include SWX_SIG_WEAK_ALG.
 */
export function conclude<V extends SignatureVerdict>(verdict: V, judgement: Judgement): V {
  const status = verdict.code === 'SWX_OK' ? (judgement.trust === 'none' ? 'unchecked' : 'valid') : standing[verdict.code];
  const detail = status === 'unchecked' ? uncheckedCaveat : verdict.detail;
  const concluded: V = {
    ...verdict,
    detail,
    ...(status ? { certificate: { status, at: judgement.at.toISOString(), trust: judgement.trust, ...(detail ? { detail } : {}) } } : {}),
  };
  const weak = [...new Set(judgement.algorithms.filter(isWeak))];
  if (!weak.length) return concluded;
  if (judgement.policy === 'live' && concluded.valid) {
    const refusal = { valid: false, code: 'SWX_SIG_WEAK_ALG' as V['code'], detail: `legacy algorithm ${weak.join(', ')} refused on live traffic`, weak };
    return { ...concluded, ...refusal };
  }
  return { ...concluded, weak };
}
