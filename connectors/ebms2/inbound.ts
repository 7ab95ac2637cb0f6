// ebMS 2.0 inbound: a partner's MSH POSTs a message (SOAP with attachments) to the agency port. It is read within the
// body budget and the MIME caps, its sender found by CPAId and From PartyId among the registered agreements, its
// signature judged for that partner (trust store, its registered certificate, SHA-1 only where the agreement names
// it), its Service and Action held to what the agreement lets it send, a repeat within PersistDuration answered with
// the stored Acknowledgment and never processed again, and its payload (several as one package, package.ts) handed to
// intake; the payload parts of a body over the inline limit stream into the Object Store as they arrive. Once the envelope is durable the Acknowledgment asked for (signed when asked) answers it on the connection
// (SyncReply) or is sent to the partner after. Ping gets a Pong, StatusRequest a StatusResponse. Every refusal is a
// signed MessageError with the specification's errorCode and evidence: counted while the sender is unauthenticated,
// recorded one by one after.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BodyBudget } from '../../engine/budget.ts';
import { messageIdPattern } from '../../engine/envelope.ts';
import type { EvidenceLog } from '../../engine/evidence.ts';
import { errorCodes, SwxError, type ErrorCode } from '../../engine/errors.ts';
import { header, streamableBody, type Router } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { log } from '../../engine/log.ts';
import { messagesTotal } from '../../engine/metrics.ts';
import type { MessageParts } from '../../engine/mime/index.ts';
import type { Payloads } from '../../engine/payloads.ts';
import { ArrivingPayloads, type StoredPayloads, type StreamedPayloads } from '../../engine/streamed-payloads.ts';
import { authenticate, Unauthenticated } from '../../engine/peer.ts';
import type { Registry } from '../../engine/registry.ts';
import type { Messages } from '../../engine/status.ts';
import { escapeXml } from '../../engine/xml/text.ts';
import type { Intake, RefusedSubmission, Submission } from '../../engine/submission.ts';
import type { CertificateCheck, PayloadVerifiers, XmlSigners } from '../../engine/trust/index.ts';
import { readEbmsBody, UnreadBody } from './body.ts';
import { ebms2StreamedPayloads, manifestPayload } from './package.ts';
import { ebmsError, ebmsErrorFor, EbmsRefusal, swxCodeOf, type EbmsError, type RefusedMessage } from './ebms-error.ts';
import { signatureFor, type Ebms2Channel } from './endpoint.ts';
import { readEbmsMessage, readEbmsParts, type EbmsMessage, type MessageStatus } from './message.ts';
import { checkAddressedToHub, inboundChannel, receiverOf, refusedOf, senderOf, swxServiceOf, type Ebms2Partner } from './parties.ts';
import type { AnsweredMessages } from '../../engine/answered.ts';
import { receivedEntry, reception, type ReceivedEntry } from './reliability.ts';
import { checkEbmsSignature } from './security.ts';
import type { Ebms2Settings } from './settings.ts';
import { acknowledgmentXml, ebmsMultipart, messageErrorXml, pongXml, signEbms, statusResponseXml, type EbmsSigning } from './write.ts';

export interface Ebms2InboundOptions {
  settings: Ebms2Settings;
  registry: Registry;
  intake: Intake;
  evidence: EvidenceLog;
  trust: CertificateCheck;
  signatures: PayloadVerifiers & XmlSigners;
  signing: HubIdentity['signing'];
  budget: BodyBudget;
  received: AnsweredMessages<ReceivedEntry>;
  /** What became of a message, for StatusRequest. */
  messages: Messages;
  maxMessageBytes: number;
  /** Where the payload parts of a body over the inline limit are written as they arrive. */
  payloads: Payloads;
  /** The largest body streamed so. */
  maxStreamedBytes: number;
  /** Sends a signal to the partner on its own connection (an Acknowledgment asked for without SyncReply), with retries. */
  sendSignal(partner: Ebms2Partner, xml: string, refToMessageId: string): Promise<void>;
}

