// The errors an ebMS 2.0 MSH reports to the sending party (OASIS ebMS 2.0, 4.2.3.4): the spec's errorCode, a severity
// and where in the message the fault is. A message refused for them is answered with a MessageError (write.ts).
import type { ErrorCode } from '../../engine/errors.ts';

/** 4.2.3.4.1 (errors in the ebXML elements) and 4.2.3.4.2 (non-XML errors). */
export const ebmsErrorCodes = [
  'ValueNotRecognized', 'NotSupported', 'Inconsistent', 'OtherXml',
  'DeliveryFailure', 'TimeToLiveExpired', 'SecurityFailure', 'MimeProblem', 'Unknown',
] as const;
export type EbmsErrorCode = typeof ebmsErrorCodes[number];

export type EbmsSeverity = 'Warning' | 'Error';

/** The default codeContext of eb:Error: the codes above. */
export const ebmsErrorContext = 'urn:oasis:names:tc:ebxml-msg:service:errors';

export interface EbmsError {
  errorCode: EbmsErrorCode;
  severity: EbmsSeverity;
  /** An XPointer into the envelope (`xpointer(/SOAP:Envelope/...)`) or the cid: URL of a MIME part. */
  location?: string;
  description: string;
  /** Another context's code (as read from a partner's ErrorList); absent for the spec's own. */
  codeContext?: string;
}

export function ebmsError(errorCode: EbmsErrorCode, description: string, location?: string, severity: EbmsSeverity = 'Error'): EbmsError {
  return { errorCode, severity, description, ...(location === undefined ? {} : { location }) };
}

/** What is known of a message that was refused, so that the MessageError can be addressed and referred to it. */
export interface RefusedMessage {
  messageId?: string;
  conversationId?: string;
  cpaId?: string;
  from?: { partyIds: { id: string; type?: string }[]; role?: string };
  to?: { partyIds: { id: string; type?: string }[]; role?: string };
}

/** A message the MSH does not accept: every error found, at least one of severity Error. */
export class EbmsRefusal extends Error {
  constructor(readonly errors: EbmsError[], readonly refused: RefusedMessage = {}) {
    super(errors.map((error) => `${error.errorCode}${error.location ? ` at ${error.location}` : ''}: ${error.description}`).join('; '));
    this.name = 'EbmsRefusal';
  }

  get highestSeverity(): EbmsSeverity {
    return highestSeverity(this.errors);
  }
}

export function highestSeverity(errors: readonly EbmsError[]): EbmsSeverity {
  return errors.some((error) => error.severity === 'Error') ? 'Error' : 'Warning';
}


/** The hub's stable code for a refusal made of ebMS errors, for its evidence and logs: the first Error decides. */
export function swxCodeOf(errors: readonly EbmsError[]): ErrorCode {
  const first = errors.find((error) => error.severity === 'Error') ?? errors[0];
  switch (first?.errorCode) {
    case 'SecurityFailure': return 'SWX_SIG_INVALID';
    case 'TimeToLiveExpired': return 'SWX_TTL_EXPIRED';
    case 'DeliveryFailure': return 'SWX_DELIVERY_REJECTED';
    default: return 'SWX_BAD_REQUEST';
  }
}

/**
 * The ebMS error a partner is told of when the hub refuses its message with one of its own codes (after the message
 * was read: its signature verdict, certificate, access or routing), so that the MessageError says what the evidence
 * says. A signature the trust core did not accept is a SecurityFailure (4.1.5).
 */
export function ebmsErrorFor(code: ErrorCode, detail: string): EbmsError {
  const description = `${code}: ${detail}`.slice(0, 500);
  if (/^SWX_(SIG_|CERT_|DIGEST_MISMATCH)/.test(code)) return ebmsError('SecurityFailure', description, 'xpointer(/SOAP:Envelope/SOAP:Header/ds:Signature)');
  if (code.startsWith('SWX_XML_')) return ebmsError('OtherXml', description);
  if (code === 'SWX_TTL_EXPIRED') return ebmsError('TimeToLiveExpired', description);
  if (code === 'SWX_ACL_DENIED' || code === 'SWX_UNKNOWN_RECEIVER' || code === 'SWX_UNKNOWN_SERVICE') return ebmsError('DeliveryFailure', description);
  if (code === 'SWX_BAD_REQUEST' || code === 'SWX_TOO_LARGE') return ebmsError('MimeProblem', description);
  return ebmsError('Unknown', description);
}
