// search bench: a year of generated evidence (about four records a message: received, verified, routed, delivered,
// with rejections, delivery failures and dead letters) loaded into embedded chDB through the store, so that the
// search and statistics views fill as the archive would fill them; then message search by each id kind, paged
// searches, a timeline, and year charts from the rollups, each timed end to end through the store from this process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMessages, messageTimeline, searchMessages, topTalkers, traffic } from '../dashboards/index.ts';
import { evidenceRow, type EvidenceRecord } from '../engine/evidence.ts';
import { openStore, type Store } from '../engine/store/index.ts';
import { conditions, percentile } from './conditions.ts';

export interface SearchBenchOptions { json: boolean; messages: number; repeats: number }

const agencies = ['CUSTOMS', 'BOFT', 'BSMI', 'TFDA', 'NTA', 'FIA', 'BAPHIQ', 'IDB', 'DOC', 'NIA', 'BOT', 'MPB', 'AFA', 'EPA', 'SPA', 'TIPO'];
const services = ['customs.declaration', 'trade.permit', 'notify.fishery-safety', 'exchange.declarations', 'notify.shtc', 'exchange.taxes-fees'];
const protocols = ['rest', 'rest', 'rest', 'soap', 'soap', 'ebms2', 'as4', 'sftp', 'mq', 'rest'];
const year = { start: '2025-01-01 00:00:00.000', ms: 365 * 86_400_000 };
const chunk = 100_000;

/**
 * The evidence of messages [offset, offset + n) as one INSERT … SELECT: message i is received at an even share of the
 * year plus jitter; 1 % are rejected, 1 % dead-lettered after a failure, 3 % delivered after a failure, the rest delivered
 * 50 ms to 3 s after receipt. Records carry what the archive writes (hashes here are stand-ins: nothing verifies them).
 */
function loadSql(offset: number, n: number, total: number): string {
  const list = (values: string[]) => `[${values.map((v) => `'${v}'`).join(', ')}]`;
  return `INSERT INTO evidence (stream, seq, chain, id, message_id, conversation_id, stage, at, from_partner, to_partner, service, action, protocol,
    code, detail, size, sha256, raw, raw_ref, signature, node, prev_hash, record_hash, batch_id, proof, ref_to, file_name, received_at)
  SELECT 'BENCH@1', i * 8 + step.1, i * 8 + step.1, concat(message_id, ':', step.2), message_id, conversation_id, step.2,
    received + toIntervalMillisecond(step.3), from_partner, to_partner, service, 'submit', protocol, step.4, '', size, sha256,
    if(step.2 = 'received', base64Encode(concat(message_id, repeat(' ', 300))), ''), '',
    if(step.2 IN ('received', 'verified'), '{"scheme":"http-message-signatures","algorithm":"ecdsa-p256-sha256"}', ''),
    'bench', hex(SHA256(toString(i * 8 + step.1 - 1))), hex(SHA256(toString(i * 8 + step.1))), '', '', ref_to, file_name,
    if(outcome = 'rejected', toDateTime64(0, 3, 'UTC'), received)
  FROM (
    SELECT number AS i, concat('B-', toString(i)) AS message_id, concat('C-', toString(intDiv(i, 3))) AS conversation_id,
      toDateTime64('${year.start}', 3, 'UTC') + toIntervalMillisecond(intDiv(i * ${year.ms}, ${total}) + cityHash64(i) % 60000) AS received,
      ${list(agencies)}[i % ${agencies.length} + 1] AS from_partner,
      ${list(agencies)}[(i * 7 + 5) % ${agencies.length} + 1] AS to_partner,
      ${list(services)}[intDiv(i, 7) % ${services.length} + 1] AS service,
      ${list(protocols)}[i % ${protocols.length} + 1] AS protocol,
      1000 + i % 20000 AS size, lower(hex(SHA256(message_id))) AS sha256,
      if(i % 5 = 0 AND i > 0, concat('B-', toString(i - 1)), '') AS ref_to,
      if(protocol = 'sftp', concat('F-', message_id, '.xml'), '') AS file_name,
      multiIf(i % 100 = 0, 'rejected', i % 100 = 1, 'dead', i % 100 < 5, 'retried', 'delivered') AS outcome,
      50 + cityHash64(i, 1) % 2950 AS latency
    FROM numbers(${offset}, ${n})
  ) ARRAY JOIN multiIf(
    outcome = 'rejected', [(1, 'received', 0, ''), (2, 'rejected', 3, 'SWX_SIG_INVALID')],
    outcome = 'dead', [(1, 'received', 0, ''), (2, 'verified', 0, ''), (3, 'routed', 0, ''), (4, 'delivery_failed', intDiv(latency, 2), 'SWX_DELIVERY_REJECTED'), (5, 'dead_lettered', latency, 'SWX_DELIVERY_REJECTED')],
    outcome = 'retried', [(1, 'received', 0, ''), (2, 'verified', 0, ''), (3, 'routed', 0, ''), (4, 'delivery_failed', intDiv(latency, 2), 'SWX_PARTNER_BUSY'), (5, 'delivered', latency, '')],
    [(1, 'received', 0, ''), (2, 'verified', 0, ''), (3, 'routed', 0, ''), (4, 'delivered', latency, '')]
  ) AS step`;
}