/** Refusals of the hub's capacity and caps keep their own HTTP status (413, 429, 431, 503): 4xx, never a 500. */
const capacityCodes = new Set<ErrorCode>(['SWX_TOO_LARGE', 'SWX_HEADERS_TOO_LARGE', 'SWX_BUSY', 'SWX_PARTNER_BUSY', 'SWX_CLIENT_ABORTED']);

/** Where budget is claimed for a body whose sender is not known until its signature is checked: one share for all. */
const unauthenticatedShare = 'ebms2:unauthenticated';

const sourceOf = (req: IncomingMessage) => (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '').replace(/%.*$/, '');

/** A signal to answer on the connection: the signed envelope, and the HTTP status it goes with. */
interface Answer { status: number; xml?: string }

export function mountEbms2Inbound(router: Router, options: Ebms2InboundOptions): void {
  const { settings, registry } = options;

  router.add('POST', settings.path, async (req: IncomingMessage, res: ServerResponse) => {
    const partial: RefusedSubmission = { protocol: 'ebms2', payload: Buffer.alloc(0) };
    const state: { message?: EbmsMessage; channel?: Ebms2Channel } = {};
    const streaming = new ArrivingPayloads((envelope) => streamedPayloads(envelope, options));
    let answer: Answer;
    try {
      const claim = options.budget.claim(unauthenticatedShare, res);
      const { body: source, streams } = await streamableBody(req, claim, { inlineLimit: options.payloads.inlineLimit, maxStreamedBytes: options.maxStreamedBytes, maxHeldBytes: options.maxMessageBytes });
      const parts = await readEbmsBody(source, header(req, 'content-type') ?? '', options.maxMessageBytes, streams ? { maxBytes: options.maxStreamedBytes, take: streaming.take } : undefined);
      const streamed = await streaming.finish();
      if (streamed) partial.stored = streamed.stored;
      const message = state.message = readEbmsParts(parts);
      partial.claimedId = message.header.messageId;
      const soapAction = header(req, 'soapaction');
      if (soapAction !== undefined && soapAction.replace(/^"|"$/g, '') !== 'ebXML') {
        throw new EbmsRefusal([ebmsError('NotSupported', `SOAPAction ${JSON.stringify(soapAction.slice(0, 60))}: an ebMS 2.0 message is posted with SOAPAction "ebXML"`)], refusedOf(message));
      }
      checkAddressedToHub(message, settings);
      const sender = senderOf(registry, message);
      const agreement = sender.endpoint.agreement;
      if (agreement && (Date.now() < Date.parse(agreement.start) || Date.now() > Date.parse(agreement.end))) {
        throw new EbmsRefusal([ebmsError('Inconsistent', `agreement ${message.header.cpaId} is in force from ${agreement.start} to ${agreement.end}`, 'xpointer(/SOAP:Envelope/SOAP:Header/eb:MessageHeader/eb:CPAId)')], refusedOf(message));
      }
      // The signature is judged by the channel of the message's Action (or the default one where the agreement has no
      // such Action): whether it is asked for, and whether SHA-1 may pass. An Action not allowed is refused after it.
      let allowed: EbmsRefusal | undefined;
      const channel = state.channel = (() => {
        try {
          return inboundChannel(sender.endpoint, message);
        } catch (error) {
          if (!(error instanceof EbmsRefusal)) throw error;
          allowed = error;
          return sender.endpoint.channels[sender.endpoint.defaultChannel]!;
        }
      })();
      const tlsPartner = await authenticate(req, registry, options.trust).then((key) => key.partner.id, () => undefined);
      const signature = await checkEbmsSignature(parts.root.body, parts.attachments, message, sender.partner.id, channel, tlsPartner, {
        registry, trust: options.trust, verifyXml: options.signatures.verifyXml,
      });

      // Authenticated from here: refusals are evidenced as this partner's, the signed envelope kept with them.
      const { messageId, conversationId, refToMessageId } = message.header;
      Object.assign(partial, {
        ...(messageIdPattern.test(messageId) ? { id: messageId } : {}),
        claimedId: undefined,
        from: sender.partner.id,
        ...(messageIdPattern.test(conversationId) ? { conversationId } : {}),
        ...(refToMessageId && messageIdPattern.test(refToMessageId) ? { refToMessageId } : {}),
        ...(signature ? { signature } : {}),
      });
      if (allowed) throw allowed;
      if (message.signal) {
        answer = await signalAnswer(message, sender, channel, options);
      } else {
        Object.assign(partial, swxServiceOf(message, settings));
        const to = receiverOf(registry, message, sender.partner);
        if (to !== undefined) Object.assign(partial, { to, relayed: true });
        answer = await businessMessage(message, streamed ?? parts, sender, channel, partial, options);
      }
    } catch (error) {
      // What streamed into the Object Store of a refused message is removed.
      await streaming.abort();
      await refuse(req, res, options, partial, state, error);
      return;
    }
    // Outside the try: the message is accepted whatever happens to its answer.
    reply(res, answer);
  });
}

