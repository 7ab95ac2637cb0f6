// exchange bench: dataset items of 4 KiB, 1 MiB and 1 GiB published on a channel with 20 requesters, through the whole
// pipeline on the embedded stack (receive → verify → archive → route → one delivery per requester). An item counts
// when every requester's receiver has stored it (its digest checked; the bench receivers keep no bytes), and the
// `delivered` evidence of every copy is checked in ClickHouse afterwards. Hub CPU is the hub's process tree; RSS is
// the hub process's peak growth over its idle RSS during the case.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { addAgency, startHubProcess } from '../app/hub-process.ts';
import { arrivalKey, startBenchReceivers } from './agencies.ts';
import { conditions, treeCpuMs } from './conditions.ts';
import { cpuProfileEnv } from './profile.ts';

const MiB = 1024 * 1024;

export interface ExchangeCase { name: string; sizeBytes: number; items: number; publishers: number }

export const exchangeCases: ExchangeCase[] = [
  { name: '4KiB', sizeBytes: 4 * 1024, items: 500, publishers: 16 },
  { name: '1MiB', sizeBytes: MiB, items: 50, publishers: 4 },
  { name: '1GiB', sizeBytes: 1024 * MiB, items: 1, publishers: 1 },
];

export interface ExchangeOptions {
  json: boolean;
  requesters: number;
  cases: ExchangeCase[];
  /** Where the hub writes its V8 CPU profile when it stops, if anywhere. */
  profileDir?: string;
}

const kib = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

export async function exchangeBench(options: ExchangeOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const hub = await startHubProcess({ env: { SWX_LOG_LEVEL: 'warn', ...cpuProfileEnv(options.profileDir) } });
  const provider = await addAgency(hub, 'CUSTOMS', { receiver: false });
  const requesterIds = Array.from({ length: options.requesters }, (_, i) => `REQ-${String(i + 1).padStart(2, '0')}`);
  const receivers = await startBenchReceivers(hub, requesterIds, { discardBodies: true });
  const channel = await hub.admin('PUT', '/api/channels/bench', { name: 'Bench datasets', dataset: 'synthetic items', providers: ['CUSTOMS'], requesters: requesterIds });
  if (channel.status !== 200) throw new Error(`registering the channel: ${JSON.stringify(channel.body)}`);
  const everywhere = (id: string) => requesterIds.every((requester) => receivers.arrivals.has(arrivalKey(requester, id)));
  const pid = hub.proc.pid!;

  let sequence = 0;
  /** Publishes `items` items of `size` bytes, `publishers` at a time; resolves with their ids once all are accepted. */
  const publish = async (size: number, items: number, publishers: number): Promise<string[]> => {
    const ids: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: publishers }, async () => {
      while (next < items) {
        next++;
        const id = `ITEM-${++sequence}`;
        // Random bytes: nothing on the way can shorten the work by compressing or de-duplicating them.
        const body = randomBytes(size);
        const answer = await provider.client.send({ service: 'exchange.bench', action: 'dataset', messageId: id, contentType: 'application/octet-stream', body });
        if (answer.status !== 202) throw new Error(`item ${id} refused: ${answer.text.slice(0, 300)}`);
        ids.push(id);
      }
    }));
    return ids;
  };
  const delivered = async (ids: string[]): Promise<number> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stages = (await hub.admin('POST', '/api/messages/stages', { ids })).body as Record<string, Record<string, number>>;
      const count = ids.reduce((sum, id) => sum + (stages[id]?.delivered ?? 0), 0);
      if (count >= ids.length * requesterIds.length || Date.now() > deadline) return count;
      await sleep(500);
    }
  };

  say('warming up…');
  const warm = await publish(4096, 20, 4);
  while (!warm.every(everywhere)) await sleep(50);
  await sleep(2_000);

  const idleRss = kib(pid, 'VmRSS');
  const cases = [];
  for (const spec of options.cases) {
    say(`${spec.name}: ${spec.items} items to ${requesterIds.length} requesters`);
    writeFileSync(`/proc/${pid}/clear_refs`, '5'); // VmHWM from here holds this case's peak
    const cpuBefore = treeCpuMs(pid);
    const started = performance.now();
    const ids = await publish(spec.sizeBytes, spec.items, spec.publishers);
    // Time enough at 5 MiB/s in all, and two minutes at least.
    const deadline = Date.now() + Math.max(120_000, ((spec.sizeBytes * spec.items * requesterIds.length) / (5 * MiB)) * 1000);
    while (!ids.every(everywhere) && Date.now() < deadline) await sleep(20);
    const elapsed = (performance.now() - started) / 1000;
    const cpuMs = treeCpuMs(pid) - cpuBefore;
    const peakRss = kib(pid, 'VmHWM') - idleRss;
    const arrived = ids.reduce((sum, id) => sum + requesterIds.filter((requester) => receivers.arrivals.has(arrivalKey(requester, id))).length, 0);
    const movedMiB = (spec.sizeBytes * arrived) / MiB;
    const row = {
      name: spec.name,
      size_bytes: spec.sizeBytes,
      items: ids.length,
      requesters: requesterIds.length,
      deliveries: arrived,
      evidenced: await delivered(ids),
      seconds: Number(elapsed.toFixed(2)),
      mb_per_s: Number((movedMiB / elapsed).toFixed(1)),
      msgs_per_s: Number((ids.length / elapsed).toFixed(1)),
      deliveries_per_s: Number((arrived / elapsed).toFixed(1)),
      hub_cpu_ms_per_delivery: Number((cpuMs / arrived).toFixed(3)),
      hub_cpu_ms_per_mb: Number((cpuMs / movedMiB).toFixed(2)),
      peak_rss_mb: Number((peakRss / MiB).toFixed(0)),
    };
    cases.push(row);
    say(`  ${row.deliveries} deliveries in ${row.seconds} s: ${row.mb_per_s} MiB/s, ${row.deliveries_per_s} deliveries/s, hub CPU ${row.hub_cpu_ms_per_delivery} ms/delivery (${row.hub_cpu_ms_per_mb} ms/MiB), peak RSS +${row.peak_rss_mb} MiB`);
  }

  receivers.stop();
  provider.client.close();
  await hub.stop();
  return {
    bench: 'exchange',
    cases,
    conditions: conditions({
      units: 'mb_per_s in MiB/s of payload delivered (size × deliveries); peak_rss_mb is MiB over the hub process\'s idle RSS',
      signature: 'ECDSA P-256, RFC 9421 over Content-Digest, both legs plus signed receipts',
      transport: 'HTTPS mutual TLS, keep-alive; payloads over 256 KiB streamed into and out of the JetStream Object Store',
      fan_out: 'one channel, one provider, each item routed once per requester; each requester\'s items delivered in order, one at a time',
      receivers: 'one process holding every requester\'s reference receiver, hashing each body and keeping its digest, not its bytes',
      processes: 'hub (+ its nats-server and chDB owner), bench sender, receivers process: all on this machine',
      cpu_counts: 'hub process tree only (hub, nats-server, chDB owner)',
    }),
  };
}