async function timed(repeats: number, run: (i: number) => Promise<unknown>): Promise<{ p50_ms: number; p95_ms: number; runs: number }> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await run(i);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return { p50_ms: round(percentile(times, 50)), p95_ms: round(percentile(times, 95)), runs: repeats };
}

/**
 * What the views cost the archive: 10k-row JSONEachRow inserts of archive-shaped rows (engine/evidence.ts's evidenceRow)
 * into evidence, which feeds six views, and into a copy of its columns that feeds none, alternated in the same run.
 */
async function archiveInsertCost(store: Store, say: (line: string) => void): Promise<{ with_views: number; without_views: number }> {
  await store.command('CREATE TABLE IF NOT EXISTS evidence_plain AS evidence');
  let chain = 0;
  let prev = '';
  const batch = () => Array.from({ length: 10_000 }, () => {
    const n = chain;
    const record: EvidenceRecord = {
      id: `I-${n}`, messageId: `I-${Math.floor(n / 4)}`, conversationId: `I-${Math.floor(n / 4)}`, stage: (['received', 'verified', 'routed', 'delivered'] as const)[n % 4]!,
      at: new Date(Date.UTC(2026, 0, 1) + n * 10).toISOString(), from: agencies[n % agencies.length]!, to: agencies[(n + 3) % agencies.length]!,
      service: services[n % services.length]!, action: 'submit', protocol: 'rest', size: 4096, sha256: 'ab'.repeat(32), node: 'insert-bench',
      receivedAt: new Date(Date.UTC(2026, 0, 1) + (n - (n % 4)) * 10).toISOString(), raw: n % 4 === 0 ? Buffer.alloc(700, n % 251).toString('base64') : '',
    };
    const { row, hash } = evidenceRow(record, 'INSERT@1', n, n, prev);
    chain++;
    prev = hash;
    return JSON.stringify(row);
  });
  const totals = { with_views: { rows: 0, ms: 0 }, without_views: { rows: 0, ms: 0 } };
  for (let round = 0; round < 6; round++) {
    const [table, key] = round % 2 === 0 ? ['evidence', 'with_views'] as const : ['evidence_plain', 'without_views'] as const;
    const rows = batch();
    const t0 = performance.now();
    await store.insert(table, rows);
    totals[key].ms += performance.now() - t0;
    totals[key].rows += rows.length;
  }
  const rate = (t: { rows: number; ms: number }) => Math.round(t.rows / (t.ms / 1000));
  say(`archive insert: ${rate(totals.with_views)} rows/s with the views, ${rate(totals.without_views)} without`);
  return { with_views: rate(totals.with_views), without_views: rate(totals.without_views) };
}

async function count(store: Store, table: string): Promise<number> {
  return Number((await store.query<{ n: number }>(`SELECT count() AS n FROM ${table}`))[0]!.n);
}

