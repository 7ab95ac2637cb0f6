// An AS4 message as the connector types it: the eb:Messaging header (ebMS 3.0 Core 5.2) of a SOAP envelope, a
// UserMessage or a SignalMessage (Receipt, Error, PullRequest), and the namespaces and default values it uses.
import { ebxmlNamespaces, soapNamespaces, type SoapEnvelope, type SoapVersion } from '../../engine/xml/soap.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';

export const as4Namespaces = {
  eb: ebxmlNamespaces.ebms3,
  ebbp: 'http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
  soap12: soapNamespaces['1.2'],
  soap11: soapNamespaces['1.1'],
} as const;

/** Core 5.2.2: the default MPC, Role and Service values. */
export const ebmsDefaults = {
  mpc: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC',
  role: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole',
  service: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service',
  testAction: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test',
} as const;

export interface MessageInfo {
  /** As written (xsd:dateTime); `at` reads it as UTC when it names no zone, as AS4 requires UTC. */
  timestamp: string;
  at: Date;
  messageId: string;
  refToMessageId?: string;
}

export interface Property { name: string; value: string; type?: string }
export interface PartyId { id: string; type?: string }
export interface Party { partyIds: PartyId[]; role: string }

export interface CollaborationInfo {
  agreementRef?: { value: string; type?: string; pmode?: string };
  service: { value: string; type?: string };
  action: string;
  conversationId: string;
}

/** Where a payload is: a MIME part (by its Content-ID, without angle brackets) or the SOAP Body (by Id, or all of it). */
export type PartLocation = { kind: 'attachment'; contentId: string } | { kind: 'body'; id?: string };

export interface PartInfo {
  href?: string;
  location: PartLocation;
  properties: Property[];
  /** PartProperties MimeType, CompressionType and CharacterSet, as the AS4 profile names them. */
  mimeType?: string;
  compressionType?: string;
  characterSet?: string;
  schema?: { location: string; version?: string; namespace?: string };
  description?: string;
}

export interface UserMessage {
  kind: 'user';
  mpc?: string;
  messageInfo: MessageInfo;
  from: Party;
  to: Party;
  collaboration: CollaborationInfo;
  properties: Property[];
  parts: PartInfo[];
}

/** A ds:Reference as a receipt's NonRepudiationInformation holds it. */
export interface ReferenceCopy { uri: string; transforms: string[]; digestMethod: string; digestValue: string }

export interface SignalError {
  errorCode: string;
  /** Lower case (some MSHs write "Failure"). */
  severity: string;
  category?: string;
  origin?: string;
  refToMessageInError?: string;
  shortDescription?: string;
  description?: { text: string; lang: string };
  detail?: string;
}

export interface SignalMessage {
  kind: 'signal';
  messageInfo: MessageInfo;
  /**
   * `nonRepudiation`: the references of the signature over the message received; `partIdentifiers`: the parts a
   * reception-awareness receipt names instead; `content`: the names of the elements the Receipt holds.
   */
  receipt?: { nonRepudiation: ReferenceCopy[]; partIdentifiers: string[]; content: string[] };
  errors: SignalError[];
  pullRequest?: { mpc: string };
}

export interface As4Message {
  soapVersion: SoapVersion;
  envelope: SoapEnvelope;
  messaging: XmlElement;
  /** The wsu:Id (or Id) of eb:Messaging, the signature's handle on it. */
  messagingId?: string;
  message: UserMessage | SignalMessage;
  /** A SOAP Fault in the Body (an Error signal may carry one). */
  fault?: { code: string; reason: string };
}

export interface ReadOptions {
  /** Content-IDs (without angle brackets) of the MIME parts beside the SOAP part; none for a plain SOAP message. */
  attachments?: readonly string[];
  /** The MIME parts are still arriving (a body streamed as it is read): PartInfo hrefs are not checked against
   *  `attachments`, which a read of the whole message does. */
  arriving?: boolean;
  /** Further SOAP header blocks this MSH processes, as `{namespace}localName`. */
  understood?: readonly string[];
}
