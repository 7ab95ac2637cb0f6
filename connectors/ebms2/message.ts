// An ebMS 2.0 message (OASIS ebMS 2.0, SOAP 1.1 with the msg-header-2_0 extension elements) read into what the connector
// acts on, and validated as the spec requires: each fault becomes an ebMS error with the spec's errorCode, severity and
// location, and a message with any error of severity Error is refused as a whole (EbmsRefusal) so that the MSH answers
// it with a MessageError. Read through the hardened XML gate.
import { cidUrl, type MessageParts } from '../../engine/mime/index.ts';
import { ebxmlNamespaces, soapNamespaces } from '../../engine/xml/soap.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import { parseXml, XmlRefusal, type XmlElement } from '../../engine/xml/parse.ts';
import { namespaces } from '../../engine/trust/xmldsig-algorithms.ts';
import { ebmsError, EbmsRefusal, ebmsErrorCodes, type EbmsError, type EbmsErrorCode, type EbmsSeverity, type RefusedMessage } from './ebms-error.ts';

export const ebmsNamespace = ebxmlNamespaces.ebms2;
export const soap11 = soapNamespaces['1.1'];
export const xlinkNamespace = 'http://www.w3.org/1999/xlink';
/** The MSH's own service (ebMS 2.0, 6 and 7): its signals travel under it. */
export const mshService = 'urn:oasis:names:tc:ebxml-msg:service';
export const actors = {
  nextMsh: 'urn:oasis:names:tc:ebxml-msg:actor:nextMSH',
  toPartyMsh: 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH',
  soapNext: 'http://schemas.xmlsoap.org/soap/actor/next',
} as const;
export const mshActions = ['Ping', 'Pong', 'Acknowledgment', 'MessageError', 'StatusRequest', 'StatusResponse'] as const;
export type MshAction = typeof mshActions[number];
export const messageStatuses = ['UnAuthorized', 'NotRecognized', 'Received', 'Processed', 'Forwarded'] as const;
export type MessageStatus = typeof messageStatuses[number];

export interface PartyId { id: string; type?: string }
export interface EbmsParty { partyIds: PartyId[]; role?: string }

export interface MessageHeader {
  from: EbmsParty;
  to: EbmsParty;
  cpaId: string;
  conversationId: string;
  service: { value: string; type?: string };
  action: string;
  messageId: string;
  /** As written (xsd:dateTime). */
  timestamp: string;
  refToMessageId?: string;
  timeToLive?: string;
  duplicateElimination: boolean;
  descriptions: { lang?: string; text: string }[];
}

/** The eb:Description by which one receiver's copy of a topic's or channel's message names the message it is a copy of. */
export const originalMessageIdDescription = (id: string) => ({ lang: 'en', text: `originalMessageId ${id}` });

/** The message a copy names in its eb:Description (originalMessageIdDescription); undefined for any other message. */
export function originalMessageIdOf(header: Pick<MessageHeader, 'descriptions'>): string | undefined {
  return header.descriptions.map((description) => /^originalMessageId (\S+)$/.exec(description.text)?.[1]).find((id) => id !== undefined);
}

/** A ds:Reference as read from a signature (or copied into an Acknowledgment for non-repudiation of receipt). */
export interface DsReference {
  uri: string;
  transforms: { algorithm: string; xpath?: { expression: string; namespaces: Record<string, string> } }[];
  digestMethod: string;
  digestValue: string;
}

export interface ManifestReference {
  id?: string;
  href: string;
  /** The Content-ID (without <>) of the MIME part the reference names. */
  contentId: string;
  role?: string;
  descriptions: { lang?: string; text: string }[];
}

export interface EbmsMessage {
  header: MessageHeader;
  /** The MSH signal this message is (its Service is the MSH's), or undefined for a business message. */
  signal?: MshAction;
  /** One per actor the sender asks an Acknowledgment of. */
  ackRequested: { actor: string; signed: boolean }[];
  syncReply: boolean;
  manifest: ManifestReference[];
  acknowledgment?: { timestamp: string; refToMessageId: string; from?: EbmsParty; actor?: string; references: DsReference[] };
  errorList?: { highestSeverity: EbmsSeverity; errors: EbmsError[] };
  statusRequest?: { refToMessageId: string };
  statusResponse?: { refToMessageId: string; timestamp?: string; messageStatus: MessageStatus };
  /** The references of the message's own ds:Signature in the SOAP Header, which an NRR Acknowledgment repeats; [] when unsigned. */
  signatureReferences: DsReference[];
}

