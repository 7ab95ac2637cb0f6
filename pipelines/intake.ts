// receive → verify → route: what every inbound connector calls once it has authenticated the sender and checked
// the protocol signature. It checks the service and receiver and stores the envelope (JetStream de-duplicates by
// sender and message id over the whole horizon); rejections and duplicates are evidenced here. Runs inline in the connector's request,
// so the sender's acknowledgement means the envelope is durable: one durable hop instead of one per stage.
import { createHash, randomUUID } from 'node:crypto';
import { messageIdPattern, type Envelope, type SignatureInfo } from '../engine/envelope.ts';
import { endpointFor } from '../engine/endpoints.ts';
import { SwxError } from '../engine/errors.ts';
import { flaggedDetail, sameMessage, type EvidenceLog, type EvidenceRecord } from '../engine/evidence.ts';
import { streams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import type { Payloads } from '../engine/payloads.ts';
import type { Accepted, Intake, RefusedSubmission, Submission } from '../engine/submission.ts';
import { Unauthenticated } from '../engine/peer.ts';
import type { Registry } from '../engine/registry.ts';
import type { UnauthenticatedRefusals } from '../engine/unauthenticated.ts';


/** The size and SHA-256 (hex) of a submission's body, wherever it is. */
function bodyFacts(submission: Partial<Submission> & { payload: Buffer }): { size: number; sha256: string } {
  return submission.stored
    ? { size: submission.stored.size, sha256: submission.stored.sha256 }
    : { size: submission.payload.length, sha256: createHash('sha256').update(submission.payload).digest('hex') };
}

/**
 * The id of a message sent without one: derived from what its sender signed (the RFC 9421 signature base, which names
 * the key), so the same signed request sent again is the same message, answered as a duplicate and delivered once.
 */
function signedMessageId(signature: SignatureInfo | undefined): string | undefined {
  return signature?.base === undefined ? undefined : `sig:${createHash('sha256').update(signature.base).digest('base64url')}`;
}

export class IntakeStage implements Intake {
  constructor(
    private readonly bus: Bus,
    private readonly registry: Registry,
    private readonly payloads: Payloads,
    private readonly evidence: EvidenceLog,
    private readonly refusals: Pick<UnauthenticatedRefusals, 'count'>,
    /** Why no message may be accepted now (evidence cannot be time-stamped), if that is so. */
    private readonly admission: () => SwxError | undefined = () => undefined,
  ) {}

  /** Raw evidence of what arrived: the payload and the signature it came with. */
  private received(submission: Partial<Submission> & { payload: Buffer }, id: string, conversationId: string, { size, sha256 }: { size: number; sha256: string }): EvidenceRecord {
    return this.evidence.record({
      messageId: id,
      conversationId,
      stage: 'received',
      from: submission.from ?? '',
      to: submission.to ?? '',
      service: submission.service ?? '',
      action: submission.action ?? '',
      protocol: submission.protocol ?? '',
      size,
      sha256,
      raw: !submission.stored && size <= this.payloads.inlineLimit ? submission.payload.toString('base64') : undefined,
      signature: submission.signature ? JSON.stringify(submission.signature) : undefined,
      ...flaggedDetail(submission.flags),
      ...(submission.refToMessageId ? { refTo: submission.refToMessageId } : {}),
    });
  }

  /**
   * Evidences a submission refused before it could be accepted (bad certificate, signature, digest, size...). One
   * from a sender no registered certificate named is counted with the others from its address instead.
   */
  async reject(submission: RefusedSubmission, error: SwxError): Promise<string> {
    if (error instanceof Unauthenticated) {
      const { protocol, to, service, action, claimedId, contentType } = submission;
      return this.refusals.count(error, { protocol, to, service, action, messageId: claimedId, contentType });
    }
    const id = submission.id && messageIdPattern.test(submission.id) ? submission.id : signedMessageId(submission.signature) ?? randomUUID();
    const conversationId = submission.conversationId ?? id;
    const received = this.received(submission, id, conversationId, bodyFacts(submission));
    await this.evidence.publish([received, this.evidence.record({
      ...sameMessage(received), stage: 'rejected', code: error.code,
      detail: submission.claimedId ? `${error.message} (claimed message id ${submission.claimedId}, not authenticated)` : error.message,
    })]);
    return id;
  }

  async accept(submission: Submission): Promise<Accepted> {
    const refusal = this.admission();
    if (refusal) throw refusal;
    if (submission.id !== undefined && !messageIdPattern.test(submission.id)) {
      throw new SwxError('SWX_BAD_REQUEST', 'message id must be 1-128 characters of letters, digits and . _ : @ -');
    }
    const audience = this.registry.audience(submission.from, submission.service, submission.to, submission.relayed);
    if (audience.kind === 'direct') this.checkReceiver(submission.from, audience.receivers[0], submission.service);
    const ttlSeconds = audience.kind === 'direct' ? this.registry.service(submission.service)?.ttlSeconds
      : (audience.kind === 'topic' ? this.registry.topic(audience.id) : this.registry.channel(audience.id))?.ttlSeconds;
    const id = submission.id ?? signedMessageId(submission.signature) ?? randomUUID();
    const conversationId = submission.conversationId ?? id;
    const body = bodyFacts(submission);
    const { sha256 } = body;
    const receivedAt = new Date();
    const envelope: Envelope = {
      id,
      conversationId,
      ...(submission.refToMessageId ? { refToMessageId: submission.refToMessageId } : {}),
      service: submission.service,
      action: submission.action,
      from: submission.from,
      to: audience.kind === 'direct' ? audience.receivers[0] : '',
      ...(audience.kind === 'direct' ? {} : { audience: { kind: audience.kind, id: audience.id, receivers: audience.receivers } }),
      protocol: submission.protocol,
      contentType: submission.contentType,
      size: body.size,
      sha256,
      ...(submission.stored ? { payloadRef: submission.stored.payloadRef } : await this.payloads.place(sha256, submission.payload)),
      ...(submission.signature ? { signature: submission.signature } : {}),
      ...(submission.payloadSignature ? { payloadSignature: submission.payloadSignature } : {}),
      ...(submission.flags?.length ? { flags: submission.flags } : {}),
      receivedAt: receivedAt.toISOString(),
      ...(ttlSeconds ? { expiresAt: new Date(receivedAt.getTime() + ttlSeconds * 1000).toISOString() } : {}),
    };
    // The stored envelope is itself the evidence of received, verified and routed (the archive reads it).
    const subject = audience.kind === 'direct' ? subjects.message(envelope.to) : subjects.fanOut(audience.kind, audience.id);
    const ack = await this.bus.js.publish(subject, JSON.stringify(envelope), { msgID: `${submission.from}/${id}` });
    if (ack.duplicate) {
      // The original envelope names its own copy of the body: this one's is not kept.
      if (submission.stored) await this.payloads.discard(submission.stored);
      await this.sameAsOriginal(ack.seq, envelope);
      const received = this.received(submission, id, conversationId, body);
      await this.evidence.publish([received, this.evidence.record({ ...sameMessage(received), stage: 'duplicate', detail: 'already accepted; not delivered again' })]);
    }
    return { id, conversationId, duplicate: ack.duplicate };
  }

  /**
   * A direct message's receiver must be registered, enabled, and reachable by a delivery endpoint or its inbox; and
   * the sender may use the service towards it.
   */
  private checkReceiver(from: string, to: string, service: string): void {
    const receiver = this.registry.partner(to);
    if (!receiver || !receiver.enabled) throw new SwxError('SWX_UNKNOWN_RECEIVER', `receiver '${to}' is not a registered partner`);
    if (receiver.receive === 'push' && !endpointFor(receiver, [service], 'deliver')) {
      throw new SwxError('SWX_UNKNOWN_RECEIVER', `receiver '${to}' has no delivery endpoint registered`);
    }
    if (!this.registry.mayUse(from, service, to)) throw new SwxError('SWX_ACL_DENIED', `${from} may not use service '${service}' towards ${to}`);
  }

  /** A resend must be the same message: the same id with other content or another receiver is refused. */
  private async sameAsOriginal(seq: number, resent: Envelope): Promise<void> {
    const original = await this.bus.jsm.streams.getMessage(streams.messages, { seq }).catch(() => null);
    if (!original) return;
    const stored = JSON.parse(Buffer.from(original.data).toString('utf8')) as Envelope;
    if (stored.id !== resent.id) return;
    if (stored.sha256 !== resent.sha256 || stored.to !== resent.to || stored.service !== resent.service) {
      throw new SwxError('SWX_DUPLICATE_CONFLICT', `message id ${resent.id} was already used for another message (to ${stored.to}, service ${stored.service}); use a new id`);
    }
  }
}
