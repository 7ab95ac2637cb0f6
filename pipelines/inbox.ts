// inbox: deliveries to a partner that receives by pull wait on the same durable consumers delivery pushes from
// (pipelines/deliver.ts), so a switch between push and pull keeps their place, and a channel's lane still hands out one
// item at a time. Collecting takes messages from those consumers without acknowledging them: each stays handed out
// for the visibility timeout (the consumer's ack wait), then comes back. The token handed with it is the message's
// JetStream ack subject, so its acknowledgement may reach any hub process: checked against the partner's consumers
// and the stored envelope, it can settle only the partner's own deliveries.
import { setTimeout as sleep } from 'node:timers/promises';
import { createInbox } from '@nats-io/transport-node';
import type { Envelope, SignatureInfo } from '../engine/envelope.ts';
import { SwxError } from '../engine/errors.ts';
import type { Acknowledged, Acknowledgement, Inbox, InboxItem } from '../engine/inbox.ts';
import { deliveryLatency } from '../engine/metrics.ts';
import { streams, type Bus } from '../engine/nats/jetstream.ts';
import { channelId, type Registry } from '../engine/registry.ts';
import { deliverActorName, laneChannels } from './deliver.ts';
import type { Receipts } from './receipts.ts';

/** How often a long poll looks again: deliveries also come back (visibility timeout, a push actor's hand-back) unannounced. */
const pollMs = 500;
/** Longest wait for JetStream's answer to one pull request. */
const pullTimeoutMs = 5_000;

/** What the inbox reads from a token: the ack subject, and the consumer, stream position and handing it names. */
interface AckSubject { subject: string; stream: string; consumer: string; seq: number; attempt: number }

/** A token is the ack subject, base64url-encoded: opaque to the partner, and safe in a URL. */
const tokenOf = (subject: string) => Buffer.from(subject, 'latin1').toString('base64url');
const subjectOf = (token: string) => /^[A-Za-z0-9_-]{1,600}$/.test(token) ? Buffer.from(token, 'base64url').toString('latin1') : '';

/**
 * The parts of an ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
 * with a domain and account hash after ACK in the newer form and a random token at the end. Undefined when it is not one.
 */
function parseAckSubject(subject: string): AckSubject | undefined {
  if (!/^[\x21-\x7e]+$/.test(subject) || /[*>]/.test(subject)) return undefined;
  const parts = subject.split('.');
  if (parts.length === 9) parts.splice(2, 0, '_', '');
  if (parts.length < 11 || parts[0] !== '$JS' || parts[1] !== 'ACK') return undefined;
  const [, , , , stream, consumer, delivered, seq] = parts as [string, string, string, string, string, string, string, string];
  const attempt = Number(delivered);
  const position = Number(seq);
  if (!Number.isSafeInteger(attempt) || attempt < 1 || !Number.isSafeInteger(position) || position < 1) return undefined;
  return { subject, stream, consumer, seq: position, attempt };
}

export class PartnerInbox implements Inbox {
  private readonly stopping = new AbortController();

  constructor(
    private readonly bus: Bus,
    private readonly registry: Registry,
    private readonly receipts: Receipts,
  ) {}

  async collect(partnerId: string, max: number, waitMs: number): Promise<InboxItem[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.registry.partner(partnerId)?.receive !== 'pull') {
        throw new SwxError('SWX_RECEIVES_BY_PUSH', `${partnerId} receives by push: the hub delivers to its endpoint; an operator sets "receive": "pull" to collect from the inbox`);
      }
      const items = await this.pull(deliverActorName(partnerId), max);
      for (const channel of laneChannels(this.registry, partnerId)) {
        if (items.length >= max) break;
        items.push(...await this.pull(deliverActorName(partnerId, channel), 1));
      }
      const left = deadline - Date.now();
      if (items.length > 0 || left <= 0 || this.stopping.signal.aborted) return items;
      await sleep(Math.min(pollMs, left), undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }

