// receipts: the evidence of a receiver's signed acknowledgement of a delivery, however it came (its answer to the
// hub's push, or its acknowledgement of what it collected from its inbox). The first receipt the hub holds for a
// message is `delivered`, under an id of the message's own; any later one is `redelivered`.
import { setTimeout as sleep } from 'node:timers/promises';
import { Kvm, type KV } from '@nats-io/kv';
import type { Envelope, SignatureInfo } from '../engine/envelope.ts';
import { envelopeFacts, type EvidenceLog, type EvidenceRecord } from '../engine/evidence.ts';
import type { Bus } from '../engine/nats/jetstream.ts';

/** A KV key for the delivery of a message: message ids may hold ':' and '@', which keys may not. */
const deliveredKey = (envelope: Envelope) => `${envelope.to}.${envelope.from}.${Buffer.from(envelope.id).toString('base64url')}`;

/** The id of the one `delivered` record of a message to one receiver. */
export const deliveredRecordId = (envelope: Pick<Envelope, 'from' | 'id' | 'to'>) => `delivered:${envelope.from}/${envelope.id}/${envelope.to}`;

/** One handing of a message to its receiver: its position on the stream and how many times it was handed. */
export interface Handing { seq: number; attempt: number }

/** A receiver's acknowledgement as evidence keeps it: signed, except where its protocol has no signed one (MQ). */
export interface SignedReceipt {
  raw: string;
  signature?: SignatureInfo;
  detail: string;
}

export class Receipts {
  private constructor(
    private readonly evidence: EvidenceLog,
    /** The messages whose receipt the hub holds, by receiver, sender and id: a later receipt is for a repeat. */
    private readonly delivered: KV,
  ) {}

  static async open(bus: Bus, evidence: EvidenceLog, horizonSeconds: number): Promise<Receipts> {
    const delivered = await new Kvm(bus.js).create('swx_delivered', { history: 1, ttl: horizonSeconds * 1000 });
    return new Receipts(evidence, delivered);
  }

  /**
   * Publishes evidence until the stream has it; the record ids make a repeated publish a no-op. Resolves false when
   * the stream held the first record's id before this call.
   */
  async record(records: EvidenceRecord[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        // A retry that finds the record there finds, as far as it can know, this call's own earlier publish whose
        // acknowledgement was lost (nats-server gone mid-reply): only a first attempt's answer says it was there before.
        return (await this.evidence.publish(records)) || attempt > 1;
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(200 * attempt);
      }
    }
  }

  /** Whether the hub holds a receipt for this message to this receiver. */
  async held(envelope: Envelope): Promise<boolean> {
    return (await this.delivered.get(deliveredKey(envelope)))?.operation === 'PUT';
  }

  /**
   * Evidences a receipt as `delivered` or `redelivered`, and resolves with which. `mayRepeat` says whether this
   * handing can be a repeat: a first push attempt cannot, so it skips the bucket; an acknowledgement can always be
   * sent again. The `delivered` record's id is the message's own: an attempt that died between that record and the
   * mark below leaves its retry de-duplicated by the stream, and recorded as the repeat it is.
   */
  async receipt(envelope: Envelope, handing: Handing, receipt: SignedReceipt, mayRepeat: boolean): Promise<'delivered' | 'redelivered'> {
    const key = deliveredKey(envelope);
    const repeat = mayRepeat && await this.held(envelope);
    const receiptRecord = (stage: 'delivered' | 'redelivered', id: string) => this.evidence.record({
      ...envelopeFacts(envelope), id, stage, detail: receipt.detail, raw: Buffer.from(receipt.raw).toString('base64'), signature: receipt.signature && JSON.stringify(receipt.signature),
    });
    const first = !repeat && await this.record([receiptRecord('delivered', deliveredRecordId(envelope))]);
    if (!first) await this.record([receiptRecord('redelivered', `redelivered:${envelope.from}/${envelope.id}:${handing.seq}:${handing.attempt}`)]);
    if (!repeat) await this.delivered.put(key, String(handing.seq));
    return first ? 'delivered' : 'redelivered';
  }
}
