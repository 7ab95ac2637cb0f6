// ebMS 2.0 messages the hub writes: the MessageHeader of an outgoing message and the MSH signals (Acknowledgment with
// the acknowledged message's signature references, MessageError with its ErrorList, StatusResponse, Pong), as SOAP 1.1
// envelopes in the spec's element order, signed with the ebMS 2.0 profile of XMLDSig (4.1.3) and packed as
// multipart/related with their payloads (2.1). Values are escaped as canonical XML writes them.
import { randomUUID } from 'node:crypto';
import { SwxError } from '../../engine/errors.ts';
import { cidUrl, writeMultipart, type MultipartBody, type OutgoingPart } from '../../engine/mime/index.ts';
import { signXml, type XmlAttachment, type XmlSigners } from '../../engine/trust/index.ts';
import { namespaces } from '../../engine/trust/xmldsig-algorithms.ts';
import { escapeXml } from '../../engine/xml/text.ts';
import { ebmsErrorContext, highestSeverity, type EbmsError, type RefusedMessage } from './ebms-error.ts';
import { actors, ebmsNamespace, mshService, soap11, xlinkNamespace, type DsReference, type EbmsMessage, type EbmsParty, type MessageHeader, type MessageStatus } from './message.ts';

const text = (value: string) => escapeXml(value);
const attr = (value: string) => escapeXml(value, true);
const eb = (name: string, content: string, attributes = '') => `<eb:${name}${attributes}>${content}</eb:${name}>`;
const version = ' eb:version="2.0"';
const mustUnderstand = ' SOAP:mustUnderstand="1"';

/** What an outgoing MessageHeader says: the addressing fields as read (message.ts), with instants rather than text. */
export type OutgoingHeader = Pick<MessageHeader, 'from' | 'to' | 'cpaId' | 'conversationId' | 'service' | 'action' | 'refToMessageId'> & {
  /** Default: a fresh `<uuid>@<messageIdDomain>`. */
  messageId?: string;
  timestamp?: Date;
  timeToLive?: Date;
  duplicateElimination?: boolean;
  descriptions?: MessageHeader['descriptions'];
};

/** The domain part of the message ids this MSH makes (RFC 2822 msg-id form, as 3.1.6.1 asks). */
export const messageIdDomain = 'swx.invalid';

export const newMessageId = () => `${randomUUID()}@${messageIdDomain}`;

/** xsd:dateTime in UTC, as 3.1.6.2 asks of Timestamp and TimeToLive. */
const utc = (date: Date) => date.toISOString();

function party(name: 'From' | 'To', value: EbmsParty): string {
  if (value.partyIds.length === 0) throw new SwxError('SWX_BAD_REQUEST', `ebMS ${name} needs at least one PartyId`);
  const ids = value.partyIds.map((id) => eb('PartyId', text(id.id), id.type === undefined ? '' : ` eb:type="${attr(id.type)}"`)).join('');
  return eb(name, ids + (value.role === undefined ? '' : eb('Role', text(value.role))));
}

/** eb:MessageHeader (3.1): From, To, CPAId, ConversationId, Service, Action, MessageData, DuplicateElimination, Description. */
export function messageHeaderXml(header: OutgoingHeader & { messageId: string; timestamp: Date }): string {
  const data = eb('MessageId', text(header.messageId))
    + eb('Timestamp', utc(header.timestamp))
    + (header.refToMessageId === undefined ? '' : eb('RefToMessageId', text(header.refToMessageId)))
    + (header.timeToLive === undefined ? '' : eb('TimeToLive', utc(header.timeToLive)));
  return eb('MessageHeader',
    party('From', header.from) + party('To', header.to)
    + eb('CPAId', text(header.cpaId)) + eb('ConversationId', text(header.conversationId))
    + eb('Service', text(header.service.value), header.service.type === undefined ? '' : ` eb:type="${attr(header.service.type)}"`)
    + eb('Action', text(header.action)) + eb('MessageData', data)
    + (header.duplicateElimination ? '<eb:DuplicateElimination/>' : '')
    + (header.descriptions ?? []).map((description) => eb('Description', text(description.text), description.lang === undefined ? '' : ` xml:lang="${attr(description.lang)}"`)).join(''),
  `${mustUnderstand}${version}`);
}

/** eb:AckRequested (6.3.1): asks the To party's MSH (or the next one) for an Acknowledgment, signed or not. */
export function ackRequestedXml(signed: boolean, actor: string = actors.toPartyMsh): string {
  return `<eb:AckRequested SOAP:actor="${attr(actor)}"${mustUnderstand}${version} eb:signed="${signed}"/>`;
}

/** eb:SyncReply (4.3): the answer is wanted on the same connection; always addressed to the next SOAP node. */
export const syncReplyXml = () => `<eb:SyncReply SOAP:actor="${actors.soapNext}"${mustUnderstand}${version}/>`;

