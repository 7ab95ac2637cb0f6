// The ebMS 3.0 error codes (Core 6.7.1 and 6.7.2, AS4 profile 3.2 and 3.4) as one table, the typed error AS4 code
// throws and answers with, and the one mapping of the hub's own SWX_* refusals onto them.
import { SwxError, type ErrorCode } from '../../engine/errors.ts';

export type EbmsCategory = 'Content' | 'Communication' | 'Unpackaging' | 'Processing';
export type EbmsSeverity = 'failure' | 'warning';

export const ebmsErrors = {
  'EBMS:0001': { shortDescription: 'ValueNotRecognized', severity: 'failure', category: 'Content' },
  'EBMS:0002': { shortDescription: 'FeatureNotSupported', severity: 'warning', category: 'Content' },
  'EBMS:0003': { shortDescription: 'ValueInconsistent', severity: 'failure', category: 'Content' },
  'EBMS:0004': { shortDescription: 'Other', severity: 'failure', category: 'Content' },
  'EBMS:0005': { shortDescription: 'ConnectionFailure', severity: 'failure', category: 'Communication' },
  'EBMS:0006': { shortDescription: 'EmptyMessagePartitionChannel', severity: 'warning', category: 'Communication' },
  'EBMS:0007': { shortDescription: 'MimeInconsistency', severity: 'failure', category: 'Unpackaging' },
  'EBMS:0008': { shortDescription: 'FeatureNotSupported', severity: 'failure', category: 'Unpackaging' },
  'EBMS:0009': { shortDescription: 'InvalidHeader', severity: 'failure', category: 'Unpackaging' },
  'EBMS:0010': { shortDescription: 'ProcessingModeMismatch', severity: 'failure', category: 'Processing' },
  'EBMS:0011': { shortDescription: 'ExternalPayloadError', severity: 'failure', category: 'Content' },
  'EBMS:0101': { shortDescription: 'FailedAuthentication', severity: 'failure', category: 'Processing' },
  'EBMS:0102': { shortDescription: 'FailedDecryption', severity: 'failure', category: 'Processing' },
  'EBMS:0103': { shortDescription: 'PolicyNoncompliance', severity: 'failure', category: 'Processing' },
  'EBMS:0201': { shortDescription: 'DysfunctionalReliability', severity: 'failure', category: 'Processing' },
  'EBMS:0202': { shortDescription: 'DeliveryFailure', severity: 'failure', category: 'Communication' },
  'EBMS:0301': { shortDescription: 'MissingReceipt', severity: 'failure', category: 'Communication' },
  'EBMS:0302': { shortDescription: 'InvalidReceipt', severity: 'failure', category: 'Communication' },
  'EBMS:0303': { shortDescription: 'DecompressionFailure', severity: 'failure', category: 'Communication' },
} as const satisfies Record<string, { shortDescription: string; severity: EbmsSeverity; category: EbmsCategory }>;

export type EbmsCode = keyof typeof ebmsErrors;

/** The SOAP 1.2 Fault code a failure travels with: Sender when the message itself is at fault, else Receiver. */
export type FaultCode = 'Sender' | 'Receiver' | 'MustUnderstand' | 'VersionMismatch';

export interface EbmsErrorOptions {
  /** The MessageId of the message in error, when it could be read. */
  refToMessageInError?: string;
  /** ebMS, reliability or security (Core 6.2). */
  origin?: 'ebMS' | 'reliability' | 'security';
  /** The hub's own code behind it, kept for evidence and the console. */
  swxCode?: ErrorCode;
  faultCode?: FaultCode;
  cause?: unknown;
}

/** An ebMS error: its code, short description, severity and category from the table; `detail` is its ErrorDetail. */
export class EbmsError extends Error {
  readonly code: EbmsCode;
  readonly refToMessageInError: string | undefined;
  readonly origin: string | undefined;
  readonly swxCode: ErrorCode | undefined;
  private readonly fault: FaultCode | undefined;
  constructor(code: EbmsCode, detail: string, options: EbmsErrorOptions = {}) {
    super(detail, { cause: options.cause });
    this.name = 'EbmsError';
    this.code = code;
    this.refToMessageInError = options.refToMessageInError;
    this.origin = options.origin;
    this.swxCode = options.swxCode;
    this.fault = options.faultCode;
  }
  get detail(): string {
    return this.message;
  }
  get shortDescription(): string {
    return ebmsErrors[this.code].shortDescription;
  }
  get severity(): EbmsSeverity {
    return ebmsErrors[this.code].severity;
  }
  get category(): EbmsCategory {
    return ebmsErrors[this.code].category;
  }
  /**
   * SOAP 1.2's Sender when the fault lies in what was sent, so that it is not resent unchanged: Content (but Other) and
   * Unpackaging errors, a P-Mode mismatch, failed authentication or decryption, a policy not met. Receiver for the rest.
   */
  get faultCode(): FaultCode {
    if (this.fault) return this.fault;
    const inMessage = (this.category === 'Content' && this.code !== 'EBMS:0004') || this.category === 'Unpackaging'
      || this.code === 'EBMS:0010' || this.code === 'EBMS:0101' || this.code === 'EBMS:0102' || this.code === 'EBMS:0103';
    return inMessage ? 'Sender' : 'Receiver';
  }
  /** The same error about a known message. */
  about(messageId: string | undefined): EbmsError {
    if (messageId === undefined || this.refToMessageInError !== undefined) return this;
    return new EbmsError(this.code, this.message, {
      refToMessageInError: messageId, ...(this.origin ? { origin: this.origin as EbmsErrorOptions['origin'] } : {}),
      ...(this.swxCode ? { swxCode: this.swxCode } : {}), ...(this.fault ? { faultCode: this.fault } : {}), cause: this.cause,
    });
  }
}

