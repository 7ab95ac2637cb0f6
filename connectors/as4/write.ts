// AS4 messages as the connector writes them: SOAP 1.2 envelopes with eb:Messaging (wsu:Id, mustUnderstand) for a
// UserMessage, a non-repudiation Receipt and an Error signal (with a SOAP Fault for a failure), signed by WS-Security
// over Messaging, Body and the payload parts, and sent as multipart/related with the payloads streamed.
import { randomUUID } from 'node:crypto';
import { cidUrl, writeMultipart, type MultipartBody, type OutgoingPart } from '../../engine/mime/index.ts';
import { signSoap, type SignSoapOptions, type XmlAttachment, type XmlSigners } from '../../engine/trust/index.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';
import { escapeXml } from '../../engine/xml/text.ts';
import { EbmsError } from './errors.ts';
import { signatureReferences } from './message.ts';
import { as4Namespaces, type As4Message, type CollaborationInfo, type Party, type Property } from './model.ts';

export const soapContentType = 'application/soap+xml; charset=UTF-8';

const { eb, ebbp, wsu, soap12 } = as4Namespaces;

/** A new MessageId: RFC 2822 msg-id form without angle brackets (Core 5.2.2.1). */
export function newMessageId(domain = 'swx'): string {
  return `${randomUUID()}@${domain}`;
}

const attr = (value: string) => escapeXml(value, true);
const txt = (value: string) => escapeXml(value);
const optionalAttr = (name: string, value: string | undefined) => (value === undefined ? '' : ` ${name}="${attr(value)}"`);

function propertiesXml(element: 'MessageProperties' | 'PartProperties', list: readonly Property[]): string {
  if (list.length === 0) return '';
  return `<eb:${element}>${list.map((p) => `<eb:Property name="${attr(p.name)}"${optionalAttr('type', p.type)}>${txt(p.value)}</eb:Property>`).join('')}</eb:${element}>`;
}

function partyXml(element: 'From' | 'To', party: Party): string {
  return `<eb:${element}>${party.partyIds.map((id) => `<eb:PartyId${optionalAttr('type', id.type)}>${txt(id.id)}</eb:PartyId>`).join('')}<eb:Role>${txt(party.role)}</eb:Role></eb:${element}>`;
}

function messageInfoXml(messageId: string, at: Date, refToMessageId?: string): string {
  return `<eb:MessageInfo><eb:Timestamp>${at.toISOString()}</eb:Timestamp><eb:MessageId>${txt(messageId)}</eb:MessageId>`
    + `${refToMessageId === undefined ? '' : `<eb:RefToMessageId>${txt(refToMessageId)}</eb:RefToMessageId>`}</eb:MessageInfo>`;
}

export interface WrittenEnvelope {
  xml: string;
  /** wsu:Id of eb:Messaging and of the Body, for the signature. */
  messagingId: string;
  bodyId: string;
  messageId: string;
}

function envelope(messaging: string, body: string, messageId: string): WrittenEnvelope {
  const messagingId = `eb-${randomUUID()}`;
  const bodyId = `body-${randomUUID()}`;
  const xml = '<?xml version="1.0" encoding="UTF-8"?>'
    + `<env:Envelope xmlns:env="${soap12}"><env:Header>`
    + `<eb:Messaging xmlns:eb="${eb}" xmlns:wsu="${wsu}" env:mustUnderstand="true" wsu:Id="${messagingId}">${messaging}</eb:Messaging>`
    + `</env:Header><env:Body xmlns:wsu="${wsu}" wsu:Id="${bodyId}">${body}</env:Body></env:Envelope>`;
  return { xml, messagingId, bodyId, messageId };
}

/** A payload of an outgoing UserMessage: a MIME part, named by its Content-ID. */
export interface OutgoingPayload {
  contentId: string;
  /** MimeType PartProperty: the payload's own type (before compression). */
  mimeType: string;
  /** Set when the part is sent gzip-compressed (compression.ts). */
  compressionType?: 'application/gzip';
  characterSet?: string;
  properties?: readonly Property[];
}

export interface OutgoingUserMessage {
  messageId?: string;
  timestamp?: Date;
  refToMessageId?: string;
  mpc?: string;
  from: Party;
  to: Party;
  collaboration: CollaborationInfo;
  properties?: readonly Property[];
  payloads: readonly OutgoingPayload[];
}