/** eb:Manifest (3.2): one Reference per payload, by its cid: URL. */
export function manifestXml(parts: readonly { contentId: string; id?: string; role?: string }[]): string {
  return eb('Manifest', parts.map((part) => `<eb:Reference${part.id === undefined ? '' : ` eb:id="${attr(part.id)}"`} xlink:type="simple" xlink:href="${attr(cidUrl(part.contentId))}"${part.role === undefined ? '' : ` xlink:role="${attr(part.role)}"`}/>`).join(''), version);
}

/** A ds:Reference written again as read, e.g. into an Acknowledgment (6.3.2.4: non-repudiation of receipt). */
export function dsReferenceXml(reference: DsReference): string {
  const transforms = reference.transforms.map((transform) => {
    if (!transform.xpath) return `<ds:Transform Algorithm="${attr(transform.algorithm)}"/>`;
    // Only the prefixes the expression names: the rest of the scope it was read in means nothing to it.
    const used = Object.entries(transform.xpath.namespaces).filter(([prefix]) => new RegExp(`(^|[^\\w.-])${prefix.replace(/[.-]/g, '\\$&')}:`).test(transform.xpath!.expression));
    const declarations = used.map(([prefix, uri]) => ` xmlns:${prefix}="${attr(uri)}"`).join('');
    return `<ds:Transform Algorithm="${attr(transform.algorithm)}"><ds:XPath${declarations}>${text(transform.xpath.expression)}</ds:XPath></ds:Transform>`;
  }).join('');
  return `<ds:Reference URI="${attr(reference.uri)}">${transforms ? `<ds:Transforms>${transforms}</ds:Transforms>` : ''}`
    + `<ds:DigestMethod Algorithm="${attr(reference.digestMethod)}"/><ds:DigestValue>${text(reference.digestValue)}</ds:DigestValue></ds:Reference>`;
}

/** A SOAP 1.1 envelope with the ebMS (and, when used, xlink and ds) namespaces declared once on it. */
export function envelopeXml(headerBlocks: readonly string[], bodyBlocks: readonly string[] = []): string {
  return `<SOAP:Envelope xmlns:SOAP="${soap11}" xmlns:eb="${ebmsNamespace}" xmlns:xlink="${xlinkNamespace}" xmlns:ds="${namespaces.ds}">`
    + `<SOAP:Header>${headerBlocks.join('')}</SOAP:Header><SOAP:Body>${bodyBlocks.join('')}</SOAP:Body></SOAP:Envelope>`;
}

export interface ReplyOptions {
  /** The replying party as it appears in the reply's From; default the received message's To. */
  from?: EbmsParty;
  messageId?: string;
  timestamp?: Date;
}

/** The MessageHeader of an MSH signal answering `to`: the parties swapped, same CPA and conversation, the MSH service. */
function replyHeader(to: Required<Pick<RefusedMessage, 'from' | 'to' | 'cpaId' | 'conversationId' | 'messageId'>>, action: string, options: ReplyOptions) {
  return {
    from: options.from ?? { partyIds: to.to.partyIds },
    to: { partyIds: to.from.partyIds },
    cpaId: to.cpaId,
    conversationId: to.conversationId,
    service: { value: mshService },
    action,
    messageId: options.messageId ?? newMessageId(),
    timestamp: options.timestamp ?? new Date(),
    refToMessageId: to.messageId,
  };
}

const asReplyTarget = (message: EbmsMessage) => ({
  from: message.header.from, to: message.header.to, cpaId: message.header.cpaId, conversationId: message.header.conversationId, messageId: message.header.messageId,
});

/**
 * The Acknowledgment of `acked` (6.3.2): a standalone MSH signal whose eb:Acknowledgment names the message, when it was
 * received, who acknowledges, and, for a signed message, repeats its signature's ds:Reference elements so that the
 * signed Acknowledgment is a non-repudiation receipt of exactly what was signed.
 */
export function acknowledgmentXml(acked: EbmsMessage, options: ReplyOptions & { receivedAt: Date; actor?: string }): string {
  const header = replyHeader(asReplyTarget(acked), 'Acknowledgment', options);
  const actor = options.actor ?? acked.ackRequested[0]?.actor ?? actors.toPartyMsh;
  const acknowledgment = eb('Acknowledgment',
    eb('Timestamp', utc(options.receivedAt)) + eb('RefToMessageId', text(acked.header.messageId))
    + party('From', header.from) + acked.signatureReferences.map(dsReferenceXml).join(''),
  `${mustUnderstand}${version} SOAP:actor="${attr(actor)}"`);
  return envelopeXml([messageHeaderXml(header), acknowledgment]);
}

/** eb:ErrorList (4.2.3): highestSeverity over its errors, each with the spec's errorCode, severity and location. */
export function errorListXml(errors: readonly EbmsError[]): string {
  if (errors.length === 0) throw new SwxError('SWX_BAD_REQUEST', 'an ErrorList holds at least one Error');
  const items = errors.map((error) => {
    const context = error.codeContext ?? ebmsErrorContext;
    return eb('Error', error.description ? `<eb:Description xml:lang="en">${text(error.description)}</eb:Description>` : '',
      ` eb:codeContext="${attr(context)}" eb:errorCode="${attr(error.errorCode)}" eb:severity="${error.severity}"${error.location === undefined ? '' : ` eb:location="${attr(error.location)}"`}`);
  }).join('');
  return eb('ErrorList', items, `${mustUnderstand}${version} eb:highestSeverity="${highestSeverity(errors)}"`);
}