/** A business message: a repeat gets its stored Acknowledgment; a new one goes to intake, then is acknowledged. */
async function businessMessage(message: EbmsMessage, parts: MessageParts | StoredPayloads, sender: Ebms2Partner, channel: Ebms2Channel, partial: RefusedSubmission, options: Ebms2InboundOptions): Promise<Answer> {
  const from = sender.partner.id;
  const now = Date.now();
  const earlier = await options.received.earlier(from, message.header.messageId);
  const seen = reception(message, earlier, now);
  if (seen.kind === 'duplicate') {
    if (partial.stored) await options.payloads.discard(partial.stored).catch((error: unknown) => log.warn({ err: error, ref: partial.stored?.payloadRef }, 'a repeated ebMS 2.0 payload could not be removed'));
    delete partial.stored;
    await evidenceRepeat(options.evidence, partial, message);
    messagesTotal.inc({ stage: 'received', outcome: 'duplicate', code: '' });
    return answerWith(seen.acknowledgment, message, sender, options);
  }
  Object.assign(partial, 'stored' in parts ? { payload: Buffer.alloc(0), contentType: parts.contentType } : await manifestPayload(message, parts));
  const accepted = await options.intake.accept(partial as Submission);
  messagesTotal.inc({ stage: 'received', outcome: accepted.duplicate ? 'duplicate' : 'accepted', code: '' });
  // Accepted from here: a failure to acknowledge or to remember it is no refusal. The sender sends again without an
  // Acknowledgment, and intake knows the id.
  let acknowledgment: string | undefined;
  try {
    if (message.ackRequested.length > 0) {
      const signed = message.ackRequested.some((ack) => ack.signed) || channel.ackSignatureRequested === 'always';
      const xml = acknowledgmentXml(message, { receivedAt: new Date(now), ...hubParty(options.settings) });
      acknowledgment = signed ? (await signEbms(xml, [], signingFor(options, channel))).xml : xml;
    }
    const persistMs = channel.reliability?.persistDurationMs ?? options.settings.defaultPersistSeconds * 1000;
    await options.received.remember(from, message.header.messageId, receivedEntry(message, now, Math.min(persistMs, options.settings.persistSeconds * 1000), acknowledgment));
  } catch (error) {
    log.error({ err: error, from, id: accepted.id }, 'an accepted ebMS 2.0 message could not be acknowledged or remembered');
    return { status: 200 };
  }
  return answerWith(acknowledgment, message, sender, options);
}

/**
 * The payloads of a body that streams, once its envelope is read: the sender's agreement found first, which says
 * whether its parts may be digested with SHA-1. The envelope is read again, whole, when the body has ended; undefined
 * (the parts are held, and the message judged whole once read) for one that names no payload or cannot yet be read.
 */
function streamedPayloads(envelope: Buffer, options: Ebms2InboundOptions): StreamedPayloads | undefined {
  try {
    const message = readEbmsMessage(envelope, { arriving: true, at: false });
    if (message.signal || message.manifest.length === 0) return undefined;
    const sender = senderOf(options.registry, message);
    const weak = inboundChannel(sender.endpoint, message).signature?.weak === true;
    return ebms2StreamedPayloads(message, options.payloads, options.maxStreamedBytes, weak);
  } catch {
    return undefined;
  }
}

