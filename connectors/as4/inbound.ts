// AS4 inbound: a partner's MSH POSTs a UserMessage (one-way push) to the agency port. The message is read within the
// body budget, its sender found by its P-Mode, its WS-Security signature judged (certificate registered to that
// partner, trusted) over its payloads decrypted with the hub's key where they came encrypted, a repeat answered with
// the receipt stored for the first, its payload inflated and handed to intake (several as one package, package.ts).
// The payload parts of a body over the inline limit stream into the Object Store as they arrive (streamed.ts), one
// part as it is, several as the package; a body within it is held, its payload within the payload limit. Once the
// envelope is durable, a signed non-repudiation Receipt answers it. Every refusal is a signed ebMS Error signal and evidence: counted while the sender is unauthenticated, recorded
// one by one after. Where the sender's P-Mode makes replies asynchronous, its Receipt or Error signal is POSTed to its
// MSH after an empty 200. Signals on their own go to pull.ts (PullRequests) and answers.ts (Receipts and Error
// signals for what the hub sent).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { BodyBudget } from '../../engine/budget.ts';
import type { EvidenceLog } from '../../engine/evidence.ts';
import { SwxError, errorCodes, type ErrorCode } from '../../engine/errors.ts';
import { header, streamableBody, type Router } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { log } from '../../engine/log.ts';
import { messagesTotal } from '../../engine/metrics.ts';
import { admit, Unauthenticated } from '../../engine/peer.ts';
import type { Registry } from '../../engine/registry.ts';
import type { Intake, RefusedSubmission, Submission } from '../../engine/submission.ts';
import type { Payloads } from '../../engine/payloads.ts';
import { ArrivingPayloads, type StoredPayloads, type StreamedPayloads } from '../../engine/streamed-payloads.ts';
import { as4StreamedPayloads, inflateCaps } from './streamed.ts';
import { bodyPayload, packagedPayload, payloadType } from './package.ts';
import { encryptedParts, openEncryption, type CertificateCheck, type PayloadVerifiers, type XmlAttachment, type XmlSigners } from '../../engine/trust/index.ts';
import { readAs4Body } from './body.ts';
import { decompress } from './compression.ts';
import { ReceivedMessages } from './duplicates.ts';
import { EbmsError, ebmsErrorOf, type EbmsCode } from './errors.ts';
import { readAs4Message } from './message.ts';
import type { As4Message, PartInfo, UserMessage } from './model.ts';
import { receiverOf, senderOf, serviceOf, type As4Partner } from './parties.ts';
import { takeAnswer } from './answers.ts';
import type { AwaitedReceipts } from './awaited.ts';
import { answerSignal, type As4PullOptions } from './pull.ts';
import { checkAs4Security } from './security.ts';
import type { As4Settings } from './settings.ts';
import { errorEnvelope, receiptEnvelope, signAs4, soapContentType } from './write.ts';

export interface As4InboundOptions {
  settings: As4Settings;
  registry: Registry;
  intake: Intake;
  evidence: EvidenceLog;
  trust: CertificateCheck;
  signatures: PayloadVerifiers & XmlSigners;
  signing: HubIdentity['signing'];
  /** The hub's keys partners encrypt to: RSA under eDelivery AS4 1.x, X25519 under 2.0. */
  decryption: HubIdentity['encryption'];
  budget: BodyBudget;
  received: ReceivedMessages;
  maxMessageBytes: number;
  maxPayloadBytes: number;
  /** Where a payload part of a body over the inline limit is written as it arrives. */
  payloads: Payloads;
  /** The largest body streamed so: its payload part, inflated, at most as large. */
  maxStreamedBytes: number;
  clockSkewSeconds: number;
  /** What answers PullRequests and the Receipts for pulled messages. */
  pull: As4PullOptions;
  /** The sends awaiting a receipt of their own, which Receipts and Error signals POSTed here settle. */
  awaited: AwaitedReceipts;
  /** Sends a signal of the hub's to the partner's MSH on a connection of its own (a P-Mode with asynchronous replies). */
  sendSignal(to: As4Partner, xml: string, refToMessageId: string, what: string): Promise<void>;
}