/**
 * The MessageError answering a refused message (4.2.4): addressed from what could be read of it. A message whose
 * parties, CPA, conversation or id could not be read cannot be answered with an ebMS message: SWX_BAD_REQUEST, and the
 * transport's own error answers it instead.
 */
export function messageErrorXml(refused: RefusedMessage, errors: readonly EbmsError[], options: ReplyOptions = {}): string {
  const { from, to, cpaId, conversationId, messageId } = refused;
  if (!from || !to || !cpaId || !conversationId || !messageId) {
    throw new SwxError('SWX_BAD_REQUEST', 'the refused message has no readable From, To, CPAId, ConversationId and MessageId to address a MessageError to');
  }
  const header = replyHeader({ from, to, cpaId, conversationId, messageId }, 'MessageError', options);
  return envelopeXml([messageHeaderXml(header), errorListXml(errors)]);
}

/** The StatusResponse to a StatusRequest (7.2): the status of the message it asks about, and when it was received. */
export function statusResponseXml(request: EbmsMessage, status: MessageStatus, receivedAt?: Date, options: ReplyOptions = {}): string {
  if (!request.statusRequest) throw new SwxError('SWX_BAD_REQUEST', 'a StatusResponse answers a StatusRequest message');
  const header = replyHeader(asReplyTarget(request), 'StatusResponse', options);
  const known = status === 'Received' || status === 'Processed' || status === 'Forwarded';
  const response = eb('StatusResponse',
    eb('RefToMessageId', text(request.statusRequest.refToMessageId)) + (known && receivedAt ? eb('Timestamp', utc(receivedAt)) : ''),
    `${version} eb:messageStatus="${status}"`);
  return envelopeXml([messageHeaderXml(header)], [response]);
}

/** The Pong answering a Ping (8.2). */
export function pongXml(ping: EbmsMessage, options: ReplyOptions = {}): string {
  if (ping.signal !== 'Ping') throw new SwxError('SWX_BAD_REQUEST', 'a Pong answers a Ping');
  return envelopeXml([messageHeaderXml(replyHeader(asReplyTarget(ping), 'Pong', options))]);
}

/** The ebMS 2.0 XPath filter (4.1.3): what the next MSH may change is left out of the whole-envelope reference. */
export const actorFilter = {
  expression: `not(ancestor-or-self::node()[@SOAP-ENV:actor="${actors.nextMsh}"] | ancestor-or-self::node()[@SOAP-ENV:actor="${actors.soapNext}"])`,
  namespaces: { 'SOAP-ENV': soap11 },
};

export interface EbmsSigning {
  /** The hub's key and certificate (PEM). */
  keyPem: string;
  certPem: string;
  /** rsa-sha256 by default; rsa-sha1 only when the partner's CPA names it. */
  signatureAlgorithm?: 'rsa-sha256' | 'rsa-sha1';
  /** Where the signature is made: the hub's signature pool's signXml, off the event loop; in process by default. */
  sign?: XmlSigners['signXml'];
}

export interface SignedEbms {
  xml: string;
  /** The signature uses SHA-1 (asked for by the partner's agreement). */
  weak: boolean;
}

/**
 * Signs an envelope with the ebMS 2.0 profile (4.1.3): the Signature in the SOAP Header, c14n, one Reference URI=""
 * with enveloped-signature, the actor XPath filter and c14n, and one Reference per payload over its decoded octets.
 */
export async function signEbms(envelope: string, attachments: readonly XmlAttachment[], signing: EbmsSigning): Promise<SignedEbms> {
  const weak = signing.signatureAlgorithm === 'rsa-sha1';
  const xml = await (signing.sign ?? signXml)(envelope, {
    keyPem: signing.keyPem,
    certPem: signing.certPem,
    signatureAlgorithm: signing.signatureAlgorithm ?? 'rsa-sha256',
    digestAlgorithm: weak ? 'sha1' : 'sha256',
    allowWeak: weak,
    canonicalization: 'c14n',
    xpathFilter: actorFilter,
    attachments,
    attachmentTransform: 'none',
  });
  return { xml, weak };
}

/** The ds:Reference elements an ebMS 2.0 signature of this hub carries, in order (for tests and Acknowledgment checks). */
/** The message on the wire (2.1.2): multipart/related, the envelope first as text/xml, then each payload. */
export function ebmsMultipart(envelope: string, attachments: readonly Pick<OutgoingPart, 'contentId' | 'contentType' | 'body' | 'size'>[], framing: { envelopeId?: string; boundary?: string } = {}): MultipartBody {
  return writeMultipart(
    { contentId: framing.envelopeId ?? `soap-${randomUUID()}@${messageIdDomain}`, contentType: 'text/xml; charset=utf-8', body: Buffer.from(envelope, 'utf8') },
    attachments.map((part) => ({ contentId: part.contentId, contentType: part.contentType, body: part.body, ...(part.size === undefined ? {} : { size: part.size }) })),
    framing.boundary,
  );
}
