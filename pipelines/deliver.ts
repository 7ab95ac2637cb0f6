// deliver: one actor per destination partner (a partner that is down never stalls the others). It sends through
// the partner's connector, evidences the receipt, and acks only after that evidence was stored, so delivery is at
// least once: a message in flight at a crash may reach its receiver again, evidenced as `redelivered`. Transport
// failures trip the partner's circuit breaker and wait; only message-specific failures (the receiver refuses
// it, its receipt does not verify, its partner was removed), expired time-to-live and a receipt still missing after
// the resends a protocol's agreement allows (AS4, ebMS 2.0) reach the dead-letter stream.
// A partner that collects its deliveries from its inbox (pipelines/inbox.ts) has no actors: the inbox reads the same
// consumers, so a switch between push and pull keeps their place and order.
import { Kvm, type KV } from '@nats-io/kv';
import { startActor, perMessage, type Actor, type Delivery, type Verdict } from '../engine/actor.ts';
import type { Envelope } from '../engine/envelope.ts';
import { envelopeFacts, type EvidenceLog } from '../engine/evidence.ts';
import { log } from '../engine/log.ts';
import { breakerOpen, deliveryLatency, messagesTotal } from '../engine/metrics.ts';
import { ensureConsumer, resentFromHeader, streams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import { endpointFor } from '../engine/endpoints.ts';
import { DeliveryError, UnansweredDelivery, type Outbound } from '../engine/outbound.ts';
import type { Payloads } from '../engine/payloads.ts';
import type { Partner, Registry } from '../engine/registry.ts';
import { CircuitBreaker } from './breaker.ts';
import type { Receipts } from './receipts.ts';

export interface DeliveryOptions {
  timeoutMs: number;
  concurrency: number;
  maxAttempts: number;
  backoffMs: number[];
  breakerFailures: number;
  probeIntervalMs: number;
  /** How long a delivery collected from an inbox stays handed out before it is offered again, unacknowledged. */
  inboxVisibilitySeconds: number;
}

/** The delivery actor (and durable consumer) of a partner's messages, or of its items of one channel. */
export const deliverActorName = (partnerId: string, channel?: string) => (channel ? `deliver-${partnerId}-${channel}` : `deliver-${partnerId}`);

/** The channels a partner has a lane of its own for: those it requests. */
export function laneChannels(registry: Registry, partnerId: string): string[] {
  return registry.listChannels().filter((channel) => channel.requesters.includes(partnerId)).map((channel) => channel.id);
}

export class Deliveries {
  private readonly actors = new Map<string, Actor>();
  /** The highest stream sequence each lane acked in this process: a later handing of one at or below it may be a repeat. */
  private readonly ackedUpTo = new Map<string, number>();
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
    private readonly receipts: Receipts,
    /** How often each receiver refused each message: JetStream's delivery count also counts outage retries. */
    private readonly refusals: KV,
  ) {}

  static async open(bus: Bus, registry: Registry, payloads: Payloads, evidence: EvidenceLog, receipts: Receipts, outbounds: (protocol: string) => Outbound | undefined, options: DeliveryOptions, horizonSeconds: number): Promise<Deliveries> {
    const refusals = await new Kvm(bus.js).create('swx_refusals', { history: 1, ttl: horizonSeconds * 1000 });
    return new Deliveries(bus, registry, payloads, evidence, outbounds, options, receipts, refusals);
  }

  /**
   * Starts the delivery actors of every partner the hub pushes to, and of partners and channels added later: one for
   * its messages and notifications, and one per channel it requests, whose items go out one at a time, in order. A
   * partner that switches to pull has its actors stopped and its consumers left to its inbox, and the other way round.
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
    if (!partner) return;
    const channels = [undefined, ...laneChannels(this.registry, partnerId)];
    if (partner.receive === 'pull') {
      for (const channel of channels) await this.stopLane(partnerId, channel);
      for (const channel of channels) await this.ensureLane(partner, channel);
      return;
    }
    if (!endpointFor(partner, [], 'deliver')) return;
    for (const channel of channels) await this.startLane(partner, channel);
  }

  /** The circuit breaker of each partner this process has delivered to; the others are closed. */
  breakerStates(): Map<string, CircuitBreaker['state']> {
    return new Map([...this.breakers].map(([partner, breaker]) => [partner, breaker.state]));
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

  /**
   * The durable consumer of a lane, shaped for how its partner receives. A channel's lane holds one item at a time:
   * JetStream hands out the next only once this one is settled, and a retry (a delayed nak) keeps its place, so items
   * reach the requester in the order they were published, pushed or collected. Resolves with the lane's subject.
   */
  private async ensureLane(partner: Partner, channel?: string): Promise<string> {
    const filter = channel ? subjects.channelItem(partner.id, channel) : subjects.message(partner.id);
    await ensureConsumer(this.bus.jsm, streams.messages, {
      durable_name: deliverActorName(partner.id, channel),
      filter_subject: filter,
      // Pushed, a message held by a hub that died comes back after this: long enough for one attempt, short for
      // recovery. Collected, one handed out and never acknowledged comes back after the inbox's visibility timeout.
      ack_wait: (partner.receive === 'pull' ? this.options.inboxVisibilitySeconds * 1_000 : 2 * this.options.timeoutMs + 5_000) * 1_000_000,
      max_deliver: -1,
      max_ack_pending: channel ? 1 : 4 * this.options.concurrency,
    });
    return filter;
  }

  private async stopLane(partnerId: string, channel?: string): Promise<void> {
    const name = deliverActorName(partnerId, channel);
    const actor = this.actors.get(name);
    if (!actor) return;
    this.actors.delete(name);
    await actor.stop();
    this.ackedUpTo.delete(name);
  }

  private async startLane(partner: Partner, channel?: string): Promise<void> {
    const partnerId = partner.id;
    const name = deliverActorName(partnerId, channel);
    if (this.actors.has(name)) return;
    const inFlight = channel ? 1 : this.options.concurrency;
    const filter = await this.ensureLane(partner, channel);
    const breaker = this.breaker(partnerId);
    const actor = await startActor<Envelope>(this.bus, {
      name,
      stream: streams.messages,
      filterSubject: filter,
      decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')) as Envelope,
      process: perMessage((delivery) => this.deliverOne(delivery, breaker, name), inFlight),
      maxInFlight: inFlight,
      backoffMs: this.options.backoffMs,
      maxAttempts: Number.MAX_SAFE_INTEGER, // refusals are counted here, not by JetStream's delivery count
      onSettled: ({ delivery, verdict }) => {
        if (verdict.kind !== 'retry' && delivery.msg.seq > (this.ackedUpTo.get(name) ?? 0)) this.ackedUpTo.set(name, delivery.msg.seq);
        messagesTotal.inc({ stage: 'deliver', outcome: verdict.kind, code: verdict.kind === 'dead-letter' ? verdict.code : '' });
      },
    });
    this.actors.set(name, actor);
  }

  private async deliverOne(delivery: Delivery<Envelope>, breaker: CircuitBreaker, lane: string): Promise<Verdict> {
    const envelope = delivery.body;
    const facts = envelopeFacts(envelope);
    const recordId = (stage: string) => `${stage}:${envelope.from}/${envelope.id}:${delivery.msg.seq}:${delivery.attempt}`;
    const expired = async (): Promise<Verdict | undefined> => {
      if (!envelope.expiresAt || Date.parse(envelope.expiresAt) >= Date.now()) return undefined;
      await this.receipts.record([this.evidence.record({ ...facts, id: recordId('expired'), stage: 'dead_lettered', code: 'SWX_TTL_EXPIRED', detail: `expired at ${envelope.expiresAt}` })]);
      return { kind: 'dead-letter', code: 'SWX_TTL_EXPIRED', reason: `time-to-live expired at ${envelope.expiresAt}` };
    };
    const early = await expired();
    if (early) return early;
    const partner = this.registry.partner(envelope.to);
    const chosen = partner && endpointFor(partner, [envelope.service], 'deliver');
    if (!partner || !chosen) {
      await this.receipts.record([this.evidence.record({ ...facts, id: recordId('removed'), stage: 'dead_lettered', code: 'SWX_UNKNOWN_RECEIVER', detail: `${envelope.to} is no longer registered with an endpoint` })]);
      return { kind: 'dead-letter', code: 'SWX_UNKNOWN_RECEIVER', reason: `${envelope.to} is no longer registered with an endpoint` };
    }
    if (!partner.enabled) return { kind: 'retry', reason: `${partner.id} is disabled; held until it is enabled`, delayMs: 30_000, transient: true };
    // Handed back to the consumer at once: the actor is being stopped, and the inbox reads the same consumer.
    if (partner.receive === 'pull') return { kind: 'retry', reason: `${partner.id} now collects its deliveries from its inbox`, delayMs: 1_000, transient: true };
    const outbound = this.outbounds(chosen.protocol);
    if (!outbound) return { kind: 'retry', reason: `${partner.id} is reached over ${chosen.protocol}, which this hub process does not run`, delayMs: 30_000, transient: true };
    // A copy of a topic's or channel's message that may be a repeat asks the bucket before it is sent. A nats-server
    // killed mid-flight can forget acknowledgements it had taken (it writes consumer state behind) and hand out again,
    // as new, items the receiver already has: a channel's lane would repeat its whole unwritten tail. Such an item
    // comes at or below what the lane acked; one a dead process held comes as a redelivery. An operator's resend goes
    // again. A first handing of a new item, the common case, costs no lookup.
    const mayRepeat = delivery.attempt > 1 || delivery.msg.seq <= (this.ackedUpTo.get(lane) ?? 0);
    if (envelope.audience && mayRepeat && !delivery.msg.headers?.get(resentFromHeader) && (await this.receipts.held(envelope))) {
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
      if (error instanceof UnansweredDelivery) return await this.unanswered(error, delivery, breaker);
      if (!(error instanceof DeliveryError) || error.transient) {
        breaker.failure();
        return { kind: 'retry', reason: (error as Error).message, delayMs: this.options.backoffMs[0], transient: true };
      }
      breaker.success();
      const key = `${envelope.to}.${delivery.msg.seq}`;
      const refused = Number((await this.refusals.get(key))?.string() ?? 0) + 1;
      await this.refusals.put(key, String(refused));
      const final = refused >= this.options.maxAttempts;
      await this.receipts.record([this.evidence.record({
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
    await this.receipts.receipt(envelope, { seq: delivery.msg.seq, attempt: delivery.attempt }, {
      raw: receipt.raw,
      signature: receipt.signature,
      detail: `receipt ${receipt.status} on delivery ${delivery.attempt}${delivery.attempt > 1 && receipt.duplicate ? '; the receiver already had it' : ''}`,
    }, delivery.attempt > 1);
    deliveryLatency.observe({ partner: envelope.to }, (Date.now() - Date.parse(envelope.receivedAt)) / 1000);
    return { kind: 'ack' };
  }

  /**
   * A send left without its receipt under a protocol that fixes its resends: counted per delivery (in the refusals
   * bucket, as JetStream's delivery count also counts outage retries), evidenced, then sent again when the protocol's
   * schedule says, or dead-lettered with the protocol's error once its sends are spent.
   */
  private async unanswered(error: UnansweredDelivery, delivery: Delivery<Envelope>, breaker: CircuitBreaker): Promise<Verdict> {
    const envelope = delivery.body;
    if (error.transient) breaker.failure(); else breaker.success();
    const key = `${envelope.to}.${delivery.msg.seq}.unanswered`;
    const now = Date.now();
    const earlier = (await this.refusals.get(key))?.json<{ sends: number; firstSentAt: number }>();
    const sends = (earlier?.sends ?? 0) + 1;
    const firstSentAt = earlier?.firstSentAt ?? now;
    await this.refusals.put(key, JSON.stringify({ sends, firstSentAt }));
    const step = error.next(sends, firstSentAt, now);
    const id = `${step.kind === 'failed' ? 'dead' : 'unanswered'}:${envelope.from}/${envelope.id}:${delivery.msg.seq}:${delivery.attempt}`;
    const facts = envelopeFacts(envelope);
    if (step.kind === 'failed') {
      await this.receipts.record([this.evidence.record({ ...facts, id, stage: 'dead_lettered', code: step.code, detail: `${step.detail} (last: ${error.message})` })]);
      return { kind: 'dead-letter', code: step.code, reason: step.detail };
    }
    await this.receipts.record([this.evidence.record({
      ...facts, id, stage: 'delivery_failed', code: error.code, detail: `send ${sends} without a receipt, sent again at ${new Date(step.at).toISOString()}: ${error.message}`,
    })]);
    return { kind: 'retry', reason: error.message, delayMs: Math.max(0, step.at - now), transient: true };
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
