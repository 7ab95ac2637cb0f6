// Connection to NATS and idempotent provisioning of the hub's streams, consumers, KV buckets and Object Store.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy, DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType,
  type ConsumerConfig, type JetStreamClient, type JetStreamManager, type StreamConfig,
} from '@nats-io/jetstream';
import { log } from '../log.ts';

export const subjects = {
  /** Envelopes awaiting delivery to one partner. */
  message: (partner: string) => `swx.msg.${partner}`,
  /** A channel's items awaiting delivery to one requester: a lane of their own, delivered in order. */
  channelItem: (partner: string, channel: string) => `swx.msg.${partner}.${channel}`,
  /** Messages to a topic or channel, before the route stage makes one delivery of each per receiver. */
  fanOut: (kind: 'topic' | 'channel', id: string) => `swx.msg.fan.${kind}.${id}`,
  allFanOut: 'swx.msg.fan.>',
  evidence: 'swx.evidence',
  deadLetter: (actor: string) => `swx.dlq.${actor}`,
} as const;

/** Set on an envelope put back on the message stream by an operator: where from (a dead letter, a channel resend). */
export const resentFromHeader = 'Swx-Resent-From';

export const streams = { messages: 'SWX_MSG', evidence: 'SWX_EVIDENCE', deadLetters: 'SWX_DLQ' } as const;

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export const nanos = (seconds: number) => seconds * 1_000_000_000;

export async function connectBus(url: string, name: string): Promise<Bus> {
  const nc = await connect({
    servers: url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    // An Error (with its stack) per request was ~5 % of the hub's CPU in the route bench.
    noAsyncTraces: true,
  });
  (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect') log.warn({ nats: status.type }, 'NATS connection status');
    }
  })().catch(() => undefined);
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  return { nc, js: jetstream(nc, { timeout: 10_000 }), jsm };
}

/** Creates or updates a stream to the given shape; safe to run from every hub process at every start. */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    await jsm.streams.update(config.name, config);
  } catch (error) {
    if (!/stream not found/i.test(String((error as Error).message))) throw error;
    await jsm.streams.add(config);
  }
}

export async function ensureConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig> & { durable_name: string }): Promise<void> {
  const full: Partial<ConsumerConfig> = { ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ...config };
  try {
    await jsm.consumers.info(stream, config.durable_name);
    await jsm.consumers.update(stream, config.durable_name, full);
  } catch (error) {
    if (!/consumer not found/i.test(String((error as Error).message))) throw error;
    await jsm.consumers.add(stream, full);
  }
}

/**
 * The message stream keeps envelopes for the de-duplication horizon, and its duplicate window spans the same
 * horizon: nats-server rebuilds that window from the stored messages after a restart, so a resend days later is
 * still caught, atomically with the publish, at no extra write per message.
 */
export async function provisionStreams(jsm: JetStreamManager, dedupeHorizonSeconds: number, replayWindowSeconds: number): Promise<void> {
  await ensureStream(jsm, {
    name: streams.messages,
    subjects: ['swx.msg.>'],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(dedupeHorizonSeconds),
    duplicate_window: nanos(dedupeHorizonSeconds),
  });
  await ensureStream(jsm, {
    name: streams.evidence,
    subjects: [subjects.evidence],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(Math.max(dedupeHorizonSeconds, 7 * 24 * 3600)),
    // Spans the replay window: a query's evidence is published under its replay key (engine/replay.ts).
    duplicate_window: nanos(Math.max(120, replayWindowSeconds)),
  });
  await ensureStream(jsm, {
    name: streams.deadLetters,
    subjects: ['swx.dlq.>'],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(30 * 24 * 3600),
  });
}
