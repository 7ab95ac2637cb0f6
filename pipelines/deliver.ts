// deliver: one actor per destination partner (a partner that is down never stalls the others). It sends through
// the partner's connector, evidences the receipt, and acks only after that evidence was stored. Transport
// failures trip the partner's circuit breaker and wait; only message-specific failures and expired
// time-to-live reach the dead-letter stream.
import { startActor, perMessage, type Actor, type Verdict } from '../engine/actor.ts';
import type { Envelope } from '../engine/envelope.ts';
import type { EvidenceLog } from '../engine/evidence.ts';
import { log } from '../engine/log.ts';
import { breakerOpen, deliveryLatency, messagesTotal } from '../engine/metrics.ts';
import { ensureConsumer, streams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import type { Payloads } from '../engine/payloads.ts';
import type { Partner, Registry } from '../engine/registry.ts';
import { DeliveryError, type RestOutbound } from '../connectors/rest/outbound.ts';
import { CircuitBreaker } from './breaker.ts';

export interface DeliveryOptions {
  concurrency: number;
  maxAttempts: number;
  backoffMs: number[];
  breakerFailures: number;
  probeIntervalMs: number;
}

export const deliverActorName = (partnerId: string) => `deliver-${partnerId}`;

export class Deliveries {
  private readonly actors = new Map<string, { actor: Actor; breaker: CircuitBreaker }>();
  private unsubscribe?: () => void;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: Bus,
    private readonly registry: Registry,
    private readonly payloads: Payloads,
    private readonly evidence: EvidenceLog,
    private readonly outbound: RestOutbound,
    private readonly options: DeliveryOptions,
  ) {}

  /** Starts an actor for every partner with an endpoint, and for partners added later. */
  async start(): Promise<void> {
    for (const partner of this.registry.listPartners()) await this.ensure(partner.id);
    this.unsubscribe = this.registry.onChange((kind, id) => {
      if (kind === 'partner') this.chain = this.chain.then(() => this.ensure(id)).catch((error) => log.error({ err: error, partner: id }, 'could not start delivery actor'));
    });
  }

  private async ensure(partnerId: string): Promise<void> {
    const partner = this.registry.partner(partnerId);
    if (!partner?.endpoint || this.actors.has(partnerId)) return;
    const name = deliverActorName(partnerId);
    await ensureConsumer(this.bus.jsm, streams.messages, {
      durable_name: name,
      filter_subject: subjects.message(partnerId),
      ack_wait: 60_000_000_000,
      max_deliver: -1,
      max_ack_pending: 4 * this.options.concurrency,
    });
    const breaker = new CircuitBreaker(this.options.breakerFailures, this.options.probeIntervalMs, (open) => {
      breakerOpen.set({ partner: partnerId }, open ? 1 : 0);
      log.warn({ partner: partnerId, open }, open ? 'circuit opened: deliveries paused, probing' : 'circuit closed: deliveries resumed');
    });
    const actor = await startActor<Envelope>(this.bus, {
      name,
      stream: streams.messages,
      filterSubject: subjects.message(partnerId),
      decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')) as Envelope,
      process: perMessage((delivery) => this.deliverOne(delivery.body, delivery.attempt, breaker, () => delivery.working()), this.options.concurrency),
      maxInFlight: this.options.concurrency,
      backoffMs: this.options.backoffMs,
      maxAttempts: this.options.maxAttempts,
      onSettled: ({ verdict }) => messagesTotal.inc({ stage: 'deliver', outcome: verdict.kind, code: verdict.kind === 'dead-letter' ? verdict.code : '' }),
    });
    this.actors.set(partnerId, { actor, breaker });
  }

  private async deliverOne(envelope: Envelope, attempt: number, breaker: CircuitBreaker, keepAlive: () => void): Promise<Verdict> {
    const partner = this.registry.partner(envelope.to);
    const facts = {
      messageId: envelope.id, conversationId: envelope.conversationId, from: envelope.from, to: envelope.to,
      service: envelope.service, action: envelope.action, protocol: envelope.protocol, size: envelope.size, sha256: envelope.sha256,
    };
    if (envelope.expiresAt && Date.parse(envelope.expiresAt) < Date.now()) {
      await this.evidence.publish([this.evidence.record({ ...facts, stage: 'dead_lettered', code: 'SWX_TTL_EXPIRED', detail: `expired at ${envelope.expiresAt}` })]);
      return { kind: 'dead-letter', code: 'SWX_TTL_EXPIRED', reason: `time-to-live expired at ${envelope.expiresAt}` };
    }
    if (!partner) {
      return { kind: 'retry', reason: `partner ${envelope.to} is no longer registered`, transient: true };
    }
    if (!(await breaker.permit(keepAlive))) return { kind: 'retry', reason: 'hub is stopping', delayMs: 1_000, transient: true };
    try {
      const receipt = await this.outbound.deliver(envelope, await this.payloads.bytes(envelope), partner as Partner);
      breaker.success();
      await this.evidence.publish([this.evidence.record({
        ...facts,
        stage: 'delivered',
        detail: `receipt ${receipt.status} after ${attempt} attempt(s)`,
        raw: Buffer.from(receipt.raw).toString('base64'),
        signature: JSON.stringify({ scheme: 'http-message-signatures', algorithm: receipt.signature.alg, keyId: receipt.signature.keyId, covered: receipt.signature.covered }),
      })]);
      deliveryLatency.observe({ partner: envelope.to }, (Date.now() - Date.parse(envelope.receivedAt)) / 1000);
      return { kind: 'ack' };
    } catch (error) {
      if (error instanceof DeliveryError && error.transient) {
        breaker.failure();
        return { kind: 'retry', reason: error.message, delayMs: this.options.backoffMs[0], transient: true };
      }
      breaker.success();
      const code = error instanceof DeliveryError ? error.code : 'SWX_INTERNAL';
      const final = attempt >= this.options.maxAttempts;
      await this.evidence.publish([this.evidence.record({
        ...facts, stage: final ? 'dead_lettered' : 'delivery_failed', code, detail: `attempt ${attempt}: ${(error as Error).message}`,
      })]);
      return final
        ? { kind: 'dead-letter', code, reason: (error as Error).message }
        : { kind: 'retry', reason: (error as Error).message };
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.chain;
    for (const { breaker } of this.actors.values()) breaker.stop();
    await Promise.all([...this.actors.values()].map(({ actor }) => actor.stop()));
    this.actors.clear();
  }
}