/**
 * Which ebMS error answers a refusal of the hub's. Authentication (signature, certificate, freshness, replay) is
 * FailedAuthentication; payloads that do not decrypt with the hub's key FailedDecryption; an algorithm outside what the
 * agreement allows is PolicyNoncompliance; who may send what to
 * whom is the agreement (ProcessingModeMismatch); an unknown party or service a value not recognised; malformed XML an
 * invalid header; the rest, the hub's own state included, Other with the hub's detail.
 */
const fromSwx: Partial<Record<ErrorCode, EbmsCode>> = {
  SWX_AUTH_REQUIRED: 'EBMS:0101',
  SWX_AUTH_UNKNOWN_CERT: 'EBMS:0101',
  SWX_CERT_EXPIRED: 'EBMS:0101',
  SWX_CERT_UNTRUSTED: 'EBMS:0101',
  SWX_CERT_REVOKED: 'EBMS:0101',
  SWX_CERT_USAGE: 'EBMS:0101',
  SWX_SIG_MISSING: 'EBMS:0101',
  SWX_SIG_INVALID: 'EBMS:0101',
  SWX_SIG_KEY_MISMATCH: 'EBMS:0101',
  SWX_SIG_EXPIRED: 'EBMS:0101',
  SWX_SIG_WRAPPED: 'EBMS:0101',
  SWX_SIG_REF_UNRESOLVED: 'EBMS:0101',
  SWX_DIGEST_MISMATCH: 'EBMS:0101',
  SWX_REPLAY: 'EBMS:0101',
  SWX_DECRYPT_FAILED: 'EBMS:0102',
  SWX_DECRYPT_KEY_MISSING: 'EBMS:0102',
  SWX_SIG_ALG_UNSUPPORTED: 'EBMS:0103',
  SWX_ENC_ALG_UNSUPPORTED: 'EBMS:0103',
  SWX_SIG_WEAK_ALG: 'EBMS:0103',
  SWX_ACL_DENIED: 'EBMS:0010',
  SWX_UNKNOWN_RECEIVER: 'EBMS:0001',
  SWX_UNKNOWN_SERVICE: 'EBMS:0001',
  SWX_DUPLICATE_CONFLICT: 'EBMS:0003',
  SWX_XML_MALFORMED: 'EBMS:0009',
  SWX_XML_FORBIDDEN: 'EBMS:0009',
  SWX_XML_LIMIT: 'EBMS:0009',
  SWX_DELIVERY_REJECTED: 'EBMS:0202',
  SWX_TTL_EXPIRED: 'EBMS:0202',
  SWX_RECEIPT_INVALID: 'EBMS:0302',
  SWX_RECEIPT_MISSING: 'EBMS:0301',
};

/** The table above, for the README and the tests. */
export const swxToEbms: Readonly<Partial<Record<ErrorCode, EbmsCode>>> = fromSwx;

/** The ebMS error answering any failure: an EbmsError as it is, an SwxError through the table, anything else Other. */
export function ebmsErrorOf(error: unknown, refToMessageInError?: string): EbmsError {
  if (error instanceof EbmsError) return error.about(refToMessageInError);
  const ref = refToMessageInError === undefined ? {} : { refToMessageInError };
  if (error instanceof SwxError) {
    const code = fromSwx[error.code] ?? 'EBMS:0004';
    const origin = code === 'EBMS:0101' || code === 'EBMS:0102' || code === 'EBMS:0103' ? 'security' as const : 'ebMS' as const;
    return new EbmsError(code, `${error.code}: ${error.message}`, { ...ref, origin, swxCode: error.code, cause: error });
  }
  return new EbmsError('EBMS:0004', 'the message could not be processed', { ...ref, swxCode: 'SWX_INTERNAL', cause: error });
}
