// `swx sample load`: a realistic year of traffic written straight into the store's evidence table (hash-chained under
// node `sample`, as the archive chains its own), so the materialized views fill the search and statistics tables and
// the console and the bench have volume to show. The mix follows Tables 1-3: queries to the customs datasets,
// notifications on the alert topics, items on the exchange channels; office hours and month ends are busier; a few
// in a hundred fail, are retried, dead-lettered or rejected. Deterministic for a seed.
import { createHash } from 'node:crypto';
import { evidenceRow, type EvidenceRecord, type EvidenceStage } from '../engine/evidence.ts';
import type { Store } from '../engine/store/index.ts';
import { table1 } from './table1.ts';
import { table2 } from './table2.ts';
import { table3 } from './table3.ts';

export interface SampleOptions {
  messages: number;
  /** The first day of the year written (default: a year before now). */
  from?: Date;
  seed?: number;
  /** Rows per insert. */
  batchRows?: number;
}

const node = 'sample';
const dayMs = 86_400_000;
const protocols = ['rest', 'rest', 'rest', 'soap', 'soap', 'ebms2', 'as4', 'sftp'];

/** mulberry32: a small seeded generator, so a load is the same for the same seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Kind { service: string; from: string[]; to: string[]; weight: number; query: boolean }

/** What agencies exchange, weighted: channel items most, then queries, then notifications. */
function kinds(): Kind[] {
  return [
    ...table3.map((channel) => ({ service: `exchange.${channel.id}`, from: [...channel.providers], to: [...channel.requesters], weight: 6, query: false })),
    ...table1.map((dataset) => ({ service: dataset.service.id, from: [...dataset.askers], to: [...dataset.providers], weight: 3, query: true })),
    ...table2.map((topic) => ({ service: `notify.${topic.id}`, from: [...topic.notifiers], to: [...topic.receivers], weight: 1, query: false })),
  ].filter((kind) => kind.from.length > 0 && kind.to.length > 0);
}

/** An instant in the year: busier on weekdays, office hours (Taiwan, UTC+8) and the last days of a month. */
function instant(next: () => number, from: number): number {
  for (;;) {
    const at = from + Math.floor(next() * 365 * dayMs);
    const date = new Date(at + 8 * 3_600_000);
    const hour = date.getUTCHours();
    const weekday = date.getUTCDay() !== 0 && date.getUTCDay() !== 6;
    const monthEnd = date.getUTCDate() >= 25;
    const weight = (hour >= 8 && hour < 18 ? 1 : 0.15) * (weekday ? 1 : 0.3) * (monthEnd ? 1 : 0.55);
    if (next() < weight) return at;
  }
}

/** The records of one message's life. */
function life(next: () => number, index: number, kind: Kind, at: number): EvidenceRecord[] {
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const from = pick(kind.from);
  const to = pick(kind.to.filter((id) => id !== from).length ? kind.to.filter((id) => id !== from) : kind.to);
  const messageId = `S${index.toString(36).padStart(8, '0')}`;
  const protocol = kind.query ? pick(['rest', 'soap']) : pick(protocols);
  const size = Math.floor(400 + next() * next() * 200_000);
  const time = (ms: number) => new Date(at + ms).toISOString();
  const base = {
    messageId, conversationId: `C${Math.floor(index / 3).toString(36)}`, from, to, service: kind.service, action: kind.query ? 'query' : 'deliver',
    protocol, size, sha256: createHash('sha256').update(messageId).digest('hex'), receivedAt: time(0), node,
  };
  let n = 0;
  const record = (stage: EvidenceStage, ms: number, over: Partial<EvidenceRecord> = {}): EvidenceRecord => ({ ...base, id: `${messageId}-${n++}`, stage, at: time(ms), ...over });
  const roll = next();
  if (roll < 0.01) return [record('received', 0), record('rejected', 3, { code: pick(['SWX_SIG_INVALID', 'SWX_ACL_DENIED', 'SWX_CERT_EXPIRED']) })];
  const latency = Math.floor(80 + next() * next() * 4_000);
  if (kind.query) {
    return roll < 0.03
      ? [record('received', 0), record('verified', 0), record('query_failed', latency, { code: pick(['SWX_PROVIDER_TIMEOUT', 'SWX_PROVIDER_ERROR']) })]
      : [record('received', 0), record('verified', 0), record('answered', latency)];
  }
  const records = [record('received', 0), record('verified', 0), record('routed', 0)];
  if (roll < 0.02) records.push(record('delivery_failed', latency, { code: 'SWX_DELIVERY_REJECTED' }), record('dead_lettered', latency * 2, { code: 'SWX_DELIVERY_REJECTED' }));
  else if (roll < 0.06) records.push(record('delivery_failed', latency, { code: 'SWX_PARTNER_BUSY' }), record('delivered', latency * 5));
  else records.push(record('delivered', latency));
  if (next() < 0.005) records.push(record('redelivered', latency * 10));
  return records;
}

/** Writes `messages` message lives into evidence in batched inserts; returns the counts and the rate. */
export async function loadSample(store: Store, options: SampleOptions): Promise<{ messages: number; records: number; seconds: number; recordsPerSecond: number }> {
  const started = performance.now();
  const next = random(options.seed ?? 2026);
  const from = (options.from ?? new Date(Date.now() - 365 * dayMs)).getTime();
  const batchRows = options.batchRows ?? 20_000;
  const all = kinds();
  const totalWeight = all.reduce((sum, kind) => sum + kind.weight, 0);
  const kindOf = () => {
    let r = next() * totalWeight;
    for (const kind of all) if ((r -= kind.weight) < 0) return kind;
    return all.at(-1)!;
  };
  // A second load continues the sample node's chain where the first ended.
  const [last] = await store.query<{ position: string; record_hash: string }>(
    'SELECT toString(chain) AS position, record_hash FROM evidence WHERE node = {node:String} ORDER BY chain DESC LIMIT 1', { node });
  let chain = last ? Number(last.position) + 1 : 0;
  let prevHash = last?.record_hash ?? '';
  const first = chain;
  let rows: string[] = [];
  for (let index = 0; index < options.messages; index++) {
    for (const record of life(next, first + index, kindOf(), instant(next, from))) {
      const { row, hash } = evidenceRow(record, 'SWX_SAMPLE', chain, chain, prevHash);
      rows.push(JSON.stringify(row));
      chain++;
      prevHash = hash;
    }
    if (rows.length >= batchRows) {
      await store.insert('evidence', rows);
      rows = [];
    }
  }
  if (rows.length) await store.insert('evidence', rows);
  const seconds = (performance.now() - started) / 1000;
  return { messages: options.messages, records: chain - first, seconds: Math.round(seconds * 10) / 10, recordsPerSecond: Math.round((chain - first) / seconds) };
}
