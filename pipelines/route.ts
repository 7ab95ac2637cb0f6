// route: a message to a topic or channel becomes one delivery per receiver. Intake stored it once, with the receivers
// it resolved then; this actor publishes each receiver's copy, keyed (sender, id, receiver) so that a repeated attempt
// adds nothing, and acks only once every copy is stored. A channel's copies go to a lane per requester and channel,
// which delivery works through in order. A direct message needs no route: intake stores it for its receiver.
import { randomUUID } from 'node:crypto';
import { DeliverPolicy } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { startActor, perMessage, type Actor, type Delivery, type Verdict } from '../engine/actor.ts';
import type { Envelope } from '../engine/envelope.ts';
import { envelopeFacts, type EvidenceLog, type EvidenceRecord } from '../engine/evidence.ts';
import { ensureConsumer, resentFromHeader, streams, subjects, type Bus } from '../engine/nats/jetstream.ts';

export const routeActorName = 'route';

/** The subject a receiver's copy of an envelope waits on for delivery. */
export function deliverySubject(envelope: Pick<Envelope, 'to' | 'audience'>): string {
  return envelope.audience?.kind === 'channel' ? subjects.channelItem(envelope.to, envelope.audience.id) : subjects.message(envelope.to);
}

/** The de-duplication key of one receiver's copy: a message reaches each receiver once. */
export const copyId = (envelope: Pick<Envelope, 'from' | 'id' | 'to'>) => `${envelope.from}/${envelope.id}/${envelope.to}`;

export async function startRoute(bus: Bus, options: { concurrency: number; backoffMs: number[] }): Promise<Actor> {
  await ensureConsumer(bus.jsm, streams.messages, {
    durable_name: routeActorName,
    filter_subject: subjects.allFanOut,
    ack_wait: 30_000_000_000,
    max_deliver: -1,
    max_ack_pending: 4 * options.concurrency,
  });
  return startActor<Envelope>(bus, {
    name: routeActorName,
    stream: streams.messages,
    filterSubject: subjects.allFanOut,
    decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')) as Envelope,
    process: perMessage((delivery) => fanOut(bus, delivery), options.concurrency),
    maxInFlight: options.concurrency,
    backoffMs: options.backoffMs,
    maxAttempts: Number.MAX_SAFE_INTEGER, // a copy that cannot be stored now is stored later: nothing here is the message's fault
  });
}

async function fanOut(bus: Bus, { body: envelope }: Delivery<Envelope>): Promise<Verdict> {
  await Promise.all((envelope.audience?.receivers ?? []).map((to) => {
    const copy: Envelope = { ...envelope, to };
    return bus.js.publish(deliverySubject(copy), JSON.stringify(copy), { msgID: copyId(copy) });
  }));
  return { kind: 'ack' };
}

/**
 * Puts a channel's items published since `since` on one requester's lane again, in their order: for a requester that
 * lost its own copies. Each is a fresh delivery of the same message (same id, so the requester can tell it already
 * had it), evidenced as resent. Items older than the de-duplication horizon are no longer on the stream.
 */
export async function resendChannel(bus: Bus, evidence: EvidenceLog, channel: string, requester: string, since: Date): Promise<{ resent: number }> {
  const request = randomUUID();
  const consumer = await bus.js.consumers.get(streams.messages, {
    filter_subjects: subjects.fanOut('channel', channel), deliver_policy: DeliverPolicy.StartTime, opt_start_time: since.toISOString(),
  });
  let pending = (await consumer.info()).num_pending;
  let resent = 0;
  while (pending > 0) {
    const records: EvidenceRecord[] = [];
    let fetched = 0;
    for await (const msg of await consumer.fetch({ max_messages: Math.min(pending, 256), expires: 5_000 })) {
      fetched++;
      pending = msg.info.pending;
      const copy: Envelope = { ...(JSON.parse(Buffer.from(msg.data).toString('utf8')) as Envelope), to: requester };
      const h = natsHeaders();
      h.set(resentFromHeader, `channel resend ${request}`);
      await bus.js.publish(deliverySubject(copy), JSON.stringify(copy), { msgID: `resend:${request}:${copyId(copy)}`, headers: h });
      records.push(evidence.record({
        ...envelopeFacts(copy), id: `resent:${request}:${copy.from}/${copy.id}`, stage: 'resent',
        detail: `channel ${channel} items since ${since.toISOString()} resent to ${requester} (request ${request})`,
      }));
      resent++;
    }
    if (records.length > 0) await evidence.publish(records);
    if (fetched === 0) break;
  }
  return { resent };
}
