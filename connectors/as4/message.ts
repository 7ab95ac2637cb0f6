// Reading an AS4 message: a SOAP 1.2 envelope (SOAP 1.1 tolerated) into the typed message of model.ts. Every refusal is
// an EbmsError with the code the specification gives it and an ErrorDetail naming the element at fault.
import { elementChildren, elementPath } from '../../engine/xml/elements.ts';
import { parseXml, type XmlElement } from '../../engine/xml/parse.ts';
import { soapVersionOf, type SoapVersion } from '../../engine/xml/soap.ts';
import { EbmsError, ebmsErrorOf, ebmsErrors, type EbmsCode } from './errors.ts';
import {
  as4Namespaces, ebmsDefaults, type As4Message, type CollaborationInfo, type MessageInfo, type Party, type PartInfo, type PartLocation, type Property,
  type ReadOptions, type ReferenceCopy, type SignalError, type SignalMessage, type UserMessage,
} from './model.ts';

const understoodBlocks = new Set([`{${as4Namespaces.eb}}Messaging`, `{${as4Namespaces.wsse}}Security`]);

const invalid = (detail: string) => new EbmsError('EBMS:0009', detail);

function children(parent: XmlElement, localName: string, namespace: string = as4Namespaces.eb): XmlElement[] {
  return elementChildren(parent).filter((child) => child.namespace === namespace && child.localName === localName);
}

function attribute(element: XmlElement, localName: string, namespace = ''): string | undefined {
  return element.attributes.find((a) => a.localName === localName && a.namespace === namespace)?.value;
}

/** An element's text, trimmed: ids, names and URIs are tokens. A property's value is kept as written (`exact`). */
function text(element: XmlElement, exact = false): string {
  let value = '';
  for (const child of element.children) {
    if (child.type === 'element') throw invalid(`${elementPath(element)} must hold text, not elements`);
    if (child.type === 'text') value += child.value;
  }
  return exact ? value : value.trim();
}

function optional(parent: XmlElement, localName: string): XmlElement | undefined {
  const found = children(parent, localName);
  if (found.length > 1) throw invalid(`${elementPath(parent)} holds ${found.length} eb:${localName} elements; at most one is allowed`);
  return found[0];
}

function required(parent: XmlElement, localName: string): XmlElement {
  const found = optional(parent, localName);
  if (!found) throw invalid(`${elementPath(parent)} lacks the required eb:${localName}`);
  return found;
}

function requiredText(parent: XmlElement, localName: string): string {
  const element = required(parent, localName);
  const value = text(element);
  if (value === '') throw invalid(`${elementPath(element)} is empty`);
  return value;
}

