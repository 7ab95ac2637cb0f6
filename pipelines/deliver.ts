// deliver: one actor per destination partner (a partner that is down never stalls the others). It sends through
// the partner's connector, evidences the receipt, and acks only after that evidence was stored, so delivery is at
// least once: a message in flight at a crash may reach its receiver again, evidenced as `redelivered`. Transport
// failures trip the partner's circuit breaker and wait; only message-specific failures (the receiver refuses
// it, its receipt does not verify, its partner was removed) and expired time-to-live reach the dead-letter stream.
import { setTimeout as sleep } from 'node:timers/promises';
import { Kvm, type KV } from '@nats-io/kv';
import { startActor, perMessage, type Actor, type Delivery, type Verdict } from '../engine/actor.ts';
import type { Envelope } from '../engine/envelope.ts';
import { envelopeFacts, type EvidenceLog, type EvidenceRecord } from '../engine/evidence.ts';
import { log } from '../engine/log.ts';
import { breakerOpen, deliveryLatency, messagesTotal } from '../engine/metrics.ts';
import { ensureConsumer, resentFromHeader, streams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import { endpointFor } from '../engine/endpoints.ts';
import { DeliveryError, type Outbound } from '../engine/outbound.ts';
import type { Payloads } from '../engine/payloads.ts';
import type { Registry } from '../engine/registry.ts';
import { CircuitBreaker } from './breaker.ts';

export interface DeliveryOptions {
  timeoutMs: number;
  concurrency: number;
  maxAttempts: number;
  backoffMs: number[];
  breakerFailures: number;
  probeIntervalMs: number;
}

/** The delivery actor (and durable consumer) of a partner's messages, or of its items of one channel. */
export const deliverActorName = (partnerId: string, channel?: string) => (channel ? `deliver-${partnerId}-${channel}` : `deliver-${partnerId}`);

/** A KV key for the delivery of a message: message ids may hold ':' and '@', which keys may not. */
const deliveredKey = (envelope: Envelope) => `${envelope.to}.${envelope.from}.${Buffer.from(envelope.id).toString('base64url')}`;

export class Deliveries {
  private readonly actors = new Map<string, Actor>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private unsubscribe?: () => void;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly bus: Bus,
    private readonly registry: Registry,
    private readonly payloads: Payloads,
    private readonly evidence: EvidenceLog,
    /** The started connector that delivers over a protocol, if this hub runs one. */
    private readonly outbounds: (protocol: string) => Outbound | undefined,
    private readonly options: DeliveryOptions,
    /** How often each receiver refused each message: JetStream's delivery count also counts outage retries. */
    private readonly refusals: KV,
    /** The messages whose receipt the hub holds, by receiver, sender and id: a later receipt is for a repeat. */
    private readonly delivered: KV,
  ) {}

  static async open(bus: Bus, registry: Registry, payloads: Payloads, evidence: EvidenceLog, outbounds: (protocol: string) => Outbound | undefined, options: DeliveryOptions, horizonSeconds: number): Promise<Deliveries> {
    const kvm = new Kvm(bus.js);
    const refusals = await kvm.create('swx_refusals', { history: 1, ttl: horizonSeconds * 1000 });
    const delivered = await kvm.create('swx_delivered', { history: 1, ttl: horizonSeconds * 1000 });
    return new Deliveries(bus, registry, payloads, evidence, outbounds, options, refusals, delivered);
  }

  /**
   * Starts the delivery actors of every partner the hub pushes to, and of partners and channels added later: one for
   * its messages and notifications, and one per channel it requests, whose items go out one at a time, in order.
   */
  async start(): Promise<void> {
    for (const partner of this.registry.listPartners()) await this.ensure(partner.id);
    this.unsubscribe = this.registry.onChange((kind, id) => {
      const partners = kind === 'partner' ? [id] : kind === 'channel' ? this.registry.channel(id)?.requesters ?? [] : [];
      for (const partner of partners) {
        this.chain = this.chain.then(() => this.ensure(partner)).catch((error) => log.error({ err: error, partner }, 'could not start delivery actor'));
      }
    });
  }

  private async ensure(partnerId: string): Promise<void> {
    const partner = this.registry.partner(partnerId);
    if (!partner || partner.receive === 'pull' || !endpointFor(partner, [], 'deliver')) return;
    await this.startLane(partnerId);
    for (const channel of this.registry.listChannels()) {
      if (channel.requesters.includes(partnerId)) await this.startLane(partnerId, channel.id);
    }
  }

  /** One partner's circuit breaker, shared by all its lanes: they reach the same agency. */
  private breaker(partnerId: string): CircuitBreaker {
    let breaker = this.breakers.get(partnerId);
    if (!breaker) {
      breaker = new CircuitBreaker(this.options.breakerFailures, this.options.probeIntervalMs, (open) => {
        breakerOpen.set({ partner: partnerId }, open ? 1 : 0);
        log.warn({ partner: partnerId, open }, open ? 'circuit opened: deliveries paused, probing' : 'circuit closed: deliveries resumed');
      });
      this.breakers.set(partnerId, breaker);
    }
    return breaker;
  }

  private async startLane(partnerId: string, channel?: string): Promise<void> {
    const name = deliverActorName(partnerId, channel);
    if (this.actors.has(name)) return;
    const filter = channel ? subjects.channelItem(partnerId, channel) : subjects.message(partnerId);
    // A channel's lane holds one item at a time: JetStream hands out the next only once this one is settled, and a
    // retry (a delayed nak) keeps its place, so items reach the requester in the order they were published.
    const inFlight = channel ? 1 : this.options.concurrency;
    await ensureConsumer(this.bus.jsm, streams.messages, {
      durable_name: name,
      filter_subject: filter,
      // A message held by a hub that died comes back after this: long enough for one attempt, short for recovery.
      ack_wait: (2 * this.options.timeoutMs + 5_000) * 1_000_000,
      max_deliver: -1,
      max_ack_pending: channel ? 1 : 4 * this.options.concurrency,
    });
    const breaker = this.breaker(partnerId);
    const actor = await startActor<Envelope>(this.bus, {
      name,
      stream: streams.messages,
      filterSubject: filter,
      decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')) as Envelope,
      process: perMessage((delivery) => this.deliverOne(delivery, breaker), inFlight),
      maxInFlight: inFlight,
      backoffMs: this.options.backoffMs,
      maxAttempts: Number.MAX_SAFE_INTEGER, // refusals are counted here, not by JetStream's delivery count
      onSettled: ({ verdict }) => messagesTotal.inc({ stage: 'deliver', outcome: verdict.kind, code: verdict.kind === 'dead-letter' ? verdict.code : '' }),
    });
    this.actors.set(name, actor);
  }

  /**
   * Publishes evidence until the stream has it; the record ids make a repeated publish a no-op. Resolves false when
   * the stream held the first record's id before this call.
   */
  private async record(records: EvidenceRecord[]): Promise<boolean> {
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

  private async deliverOne(delivery: Delivery<Envelope>, breaker: CircuitBreaker): Promise<Verdict> {
    const envelope = delivery.body;
    const facts = envelopeFacts(envelope);
    const recordId = (stage: string) => `${stage}:${envelope.from}/${envelope.id}:${delivery.msg.seq}:${delivery.attempt}`;
    const expired = async (): Promise<Verdict | undefined> => {
      if (!envelope.expiresAt || Date.parse(envelope.expiresAt) >= Date.now()) return undefined;
      await this.record([this.evidence.record({ ...facts, id: recordId('expired'), stage: 'dead_lettered', code: 'SWX_TTL_EXPIRED', detail: `expired at ${envelope.expiresAt}` })]);
      return { kind: 'dead-letter', code: 'SWX_TTL_EXPIRED', reason: `time-to-live expired at ${envelope.expiresAt}` };
    };
    const early = await expired();
    if (early) return early;
    const partner = this.registry.partner(envelope.to);
    const chosen = partner && endpointFor(partner, [envelope.service], 'deliver');
    if (!partner || !chosen) {
      await this.record([this.evidence.record({ ...facts, id: recordId('removed'), stage: 'dead_lettered', code: 'SWX_UNKNOWN_RECEIVER', detail: `${envelope.to} is no longer registered with an endpoint` })]);
      return { kind: 'dead-letter', code: 'SWX_UNKNOWN_RECEIVER', reason: `${envelope.to} is no longer registered with an endpoint` };
    }
    if (!partner.enabled) return { kind: 'retry', reason: `${partner.id} is disabled; held until it is enabled`, delayMs: 30_000, transient: true };
    if (partner.receive === 'pull') return { kind: 'retry', reason: `${partner.id} now collects its deliveries from its inbox`, delayMs: 30_000, transient: true };
    const outbound = this.outbounds(chosen.protocol);
    if (!outbound) return { kind: 'retry', reason: `${partner.id} is reached over ${chosen.protocol}, which this hub process does not run`, delayMs: 30_000, transient: true };
    const key = deliveredKey(envelope);
    // A copy of a topic's or channel's message asks the bucket before it is sent. A nats-server killed mid-flight can
    // forget acknowledgements it had taken (it writes consumer state behind) and hand out again, as new, items the
    // receiver already has: a channel's lane would repeat its whole unwritten tail. An operator's resend goes again.
    if (envelope.audience && !delivery.msg.headers?.get(resentFromHeader) && (await this.delivered.get(key))?.operation === 'PUT') {
      return { kind: 'ack' };
    }
    if (!(await breaker.permit(delivery.working))) return { kind: 'retry', reason: 'hub is stopping', delayMs: 1_000, transient: true };
    const late = await expired(); // it may have waited out an outage
    if (late) { breaker.success(); return late; }

    let receipt;
    // A large payload may take longer than the ack wait to send: the consumer hears that the delivery is still at work.
    const heartbeat = setInterval(() => delivery.working(), 10_000);
    try {
      receipt = await outbound.deliver(envelope, this.payloads.outgoing(envelope), partner, chosen.endpoint);
    } catch (error) {
      if (!(error instanceof DeliveryError) || error.transient) {
        breaker.failure();
        return { kind: 'retry', reason: (error as Error).message, delayMs: this.options.backoffMs[0], transient: true };
      }
      breaker.success();
      const key = `${envelope.to}.${delivery.msg.seq}`;
      const refused = Number((await this.refusals.get(key))?.string() ?? 0) + 1;
      await this.refusals.put(key, String(refused));
      const final = refused >= this.options.maxAttempts;
      await this.record([this.evidence.record({
        ...facts, id: recordId(final ? 'dead' : 'failed'), stage: final ? 'dead_lettered' : 'delivery_failed', code: error.code,
        detail: `refusal ${refused} of ${this.options.maxAttempts}: ${error.message}`,
      })]);
      if (final) return { kind: 'dead-letter', code: error.code, reason: error.message };
      const delayMs = this.options.backoffMs[Math.min(refused - 1, this.options.backoffMs.length - 1)]!;
      return { kind: 'retry', reason: error.message, delayMs, transient: true };
    } finally {
      clearInterval(heartbeat);
    }
    breaker.success();
    // Delivered: from here on a failure only retries the evidence, never the delivery (the receiver has it).
    // The first receipt the hub holds is `delivered`, any later one `redelivered`. A first delivery cannot be a
    // repeat, so only a redelivery asks the bucket. The `delivered` record's id is the message's own: an attempt
    // that died between that record and the mark below leaves its retry de-duplicated by the stream, and recorded
    // as the repeat it is.
    const repeat = delivery.attempt > 1 && (await this.delivered.get(key))?.operation === 'PUT';
    const receiptRecord = (stage: 'delivered' | 'redelivered', id: string) => this.evidence.record({
      ...facts,
      id,
      stage,
      detail: `receipt ${receipt.status} on delivery ${delivery.attempt}${delivery.attempt > 1 && receipt.duplicate ? '; the receiver already had it' : ''}`,
      raw: Buffer.from(receipt.raw).toString('base64'),
      signature: JSON.stringify(receipt.signature),
    });
    const first = !repeat && await this.record([receiptRecord('delivered', `delivered:${envelope.from}/${envelope.id}/${envelope.to}`)]);
    if (!first) await this.record([receiptRecord('redelivered', recordId('redelivered'))]);
    if (!repeat) await this.delivered.put(key, String(delivery.msg.seq));
    deliveryLatency.observe({ partner: envelope.to }, (Date.now() - Date.parse(envelope.receivedAt)) / 1000);
    return { kind: 'ack' };
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.chain;
    for (const breaker of this.breakers.values()) breaker.stop();
    await Promise.all([...this.actors.values()].map((actor) => actor.stop()));
    this.actors.clear();
    this.breakers.clear();
  }
}