/** The hub's SWX_* code an ebMS refusal is evidenced and counted under, when the error does not carry one. */
const swxCodeOf: Partial<Record<EbmsCode, ErrorCode>> = {
  'EBMS:0101': 'SWX_SIG_INVALID',
  'EBMS:0103': 'SWX_SIG_ALG_UNSUPPORTED',
  'EBMS:0010': 'SWX_ACL_DENIED',
  'EBMS:0001': 'SWX_UNKNOWN_RECEIVER',
  'EBMS:0004': 'SWX_INTERNAL',
};

/** Refusals of the hub's capacity and caps keep their own HTTP status (413, 429, 431, 503): 4xx, never a 500. */
const capacityCodes = new Set<ErrorCode>(['SWX_TOO_LARGE', 'SWX_HEADERS_TOO_LARGE', 'SWX_BUSY', 'SWX_PARTNER_BUSY', 'SWX_CLIENT_ABORTED']);

/** Where budget is claimed for a body whose sender is not known until its signature is checked: one share for all. */
const unauthenticatedShare = 'as4:unauthenticated';

const sourceOf = (req: IncomingMessage) => (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '').replace(/%.*$/, '');

/** A repeat that arrives with a signature older than the freshness allows is still a resend: the P-Mode's retries say how old. */
const retrySpanSeconds = (pmode: As4Partner['pmode']) => pmode.receptionAwareness.retrySeconds.reduce((sum, wait) => sum + wait, 0);