  /** Answers every waiting listing at once with what it has: agencies' long polls do not hold up a hub that stops. */
  stop(): void {
    this.stopping.abort();
  }

  /**
   * Up to `batch` messages a consumer can hand out now, not waiting for more: one pull request with no_wait, whose
   * batch ends with a status (no messages, or the consumer's limit of unacknowledged ones reached). A consumer not
   * made yet (a partner registered a moment ago) has no responder, which ends it as well.
   */
  private async pull(consumer: string, batch: number): Promise<InboxItem[]> {
    const reply = createInbox();
    const subscription = this.bus.nc.subscribe(reply);
    const timer = setTimeout(() => subscription.unsubscribe(), pullTimeoutMs);
    const items: InboxItem[] = [];
    try {
      this.bus.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${streams.messages}.${consumer}`, JSON.stringify({ batch, no_wait: true }), { reply });
      for await (const msg of subscription) {
        const ack = parseAckSubject(msg.reply ?? '');
        if (!ack) break;
        items.push({ token: tokenOf(ack.subject), envelope: JSON.parse(Buffer.from(msg.data).toString('utf8')) as Envelope, attempt: ack.attempt });
        if (items.length >= batch) break;
      }
    } finally {
      clearTimeout(timer);
      subscription.unsubscribe();
    }
    return items;
  }

  async delivery(partnerId: string, token: string): Promise<Envelope> {
    return (await this.resolve(partnerId, token)).envelope;
  }

  /** The ack subject and stored envelope of one of the partner's deliveries. */
  private async resolve(partnerId: string, token: string): Promise<{ ack: AckSubject; envelope: Envelope }> {
    const notYours = new SwxError('SWX_NOT_FOUND', `no delivery to ${partnerId} is handed out under token ${token.slice(0, 24)}…`);
    const ack = parseAckSubject(subjectOf(token));
    const lane = deliverActorName(partnerId);
    const ownLane = ack && (ack.consumer === lane || (ack.consumer.startsWith(`${lane}-`) && channelId.safeParse(ack.consumer.slice(lane.length + 1)).success));
    if (!ack || ack.stream !== streams.messages || !ownLane) throw notYours;
    const stored = await this.bus.jsm.streams.getMessage(streams.messages, { seq: ack.seq }).catch(() => null);
    if (!stored) throw new SwxError('SWX_NOT_FOUND', `the delivery under this token is no longer on the message stream (kept for the de-duplication horizon)`);
    const envelope = JSON.parse(Buffer.from(stored.data).toString('utf8')) as Envelope;
    if (envelope.to !== partnerId) throw notYours;
    return { ack, envelope };
  }

  async acknowledge(partnerId: string, acknowledgements: Acknowledgement[], receipt: { raw: string; signature: SignatureInfo }): Promise<Acknowledged[]> {
    const deliveries = await Promise.all(acknowledgements.map(async ({ id, token }) => {
      const delivery = await this.resolve(partnerId, token);
      if (delivery.envelope.id !== id) throw new SwxError('SWX_BAD_REQUEST', `the token given with ${id} was handed out with message ${delivery.envelope.id}`);
      return delivery;
    }));
    const acknowledged: Acknowledged[] = [];
    for (const { ack, envelope } of deliveries) {
      // Evidence first, as for a push: the delivery is settled only once its receipt is kept. An acknowledgement that
      // comes after the visibility timeout is a receipt all the same; a later one for the same message is a repeat.
      const stage = await this.receipts.receipt(envelope, ack, { ...receipt, detail: `acknowledged from the inbox, handed out ${ack.attempt} time(s)` }, true);
      this.bus.nc.publish(ack.subject, '+ACK');
      if (stage === 'delivered') deliveryLatency.observe({ partner: partnerId }, (Date.now() - Date.parse(envelope.receivedAt)) / 1000);
      acknowledged.push({ id: envelope.id, from: envelope.from, stage });
    }
    await this.bus.nc.flush();
    return acknowledged;
  }
}
