// AS4 outbound (one-way push): the hub delivers an envelope to a partner's MSH as a UserMessage — From the hub's PartyId,
// To the partner's, MessageId from compose.ts (a retry keeps it), the payload gzipped when the P-Mode says — signed by
// WS-Security with the algorithm the partner's profile fixes, encrypted to the partner when it says, over mutual TLS (a
// payload over the limit streamed from the Object Store, signed with the SHA-256 it is kept with); the partner's signed
// Receipt, its signature judged through the trust store and its references against what was signed, is the delivery's
// receipt. Under a P-Mode with asynchronous receipts the partner answers 200 and POSTs its receipt to the hub on its
// own (answers.ts); the delivery waits for it (awaited.ts). A send left without one is resent on the P-Mode's
// reception-awareness schedule, then fails with EBMS:0301. The hub's own asynchronous replies leave from here too.
import { Readable } from 'node:stream';
import { deliveryMessageId, type Envelope } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { postHttps, whole, type HttpsAnswer } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { deliveryDeadlineMs, DeliveryError, transportFailure, UnansweredDelivery, type OutgoingPayload, type Outbound, type Receipt } from '../../engine/outbound.ts';
import type { Partner, Registry } from '../../engine/registry.ts';
import type { SeparateReplies } from '../../engine/separate-replies.ts';
import { PartnerAgents } from '../../engine/server-trust.ts';
import type { CertificateCheck, PayloadVerifiers, XmlSigners } from '../../engine/trust/index.ts';
import { checkWsSecurity } from '../../engine/trust/index.ts';
import { composeStreamedUserMessage, composeUserMessage, sendable, type ComposedMessage, type StreamedMessage } from './compose.ts';
import { ebmsErrorOf } from './errors.ts';
import { readAs4Message } from './message.ts';
import { as4Endpoint, type As4Endpoint } from './pmode.ts';
import { awaitSchedule, checkReceipt, resendSchedule, type SentMessage } from './reception.ts';
import type { AwaitedReceipts, AwaitedSend } from './awaited.ts';
import type { As4Partner } from './parties.ts';
import type { As4Settings } from './settings.ts';
import { soapContentType } from './write.ts';

export interface As4OutboundOptions {
  settings: As4Settings;
  timeoutMs: number;
  maxSockets: number;
  clockSkewSeconds: number;
  /** The largest payload sent: the signature needs the part whole. */
  maxPayloadBytes: number;
  /** The sends awaiting a receipt of their own (P-Modes with receipt.reply "async"), shared by the hub processes. */
  awaited: AwaitedReceipts;
  /** Sends the hub's own receipts and errors that go on a connection of their own. */
  replies: SeparateReplies;
}

/** The largest answer read: a Receipt copies the message's references, an Error signal a detail; neither is large. */
const maxAnswerBytes = 1024 * 1024;

/**
 * A retry resends the signed message of the first attempt byte for byte (AS4 reception awareness), so that a receiver
 * that took the first and stored its receipt answers with a receipt whose references match: for an hour (its
 * Timestamp's validity, less a margin), within 64 MiB of copies in this process. Past either, it is signed afresh. A
 * payload streamed from the Object Store is not copied: its resend keeps the signed envelope (the same MessageId,
 * signature and references) and reads the payload again, encrypted under a fresh key, so only its ciphertext differs.
 */
/** A message as sent and kept for its resend: held whole, or its payload streamed from the Object Store each time. */
type Sendable = StreamedMessage & { body?: Buffer };

const held = (composed: ComposedMessage): Sendable => ({
  ...composed, length: composed.body.length, keptBytes: composed.body.length, open: () => Readable.from([composed.body]),
});

const resend = { timestampTtlSeconds: 3600, reuseMs: 3540_000, maxBytes: 64 * 1024 * 1024 };

export class As4Outbound implements Outbound {
  private readonly agents: PartnerAgents;
  /** The signed message sent for each delivery not yet settled, oldest first. */
  private readonly copies = new Map<string, { composed: Sendable; at: number }>();
  private copiedBytes = 0;