/** The SOAP envelope of a UserMessage whose payloads travel as MIME parts (the Body stays empty, as AS4 sends them). */
export function userMessageEnvelope(message: OutgoingUserMessage): WrittenEnvelope {
  const messageId = message.messageId ?? newMessageId();
  const { agreementRef, service, action, conversationId } = message.collaboration;
  const collaboration = '<eb:CollaborationInfo>'
    + (agreementRef ? `<eb:AgreementRef${optionalAttr('type', agreementRef.type)}${optionalAttr('pmode', agreementRef.pmode)}>${txt(agreementRef.value)}</eb:AgreementRef>` : '')
    + `<eb:Service${optionalAttr('type', service.type)}>${txt(service.value)}</eb:Service>`
    + `<eb:Action>${txt(action)}</eb:Action><eb:ConversationId>${txt(conversationId)}</eb:ConversationId></eb:CollaborationInfo>`;
  const parts = message.payloads.map((payload) => {
    const properties: Property[] = [
      { name: 'MimeType', value: payload.mimeType },
      ...(payload.compressionType ? [{ name: 'CompressionType', value: payload.compressionType }] : []),
      ...(payload.characterSet ? [{ name: 'CharacterSet', value: payload.characterSet }] : []),
      ...(payload.properties ?? []).filter((p) => !['MimeType', 'CompressionType', 'CharacterSet'].includes(p.name)),
    ];
    return `<eb:PartInfo href="${attr(cidUrl(payload.contentId))}">${propertiesXml('PartProperties', properties)}</eb:PartInfo>`;
  });
  const user = `<eb:UserMessage${optionalAttr('mpc', message.mpc)}>${messageInfoXml(messageId, message.timestamp ?? new Date(), message.refToMessageId)}`
    + `<eb:PartyInfo>${partyXml('From', message.from)}${partyXml('To', message.to)}</eb:PartyInfo>${collaboration}`
    + propertiesXml('MessageProperties', message.properties ?? [])
    + (parts.length ? `<eb:PayloadInfo>${parts.join('')}</eb:PayloadInfo>` : '')
    + '</eb:UserMessage>';
  return envelope(user, '', messageId);
}

/** Prefix → namespace bindings in scope at an element, nearest first. */
function inScope(element: XmlElement): Map<string, string> {
  const scope = new Map<string, string>();
  for (let node: XmlElement | undefined = element; node; node = node.parent) {
    for (const declaration of node.namespaceDeclarations) if (!scope.has(declaration.prefix)) scope.set(declaration.prefix, declaration.uri);
  }
  return scope;
}

/** An element of a read message written again on its own: its own declarations kept, and those of its ancestors it uses added. */
export function serializeElement(element: XmlElement): string {
  const used = new Set<string>();
  const collect = (node: XmlElement) => {
    used.add(node.prefix);
    for (const a of node.attributes) if (a.prefix) used.add(a.prefix);
    for (const child of elementChildren(node)) collect(child);
  };
  collect(element);
  const scope = inScope(element);
  const own = new Set(element.namespaceDeclarations.map((d) => d.prefix));
  const added = [...used].filter((prefix) => prefix !== 'xml' && !own.has(prefix) && scope.has(prefix))
    .map((prefix) => `${prefix ? `xmlns:${prefix}` : 'xmlns'}="${attr(scope.get(prefix)!)}"`);
  const write = (node: XmlElement, extra: string[]): string => {
    const declarations = [...extra, ...node.namespaceDeclarations.map((d) => `${d.prefix ? `xmlns:${d.prefix}` : 'xmlns'}="${attr(d.uri)}"`)];
    const attributes = node.attributes.map((a) => `${a.qualifiedName}="${attr(a.value)}"`);
    const open = [node.qualifiedName, ...declarations, ...attributes].join(' ');
    const content = node.children.map((child) => (child.type === 'element' ? write(child, []) : child.type === 'text' ? txt(child.value) : '')).join('');
    return `<${open}>${content}</${node.qualifiedName}>`;
  };
  return write(element, added);
}

export interface SignalOptions {
  messageId?: string;
  timestamp?: Date;
}

/**
 * The Receipt for a received UserMessage: ebbp:NonRepudiationInformation (AS4 5.1.8), one ebbp:MessagePartNRInformation
 * per part. For a signed message, non-repudiation of receipt: a copy of each ds:Reference of its signature,
 * attachments included. For an unsigned one, reception awareness only: a MessagePartIdentifier per payload, its
 * PartInfo href (the SOAP Body's being "#" and its Id), or the MessageId for a message without payloads.
 */
export function receiptEnvelope(received: As4Message, options: SignalOptions = {}): WrittenEnvelope {
  const user = received.message;
  if (user.kind !== 'user') throw new EbmsError('EBMS:0004', 'a Receipt answers a UserMessage, not a signal');
  const references = signatureReferences(received);
  const identifiers = user.parts.map((part) => part.href ?? `#${part.location.kind === 'body' ? part.location.id ?? '' : ''}`);
  const items = references.length
    ? references.map(serializeElement)
    : (identifiers.length ? identifiers : [user.messageInfo.messageId]).map((id) => `<ebbp:MessagePartIdentifier>${txt(id)}</ebbp:MessagePartIdentifier>`);
  const content = `<ebbp:NonRepudiationInformation xmlns:ebbp="${ebbp}">${items.map((item) => `<ebbp:MessagePartNRInformation>${item}</ebbp:MessagePartNRInformation>`).join('')}</ebbp:NonRepudiationInformation>`;
  const messageId = options.messageId ?? newMessageId();
  const signal = `<eb:SignalMessage>${messageInfoXml(messageId, options.timestamp ?? new Date(), user.messageInfo.messageId)}<eb:Receipt>${content}</eb:Receipt></eb:SignalMessage>`;
  return envelope(signal, '', messageId);
}

