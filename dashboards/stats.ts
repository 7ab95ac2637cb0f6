// Statistics for the console and analysts, read from the rollups (migration 0005_statistics), never from evidence:
// stats_hourly and stats_daily by service, protocol, stage and code; stats_partner_daily by partner as well, each
// record once on its sender's side and once on its receiver's. Every function returns typed rows; toCsv turns any of
// them into CSV. Days and hours are UTC.
import { latencyLevels, type Store } from '../engine/store/index.ts';

export type Grain = 'minute' | 'hour' | 'day' | 'month' | 'year';
/** What rows are split by, besides the time bucket. */
export type Dimension = 'service' | 'protocol' | 'sender' | 'receiver' | 'stage' | 'code';

const dimensionColumns: Record<Dimension, string> = {
  service: 'service', protocol: 'protocol', sender: 'partner', receiver: 'partner', stage: 'stage', code: 'code',
};

export interface StatsQuery {
  /** From this instant (ISO 8601), inclusive; rounded down to the grain's rollup (hour or day). */
  since: string;
  /** To this instant (ISO 8601), exclusive. */
  until: string;
  grain: Grain;
  by?: Dimension[];
  /** Only rows whose dimension has this value. */
  where?: Partial<Record<Dimension, string>>;
}

/**
 * One time bucket of one combination of dimensions. `messages`: accepted submissions (verified); `deliveries`: first
 * receipts; `failures`: refused deliveries (retried); `deadLetters`, `rejections`, `redeliveries`; `errors`: records
 * with an error code; `bytes`: payload bytes accepted; latency from receipt at the hub to the receiver's receipt.
 * Split by receiver, a message to a topic or channel is accepted under receiver '' (it names none); each receiver's
 * copy counts in its own deliveries, failures and dead letters.
 */
export interface TrafficRow {
  bucket: string;
  service?: string; protocol?: string; sender?: string; receiver?: string; stage?: string; code?: string;
  records: number;
  messages: number;
  deliveries: number;
  failures: number;
  deadLetters: number;
  rejections: number;
  redeliveries: number;
  errors: number;
  bytes: number;
  errorRate: number;
  latencyP50Ms: number | null;
  latencyP90Ms: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
}

const bucketSql: Record<Grain, string> = {
  minute: 'minute', hour: 'hour', day: 'day', month: 'toDateTime(toStartOfMonth(day))', year: 'toDateTime(toStartOfYear(day))',
};

/** The rollup a query reads, and the side of the partner rows it counts ('' when it needs no partner). */
function source(query: StatsQuery): { table: string; side: '' | 'sender' | 'receiver' } {
  const dimensions = new Set<Dimension>([...(query.by ?? []), ...(Object.keys(query.where ?? {}) as Dimension[])]);
  if (dimensions.has('sender') && dimensions.has('receiver')) throw new RangeError('statistics split or filter by sender or by receiver, not both');
  const side = dimensions.has('sender') ? 'sender' : dimensions.has('receiver') ? 'receiver' : '';
  if (side && (query.grain === 'hour' || query.grain === 'minute')) throw new RangeError('statistics by partner are kept per day: use grain day, month or year');
  const table = side ? 'stats_partner_daily' : query.grain === 'minute' ? 'stats_minutely' : query.grain === 'hour' ? 'stats_hourly' : 'stats_daily';
  return { table, side };
}

const time = (iso: string) => iso.replace('T', ' ').replace('Z', '');
const isoTime = (clickhouse: string) => `${clickhouse.replace(' ', 'T')}Z`;