export interface ReadOptions {
  /** The Content-IDs (without <>) of the message's MIME parts other than the envelope; a Manifest reference must name one. */
  attachments?: readonly { contentId: string }[];
  /** The MIME parts are still arriving (a body streamed as it is read): Manifest references are not checked against
   *  `attachments`, which a read of the whole message does. */
  arriving?: boolean;
  /** Judges TimeToLive against this instant (default now); false reads an archived message without judging it. */
  at?: Date | false;
}

const xsdDateTime = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?$/;
const uriScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\S/;
/** Header blocks this MSH processes; a mustUnderstand block not among them is refused (NotSupported). */
const understood = new Set(['MessageHeader', 'AckRequested', 'SyncReply', 'ErrorList', 'Acknowledgment']);

const maxErrors = 50;

/** Collects errors as the message is walked, each with the XPointer of where it is. */
class Reading {
  readonly errors: EbmsError[] = [];
  readonly refused: RefusedMessage = {};

  fail(errorCode: EbmsErrorCode, description: string, at: XmlElement | string | undefined, severity: EbmsSeverity = 'Error'): undefined {
    // Enough to tell the sender what is wrong; a hostile message of a million faults costs no more than this many.
    if (this.errors.length >= maxErrors) return undefined;
    const location = typeof at === 'string' ? at : at ? pointer(at) : undefined;
    this.errors.push(ebmsError(errorCode, description, location, severity));
    return undefined;
  }

  /** The one child `name` (ebMS namespace unless given); OtherXml when it is missing (if required) or repeated. */
  one(parent: XmlElement, name: string, required: boolean, namespace: string = ebmsNamespace): XmlElement | undefined {
    const found = elementChildren(parent).filter((child) => child.namespace === namespace && child.localName === name);
    if (found.length > 1) return this.fail('OtherXml', `${name} appears ${found.length} times in ${parent.localName}; the schema allows one`, found[1]);
    if (found.length === 0 && required) return this.fail('OtherXml', `${name} is missing from ${parent.localName}`, parent);
    return found[0];
  }

  text(parent: XmlElement, name: string, required: boolean): string | undefined {
    return this.textOf(this.one(parent, name, required), required);
  }

  textOf(element: XmlElement | undefined, required: boolean): string | undefined {
    if (!element) return undefined;
    if (elementChildren(element).length > 0) return this.fail('OtherXml', `${element.localName} must hold text, not elements`, element);
    const value = textContent(element).trim();
    if (value === '' && required) return this.fail('OtherXml', `${element.localName} is empty`, element);
    return value;
  }

  dateTime(parent: XmlElement, name: string, required: boolean): string | undefined {
    const element = this.one(parent, name, required);
    const value = this.textOf(element, required);
    if (value !== undefined && (!xsdDateTime.test(value) || Number.isNaN(Date.parse(value)))) {
      return this.fail('ValueNotRecognized', `${name} ${JSON.stringify(value.slice(0, 60))} is not an xsd:dateTime`, element);
    }
    return value;
  }

  /** Every ebMS extension element carries eb:version="2.0" (2.3.8). */
  version(element: XmlElement): void {
    const version = ebAttribute(element, 'version');
    if (version === undefined) this.fail('OtherXml', `${element.localName} has no eb:version attribute`, element);
    else if (version !== '2.0') this.fail('ValueNotRecognized', `${element.localName} has eb:version ${JSON.stringify(version.slice(0, 20))}; this MSH speaks 2.0`, element);
  }
}

function textContent(element: XmlElement): string {
  return element.children.map((child) => (child.type === 'text' ? child.value : child.type === 'element' ? textContent(child) : '')).join('');
}