  constructor(
    private readonly hub: HubIdentity,
    private readonly registry: Registry,
    private readonly trust: CertificateCheck,
    private readonly signatures: PayloadVerifiers & XmlSigners,
    private readonly options: As4OutboundOptions,
  ) {
    this.agents = new PartnerAgents(hub.tls, options.maxSockets);
  }

  async deliver(envelope: Envelope, payload: OutgoingPayload, partner: Partner, endpoint: Record<string, unknown>): Promise<Receipt> {
    const permanent = (code: ConstructorParameters<typeof SwxError>[0], detail: string) => new DeliveryError(false, code, `${partner.id}: ${detail}`);
    const parsed = as4Endpoint.safeParse(endpoint);
    if (!parsed.success) throw permanent('SWX_BAD_REQUEST', `its as4 P-Mode does not fit the schema: ${parsed.error.issues[0]?.message}`);
    const pmode: As4Endpoint = parsed.data;
    if (pmode.mep.binding !== 'push' || !pmode.url) throw permanent('SWX_UNKNOWN_RECEIVER', 'its as4 P-Mode is not one-way push to a url');
    try {
      sendable(envelope, pmode, this.hub.signing, partner.certificates);
    } catch (error) {
      throw permanent((error as SwxError).code, (error as Error).message);
    }
    // A payload in the Object Store over the limit streams from it, a payload package part by part.
    const streams = !payload.held && payload.size > this.options.maxPayloadBytes;
    const key = `${partner.id}\u0000${envelope.id}`;
    // A topic's or channel's message goes to each receiver as its own copy, under its own MessageId.
    const messageId = deliveryMessageId(envelope);
    // The receipt comes on its own: the partner may have answered an earlier send since (or its sends are spent).
    const awaits = pmode.receipt.reply === 'async' && pmode.receipt.required;
    const earlier = awaits ? await this.options.awaited.get(partner.id, messageId) : undefined;
    if (earlier?.outcome) {
      this.forget(key);
      return this.answered(partner, messageId, earlier);
    }
    if (earlier && earlier.attempts > pmode.receptionAwareness.retrySeconds.length) throw await this.spent(key, partner, messageId, earlier, pmode);
    const copy = this.copies.get(key);
    const compose = async (): Promise<Sendable> => (streams
      ? composeStreamedUserMessage(envelope, { size: payload.size, sha256: payload.sha256, open: () => payload.open() }, pmode, this.options.settings, this.hub.signing, partner.certificates, this.signatures.signSoap, resend.timestampTtlSeconds)
      : held(await composeUserMessage(envelope, payload.held ?? await whole(payload.open()), pmode, this.options.settings, this.hub.signing, partner.certificates, this.signatures.signSoap, resend.timestampTtlSeconds)));
    const composed: Sendable = copy && Date.now() - copy.at < resend.reuseMs ? copy.composed
      : await compose().catch((error: unknown) => {
        // A payload package that does not read as one (its sender's REST upload) fails the same way at every attempt.
        if (error instanceof SwxError && !(error instanceof DeliveryError) && (error.code === 'SWX_BAD_REQUEST' || error.code === 'SWX_TOO_LARGE')) throw permanent(error.code, error.message);
        throw error;
      });
    if (composed !== copy?.composed) this.keep(key, composed);

    const url = new URL(pmode.url);
    const deadlineMs = deliveryDeadlineMs(this.options.timeoutMs, composed.length);
    const sentAt = Date.now();
    const send: AwaitedSend = { references: [...composed.references], attempts: (earlier?.attempts ?? 0) + 1, firstSentAt: earlier?.firstSentAt ?? sentAt, lastSentAt: sentAt };
    const schedule = awaits ? awaitSchedule({ messageId, ...send }, pmode.receptionAwareness) : resendSchedule(messageId, pmode.receptionAwareness);
    try {
      if (awaits) await this.options.awaited.sent(partner.id, messageId, send);
      const answer = await postHttps(url, {
        headers: { 'content-type': composed.contentType, 'content-length': String(composed.length) },
        agent: this.agents.for(partner.id, pmode.tls), signal: AbortSignal.timeout(deadlineMs),
      }, composed.body ?? composed.open, maxAnswerBytes).catch((error: Error) => {
        if (error instanceof SwxError) throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}: ${error.message}`);
        throw transportFailure(error, `${partner.id} at ${url.origin}`, deadlineMs);
      });
      const receipt = awaits && answer.body.length === 0 && answer.status >= 200 && answer.status < 300
        ? await this.awaitReceipt(partner, messageId, send, deadlineMs, schedule)
        : await this.judge(answer, partner, pmode, { messageId, references: composed.references });
      this.forget(key);
      return receipt;
    } catch (error) {
      const failure = pmode.receipt.required ? UnansweredDelivery.of(error, schedule) : error;
      // Kept for the retry only when one follows: a transient failure, or a send left without its receipt.
      if (!(failure instanceof DeliveryError) || !(failure.transient || failure instanceof UnansweredDelivery)) this.forget(key);
      throw failure;
    }
  }

  /**
   * Waits for the receipt of a send the partner took without one (HTTP 2xx, empty), as long as a synchronous answer
   * may take and no longer than until the next resend; then the delivery stage holds it until that resend, when the
   * receipt may have come meanwhile.
   */
  private async awaitReceipt(partner: Partner, messageId: string, send: AwaitedSend, deadlineMs: number, schedule: UnansweredDelivery['next']): Promise<Receipt> {
    const now = Date.now();
    const next = schedule(send.attempts, send.firstSentAt, now);
    const waitMs = Math.max(0, Math.min(deadlineMs, next.kind === 'resend' ? next.at - now : 0));
    const outcome = await this.options.awaited.outcome(partner.id, messageId, waitMs);
    if (!outcome) throw new DeliveryError(false, 'SWX_RECEIPT_MISSING', `${partner.id} took send ${send.attempts} of ${messageId} and sent no receipt of its own within ${Math.round(waitMs / 1000)} s`);
    return this.answered(partner, messageId, { ...send, outcome });
  }

  /** The partner's own answer to a send: its receipt (checked when it came), or its Error signal, which fails this attempt. */
  private async answered(partner: Partner, messageId: string, send: AwaitedSend): Promise<Receipt> {
    const { outcome } = send;
    if (outcome?.kind === 'receipt') return { status: 200, duplicate: false, signature: outcome.signature, raw: outcome.raw };
    // Taken: the next attempt, should the delivery stage make one after this refusal, sends the message afresh.
    await this.options.awaited.forget(partner.id, messageId);
    throw new DeliveryError(false, 'SWX_DELIVERY_REJECTED', `${partner.id} answered with an ebMS Error signal of its own: ${outcome?.kind === 'error' ? outcome.detail : 'none'}`);
  }

  /**
   * A send whose resends are spent: it awaits its receipt through the last wait, then the delivery fails with EBMS:0301
   * and the send is awaited no more (a Receipt after that answers nothing; an operator's resend starts afresh).
   */
  private async spent(key: string, partner: Partner, messageId: string, send: AwaitedSend, pmode: As4Endpoint): Promise<UnansweredDelivery> {
    const schedule = awaitSchedule({ messageId, ...send }, pmode.receptionAwareness);
    if (schedule(send.attempts, send.firstSentAt, Date.now()).kind === 'failed') {
      await this.options.awaited.forget(partner.id, messageId);
      this.forget(key);
    }
    return new UnansweredDelivery(false, `${partner.id} sent no receipt for ${messageId} after ${send.attempts} sends`, schedule);
  }

  private keep(key: string, composed: Sendable): void {
    this.forget(key);
    this.copies.set(key, { composed, at: Date.now() });
    this.copiedBytes += composed.keptBytes;
    for (const [oldest] of this.copies) {
      if (this.copiedBytes <= resend.maxBytes) break;
      this.forget(oldest);
    }
  }

  private forget(key: string): void {
    const copy = this.copies.get(key);
    if (!copy) return;
    this.copiedBytes -= copy.composed.keptBytes;
    this.copies.delete(key);
  }

  /** The answer to a UserMessage: a signed Receipt for it (the delivery's receipt), an Error signal, or a failure. */
  private async judge(answer: HttpsAnswer, partner: Partner, pmode: As4Endpoint, sent: SentMessage): Promise<Receipt> {
    const text = answer.body.toString('utf8');
    if (answer.body.length === 0 && answer.status >= 200 && answer.status < 300) {
      if (!pmode.receipt.required) return { status: answer.status, duplicate: false, raw: `HTTP ${answer.status}` };
      throw new DeliveryError(false, 'SWX_RECEIPT_MISSING', `${partner.id} answered ${answer.status} with no receipt`);
    }
    let message;
    try {
      message = readAs4Message(answer.body);
    } catch (error) {
      if (answer.status >= 500 || answer.status === 429 || answer.status === 408) throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} answered ${answer.status}`);
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id} answered ${answer.status} with no ebMS signal: ${ebmsErrorOf(error).detail.slice(0, 300)}`);
    }
    const signal = message.message;
    if (signal.kind !== 'signal') throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id} answered with a UserMessage, not a signal`);
    if (signal.errors.length > 0 && !signal.receipt) {
      const detail = signal.errors.map((e) => `${e.errorCode} ${e.shortDescription ?? ''}: ${e.detail ?? e.description?.text ?? ''}`).join('; ').slice(0, 1000);
      // A Receiver fault (5xx) is the partner's own trouble and passes; a Sender fault is its verdict on this message.
      const transient = answer.status >= 500;
      throw new DeliveryError(transient, transient ? 'SWX_UNAVAILABLE' : 'SWX_DELIVERY_REJECTED', `${partner.id} answered ${answer.status} with an ebMS Error: ${detail}`);
    }
    if (answer.status !== 200) throw new DeliveryError(answer.status >= 500, answer.status >= 500 ? 'SWX_UNAVAILABLE' : 'SWX_RECEIPT_INVALID', `${partner.id} answered ${answer.status}`);
    const invalid = checkReceipt(signal, sent, pmode.receipt.signed);
    if (invalid) throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt: ${invalid.detail}`);
    if (!pmode.receipt.signed) {
      return { status: answer.status, duplicate: false, signature: { scheme: 'xmldsig', algorithm: '', keyId: '', certThumbprint: '', covered: [], value: '' }, raw: text };
    }
    let security;
    try {
      security = await checkWsSecurity(message.envelope, { verifyXml: this.signatures.verifyXml, clockSkewSeconds: this.options.clockSkewSeconds });
    } catch (error) {
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt: ${(error as Error).message}`);
    }
    const signer = this.registry.keyByThumbprint(security.thumbprint);
    if (!signer || signer.partner.id !== partner.id) {
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt is signed with ${security.thumbprint}, not a certificate registered to ${partner.id}`);
    }
    const refusal = await this.trust.check(signer.parsed, 'agency-signing');
    if (refusal) throw new DeliveryError(refusal.code === 'SWX_CERT_REVOCATION_UNKNOWN', 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt is signed with ${security.thumbprint}: ${refusal.code}: ${refusal.detail}`);
    return { status: answer.status, duplicate: false, signature: { ...security.signature, certificate: signer.certificate.toString() }, raw: text };
  }

  /** A signal of the hub's POSTed to the partner's MSH on a connection of its own, in the background, retried while it cannot take it. */
  async sendSignal(to: As4Partner, xml: string, refToMessageId: string, what: string): Promise<void> {
    if (!to.pmode.url) throw new SwxError('SWX_UNKNOWN_RECEIVER', `${to.partner.id}: its as4 P-Mode has no url to send the ${what} to`);
    await this.options.replies.send({
      partner: to.partner.id, refToMessageId, what, url: new URL(to.pmode.url), agent: this.agents.for(to.partner.id, to.pmode.tls),
      headers: { 'content-type': soapContentType }, body: Buffer.from(xml, 'utf8'),
    });
  }

  close(): void {
    this.agents.close();
    this.copies.clear();
    this.copiedBytes = 0;
  }
}
