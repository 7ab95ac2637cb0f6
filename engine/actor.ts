// An actor: a durable JetStream pull consumer, an RxJS operator that settles each delivery, and supervision
// (bounded in-flight work, ack only after the handler's own publishes were acknowledged, delayed-nak retries
// with backoff, and a dead-letter entry with its reason after the last attempt).
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import { catchError, from, map, mergeMap, of, Subject, type OperatorFunction } from 'rxjs';
import type { ErrorCode } from './errors.ts';
import { SwxError } from './errors.ts';
import { log } from './log.ts';
import { subjects, type Bus } from './nats/jetstream.ts';

export type Verdict =
  | { kind: 'ack' }
  /** `transient` retries (an outage, not the message's fault) never exhaust the attempts. */
  | { kind: 'retry'; reason: string; delayMs?: number; transient?: boolean }
  | { kind: 'dead-letter'; code: ErrorCode; reason: string };

export interface Delivery<T> {
  body: T;
  msg: JsMsg;
  /** 1 on the first delivery. */
  attempt: number;
  /** Extends the ack deadline while the handler legitimately waits (for example on an open circuit). */
  working(): void;
}

export interface Settlement<T> { delivery: Delivery<T>; verdict: Verdict }

export interface ActorSpec<T> {
  name: string;
  stream: string;
  filterSubject: string;
  decode(data: Uint8Array, msg: JsMsg): T;
  process: OperatorFunction<Delivery<T>, Settlement<T>>;
  maxInFlight: number;
  backoffMs: number[];
  /** Retry verdicts beyond this many deliveries become dead letters. */
  maxAttempts: number;
  onSettled?(settlement: Settlement<T>): void;
}

export interface Actor {
  readonly name: string;
  stop(): Promise<void>;
}

/** Runs an async handler per delivery with bounded concurrency; a thrown error becomes a retry (or its SwxError code). */
export function perMessage<T>(handler: (delivery: Delivery<T>) => Promise<Verdict>, concurrency: number): OperatorFunction<Delivery<T>, Settlement<T>> {
  return mergeMap((delivery: Delivery<T>) => from(handler(delivery)).pipe(
    map((verdict) => ({ delivery, verdict })),
    catchError((error: unknown) => of({
      delivery,
      verdict: error instanceof SwxError
        ? { kind: 'retry', reason: `${error.code}: ${error.message}` } as Verdict
        : { kind: 'retry', reason: String((error as Error)?.message ?? error) } as Verdict,
    })),
  ), concurrency);
}

class Slots {
  private free: number;
  private waiters: (() => void)[] = [];
  constructor(size: number) { this.free = size; }
  async acquire(): Promise<void> {
    if (this.free > 0) { this.free--; return; }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next(); else this.free++;
  }
}

export async function startActor<T>(bus: Bus, spec: ActorSpec<T>): Promise<Actor> {
  const consumer = await bus.js.consumers.get(spec.stream, spec.name);
  const slots = new Slots(spec.maxInFlight);
  let inFlight = 0;
  let drained: (() => void) | undefined;
  let stopping = false;
  const deliveries = new Subject<Delivery<T>>();

  const deadLetter = async (msg: JsMsg, code: ErrorCode, reason: string) => {
    const h = natsHeaders();
    h.set('Swx-Code', code);
    h.set('Swx-Reason', reason.slice(0, 1000));
    h.set('Swx-Actor', spec.name);
    h.set('Swx-Subject', msg.subject);
    h.set('Swx-Stream-Seq', String(msg.seq));
    await bus.js.publish(subjects.deadLetter(spec.name), msg.data, { headers: h, msgID: `dlq:${spec.stream}:${msg.seq}` });
  };

  const settle = async ({ delivery, verdict }: Settlement<T>) => {
    const { msg } = delivery;
    try {
      if (verdict.kind === 'retry' && !verdict.transient && delivery.attempt >= spec.maxAttempts) {
        await deadLetter(msg, 'SWX_DELIVERY_REJECTED', `after ${delivery.attempt} attempts: ${verdict.reason}`);
        msg.ack();
      } else if (verdict.kind === 'retry') {
        const delay = verdict.delayMs ?? spec.backoffMs[Math.min(delivery.attempt - 1, spec.backoffMs.length - 1)]!;
        msg.nak(delay);
      } else if (verdict.kind === 'dead-letter') {
        await deadLetter(msg, verdict.code, verdict.reason);
        msg.ack();
      } else {
        msg.ack();
      }
      spec.onSettled?.({ delivery, verdict });
    } catch (error) {
      // Not acked: JetStream redelivers after the ack wait, so nothing is lost.
      log.error({ actor: spec.name, seq: msg.seq, err: error }, 'could not settle a delivery');
    } finally {
      inFlight--;
      slots.release();
      if (stopping && inFlight === 0) drained?.();
    }
  };

  const subscribe = () => deliveries.pipe(spec.process).subscribe({
    next: (settlement) => { void settle(settlement); },
    error: (error) => {
      // Supervision: the unsettled deliveries come back after the ack wait; the pipeline starts afresh.
      log.error({ actor: spec.name, err: error }, 'actor pipeline failed; restarting it');
      subscription = subscribe();
    },
  });
  let subscription = subscribe();

  const messages = await consumer.consume({ max_messages: spec.maxInFlight });
  const loop = (async () => {
    for await (const msg of messages) {
      await slots.acquire();
      inFlight++;
      let body: T;
      try {
        body = spec.decode(msg.data, msg);
      } catch (error) {
        void settle({
          delivery: { body: undefined as T, msg, attempt: msg.info.deliveryCount, working: () => msg.working() },
          verdict: { kind: 'dead-letter', code: 'SWX_BAD_REQUEST', reason: `undecodable: ${(error as Error).message}` },
        });
        continue;
      }
      deliveries.next({ body, msg, attempt: msg.info.deliveryCount, working: () => msg.working() });
    }
  })();
  log.info({ actor: spec.name, stream: spec.stream, filter: spec.filterSubject }, 'actor started');

  return {
    name: spec.name,
    async stop() {
      stopping = true;
      await messages.close();
      await loop.catch(() => undefined);
      if (inFlight > 0) await new Promise<void>((resolve) => { drained = resolve; });
      subscription.unsubscribe();
      log.info({ actor: spec.name }, 'actor stopped');
    },
  };
}