/** `xpointer(/SOAP:Envelope/SOAP:Header/eb:MessageHeader)`: qualified names as the document writes them, [n] among namesakes. */
export function pointer(element: XmlElement): string {
  let path = '';
  for (let node: XmlElement | undefined = element; node; node = node.parent) {
    let step = node.qualifiedName;
    if (node.parent) {
      // One pass over the siblings, no copies: a hostile parent may hold a hundred thousand of them.
      let position = 0;
      let namesakes = 0;
      for (const sibling of node.parent.children) {
        if (sibling.type !== 'element' || sibling.namespace !== node.namespace || sibling.localName !== node.localName) continue;
        namesakes += 1;
        if (sibling === node) position = namesakes;
        if (position && namesakes > 1) break;
      }
      if (namesakes > 1) step += `[${position}]`;
    }
    path = `/${step}${path}`;
  }
  return `xpointer(${path})`;
}

/** ebMS attributes are eb:-qualified; some writers leave them unqualified, which is read the same. */
function ebAttribute(element: XmlElement, name: string): string | undefined {
  return (element.attributes.find((a) => a.namespace === ebmsNamespace && a.localName === name)
    ?? element.attributes.find((a) => a.namespace === '' && a.localName === name))?.value;
}

function soapAttribute(element: XmlElement, name: 'mustUnderstand' | 'actor'): string | undefined {
  return element.attributes.find((a) => a.namespace === soap11 && a.localName === name)?.value;
}

/** SOAP 1.1 writes "1"/"0"; xsd:boolean's "true"/"false" are met in practice and read the same. */
function mustUnderstand(element: XmlElement): boolean | 'invalid' | undefined {
  const value = soapAttribute(element, 'mustUnderstand');
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '1' || trimmed === 'true' ? true : trimmed === '0' || trimmed === 'false' ? false : 'invalid';
}

/** A header block is for this MSH when it names no actor or one this MSH plays (the next one, or the To party's). */
const forThisMsh = (element: XmlElement) => {
  const actor = soapAttribute(element, 'actor');
  return actor === undefined || actor === actors.soapNext || actor === actors.nextMsh || actor === actors.toPartyMsh;
};

function readParty(reading: Reading, parent: XmlElement, name: 'From' | 'To'): EbmsParty | undefined {
  const party = reading.one(parent, name, true);
  if (!party) return undefined;
  return readPartyElement(reading, party);
}

function readPartyElement(reading: Reading, party: XmlElement): EbmsParty {
  const ids = elementChildren(party).filter((child) => child.namespace === ebmsNamespace && child.localName === 'PartyId');
  if (ids.length === 0) reading.fail('OtherXml', `${party.localName} has no PartyId`, party);
  const partyIds = ids.map((element) => {
    const id = textContent(element).trim();
    const type = ebAttribute(element, 'type');
    if (id === '') reading.fail('OtherXml', 'PartyId is empty', element);
    // 3.1.1.1: without a type the PartyId must be a URI.
    else if (type === undefined && !uriScheme.test(id)) reading.fail('Inconsistent', `PartyId ${JSON.stringify(id.slice(0, 60))} has no type and is not a URI`, element);
    return { id, ...(type === undefined ? {} : { type }) };
  });
  const role = reading.text(party, 'Role', false);
  return { partyIds, ...(role === undefined ? {} : { role }) };
}

function descriptions(parent: XmlElement) {
  return elementChildren(parent).filter((child) => child.namespace === ebmsNamespace && child.localName === 'Description').map((element) => {
    const lang = element.attributes.find((a) => a.localName === 'lang' && a.prefix === 'xml')?.value;
    return { ...(lang === undefined ? {} : { lang }), text: textContent(element).trim() };
  });
}

