// The one verdict shape every signature check returns (XMLDSig, CMS, RFC 3161, and the messages that carry them),
// so that `swx verify`, the connectors and evidence records report the same fields with the same codes.
import type { ErrorCode } from '../errors.ts';

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