/** A PullRequest signal for an MPC (one-way pull: the hub asks a partner's MSH for what waits for it). */
export function pullRequestEnvelope(mpc: string, options: SignalOptions = {}): WrittenEnvelope {
  const messageId = options.messageId ?? newMessageId();
  return envelope(`<eb:SignalMessage>${messageInfoXml(messageId, options.timestamp ?? new Date())}<eb:PullRequest mpc="${attr(mpc)}"/></eb:SignalMessage>`, '', messageId);
}

export interface ErrorSignal extends WrittenEnvelope {
  /** SOAP 1.2 HTTP binding: 400 for a Sender fault, 500 for a Receiver fault, 200 for warnings only. */
  httpStatus: number;
}

/**
 * An Error signal for one or more ebMS errors. When one is a failure, the Body holds a SOAP Fault (Core 6.6: the
 * failure that stops processing is reported as a Fault, with the eb:Error in the header): its code is the first
 * failure's, its reason that failure's detail.
 */
export function errorEnvelope(errors: readonly EbmsError[], options: SignalOptions & { refToMessageId?: string } = {}): ErrorSignal {
  if (errors.length === 0) throw new EbmsError('EBMS:0004', 'an Error signal needs at least one error');
  const refTo = options.refToMessageId ?? errors.find((e) => e.refToMessageInError)?.refToMessageInError;
  const items = errors.map((error) => `<eb:Error category="${error.category}" errorCode="${error.code}" origin="${attr(error.origin ?? 'ebMS')}"`
    + `${optionalAttr('refToMessageInError', error.refToMessageInError)} severity="${error.severity}" shortDescription="${error.shortDescription}">`
    + `<eb:Description xml:lang="en">${txt(error.shortDescription)}</eb:Description><eb:ErrorDetail>${txt(error.detail.slice(0, 2000))}</eb:ErrorDetail></eb:Error>`);
  const messageId = options.messageId ?? newMessageId();
  const signal = `<eb:SignalMessage>${messageInfoXml(messageId, options.timestamp ?? new Date(), refTo)}${items.join('')}</eb:SignalMessage>`;
  const failure = errors.find((e) => e.severity === 'failure');
  const fault = failure
    ? `<env:Fault><env:Code><env:Value>env:${failure.faultCode}</env:Value></env:Code><env:Reason><env:Text xml:lang="en">${txt(`${failure.code} ${failure.shortDescription}: ${failure.detail}`.slice(0, 2000))}</env:Text></env:Reason></env:Fault>`
    : '';
  const written = envelope(signal, fault, messageId);
  return { ...written, httpStatus: !failure ? 200 : failure.faultCode === 'Receiver' ? 500 : 400 };
}

export interface SignAs4Options extends Pick<SignSoapOptions, 'keyPem' | 'certPem' | 'signatureAlgorithm' | 'digestAlgorithm' | 'createdAt' | 'timestampTtlSeconds'> {
  /** The MIME parts to sign with the SwA Attachment-Content-Signature-Transform, as they are sent. */
  attachments?: readonly XmlAttachment[];
}

/**
 * Signs a written envelope by WS-Security: Timestamp, eb:Messaging and Body by wsu:Id, and every attachment by cid:;
 * with `sign`, the hub's signature pool's signSoap, off the event loop.
 */
export function signAs4(written: WrittenEnvelope, options: SignAs4Options, sign: XmlSigners['signSoap'] = signSoap): Promise<string> {
  return sign(written.xml, { ...options, parts: ['Body', 'Timestamp'], ids: [written.messagingId], attachments: options.attachments ?? [] });
}

/** The attachment as the signature digests it: its Content-ID and the MIME headers it is sent with. */
export function signedAttachment(part: { contentId: string; contentType: string; body: Buffer }): XmlAttachment {
  return { contentId: part.contentId, headers: { 'content-type': part.contentType, 'content-id': `<${part.contentId}>` }, body: part.body };
}

/**
 * A signed envelope and its payload parts as one multipart/related SOAP 1.2 body (type application/soap+xml, start the
 * envelope); `framing` the root's Content-ID and the boundary, for a body written again the same way.
 */
export function as4Multipart(signedXml: string, attachments: OutgoingPart[], framing?: { rootId: string; boundary: string }): MultipartBody {
  return writeMultipart({ contentId: framing?.rootId ?? `soap-${randomUUID()}@swx`, contentType: soapContentType, body: Buffer.from(signedXml, 'utf8') }, attachments, framing?.boundary);
}