function readHeader(reading: Reading, element: XmlElement, at: Date | false): MessageHeader | undefined {
  reading.version(element);
  if (mustUnderstand(element) !== true) reading.fail('Inconsistent', 'MessageHeader must carry SOAP:mustUnderstand="1"', element);
  const data = reading.one(element, 'MessageData', true);
  const messageId = data && reading.text(data, 'MessageId', true);
  if (messageId) reading.refused.messageId = messageId;
  const from = readParty(reading, element, 'From');
  const to = readParty(reading, element, 'To');
  if (from) reading.refused.from = from;
  if (to) reading.refused.to = to;
  const cpaId = reading.text(element, 'CPAId', true);
  const conversationId = reading.text(element, 'ConversationId', true);
  if (cpaId) reading.refused.cpaId = cpaId;
  if (conversationId) reading.refused.conversationId = conversationId;
  const serviceElement = reading.one(element, 'Service', true);
  const service = serviceElement && { value: textContent(serviceElement).trim(), type: ebAttribute(serviceElement, 'type') };
  // 3.1.4: without a type the Service must be a URI.
  if (serviceElement && service && service.type === undefined && !uriScheme.test(service.value)) {
    reading.fail('Inconsistent', `Service ${JSON.stringify(service.value.slice(0, 60))} has no type and is not a URI`, serviceElement);
  }
  const action = reading.text(element, 'Action', true);
  const timestamp = data && reading.dateTime(data, 'Timestamp', true);
  const refToMessageId = data && reading.text(data, 'RefToMessageId', false);
  const timeToLive = data && reading.dateTime(data, 'TimeToLive', false);
  // 6.4.5: a message whose TimeToLive has passed is not delivered.
  if (timeToLive && at !== false && Date.parse(timeToLive) < at.getTime()) {
    reading.fail('TimeToLiveExpired', `TimeToLive ${timeToLive} is before ${at.toISOString()}`, elementChildren(data!).find((child) => child.namespace === ebmsNamespace && child.localName === 'TimeToLive'));
  }
  const duplicateElimination = reading.one(element, 'DuplicateElimination', false) !== undefined;
  if (!from || !to || !cpaId || !conversationId || !service?.value || !action || !messageId || !timestamp) return undefined;
  return {
    from, to, cpaId, conversationId,
    service: { value: service.value, ...(service.type === undefined ? {} : { type: service.type }) },
    action, messageId, timestamp,
    ...(refToMessageId ? { refToMessageId } : {}),
    ...(timeToLive ? { timeToLive } : {}),
    duplicateElimination,
    descriptions: descriptions(element),
  };
}

function inScope(element: XmlElement): Record<string, string> {
  const scope: Record<string, string> = {};
  for (let node: XmlElement | undefined = element; node; node = node.parent) {
    for (const declaration of node.namespaceDeclarations) if (declaration.prefix !== '' && !(declaration.prefix in scope)) scope[declaration.prefix] = declaration.uri;
  }
  return scope;
}

function readDsReference(element: XmlElement): DsReference {
  const ds = (parent: XmlElement | undefined, name: string) => parent && elementChildren(parent).find((child) => child.namespace === namespaces.ds && child.localName === name);
  const transforms = elementChildren(ds(element, 'Transforms') ?? element).filter((child) => child.namespace === namespaces.ds && child.localName === 'Transform').map((transform) => {
    const xpath = ds(transform, 'XPath');
    const algorithm = transform.attributes.find((a) => a.localName === 'Algorithm' && a.namespace === '')?.value ?? '';
    return { algorithm, ...(xpath ? { xpath: { expression: textContent(xpath).trim(), namespaces: inScope(xpath) } } : {}) };
  });
  return {
    uri: element.attributes.find((a) => a.localName === 'URI' && a.namespace === '')?.value ?? '',
    transforms,
    digestMethod: ds(element, 'DigestMethod')?.attributes.find((a) => a.localName === 'Algorithm')?.value ?? '',
    digestValue: (ds(element, 'DigestValue') ? textContent(ds(element, 'DigestValue')!) : '').replace(/\s+/g, ''),
  };
}