/** Traffic per time bucket and dimension: volumes, errors, bytes and delivery latency percentiles. */
export async function traffic(store: Store, query: StatsQuery): Promise<TrafficRow[]> {
  const { table, side } = source(query);
  const expr = bucketSql[query.grain];
  const column = table === 'stats_minutely' ? 'minute' : table === 'stats_hourly' ? 'hour' : 'day';
  const by = query.by ?? [];
  const params: Record<string, unknown> = { since: time(query.since), until: time(query.until), side };
  const where = [
    `${column} >= ${column === 'minute' ? 'toStartOfMinute' : column === 'hour' ? 'toStartOfHour' : 'toStartOfDay'}(toDateTime64({since:String}, 3, 'UTC'))`,
    `${column} < toDateTime64({until:String}, 3, 'UTC')`,
    ...(side ? ['side = {side:String}'] : []),
  ];
  for (const [dimension, value] of Object.entries(query.where ?? {}) as [Dimension, string][]) {
    where.push(`${dimensionColumns[dimension]} = {w_${dimension}:String}`);
    params[`w_${dimension}`] = value;
  }
  const dims = by.map((dimension) => `${dimensionColumns[dimension]} AS ${dimension}`);
  const levels = latencyLevels.join(', ');
  const rows = await store.query<Record<string, unknown>>(
    `SELECT toString(${expr}) AS bucket${dims.map((d) => `, ${d}`).join('')},
       sum(records) AS all_records,
       sumIf(records, stage = 'verified') AS messages,
       sumIf(records, stage = 'delivered') AS deliveries,
       sumIf(records, stage = 'delivery_failed') AS failures,
       sumIf(records, stage = 'dead_lettered') AS deadLetters,
       sumIf(records, stage = 'rejected') AS rejections,
       sumIf(records, stage = 'redelivered') AS redeliveries,
       sumIf(records, code != '') AS errors,
       sumIf(bytes, stage = 'verified') AS accepted_bytes,
       quantilesTDigestIfMerge(${levels})(latency_ms) AS latency
     FROM ${table} WHERE ${where.join(' AND ')}
     GROUP BY bucket${by.map((d) => `, ${d}`).join('')}
     ORDER BY bucket${by.map((d) => `, ${d}`).join('')}`,
    params);
  return rows.map((row) => {
    const latency = (row.latency as (number | null)[]).map((v) => (v === null || Number.isNaN(v) ? null : Math.round(Number(v))));
    const n = (key: string) => Number(row[key] ?? 0);
    const attempts = n('messages') + n('rejections');
    return {
      bucket: isoTime(String(row.bucket)),
      ...Object.fromEntries(by.map((dimension) => [dimension, String(row[dimension])])),
      records: n('all_records'), messages: n('messages'), deliveries: n('deliveries'), failures: n('failures'), deadLetters: n('deadLetters'),
      rejections: n('rejections'), redeliveries: n('redeliveries'), errors: n('errors'), bytes: n('accepted_bytes'),
      errorRate: attempts === 0 ? 0 : (n('rejections') + n('deadLetters')) / attempts,
      latencyP50Ms: latency[0] ?? null, latencyP90Ms: latency[1] ?? null, latencyP95Ms: latency[2] ?? null, latencyP99Ms: latency[3] ?? null,
    };
  });
}

/** Trends over months or years: the same rows as traffic, one per month or year. */
export function trend(store: Store, query: Omit<StatsQuery, 'grain'> & { grain: 'month' | 'year' }): Promise<TrafficRow[]> {
  return traffic(store, query);
}

export interface TalkerRow { partner: string; messages: number; bytes: number; deliveries: number; errors: number }

/** The partners that sent (`sender`) or received (`receiver`) the most messages in a period. */
export async function topTalkers(store: Store, query: { since: string; until: string; side: 'sender' | 'receiver'; limit?: number }): Promise<TalkerRow[]> {
  // A sender's messages are its accepted submissions; a receiver's are its first receipts (a topic's copies count once each).
  const stage = query.side === 'sender' ? 'verified' : 'delivered';
  const rows = await store.query<Omit<TalkerRow, 'bytes'> & { partner_bytes: number }>(
    `SELECT partner, sumIf(records, stage = {stage:String}) AS messages, sumIf(bytes, stage = {stage:String}) AS partner_bytes,
       sumIf(records, stage = 'delivered') AS deliveries, sumIf(records, code != '') AS errors
     FROM stats_partner_daily
     WHERE day >= toStartOfDay(toDateTime64({since:String}, 3, 'UTC')) AND day < toDateTime64({until:String}, 3, 'UTC')
       AND side = {side:String} AND partner != ''
     GROUP BY partner ORDER BY messages DESC, partner LIMIT {limit:UInt32}`,
    { since: time(query.since), until: time(query.until), side: query.side, stage, limit: query.limit ?? 10 });
  return rows.map((row) => ({ partner: row.partner, messages: Number(row.messages), bytes: Number(row.partner_bytes), deliveries: Number(row.deliveries), errors: Number(row.errors) }));
}

/** CSV (RFC 4180) of any rows these functions return: a header of the first row's keys, fields quoted when needed. */
export function toCsv(rows: readonly object[]): string {
  if (rows.length === 0) return '';
  const columns = Object.keys(rows[0]!);
  const field = (value: unknown): string => {
    const text = value === null || value === undefined ? '' : Array.isArray(value) ? value.join(' ') : String(value);
    // A leading = + - @ would be read as a formula by spreadsheets: quoted and prefixed, it stays text.
    const safe = /^[=+\-@]/.test(text) && Number.isNaN(Number(text)) ? `'${text}` : text;
    return /[",\r\n]/.test(safe) || safe !== text ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return `${[columns.join(','), ...rows.map((row) => columns.map((column) => field((row as Record<string, unknown>)[column])).join(','))].join('\r\n')}\r\n`;
}
