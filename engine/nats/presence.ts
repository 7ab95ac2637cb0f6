// Which hub processes share this NATS: each keeps a key of its own fresh in a KV bucket whose entries expire unless
// renewed, and counts the live keys. A limit meant for the whole hub (an asker's query rate) is shared out by that
// count, so that N processes behind a load balancer enforce it together rather than N times over.
import { randomUUID } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { log } from '../log.ts';
import { hubProcesses } from '../metrics.ts';
import type { Bus } from './jetstream.ts';

export const presenceBucket = 'swx_hubs';

export interface Presence {
  /** Live hub processes on this NATS, this one included (at least 1). */
  readonly count: number;
  /** Removes this process's key, so the others count it out at their next renewal rather than at its expiry. */
  stop(): Promise<void>;
}

/** `renewMs`: how often the key is renewed and the live keys counted; a key lives three renewals. */
export async function startPresence(bus: Bus, node: string, onCount: (count: number) => void, renewMs = 5_000): Promise<Presence> {
  const kv = await new Kvm(bus.js).create(presenceBucket, { ttl: renewMs * 3, history: 1 });
  const key = `${node.replace(/[^A-Za-z0-9_-]/g, '_')}.${process.pid}.${randomUUID().slice(0, 8)}`;
  let count = 1;
  let stopped = false;
  const renew = async () => {
    try {
      await kv.put(key, JSON.stringify({ node, pid: process.pid, at: new Date().toISOString() }));
      // A set: a key renewed while they are listed comes twice.
      const live = new Set<string>();
      for await (const each of await kv.keys()) live.add(each);
      if (stopped || Math.max(1, live.size) === count) return;
      count = Math.max(1, live.size);
      hubProcesses.set(count);
      log.info({ hubProcesses: count }, 'hub processes on this NATS changed; per-asker query limits are shared among them');
      onCount(count);
    } catch (error) {
      // Kept at its last count: a NATS outage stops the queries anyway, as their evidence cannot be published.
      log.warn({ err: error }, 'hub presence not renewed');
    }
  };
  hubProcesses.set(count);
  await renew();
  const timer = setInterval(() => void renew(), renewMs);
  timer.unref();
  return {
    get count() { return count; },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await kv.delete(key).catch(() => undefined);
    },
  };
}