/** An Acknowledgment goes back on the connection when SyncReply asks for it, else on the partner's own (after the answer). */
function answerWith(acknowledgment: string | undefined, message: EbmsMessage, sender: Ebms2Partner, options: Ebms2InboundOptions): Answer {
  if (!acknowledgment) return { status: 200 };
  if (message.syncReply) return { status: 200, xml: acknowledgment };
  setImmediate(() => {
    options.sendSignal(sender, acknowledgment, message.header.messageId).catch((error: unknown) => log.warn({ err: error, partner: sender.partner.id, id: message.header.messageId }, 'the ebMS Acknowledgment could not be sent to the partner'));
  });
  return { status: 200 };
}

/** The hub as the From of its signals: its own PartyIds, when the settings name them. */
const hubParty = (settings: Ebms2Settings) => (settings.partyIds.length > 0 ? { from: { partyIds: settings.partyIds } } : {});

const signingFor = ({ signing, signatures }: Pick<Ebms2InboundOptions, 'signing' | 'signatures'>, channel: Ebms2Channel | undefined): EbmsSigning => ({
  keyPem: signing.keyPem, certPem: signing.certPem, signatureAlgorithm: channel ? signatureFor(channel) : 'rsa-sha256', sign: signatures.signXml,
});

/** Ping → Pong; StatusRequest → StatusResponse; an Acknowledgment or MessageError about a message sent is taken. */
async function signalAnswer(message: EbmsMessage, sender: Ebms2Partner, channel: Ebms2Channel, options: Ebms2InboundOptions): Promise<Answer> {
  const sign = async (xml: string) => (await signEbms(xml, [], signingFor(options, channel))).xml;
  if (message.signal === 'Ping') return { status: 200, xml: await sign(pongXml(message, hubParty(options.settings))) };
  if (message.signal === 'StatusRequest') {
    const id = message.statusRequest!.refToMessageId;
    const kept = await options.received.earlier(sender.partner.id, id);
    let status: MessageStatus = kept ? 'Received' : 'NotRecognized';
    if (kept) {
      const known = await options.messages.status(sender.partner.id, id, sender.partner.id).catch(() => undefined);
      if (known?.receivers.length && known.receivers.every((receiver) => receiver.state === 'delivered')) status = 'Forwarded';
      else if (known?.state === 'accepted') status = 'Processed';
    }
    return { status: 200, xml: await sign(statusResponseXml(message, status, kept ? new Date(kept.receivedAt) : undefined, hubParty(options.settings))) };
  }
  // Signals about what this hub sent come back on the connection it sent them on; one arriving apart is logged.
  log.info({ partner: sender.partner.id, signal: message.signal, refTo: message.header.refToMessageId }, 'ebMS signal received apart from its message');
  return { status: 200 };
}

function reply(res: ServerResponse, answer: Answer): void {
  if (!answer.xml) {
    res.writeHead(answer.status, { 'content-length': '0' });
    res.end();
    return;
  }
  const multipart = ebmsMultipart(answer.xml, []);
  const chunks: Buffer[] = [];
  multipart.body.on('data', (chunk: Buffer) => chunks.push(chunk));
  multipart.body.on('error', (error) => { log.warn({ err: error }, 'an ebMS answer could not be written'); res.destroy(); });
  multipart.body.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(answer.status, { 'content-type': multipart.contentType, 'content-length': String(body.length), soapaction: '"ebXML"' });
    res.end(body);
  });
}

/** The evidence of a repeat answered with its stored Acknowledgment: received again, not processed again. */
async function evidenceRepeat(evidence: EvidenceLog, partial: RefusedSubmission, message: EbmsMessage): Promise<void> {
  const id = partial.id ?? message.header.messageId.slice(0, 128);
  const facts = {
    messageId: id, conversationId: partial.conversationId ?? id, from: partial.from ?? '', to: partial.to ?? '',
    service: partial.service ?? '', action: partial.action ?? '', protocol: 'ebms2',
  };
  await evidence.publish([
    evidence.record({ ...facts, stage: 'received', ...(partial.signature ? { signature: JSON.stringify(partial.signature) } : {}) }),
    evidence.record({ ...facts, stage: 'duplicate', detail: 'ebMS 2.0 resend of a MessageId received within PersistDuration: answered with the stored Acknowledgment, not processed again' }),
  ]);
}