export function mountAs4Inbound(router: Router, options: As4InboundOptions): void {
  const { settings, registry, intake } = options;

  router.add('POST', settings.path, async (req: IncomingMessage, res: ServerResponse) => {
    const partial: RefusedSubmission = { protocol: 'as4', payload: Buffer.alloc(0) };
    let message: As4Message | undefined;
    /** The authenticated sender, once known: its P-Mode says whether its signals go on the connection or apart. */
    let from: As4Partner | undefined;
    let accepted: { message: As4Message; sender: As4Partner };
    const streaming = new ArrivingPayloads((envelope) => streamedPayloads(envelope, options));
    let streamed: StoredPayloads | undefined;
    try {
      const contentType = header(req, 'content-type') ?? '';
      const claim = options.budget.claim(unauthenticatedShare, res);
      const { body: source, streams } = await streamableBody(req, claim, { inlineLimit: options.payloads.inlineLimit, maxStreamedBytes: options.maxStreamedBytes, maxHeldBytes: options.maxMessageBytes });
      const body = await readAs4Body(source, contentType, options.maxMessageBytes, streams ? { maxBytes: options.maxStreamedBytes, take: streaming.take } : undefined);
      streamed = await streaming.finish();
      if (streamed) partial.stored = streamed.stored;
      message = readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) });
      const user = message.message;
      if (user.kind !== 'user') {
        const answer = user.pullRequest ? await answerSignal(message, user, partial, options.pull) : await takeAnswer(message, user, partial, options);
        res.writeHead(answer.status, { ...(answer.contentType ? { 'content-type': answer.contentType } : {}), 'content-length': String(answer.streamed?.length ?? answer.body.length) });
        if (!answer.streamed) {
          res.end(answer.body);
          return;
        }
        // A failure mid-way (the Object Store, the payload's digest) cuts the answer short: the puller sends no Receipt,
        // and the message is handed out again once its visibility time has passed.
        await pipeline(answer.streamed.open(), res).catch((error: Error) => {
          log.warn({ err: error.message, id: message?.message.messageInfo.messageId }, 'a pulled message could not be streamed whole');
        });
        return;
      }
      const messageId = user.messageInfo.messageId;
      partial.claimedId = messageId;
      const sender = senderOf(registry, user);
      const profile = sender.pmode.profile;
      const hubKey = profile === 'eDelivery-AS4-2.0' ? options.decryption.x25519 : options.decryption.rsa;
      if (!hubKey && encryptedParts(message.envelope.raw).length > 0) {
        throw new EbmsError('EBMS:0102', `the payloads are encrypted under ${profile} and this hub holds no ${profile === 'eDelivery-AS4-2.0' ? 'X25519 encryption key' : 'RSA key (its signing key is not RSA)'} to decrypt them`, { refToMessageInError: messageId, origin: 'security', swxCode: 'SWX_DECRYPT_KEY_MISSING' });
      }
      // Decrypted before the signature is judged (it signs the plaintext), so a message that does not decrypt is
      // refused before its sender is authenticated: counted, as every such refusal.
      const security = await checkAs4Security(message, {
        profile,
        encrypted: sender.pmode.security.encrypt,
        keyTransport: sender.pmode.security.keyTransport,
        ...(hubKey ? { decryption: { key: hubKey, profile } } : {}),
        attachments: body.attachments,
        verifyXml: options.signatures.verifyXml,
        clockSkewSeconds: options.clockSkewSeconds,
        freshnessSeconds: Math.max(300, retrySpanSeconds(sender.pmode)) + options.clockSkewSeconds,
      });
      const signer = registry.keyByThumbprint(security.thumbprint);
      if (!signer || signer.partner.id !== sender.partner.id) {
        throw new EbmsError('EBMS:0101', `the signing certificate ${security.thumbprint} is not registered to ${sender.partner.id}, whose P-Mode the From PartyId names`, { refToMessageInError: messageId, origin: 'security', swxCode: 'SWX_SIG_KEY_MISMATCH' });
      }
      await admit(options.trust, signer, 'agency-signing', 'the signing certificate').catch((error: unknown) => { throw ebmsErrorOf(error, messageId); });

      // Authenticated from here: refusals are evidenced as this partner's, the original signed envelope kept with them.
      from = sender;
      Object.assign(partial, {
        id: messageId,
        claimedId: undefined,
        from: sender.partner.id,
        conversationId: user.collaboration.conversationId,
        ...(user.messageInfo.refToMessageId ? { refToMessageId: user.messageInfo.refToMessageId } : {}),
        signature: { ...security.signature, base: body.envelope.toString('utf8') },
      });
      const { service, action } = serviceOf(sender.pmode, user.collaboration, messageId);
      Object.assign(partial, { service, action });
      const to = receiverOf(registry, user, settings);
      if (to !== undefined) Object.assign(partial, { to, relayed: true });

      const stored = await options.received.receiptFor(sender.partner.id, messageId, sender.pmode.receptionAwareness.duplicateWindowSeconds);
      if (stored !== undefined) {
        await discardStored(options.payloads, partial);
        await evidenceRepeat(options.evidence, partial);
        messagesTotal.inc({ stage: 'received', outcome: 'duplicate', code: '' });
        answer(res, 200, stored, sender, messageId, 'AS4 Receipt', options);
        return;
      }
      const payload = streamed ? { payload: Buffer.alloc(0), contentType: streamed.contentType } : await payloadOf(user, security.attachments, message, options.maxPayloadBytes);
      Object.assign(partial, payload);
      const taken = await intake.accept(partial as Submission);
      messagesTotal.inc({ stage: 'received', outcome: taken.duplicate ? 'duplicate' : 'accepted', code: '' });
      accepted = { message, sender };
    } catch (error) {
      await streaming.abort();
      await refuse(req, res, options, partial, message, from, error);
      return;
    }
    // Outside the try: the message is accepted whatever happens to its receipt, so it is never evidenced as refused.
    // A receipt that cannot be made or kept is the hub's trouble: EBMS:0004 (HTTP 500), and the sender's resend, which
    // intake takes as a duplicate, gets one.
    try {
      const { sender } = accepted;
      const messageId = accepted.message.message.messageInfo.messageId;
      const receipt = await signAs4(receiptEnvelope(accepted.message), { keyPem: options.signing.keyPem, certPem: options.signing.certPem, signatureAlgorithm: signatureAlgorithm(options.signing, sender.pmode.profile) }, options.signatures.signSoap);
      await options.received.remember(sender.partner.id, messageId, receipt);
      answer(res, 200, receipt, sender, messageId, 'AS4 Receipt', options);
    } catch (error) {
      log.error({ err: error, from: accepted.sender.partner.id, id: partial.id }, 'an accepted AS4 message\'s receipt could not be signed or kept');
      const signal = errorEnvelope([new EbmsError('EBMS:0004', 'the message was accepted, but its receipt could not be made; send it again for the receipt', { refToMessageInError: partial.id })]);
      const xml = await signAs4(signal, { keyPem: options.signing.keyPem, certPem: options.signing.certPem }, options.signatures.signSoap).catch(() => '');
      if (!res.headersSent) reply(res, 500, xml);
    }
  });
}

