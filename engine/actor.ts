// An actor: a durable JetStream pull consumer, an RxJS operator that settles each delivery, and supervision
// (bounded in-flight work, ack only after the handler's own publishes were acknowledged, delayed-nak retries
// with backoff, and a dead-letter entry with its reason after the last attempt).
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { JsMsg } from '@nats-io/jetstream';
import { setTimeout as sleep } from 'node:timers/promises';
import { catchError, from, map, mergeMap, of, Subject, type OperatorFunction, type Subscription } from 'rxjs';
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

/** Runs an async handler per delivery with bounded concurrency; a thrown error becomes a retry. */
export function perMessage<T>(handler: (delivery: Delivery<T>) => Promise<Verdict>, concurrency: number): OperatorFunction<Delivery<T>, Settlement<T>> {
  return mergeMap((delivery: Delivery<T>) => from(handler(delivery)).pipe(
    map((verdict) => ({ delivery, verdict })),
    catchError((error: unknown) => of({
      delivery,
      verdict: { kind: 'retry', reason: error instanceof SwxError ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error) } as Verdict,
    })),
  ), concurrency);
}

export async function startActor<T>(bus: Bus, spec: ActorSpec<T>): Promise<Actor> {
  const consumer = await bus.js.consumers.get(spec.stream, spec.name);
  let free = spec.maxInFlight;
  let wakeLoop: (() => void) | undefined;
  let drained: (() => void) | undefined;
  let stopping = false;
  let subscription: Subscription;
  const unsettled = new Set<JsMsg>();
  const deliveries = new Subject<Delivery<T>>();

  const release = (msg: JsMsg) => {
    if (!unsettled.delete(msg)) return;
    free++;
    wakeLoop?.();
    if (stopping && unsettled.size === 0) drained?.();
  };

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
        msg.nak(verdict.delayMs ?? spec.backoffMs[Math.min(delivery.attempt - 1, spec.backoffMs.length - 1)]!);
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
      release(msg);
    }
  };

  const subscribe = (): Subscription => deliveries.pipe(spec.process).subscribe({
    next: (settlement) => { void settle(settlement); },
    error: (error) => {
      // Supervision: what the failed pipeline held goes back to JetStream at once, and a fresh pipeline starts.
      log.error({ actor: spec.name, err: error }, 'actor pipeline failed; restarting it');
      for (const msg of [...unsettled]) { msg.nak(spec.backoffMs[0]); release(msg); }
      subscription = subscribe();
    },
  });
  subscription = subscribe();

  const dispatch = (msg: JsMsg) => {
    unsettled.add(msg);
    free--;
    const working = () => msg.working();
    let body: T;
    try {
      body = spec.decode(msg.data, msg);
    } catch (error) {
      void settle({
        delivery: { body: undefined as T, msg, attempt: msg.info.deliveryCount, working },
        verdict: { kind: 'dead-letter', code: 'SWX_BAD_REQUEST', reason: `undecodable: ${(error as Error).message}` },
      });
      return;
    }
    deliveries.next({ body, msg, attempt: msg.info.deliveryCount, working });
  };

  // Pull only as many messages as there is room for: a message waiting in a client buffer would outlive its
  // ack wait and come back as a second copy (for example while a partner's circuit is open). Under load, wait
  // until a quarter of the room is free, so that one pull request brings many messages rather than one.
  const refillAt = Math.max(1, Math.floor(spec.maxInFlight / 4));
  const loop = (async () => {
    while (!stopping) {
      if (free < refillAt) {
        await new Promise<void>((resolve) => { wakeLoop = resolve; });
        wakeLoop = undefined;
        continue;
      }
      try {
        const batch = await consumer.fetch({ max_messages: free, expires: 2_000 });
        for await (const msg of batch) dispatch(msg);
      } catch (error) {
        if (stopping) break;
        log.warn({ actor: spec.name, err: (error as Error).message }, 'fetch failed; retrying');
        await sleep(500);
      }
    }
  })();
  log.info({ actor: spec.name, stream: spec.stream, filter: spec.filterSubject }, 'actor started');

  return {
    name: spec.name,
    async stop() {
      stopping = true;
      wakeLoop?.();
      await loop;
      if (unsettled.size > 0) {
        // Bounded: whatever is still unsettled then goes back to JetStream and is redelivered.
        await Promise.race([new Promise<void>((resolve) => { drained = resolve; }), sleep(20_000)]);
        for (const msg of unsettled) msg.nak();
      }
      subscription.unsubscribe();
      log.info({ actor: spec.name }, 'actor stopped');
    },
  };
}