function readErrorList(reading: Reading, element: XmlElement): EbmsMessage['errorList'] {
  reading.version(element);
  const errors = elementChildren(element).filter((child) => child.namespace === ebmsNamespace && child.localName === 'Error').map((error) => {
    const code = ebAttribute(error, 'errorCode') ?? '';
    const context = ebAttribute(error, 'codeContext');
    const severity = ebAttribute(error, 'severity') ?? 'Error';
    if (severity !== 'Error' && severity !== 'Warning') reading.fail('ValueNotRecognized', `Error severity ${JSON.stringify(severity.slice(0, 20))} is neither Warning nor Error`, error);
    if (code === '') reading.fail('OtherXml', 'Error has no errorCode', error);
    const location = ebAttribute(error, 'location');
    const description = elementChildren(error).find((child) => child.namespace === ebmsNamespace && child.localName === 'Description');
    const ownCode = (ebmsErrorCodes as readonly string[]).includes(code) && (context === undefined || context === 'urn:oasis:names:tc:ebxml-msg:service:errors');
    return {
      errorCode: (ownCode ? code : 'Unknown') as EbmsErrorCode,
      severity: severity === 'Warning' ? 'Warning' as const : 'Error' as const,
      description: description ? textContent(description).trim() : '',
      ...(location === undefined ? {} : { location }),
      ...(ownCode ? {} : { codeContext: `${context ?? ''}#${code}` }),
    };
  });
  if (errors.length === 0) reading.fail('OtherXml', 'ErrorList holds no Error', element);
  const highest = ebAttribute(element, 'highestSeverity');
  if (highest !== 'Error' && highest !== 'Warning') reading.fail('OtherXml', 'ErrorList has no highestSeverity of Warning or Error', element);
  return { highestSeverity: highest === 'Warning' ? 'Warning' : 'Error', errors };
}

/** `attachments` undefined: the parts are still arriving, so a reference is not checked against them. */
function readManifest(reading: Reading, element: XmlElement, attachments: readonly { contentId: string }[] | undefined): ManifestReference[] {
  reading.version(element);
  const references = elementChildren(element).filter((child) => child.namespace === ebmsNamespace && child.localName === 'Reference');
  if (references.length === 0) reading.fail('OtherXml', 'Manifest holds no Reference', element);
  const out: ManifestReference[] = [];
  const parts = attachments && new Set(attachments.map((part) => part.contentId));
  for (const reference of references) {
    const href = reference.attributes.find((a) => a.namespace === xlinkNamespace && a.localName === 'href')?.value;
    if (href === undefined) { reading.fail('OtherXml', 'Reference has no xlink:href', reference); continue; }
    // 3.2.2: a cid: reference names a part of this message; this MSH fetches nothing from elsewhere, so any other URI
    // cannot be resolved, which the spec reports as MimeProblem.
    if (!/^cid:/i.test(href)) { reading.fail('MimeProblem', `Reference ${JSON.stringify(href.slice(0, 120))} is not a cid: URI; payloads outside the message are not fetched`, reference); continue; }
    let contentId: string;
    try {
      contentId = decodeURIComponent(href.slice(4));
    } catch {
      reading.fail('MimeProblem', `Reference ${JSON.stringify(href.slice(0, 120))} is not a valid cid: URL`, reference);
      continue;
    }
    if (parts && !parts.has(contentId)) {
      reading.fail('MimeProblem', `no MIME part has Content-ID <${contentId.slice(0, 120)}>`, href.slice(0, 200));
      continue;
    }
    const id = ebAttribute(reference, 'id');
    const role = reference.attributes.find((a) => a.namespace === xlinkNamespace && a.localName === 'role')?.value;
    out.push({ ...(id === undefined ? {} : { id }), href, contentId, ...(role === undefined ? {} : { role }), descriptions: descriptions(reference) });
  }
  return out;
}