const dateTime = /^(-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;

function messageInfo(parent: XmlElement): MessageInfo {
  const info = required(parent, 'MessageInfo');
  const messageId = requiredText(info, 'MessageId');
  const timestamp = requiredText(info, 'Timestamp');
  const parts = dateTime.exec(timestamp);
  // Milliseconds are all Date keeps; a zone-less value is UTC (AS4 2.2.3.2 requires UTC).
  const at = parts ? new Date(`${parts[1]}${(parts[2] ?? '').slice(0, 4)}${parts[3] ?? 'Z'}`) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new EbmsError('EBMS:0009', `eb:Timestamp ${JSON.stringify(timestamp.slice(0, 60))} is not an xsd:dateTime`, { refToMessageInError: messageId });
  const ref = optional(info, 'RefToMessageId');
  const refToMessageId = ref ? text(ref) : undefined;
  if (refToMessageId === '') throw new EbmsError('EBMS:0009', 'eb:RefToMessageId is empty', { refToMessageInError: messageId });
  return { timestamp, at, messageId, ...(refToMessageId ? { refToMessageId } : {}) };
}

function withOptional<T extends object>(value: T, extra: Record<string, string | undefined>): T {
  for (const [key, item] of Object.entries(extra)) if (item !== undefined && item !== '') (value as Record<string, string>)[key] = item;
  return value;
}

function properties(parent: XmlElement | undefined): Property[] {
  if (!parent) return [];
  const list = children(parent, 'Property').map((property) => {
    const name = attribute(property, 'name');
    if (!name) throw invalid(`${elementPath(property)} lacks its name attribute`);
    return withOptional({ name, value: text(property, true) }, { type: attribute(property, 'type') });
  });
  if (list.length === 0) throw invalid(`${elementPath(parent)} holds no eb:Property`);
  return list;
}

function party(parent: XmlElement, localName: 'From' | 'To'): Party {
  const element = required(parent, localName);
  const partyIds = children(element, 'PartyId').map((id) => {
    const value = text(id);
    if (value === '') throw invalid(`${elementPath(id)} is empty`);
    return withOptional({ id: value }, { type: attribute(id, 'type') });
  });
  if (partyIds.length === 0) throw invalid(`${elementPath(element)} names no eb:PartyId`);
  return { partyIds, role: requiredText(element, 'Role') };
}

/**
 * The Content-ID a PartInfo href names, read leniently as MSHs write it: `cid:` in any case, percent-encoded or not
 * (RFC 2392), with or without angle brackets around the whole or the id. Undefined for an href that is not a cid: URL.
 */
export function contentIdOfHref(href: string): string | undefined {
  let value = href.trim();
  if (value.startsWith('<') && value.endsWith('>')) value = value.slice(1, -1).trim();
  if (!/^cid:/i.test(value)) return undefined;
  value = value.slice(4);
  try {
    value = decodeURIComponent(value);
  } catch {
    // A stray % is taken as itself: the id is then matched as written.
  }
  value = value.trim();
  if (value.startsWith('<') && value.endsWith('>')) value = value.slice(1, -1).trim();
  return value;
}

/** `attachments` undefined: the parts are still arriving, so a cid: href is not checked against them. */
function partInfo(element: XmlElement, attachments: ReadonlySet<string> | undefined, bodyIds: ReadonlySet<string>, body: XmlElement): PartInfo {
  const href = attribute(element, 'href');
  let location: PartLocation;
  if (href === undefined || href.trim() === '') {
    if (!elementChildren(body).length) throw new EbmsError('EBMS:0011', `${elementPath(element)} names the SOAP Body as its payload, and the Body is empty`);
    location = { kind: 'body' };
  } else if (href.trim().startsWith('#')) {
    const id = href.trim().slice(1);
    if (!bodyIds.has(id)) throw new EbmsError('EBMS:0011', `PartInfo href ${JSON.stringify(href.slice(0, 120))}: no element of the SOAP Body carries that Id`);
    location = { kind: 'body', id };
  } else {
    const contentId = contentIdOfHref(href);
    if (contentId === undefined) throw new EbmsError('EBMS:0011', `PartInfo href ${JSON.stringify(href.slice(0, 120))} is outside this message; external payloads are not fetched`);
    if (attachments && !attachments.has(contentId)) throw new EbmsError('EBMS:0011', `PartInfo href ${JSON.stringify(href.slice(0, 120))}: the message has no MIME part with Content-ID <${contentId.slice(0, 120)}>`);
    location = { kind: 'attachment', contentId };
  }
  const props = properties(optional(element, 'PartProperties'));
  const named = (name: string) => props.find((p) => p.name === name)?.value;
  const schemaElement = optional(element, 'Schema');
  let schema: PartInfo['schema'];
  if (schemaElement) {
    const location = attribute(schemaElement, 'location');
    if (!location) throw invalid(`${elementPath(schemaElement)} lacks its location attribute`);
    schema = withOptional({ location }, { version: attribute(schemaElement, 'version'), namespace: attribute(schemaElement, 'namespace') });
  }
  const description = optional(element, 'Description');
  const part: PartInfo = withOptional({ location, properties: props }, {
    href, mimeType: named('MimeType'), compressionType: named('CompressionType'), characterSet: named('CharacterSet'),
    ...(description ? { description: text(description) } : {}),
  });
  if (schema) part.schema = schema;
  return part;
}

function userMessage(element: XmlElement, options: ReadOptions, body: XmlElement, bodyIds: ReadonlySet<string>): UserMessage {
  const info = messageInfo(element);
  try {
    const partyInfo = required(element, 'PartyInfo');
    const collaborationElement = required(element, 'CollaborationInfo');
    const agreement = optional(collaborationElement, 'AgreementRef');
    const service = required(collaborationElement, 'Service');
    const serviceValue = text(service);
    if (serviceValue === '') throw invalid(`${elementPath(service)} is empty`);
    const collaboration: CollaborationInfo = {
      service: withOptional({ value: serviceValue }, { type: attribute(service, 'type') }),
      action: requiredText(collaborationElement, 'Action'),
      conversationId: requiredText(collaborationElement, 'ConversationId'),
    };
    if (agreement) collaboration.agreementRef = withOptional({ value: text(agreement) }, { type: attribute(agreement, 'type'), pmode: attribute(agreement, 'pmode') });
    const attachments = new Set(options.attachments ?? []);
    const payloadInfo = optional(element, 'PayloadInfo');
    const parts = payloadInfo ? children(payloadInfo, 'PartInfo').map((part) => partInfo(part, options.arriving ? undefined : attachments, bodyIds, body)) : [];
    const hrefs = new Set<string>();
    for (const part of parts) {
      const key = part.location.kind === 'attachment' ? `cid:${part.location.contentId}` : `#${part.location.id ?? ''}`;
      if (hrefs.has(key)) throw new EbmsError('EBMS:0003', `two PartInfo elements name the same payload ${key.slice(0, 120)}`);
      hrefs.add(key);
    }
    const unreferenced = options.arriving ? [] : [...attachments].filter((id) => !hrefs.has(`cid:${id}`));
    if (unreferenced.length) throw new EbmsError('EBMS:0007', `the MIME part <${unreferenced[0]!.slice(0, 120)}> is named by no PartInfo of the UserMessage`);
    return withOptional({
      kind: 'user' as const,
      messageInfo: info,
      from: party(partyInfo, 'From'),
      to: party(partyInfo, 'To'),
      collaboration,
      properties: properties(optional(element, 'MessageProperties')),
      parts,
    }, { mpc: attribute(element, 'mpc') });
  } catch (error) {
    throw ebmsErrorOf(error, info.messageId);
  }
}

function referenceCopy(reference: XmlElement): ReferenceCopy {
  const ds = as4Namespaces.ds;
  const transforms = children(reference, 'Transforms', ds).flatMap((list) => children(list, 'Transform', ds)).map((t) => attribute(t, 'Algorithm') ?? '');
  const method = children(reference, 'DigestMethod', ds)[0];
  const value = children(reference, 'DigestValue', ds)[0];
  if (!method || !value) throw invalid(`${elementPath(reference)} lacks its DigestMethod or DigestValue`);
  return { uri: attribute(reference, 'URI') ?? '', transforms, digestMethod: attribute(method, 'Algorithm') ?? '', digestValue: text(value).replace(/\s+/g, '') };
}

/** The ds:Reference elements of the WS-Security signature over a read message; empty when it is not signed. */
export function signatureReferences(message: As4Message): XmlElement[] {
  const security = elementChildren(message.envelope.header!).filter((block) => block.namespace === as4Namespaces.wsse && block.localName === 'Security');
  return security.flatMap(elementChildren).filter((e) => e.namespace === as4Namespaces.ds && e.localName === 'Signature')
    .flatMap(elementChildren).filter((e) => e.namespace === as4Namespaces.ds && e.localName === 'SignedInfo')
    .flatMap(elementChildren).filter((e) => e.namespace === as4Namespaces.ds && e.localName === 'Reference');
}

/** The references of the signature over a read message, as a non-repudiation receipt must copy them. */
export function signedReferences(message: As4Message): ReferenceCopy[] {
  return signatureReferences(message).map(referenceCopy);
}

function signalError(element: XmlElement): SignalError {
  const errorCode = attribute(element, 'errorCode');
  const severity = attribute(element, 'severity');
  if (!errorCode || !severity) throw invalid(`${elementPath(element)} lacks its errorCode or severity attribute`);
  const description = optional(element, 'Description');
  const detail = optional(element, 'ErrorDetail');
  const error: SignalError = withOptional({ errorCode, severity: severity.toLowerCase() }, {
    category: attribute(element, 'category'), origin: attribute(element, 'origin'),
    refToMessageInError: attribute(element, 'refToMessageInError'), shortDescription: attribute(element, 'shortDescription'),
    ...(detail ? { detail: text(detail) } : {}),
  });
  if (description) error.description = { text: text(description), lang: attribute(description, 'lang', 'http://www.w3.org/XML/1998/namespace') ?? '' };
  return error;
}

function signalMessage(element: XmlElement): SignalMessage {
  const info = messageInfo(element);
  try {
    const receiptElement = optional(element, 'Receipt');
    const pull = optional(element, 'PullRequest');
    const errors = children(element, 'Error').map(signalError);
    if (!receiptElement && !pull && errors.length === 0) throw invalid('the eb:SignalMessage holds no eb:Receipt, eb:Error or eb:PullRequest');
    const signal: SignalMessage = { kind: 'signal', messageInfo: info, errors };
    if (receiptElement) {
      // Core 5.2.3.3: a Receipt answers one message, which RefToMessageId names.
      if (!info.refToMessageId) throw invalid('an eb:Receipt signal must name the message it answers in eb:RefToMessageId');
      const content = elementChildren(receiptElement);
      if (content.length === 0) throw invalid('the eb:Receipt is empty');
      const nri = content.filter((child) => child.namespace === as4Namespaces.ebbp && child.localName === 'NonRepudiationInformation');
      const parts = nri.flatMap((list) => children(list, 'MessagePartNRInformation', as4Namespaces.ebbp));
      const nonRepudiation = parts.flatMap((part) => children(part, 'Reference', as4Namespaces.ds)).map(referenceCopy);
      const partIdentifiers = parts.flatMap((part) => children(part, 'MessagePartIdentifier', as4Namespaces.ebbp)).map((id) => text(id));
      signal.receipt = { nonRepudiation, partIdentifiers, content: content.map((child) => `{${child.namespace}}${child.localName}`) };
    }
    if (pull) signal.pullRequest = { mpc: attribute(pull, 'mpc') ?? ebmsDefaults.mpc };
    return signal;
  } catch (error) {
    throw ebmsErrorOf(error, info.messageId);
  }
}

const truthy = (value: string | undefined) => value?.trim() === 'true' || value?.trim() === '1';

/** SOAP 1.2 roles and the SOAP 1.1 actor this MSH plays: the next node and the ultimate receiver. */
const ourRoles = new Set([
  'http://www.w3.org/2003/05/soap-envelope/role/next',
  'http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver',
  'http://schemas.xmlsoap.org/soap/actor/next',
]);

/** Whether a header block is addressed to this node: no role (or actor) means the ultimate receiver. */
function targetsUs(block: XmlElement, soap: string): boolean {
  const role = attribute(block, soap === as4Namespaces.soap12 ? 'role' : 'actor', soap)?.trim();
  return role === undefined || role === '' || ourRoles.has(role);
}

/** Every Id, ID, id or wsu:Id in the envelope, each once: a repeated one would let a signature name one element and the reader act on another. */
function collectIds(root: XmlElement, body: XmlElement): Set<string> {
  const seen = new Map<string, XmlElement>();
  const inBody = new Set<string>();
  const visit = (element: XmlElement, underBody: boolean) => {
    for (const a of element.attributes) {
      if (a.localName !== 'Id' && a.localName !== 'ID' && a.localName !== 'id') continue;
      const other = seen.get(a.value);
      if (other && other !== element) throw invalid(`two elements carry Id ${JSON.stringify(a.value.slice(0, 120))} (${elementPath(other)} and ${elementPath(element)})`);
      seen.set(a.value, element);
      if (underBody) inBody.add(a.value);
    }
    for (const child of elementChildren(element)) visit(child, underBody || child === body);
  };
  visit(root, false);
  return inBody;
}

/**
 * Reads an AS4 SOAP envelope: one eb:Messaging holding one UserMessage or SignalMessage, no mustUnderstand header
 * this MSH does not process, every required element present, every PartInfo naming a payload of the message and
 * every attachment named by one, no Id twice. Throws an EbmsError (refToMessageInError set once the MessageId is read).
 */
export function readAs4Message(xml: Buffer, options: ReadOptions = {}): As4Message {
  let root: XmlElement;
  try {
    root = parseXml(xml).root;
  } catch (error) {
    throw ebmsErrorOf(error);
  }
  const soapVersion = root.localName === 'Envelope' ? soapVersionOf(root.namespace) : undefined;
  if (!soapVersion) throw new EbmsError('EBMS:0009', `the root element is {${root.namespace.slice(0, 80)}}${root.localName.slice(0, 80)}, not a SOAP 1.2 or 1.1 Envelope`, { faultCode: 'VersionMismatch' });
  const soap = root.namespace;
  const headers = children(root, 'Header', soap);
  const bodies = children(root, 'Body', soap);
  if (headers.length !== 1 || bodies.length !== 1) throw invalid(`the envelope holds ${headers.length} Header and ${bodies.length} Body elements; one of each is required`);
  const header = headers[0]!;
  const body = bodies[0]!;
  const understood = new Set([...understoodBlocks, ...(options.understood ?? [])]);
  for (const block of elementChildren(header)) {
    if (!targetsUs(block, soap)) continue;
    if (truthy(attribute(block, 'mustUnderstand', soap)) && !understood.has(`{${block.namespace}}${block.localName}`)) {
      throw new EbmsError('EBMS:0008', `the header block {${block.namespace.slice(0, 120)}}${block.localName.slice(0, 80)} must be understood, and this MSH does not process it`, { faultCode: 'MustUnderstand' });
    }
  }
  const messagings = children(header, 'Messaging');
  if (messagings.length !== 1) throw invalid(`the SOAP Header holds ${messagings.length} eb:Messaging elements; exactly one is required`);
  const messaging = messagings[0]!;
  const bodyIds = collectIds(root, body);
  const users = children(messaging, 'UserMessage');
  const signals = children(messaging, 'SignalMessage');
  if (users.length + signals.length === 0) throw invalid('eb:Messaging holds neither a UserMessage nor a SignalMessage');
  if (users.length + signals.length > 1) {
    throw new EbmsError('EBMS:0008', `eb:Messaging holds ${users.length} UserMessage and ${signals.length} SignalMessage elements; this MSH does not bundle, one is accepted`);
  }
  const message = users.length ? userMessage(users[0]!, options, body, bodyIds) : signalMessage(signals[0]!);
  if (message.kind === 'signal' && options.attachments?.length) {
    throw new EbmsError('EBMS:0007', 'a signal message carries MIME attachments', { refToMessageInError: message.messageInfo.messageId });
  }
  const messagingId = attribute(messaging, 'Id', as4Namespaces.wsu) ?? attribute(messaging, 'id') ?? attribute(messaging, 'Id');
  const result: As4Message = { soapVersion, envelope: { raw: xml, header, body }, messaging, message, ...(messagingId ? { messagingId } : {}) };
  const fault = children(body, 'Fault', soap)[0];
  if (fault) result.fault = faultOf(fault, soapVersion);
  return result;
}

function faultOf(fault: XmlElement, version: SoapVersion): { code: string; reason: string } {
  const soap = fault.namespace;
  const textIn = (element: XmlElement | undefined) => {
    try {
      return element ? text(element) : '';
    } catch {
      return '';
    }
  };
  if (version === '1.1') {
    const pick = (name: string) => elementChildren(fault).find((child) => child.localName === name);
    return { code: textIn(pick('faultcode')), reason: textIn(pick('faultstring')) };
  }
  const code = children(fault, 'Code', soap)[0];
  const reason = children(fault, 'Reason', soap)[0];
  return { code: textIn(code && children(code, 'Value', soap)[0]), reason: textIn(reason && children(reason, 'Text', soap)[0]) };
}

/** The MessageId of an AS4 message, whatever kind. */
export const messageIdOf = (message: As4Message) => message.message.messageInfo.messageId;

/** True for the error codes of the table, for a typed view of a received Error signal. */
export function isEbmsCode(code: string): code is EbmsCode {
  return Object.hasOwn(ebmsErrors, code);
}
