// The errors an ebMS 2.0 MSH reports to the sending party (OASIS ebMS 2.0, 4.2.3.4): the spec's errorCode, a severity
// and where in the message the fault is. A message refused for them is answered with a MessageError (write.ts).
import type { XmlVerdict } from '../../engine/trust/index.ts';

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

/** A signature the trust core did not accept, as ebMS 2.0 reports it (4.1.5: SecurityFailure, severity Error). */
export function securityFailure(verdict: Pick<XmlVerdict, 'code' | 'detail'>): EbmsError {
  return ebmsError('SecurityFailure', `${verdict.code}: ${verdict.detail}`.slice(0, 500), 'xpointer(/SOAP:Envelope/SOAP:Header/ds:Signature)');
}