/**
 * The payloads of a body that streams, once its envelope is read: the sender's P-Mode found and the hub's key to
 * decrypt with unwrapped first, so that each part is decrypted on its way into the Object Store. The envelope is read
 * again, whole, when the body has ended; here only what the parts need is asked of it. Undefined (the parts are held,
 * and the message judged whole once read) for an envelope that names no attachment as a payload.
 */
async function streamedPayloads(envelope: Buffer, options: As4InboundOptions): Promise<StreamedPayloads | undefined> {
  let message: As4Message;
  try {
    message = readAs4Message(envelope, { arriving: true });
  } catch {
    return undefined;
  }
  const user = message.message;
  if (user.kind !== 'user' || !user.parts.some((part) => part.location.kind === 'attachment')) return undefined;
  const messageId = user.messageInfo.messageId;
  const sender = senderOf(options.registry, user);
  const profile = sender.pmode.profile;
  const hubKey = profile === 'eDelivery-AS4-2.0' ? options.decryption.x25519 : options.decryption.rsa;
  const decryption = hubKey ? await openEncryption(envelope, hubKey, { profile }).catch((error: unknown) => { throw ebmsErrorOf(error, messageId); }) : undefined;
  return as4StreamedPayloads({ ...message, message: user }, options.payloads, options.maxStreamedBytes, decryption);
}

/** A refused or repeated message's payload that was written to the Object Store as it arrived is removed. */
async function discardStored(payloads: Payloads, partial: RefusedSubmission): Promise<void> {
  if (!partial.stored) return;
  await payloads.discard(partial.stored).catch((error: unknown) => log.warn({ err: error, ref: partial.stored?.payloadRef }, 'a refused AS4 payload could not be removed'));
  delete partial.stored;
}

/**
 * The hub's signal about a sender's message: on the HTTP answer, or, where the sender's P-Mode makes replies
 * asynchronous, an empty 200 at once and the signal POSTed to its MSH after (retried while it cannot take it).
 */
function answer(res: ServerResponse, status: number, xml: string, sender: As4Partner, messageId: string, what: string, options: Pick<As4InboundOptions, 'sendSignal'>): void {
  if (!repliesApart(sender)) {
    reply(res, status, xml);
    return;
  }
  res.writeHead(200, { 'content-length': '0' });
  res.end();
  options.sendSignal(sender, xml, messageId, what).catch((error: unknown) => log.warn({ err: error, partner: sender.partner.id, id: messageId }, `the ${what} could not be sent to the partner's MSH`));
}

/** Whether the sender's P-Mode asks for the hub's signals apart (PMode[1].Security.SendReceipt.ReplyPattern = Callback). */
const repliesApart = (sender: As4Partner) => sender.pmode.receipt.reply === 'async' && sender.pmode.url !== undefined;

function reply(res: ServerResponse, status: number, xml: string): void {
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, { 'content-type': soapContentType, 'content-length': String(body.length) });
  res.end(body);
}

/** What the hub can sign with for a partner's profile: the profile's algorithm when its key can, else its key's own. */
function signatureAlgorithm(signing: HubIdentity['signing'], profile: As4Partner['pmode']['profile']): 'rsa-sha256' | 'ed25519' | undefined {
  const type = signing.key.asymmetricKeyType;
  if (profile === 'eDelivery-AS4-2.0' && type === 'ed25519') return 'ed25519';
  if (type === 'rsa') return 'rsa-sha256';
  return undefined;
}

/**
 * The message's payload: its one part, or a package of its several parts (package.ts), within `maxBytes` in all.
 */
async function payloadOf(user: UserMessage, attachments: readonly XmlAttachment[], message: As4Message, maxBytes: number): Promise<Pick<Submission, 'payload' | 'contentType'>> {
  if (user.parts.length > 1) return packagedPayload(user, (part, left) => partPayload(part, user, attachments, message, left), maxBytes);
  const part = user.parts[0];
  if (!part) return { payload: Buffer.alloc(0), contentType: 'application/octet-stream' };
  return partPayload(part, user, attachments, message, maxBytes);
}