/** What the refusal is made of: the ebMS errors the MessageError reports, the hub's code and what is known of the message. */
function refusalOf(error: unknown, message: EbmsMessage | undefined): { errors: EbmsError[]; code: ErrorCode; refused: RefusedMessage } {
  if (error instanceof EbmsRefusal) return { errors: error.errors, code: swxCodeOf(error.errors), refused: { ...error.refused, ...(message ? refusedOf(message) : {}) } };
  if (error instanceof UnreadBody) {
    let refused: RefusedMessage = {};
    // The SOAP part arrived before the fault: read for whom the MessageError is, without judging it.
    if (error.root) {
      try {
        refused = refusedOf(readEbmsMessage(error.root.body, { at: false }));
      } catch (readError) {
        if (readError instanceof EbmsRefusal) refused = readError.refused;
      }
    }
    return { errors: [ebmsError('MimeProblem', `${error.error.code}: ${error.error.message}`.slice(0, 500))], code: error.error.code, refused };
  }
  const refused = message ? refusedOf(message) : {};
  if (error instanceof SwxError) return { errors: [ebmsErrorFor(error.code, error.message)], code: error.code, refused };
  return { errors: [ebmsError('Unknown', 'the hub could not take this message; send it again')], code: 'SWX_INTERNAL', refused };
}

/** A refusal: evidence (counted before authentication), then the signed MessageError, or a SOAP Fault when it cannot be addressed. */
async function refuse(req: IncomingMessage, res: ServerResponse, options: Ebms2InboundOptions, partial: RefusedSubmission, state: { message?: EbmsMessage; channel?: Ebms2Channel }, error: unknown): Promise<void> {
  const { errors, code, refused } = refusalOf(error, state.message);
  if (code === 'SWX_INTERNAL') log.error({ err: error, from: partial.from, id: refused.messageId }, 'ebMS 2.0 message not accepted: internal error');
  messagesTotal.inc({ stage: 'received', outcome: 'rejected', code });
  const detail = errors.map((e) => `${e.errorCode}: ${e.description}`).join('; ').slice(0, 1000);
  const refusal = partial.from ? new SwxError(code, detail) : new Unauthenticated(code, detail, sourceOf(req), String(partial.signature?.certThumbprint ?? ''));
  if (!partial.from && refused.messageId) partial.claimedId = refused.messageId;
  await options.intake.reject(partial, refusal).catch((rejectError: unknown) => log.warn({ err: rejectError }, 'an ebMS 2.0 refusal could not be evidenced'));
  const status = capacityCodes.has(code) ? errorCodes[code].status : code === 'SWX_INTERNAL' ? 500 : 200;
  if (res.headersSent) return;
  if (status === 503 || status === 429) res.setHeader('retry-after', '1');
  // A body not read to its end cannot be followed by another request on this connection.
  if (!req.complete) res.setHeader('connection', 'close');
  let xml: string;
  try {
    xml = messageErrorXml(refused, errors, hubParty(options.settings));
  } catch {
    // Not addressable as an ebMS message (no readable MessageHeader): the SOAP Fault of the HTTP binding (B.2.3).
    sendFault(res, status === 200 ? 400 : status, errors);
    return;
  }
  try {
    reply(res, { status, xml: (await signEbms(xml, [], signingFor(options, state.channel))).xml });
  } catch (signError) {
    log.error({ err: signError }, 'the ebMS MessageError could not be signed');
    sendFault(res, 500, errors);
  }
}

function sendFault(res: ServerResponse, status: number, errors: readonly EbmsError[]): void {
  const body = Buffer.from('<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Body><SOAP:Fault>'
    + `<faultcode>SOAP:${status >= 500 ? 'Server' : 'Client'}</faultcode><faultstring>${escapeXml(errors.map((e) => `${e.errorCode}: ${e.description}`).join('; ').slice(0, 1000))}</faultstring>`
    + '</SOAP:Fault></SOAP:Body></SOAP:Envelope>', 'utf8');
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/xml; charset=utf-8', 'content-length': String(body.length) });
  res.end(body);
}