/** Reads and validates the ebMS 2.0 envelope in `xml`; throws EbmsRefusal with every error found. */
export function readEbmsMessage(xml: Buffer | string, options: ReadOptions = {}): EbmsMessage {
  let root: XmlElement;
  try {
    root = parseXml(xml).root;
  } catch (error) {
    if (error instanceof XmlRefusal) throw new EbmsRefusal([ebmsError('OtherXml', `the SOAP envelope is not acceptable XML: ${error.message}`)]);
    throw error;
  }
  const reading = new Reading();
  const at = options.at === undefined ? new Date() : options.at;
  if (root.namespace !== soap11 || root.localName !== 'Envelope') {
    reading.fail('OtherXml', `the root element is {${root.namespace}}${root.localName}, not a SOAP 1.1 Envelope`, root);
    throw new EbmsRefusal(reading.errors);
  }
  const soapHeader = reading.one(root, 'Header', true, soap11);
  const soapBody = reading.one(root, 'Body', true, soap11);
  if (!soapHeader || !soapBody) throw new EbmsRefusal(reading.errors);

  const blocks = elementChildren(soapHeader);
  const named = (name: string) => blocks.filter((block) => block.namespace === ebmsNamespace && block.localName === name);
  for (const block of blocks) {
    const must = mustUnderstand(block);
    if (must === 'invalid') reading.fail('OtherXml', `SOAP:mustUnderstand on ${block.localName} is neither 1 nor 0`, block);
    const known = (block.namespace === ebmsNamespace && understood.has(block.localName)) || (block.namespace === namespaces.ds && block.localName === 'Signature');
    if (must === true && !known && forThisMsh(block)) reading.fail('NotSupported', `header block {${block.namespace}}${block.localName} must be understood and this MSH does not process it`, block);
  }
  const headers = named('MessageHeader');
  if (headers.length === 0) reading.fail('OtherXml', 'the SOAP Header has no MessageHeader', soapHeader);
  if (headers.length > 1) reading.fail('OtherXml', `the SOAP Header has ${headers.length} MessageHeader elements; one is allowed`, headers[1]);
  const header = headers.length === 1 ? readHeader(reading, headers[0]!, at) : undefined;
  if (headers.length > 1) readHeader(reading, headers[0]!, false);

  const ackRequested = named('AckRequested').map((element) => {
    reading.version(element);
    const actor = soapAttribute(element, 'actor') ?? actors.toPartyMsh;
    if (actor !== actors.toPartyMsh && actor !== actors.nextMsh) reading.fail('ValueNotRecognized', `AckRequested actor ${JSON.stringify(actor.slice(0, 80))} is neither nextMSH nor toPartyMSH`, element);
    const signed = ebAttribute(element, 'signed');
    if (signed === undefined) reading.fail('OtherXml', 'AckRequested has no eb:signed attribute', element);
    return { actor, signed: signed === 'true' || signed === '1' };
  });
  if (new Set(ackRequested.map((ack) => ack.actor)).size < ackRequested.length) reading.fail('Inconsistent', 'two AckRequested elements name one actor', named('AckRequested')[1]);

  const syncReplies = named('SyncReply');
  for (const element of syncReplies) {
    reading.version(element);
    if (soapAttribute(element, 'actor') !== actors.soapNext) reading.fail('Inconsistent', `SyncReply must name the SOAP actor ${actors.soapNext}`, element);
  }
  if (syncReplies.length > 1) reading.fail('OtherXml', 'SyncReply appears more than once', syncReplies[1]);

  const errorLists = named('ErrorList');
  if (errorLists.length > 1) reading.fail('OtherXml', 'ErrorList appears more than once', errorLists[1]);
  const errorList = errorLists[0] && readErrorList(reading, errorLists[0]);

  const acknowledgments = named('Acknowledgment');
  if (acknowledgments.length > 1) reading.fail('OtherXml', 'Acknowledgment appears more than once', acknowledgments[1]);
  let acknowledgment: EbmsMessage['acknowledgment'];
  if (acknowledgments[0]) {
    const element = acknowledgments[0];
    reading.version(element);
    const timestamp = reading.dateTime(element, 'Timestamp', true);
    const refToMessageId = reading.text(element, 'RefToMessageId', true);
    const fromElement = reading.one(element, 'From', false);
    const actor = soapAttribute(element, 'actor');
    const references = elementChildren(element).filter((child) => child.namespace === namespaces.ds && child.localName === 'Reference').map(readDsReference);
    if (timestamp && refToMessageId) {
      acknowledgment = { timestamp, refToMessageId, ...(fromElement ? { from: readPartyElement(reading, fromElement) } : {}), ...(actor ? { actor } : {}), references };
    }
  }

  const bodyBlock = (name: string) => {
    const found = elementChildren(soapBody).filter((child) => child.namespace === ebmsNamespace && child.localName === name);
    if (found.length > 1) reading.fail('OtherXml', `${name} appears more than once in the SOAP Body`, found[1]);
    return found[0];
  };
  const manifestElement = bodyBlock('Manifest');
  const manifest = manifestElement ? readManifest(reading, manifestElement, options.arriving ? undefined : options.attachments ?? []) : [];
  const requestElement = bodyBlock('StatusRequest');
  let statusRequest: EbmsMessage['statusRequest'];
  if (requestElement) {
    reading.version(requestElement);
    const refToMessageId = reading.text(requestElement, 'RefToMessageId', true);
    if (refToMessageId) statusRequest = { refToMessageId };
  }
  const responseElement = bodyBlock('StatusResponse');
  let statusResponse: EbmsMessage['statusResponse'];
  if (responseElement) {
    reading.version(responseElement);
    const refToMessageId = reading.text(responseElement, 'RefToMessageId', true);
    const timestamp = reading.dateTime(responseElement, 'Timestamp', false);
    const status = ebAttribute(responseElement, 'messageStatus');
    if (!(messageStatuses as readonly string[]).includes(status ?? '')) reading.fail('ValueNotRecognized', `messageStatus ${JSON.stringify(status ?? '')} is not one of ${messageStatuses.join(', ')}`, responseElement);
    else if (refToMessageId) statusResponse = { refToMessageId, ...(timestamp ? { timestamp } : {}), messageStatus: status as MessageStatus };
  }

  let signal: MshAction | undefined;
  if (header?.service.value === mshService) {
    const serviceElement = headers[0] && elementChildren(headers[0]).find((child) => child.namespace === ebmsNamespace && child.localName === 'Service');
    if (!(mshActions as readonly string[]).includes(header.action)) {
      reading.fail('ValueNotRecognized', `the MSH service has no action ${JSON.stringify(header.action.slice(0, 60))}`, serviceElement);
    } else {
      signal = header.action as MshAction;
      // Each signal carries what it is about (6.3, 4.2.4, 7.1).
      const needs: Partial<Record<MshAction, [unknown, string]>> = {
        Acknowledgment: [acknowledgments[0], 'an Acknowledgment element'],
        MessageError: [errorLists[0], 'an ErrorList'],
        StatusRequest: [requestElement, 'a StatusRequest element'],
        StatusResponse: [responseElement, 'a StatusResponse element'],
      };
      const need = needs[signal];
      if (need && !need[0]) reading.fail('Inconsistent', `a ${signal} message has no ${need[1]}`, headers[0]);
      if ((signal === 'Acknowledgment' || signal === 'MessageError') && !header.refToMessageId) {
        reading.fail('Inconsistent', `a ${signal} message names the message it is about in RefToMessageId`, headers[0]);
      }
    }
  }
  if (errorLists[0] && signal !== 'MessageError') reading.fail('Inconsistent', 'an ErrorList travels only in a MessageError message', errorLists[0]);

  const signature = blocks.find((block) => block.namespace === namespaces.ds && block.localName === 'Signature');
  const signedInfo = signature && elementChildren(signature).find((child) => child.namespace === namespaces.ds && child.localName === 'SignedInfo');
  const signatureReferences = signedInfo ? elementChildren(signedInfo).filter((child) => child.namespace === namespaces.ds && child.localName === 'Reference').map(readDsReference) : [];

  if (reading.errors.some((error) => error.severity === 'Error') || !header) throw new EbmsRefusal(reading.errors, reading.refused);
  return {
    header,
    ...(signal ? { signal } : {}),
    ackRequested,
    syncReply: syncReplies.length > 0,
    manifest,
    ...(acknowledgment ? { acknowledgment } : {}),
    ...(errorList ? { errorList } : {}),
    ...(statusRequest ? { statusRequest } : {}),
    ...(statusResponse ? { statusResponse } : {}),
    signatureReferences,
  };
}

/**
 * Reads the message a MIME package carries (2.1): its SOAP part, which must be text/xml (2.1.3.1, else MimeProblem),
 * with the other parts as the payloads its Manifest may name.
 */
export function readEbmsParts(parts: MessageParts, options: Omit<ReadOptions, 'attachments'> = {}): EbmsMessage {
  const { type, subtype } = parts.root.contentType;
  if (type !== 'text' || subtype !== 'xml') {
    const location = parts.root.contentId === undefined ? undefined : cidUrl(parts.root.contentId);
    throw new EbmsRefusal([ebmsError('MimeProblem', `the SOAP part is ${type}/${subtype}; ebMS 2.0 carries it as text/xml`, location)]);
  }
  return readEbmsMessage(parts.root.body, { ...options, attachments: parts.attachments });
}
