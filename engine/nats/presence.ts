// Which hub processes share this NATS: each keeps a key of its own fresh in a KV bucket whose entries expire unless
// renewed, and counts the live keys. A limit meant for the whole hub (an asker's query rate) is shared out by that
// count, so that N processes behind a load balancer enforce it together rather than N times over.
import { createHash } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { log } from '../log.ts';
import { hubProcesses } from '../metrics.ts';
import type { Bus } from './jetstream.ts';

export const presenceBucket = 'swx_hubs';
const stream = `KV_${presenceBucket}`;

export interface Presence {
  /** Live hub processes on this NATS, this one included (at least 1). */
  readonly count: number;
  /** Purges this process's key, so the others count it out at their next renewal rather than at its expiry. */
  stop(): Promise<void>;
}

/**
 * `identity` names this process across restarts (its node and data folder): a restarted process takes up its own key
 * again rather than being counted twice until the old one expires. `renewMs`: how often the key is renewed and the
 * live keys counted; a key lives three renewals.
 */
export async function startPresence(bus: Bus, identity: { node: string; dataDir: string }, onCount: (count: number) => void, renewMs = 5_000): Promise<Presence> {
  const kv = await new Kvm(bus.js).create(presenceBucket, { ttl: renewMs * 3, history: 1 });
  const key = `${identity.node.replace(/[^A-Za-z0-9_-]/g, '_')}.${createHash('sha256').update(identity.dataDir).digest('hex').slice(0, 16)}`;
  let count = 1;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const renew = async () => {
    try {
      await kv.put(key, JSON.stringify({ node: identity.node, dataDir: identity.dataDir, pid: process.pid, at: new Date().toISOString() }));
      // Keys are subjects of the bucket's stream, one message each (history 1), and a stopped process purges its own
      // without a marker: the live keys are the stream's subjects. One request; listing the keys can wait for an
      // idle heartbeat when a key expires while it runs.
      const live = Math.max(1, (await bus.jsm.streams.info(stream)).state.num_subjects ?? 1);
      if (stopped || live === count) return;
      count = live;
      hubProcesses.set(count);
      log.info({ hubProcesses: count }, 'hub processes on this NATS changed; per-asker query limits are shared among them');
      onCount(count);
    } catch (error) {
      // Kept at its last count: a NATS outage stops the queries anyway, as their evidence cannot be published.
      log.warn({ err: error }, 'hub presence not renewed');
    }
  };
  // Each renewal is scheduled when the last one is done: a slow one never overlaps the next.
  let renewing = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => { renewing = renew().finally(() => { if (!stopped) schedule(); }); }, renewMs);
    timer.unref();
  };
  hubProcesses.set(count);
  await renew();
  schedule();
  return {
    get count() { return count; },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await renewing;
      await bus.jsm.streams.purge(stream, { filter: `$KV.${presenceBucket}.${key}` }).catch(() => undefined);
    },
  };
}