export async function searchBench(options: SearchBenchOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const dir = mkdtempSync(join(tmpdir(), 'swx-bench-search-'));
  const store = await openStore({ dataDir: join(dir, 'clickhouse'), maxExecutionTimeSec: 600 });
  try {
    const total = options.messages;
    say(`loading ${total} messages…`);
    const t0 = performance.now();
    for (let offset = 0; offset < total; offset += chunk) await store.command(loadSql(offset, Math.min(chunk, total - offset), total));
    const loadSeconds = (performance.now() - t0) / 1000;
    const evidenceRows = await count(store, 'evidence');
    say(`loaded ${evidenceRows} evidence rows in ${loadSeconds.toFixed(1)} s`);
    const pick = (i: number) => (i * 7_919 + 13) % total;
    const since = '2025-01-01T00:00:00Z';
    const until = '2026-01-01T00:00:00Z';
    const cases: Record<string, unknown>[] = [];
    const measure = async (name: string, run: (i: number) => Promise<unknown>, repeats = options.repeats) => {
      await run(repeats); // once before timing: the first read of a table pays for its marks
      cases.push({ name, ...(await timed(repeats, run)) });
      say(`${name}: ${JSON.stringify(cases.at(-1))}`);
    };
    await measure('search_by_message_id', (i) => findMessages(store, `B-${pick(i)}`, 'message'));
    await measure('search_by_any_id', (i) => findMessages(store, `B-${pick(i)}`));
    await measure('search_by_conversation', (i) => findMessages(store, `C-${Math.floor(pick(i) / 3)}`, 'conversation'));
    await measure('search_by_sha256', async (i) => {
      const [{ sha }] = await store.query<{ sha: string }>("SELECT lower(hex(SHA256({id:String}))) AS sha", { id: `B-${pick(i)}` }) as [{ sha: string }];
      return findMessages(store, sha, 'sha256');
    });
    await measure('page_sender_day', (i) => {
      const day = new Date(Date.parse(since) + (i % 360) * 86_400_000);
      return searchMessages(store, { sender: agencies[i % agencies.length], since: day.toISOString(), until: new Date(day.getTime() + 86_400_000).toISOString() }, undefined, 50);
    });
    await measure('page_receiver_day', (i) => {
      const day = new Date(Date.parse(since) + (i % 360) * 86_400_000);
      return searchMessages(store, { receiver: agencies[(i + 3) % agencies.length], since: day.toISOString(), until: new Date(day.getTime() + 86_400_000).toISOString() }, undefined, 50);
    });
    await measure('page_newest_then_next', async () => {
      const first = await searchMessages(store, {}, undefined, 50);
      return searchMessages(store, {}, first.next, 50);
    });
    await measure('page_state_dead_lettered_month', (i) => {
      const month = new Date(Date.UTC(2025, i % 12, 1));
      return searchMessages(store, { state: 'dead_lettered', since: month.toISOString(), until: new Date(Date.UTC(2025, (i % 12) + 1, 1)).toISOString() }, undefined, 50);
    }, Math.min(options.repeats, 5));
    await measure('timeline', (i) => messageTimeline(store, `B-${pick(i)}`));
    await measure('year_chart_daily_by_service', () => traffic(store, { grain: 'day', by: ['service'], since, until }), Math.min(options.repeats, 10));
    await measure('year_trend_monthly_by_protocol', () => traffic(store, { grain: 'month', by: ['protocol'], since, until }), Math.min(options.repeats, 10));
    await measure('week_hourly_latency', () => traffic(store, { grain: 'hour', where: { stage: 'delivered' }, since: '2025-12-24T00:00:00Z', until }), Math.min(options.repeats, 10));
    await measure('top_talkers_year', () => topTalkers(store, { since, until, side: 'sender' }), Math.min(options.repeats, 10));
    // The same year chart straight from evidence: what the rollup saves.
    await measure('year_chart_daily_by_service_from_evidence', () => store.query(
      `SELECT toStartOfDay(at) AS day, service, countIf(stage = 'verified') AS messages, countIf(stage = 'delivered') AS deliveries, countIf(code != '') AS errors,
         quantilesTDigestIf(0.5, 0.9, 0.95, 0.99)(toFloat64(dateDiff('millisecond', received_at, at)), stage = 'delivered') AS latency
       FROM evidence WHERE at >= '2025-01-01 00:00:00' AND at < '2026-01-01 00:00:00' GROUP BY day, service ORDER BY day, service`), 3);
    const tableRows = {
      messages: await count(store, 'messages'), message_keys: await count(store, 'message_keys'), message_state: await count(store, 'message_state'),
      stats_hourly: await count(store, 'stats_hourly'), stats_daily: await count(store, 'stats_daily'), stats_partner_daily: await count(store, 'stats_partner_daily'),
    };
    const insert = await archiveInsertCost(store, say);
    return {
      bench: 'search',
      messages: total,
      evidence_rows: evidenceRows,
      load_rows_per_s: Math.round(evidenceRows / loadSeconds),
      archive_insert_rows_per_s: insert,
      // Physical rows, before background merges fold a rollup's rows with the same key.
      table_rows: tableRows,
      cases,
      conditions: conditions({ backend: 'chdb', measured: 'end to end through the store (IPC to the chDB owner), first run of each case untimed' }),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