/** One payload: an attachment (inflated within `maxBytes` when compressed) or an element of the SOAP Body, with its MimeType. */
async function partPayload(part: PartInfo, user: UserMessage, attachments: readonly XmlAttachment[], message: As4Message, maxBytes: number): Promise<Pick<Submission, 'payload' | 'contentType'>> {
  const messageId = user.messageInfo.messageId;
  if (part.location.kind === 'body') return bodyPayload(part, message);
  const contentId = part.location.contentId;
  const attachment = attachments.find((a) => a.contentId === contentId)!;
  if (!part.compressionType) {
    if (attachment.body.length > maxBytes) throw new SwxError('SWX_TOO_LARGE', `payload <${contentId.slice(0, 120)}> is ${attachment.body.length} bytes; this hub carries at most ${maxBytes}`);
    return { payload: attachment.body, contentType: payloadType(part, attachment) };
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of decompress((async function* () { yield attachment.body; })(), part, inflateCaps(maxBytes))) chunks.push(chunk);
  } catch (error) {
    // What the sender sent cannot be inflated within the caps: its fault (4xx), not the hub's.
    const ebms = ebmsErrorOf(error, messageId);
    throw new EbmsError(ebms.code, ebms.detail, { refToMessageInError: messageId, faultCode: 'Sender', swxCode: 'SWX_TOO_LARGE' });
  }
  return { payload: Buffer.concat(chunks), contentType: payloadType(part, attachment) };
}

/** The evidence of a repeat answered with its stored receipt: received again, not processed again. */
async function evidenceRepeat(evidence: EvidenceLog, partial: RefusedSubmission): Promise<void> {
  const facts = {
    messageId: partial.id!, conversationId: partial.conversationId ?? partial.id!, from: partial.from ?? '', to: partial.to ?? '',
    service: partial.service ?? '', action: partial.action ?? '', protocol: 'as4',
  };
  await evidence.publish([
    evidence.record({ ...facts, stage: 'received', signature: JSON.stringify(partial.signature) }),
    evidence.record({ ...facts, stage: 'duplicate', detail: 'AS4 resend of a MessageId already received: answered with the stored receipt, not processed again' }),
  ]);
}

/** A refusal: evidence (counted before authentication), then the signed Error signal with its HTTP status. */
async function refuse(req: IncomingMessage, res: ServerResponse, options: As4InboundOptions, partial: RefusedSubmission, message: As4Message | undefined, from: As4Partner | undefined, error: unknown): Promise<void> {
  const messageId = message?.message.messageInfo.messageId;
  const ebms = ebmsErrorOf(error, messageId);
  if (ebms.code === 'EBMS:0004') log.error({ err: error, from: partial.from, id: messageId }, 'AS4 message not accepted: internal error');
  const swxCode = ebms.swxCode ?? swxCodeOf[ebms.code] ?? 'SWX_BAD_REQUEST';
  messagesTotal.inc({ stage: 'received', outcome: 'rejected', code: swxCode });
  const detail = `${ebms.code} ${ebms.shortDescription}: ${ebms.detail}`;
  const refusal = partial.from
    ? new SwxError(swxCode, detail)
    : new Unauthenticated(swxCode, detail, sourceOf(req), String(partial.signature?.certThumbprint ?? ''));
  await options.intake.reject(partial, refusal).catch((rejectError: unknown) => log.warn({ err: rejectError }, 'an AS4 refusal could not be evidenced'));
  await discardStored(options.payloads, partial);
  let signal;
  try {
    signal = errorEnvelope([ebms]);
    const xml = await signAs4(signal, { keyPem: options.signing.keyPem, certPem: options.signing.certPem }, options.signatures.signSoap);
    const status = capacityCodes.has(swxCode) ? errorCodes[swxCode].status : signal.httpStatus;
    if (!res.headersSent) {
      if (status === 503 || status === 429) res.setHeader('retry-after', '1');
      // A body not read to its end cannot be followed by another request on this connection.
      if (!req.complete) res.setHeader('connection', 'close');
      // The hub's caps (413, 429, 503) answer on the connection: the sender must hear at once to send again.
      if (from && messageId && !capacityCodes.has(swxCode)) answer(res, status, xml, from, messageId, 'AS4 Error signal', options);
      else reply(res, status, xml);
    }
  } catch (signError) {
    log.error({ err: signError }, 'the AS4 Error signal could not be signed');
    if (!res.headersSent) reply(res, 500, '');
  }
}
