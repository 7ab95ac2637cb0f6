// console bench: `swx sample load` writes a year of traffic (N evidence rows) into a fresh data folder's store, a hub
// starts on it, and message search (by id, by partner and time) and every statistics panel are timed through the
// console API on its loopback listener, as a script would call them: p50 and p95 per case. With --data DIR the folder
// is kept, and a folder that already holds a load (`swx sample load --from <Jan 1 of last year> --data DIR`) is timed
// as it is: a 50-million-row load takes longer than the timing, and need not be repeated for it.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startHubProcess, tempDir } from '../app/hub-process.ts';
import { loadSample } from '../app/sample-load.ts';
import { openStore } from '../engine/store/index.ts';
import { conditions, percentile } from './conditions.ts';

export interface ConsoleBenchOptions { json: boolean; rows: number; repeats: number; dataDir?: string }

/** Evidence records per sampled message, on average (received, verified, routed, delivered; queries three). */
const recordsPerMessage = 3.9;

export async function consoleBench(options: ConsoleBenchOptions): Promise<Record<string, unknown>> {
  const dataDir = options.dataDir ?? tempDir('bench-console');
  const from = new Date(Date.UTC(new Date().getUTCFullYear() - 1, 0, 1));
  const until = new Date(from.getTime() + 365 * 86_400_000);
  const store = await openStore({ dataDir: join(dataDir, 'chdb') });
  const [present] = await store.query<{ rows: string }>('SELECT count() AS rows FROM evidence');
  const loaded = Number(present!.rows) > 0 ? { records: Number(present!.rows) }
    : await loadSample(store, { messages: Math.max(1, Math.round(options.rows / recordsPerMessage)), from });
  const [probe] = await store.query<{ message_id: string; from_partner: string }>("SELECT message_id, from_partner FROM messages ORDER BY cityHash64(message_id) LIMIT 1");
  await store.close();
  if (!options.json) console.error('recordsPerSecond' in loaded ? `loaded ${loaded.records} evidence rows (${loaded.recordsPerSecond}/s)` : `timing the ${loaded.records} evidence rows already in ${dataDir}`);
  const hub = await startHubProcess({ dataDir, env: { SWX_LOG_LEVEL: 'warn', SWX_ALERT_INTERVAL_SECONDS: '3600' } });
  try {
    const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
    const month = { since: new Date(until.getTime() - 30 * 86_400_000).toISOString(), until: until.toISOString() };
    const year = { since: from.toISOString(), until: until.toISOString() };
    const cases: [string, string][] = [
      ['search by message id', `/api/messages?${q({ key: probe!.message_id })}`],
      ['search by partner and month', `/api/messages?${q({ partner: probe!.from_partner, ...month, limit: '50' })}`],
      ['stats traffic by day and service, a year', `/api/stats/traffic?${q({ ...year, grain: 'day', by: 'service' })}`],
      ['stats trend by month and protocol', `/api/stats/trend?${q({ ...year, grain: 'month', by: 'protocol' })}`],
      ['stats latency by month', `/api/stats/latency?${q({ ...year, grain: 'month' })}`],
      ['stats errors by day and code, a month', `/api/stats/errors?${q({ ...month, grain: 'day', by: 'code' })}`],
      ['stats top talkers, a year', `/api/stats/top-talkers?${q({ ...year, side: 'sender' })}`],
      ['stats traffic by sender, a year', `/api/stats/traffic?${q({ ...year, grain: 'month', by: 'sender' })}`],
      ['overview', '/api/overview'],
    ];
    const measured = [];
    for (const [name, path] of cases) {
      const times: number[] = [];
      for (let i = 0; i < options.repeats + 1; i++) {
        const started = performance.now();
        const answer = await hub.admin('GET', path);
        if (answer.status !== 200) throw new Error(`${name}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        // The first call warms the caches; it is not counted.
        if (i > 0) times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      measured.push({ name, p50_ms: Math.round(percentile(times, 50) * 10) / 10, p95_ms: Math.round(percentile(times, 95) * 10) / 10 });
    }
    return { rows: loaded.records, cases: measured, ...('recordsPerSecond' in loaded ? { load_rows_per_s: loaded.recordsPerSecond } : {}), conditions: conditions({ repeats: options.repeats, store: 'chdb embedded' }) };
  } finally {
    await hub.stop();
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}
