// Schema migrations, run by openStore on both backends before it resolves.
//
// Rules: append only (never edit or reorder an applied migration: its checksum is recorded and checked);
// every statement idempotent (`IF NOT EXISTS` …), because a crash between applying a migration and recording it
// runs it again, and two hubs starting at once against one server may both apply it.
// Table names are unqualified: the store's database is current on both backends (created before migrating).
import { createHash } from 'node:crypto';
import { StoreError, type Store } from './common.ts';

export interface Migration {
  /** Sortable, unique, never reused: `NNNN_name`. */
  id: string;
  /** One statement, or several run in order (ClickHouse takes one statement per request). */
  sql: string | readonly string[];
}

// ---- the SELECTs behind the search and statistics views (each also copies existing evidence in once) ----------
// Their text is part of the checksums of the migrations that use them: change a view through a new migration, never here.

/** The stages that open a message's life: one per submission. */
const firstStages = `('verified', 'rejected', 'answered', 'query_failed')`;

const messageKeysSelect = `SELECT key_pair.2 AS key, key_pair.1 AS key_kind, from_partner, message_id, at
FROM evidence ARRAY JOIN [('message', message_id), ('conversation', conversation_id), ('ref_to', ref_to), ('file', file_name), ('sha256', sha256)] AS key_pair
WHERE stage IN ${firstStages} AND key_pair.2 != ''`;

const messagesSelect = `SELECT at, from_partner, message_id, to_partner, conversation_id, ref_to, file_name, service, action, protocol, size, sha256,
  stage AS outcome, code
FROM evidence WHERE stage IN ${firstStages}`;

/** A record without a code must never win last_code: it counts as the epoch. */
const messageStateSelect = `SELECT from_partner, message_id, min(at) AS first_at, max(at) AS last_at,
  argMaxState(stage, at) AS last_stage,
  argMaxState(code, if(code = '', toDateTime64(0, 3, 'UTC'), at)) AS last_code,
  groupUniqArrayIf(to_partner, stage = 'routed' AND to_partner != '') AS receivers,
  groupUniqArrayIf(to_partner, stage IN ('delivered', 'redelivered')) AS delivered_to,
  groupUniqArrayIf(to_partner, stage = 'delivery_failed') AS failed_to,
  groupUniqArrayIf(to_partner, stage = 'dead_lettered') AS dead_to,
  count() AS records, countIf(stage = 'rejected') AS rejected, countIf(stage = 'redelivered') AS redelivered,
  countIf(stage = 'resent') AS resent, countIf(stage = 'answered') AS answered, countIf(stage = 'query_failed') AS query_failed
FROM evidence WHERE message_id != '' AND stage != 'refused_unauthenticated'`;

/** Quantile levels of the latency states; a query merges them with the same levels (dashboards/stats.ts). */
export const latencyLevels = [0.5, 0.9, 0.95, 0.99] as const;
const latencyType = `AggregateFunction(quantilesTDigestIf(${latencyLevels.join(', ')}), Float64, UInt8)`;

/**
 * The statistics rollups. Without partners, a bucket holds a row per service, protocol, stage and code: a year of days
 * is a few hundred thousand rows at most, whatever the traffic. By partner, each record counts twice, once on its
 * sender's side and once on its receiver's (`side`), so that "by agency" needs no pair of columns.
 */
const rollups = [
  { table: 'stats_hourly', time: 'hour', bucket: 'toStartOfHour(at)', partners: false },
  { table: 'stats_daily', time: 'day', bucket: 'toDateTime(toStartOfDay(at))', partners: false },
  { table: 'stats_partner_daily', time: 'day', bucket: 'toDateTime(toStartOfDay(at))', partners: true },
] as const;

/** Per minute, for the last weeks only: what "traffic now" reads; older minutes leave with the TTL, the hours stay. */
const minuteRollup = { table: 'stats_minutely', time: 'minute', bucket: 'toStartOfMinute(at)', partners: false, ttlDays: 35 } as const;

type Rollup = (typeof rollups)[number] | typeof minuteRollup;

const rollupKey = (r: Rollup) => [r.time, ...(r.partners ? ['side', 'partner'] : []), 'service', 'protocol', 'stage', 'code'].join(', ');

function rollupTable(r: Rollup): string {
  return `CREATE TABLE IF NOT EXISTS ${r.table} (
  ${r.time} DateTime('UTC'),${r.partners ? `
  side LowCardinality(String),
  partner LowCardinality(String),` : ''}
  service LowCardinality(String),
  protocol LowCardinality(String),
  stage LowCardinality(String),
  code LowCardinality(String),
  records SimpleAggregateFunction(sum, UInt64),
  bytes SimpleAggregateFunction(sum, UInt64),
  latency_ms ${latencyType}
) ENGINE = AggregatingMergeTree PARTITION BY toYear(${r.time}) ORDER BY (${rollupKey(r)})${'ttlDays' in r ? `
TTL ${r.time} + INTERVAL ${r.ttlDays} DAY` : ''}`;
}

/** The rollup's rows of the evidence read. */
function rollupSelect(r: Rollup): string {
  return `SELECT ${r.bucket} AS ${r.time},${r.partners ? ' side_partner.1 AS side, side_partner.2 AS partner,' : ''} service, protocol, stage, code,
  count() AS records, sum(size) AS bytes,
  quantilesTDigestIfState(${latencyLevels.join(', ')})(toFloat64(dateDiff('millisecond', received_at, at)), stage = 'delivered' AND received_at > toDateTime64(0, 3, 'UTC')) AS latency_ms
FROM evidence${r.partners ? " ARRAY JOIN [('sender', from_partner), ('receiver', to_partner)] AS side_partner" : ''}
GROUP BY ${rollupKey(r)}`;
}

/**
 * Copies the evidence already archived into a view's table, before the view exists. Emptied first, so that a run
 * cut short and run again copies everything once. A large store's copy may take long: it runs at start, before the
 * hub takes traffic, with an hour allowed.
 */
function copyIn(table: string, select: string): string[] {
  return [`TRUNCATE TABLE IF EXISTS ${table}`, `INSERT INTO ${table} ${select} SETTINGS max_execution_time = 3600`];
}

/** The delivery attempts among evidence records, latency from the message's receipt (-1 when unknown). */
const deliveryAttemptsSelect = `SELECT at, to_partner, from_partner, message_id, protocol, stage AS outcome, code,
  if(received_at > toDateTime64(0, 3, 'UTC'), dateDiff('millisecond', received_at, at), -1) AS latency_ms
FROM evidence WHERE stage IN ('delivered', 'delivery_failed', 'dead_lettered', 'redelivered')`;

export const MIGRATIONS_TABLE = 'swx_migrations';

export const migrations: readonly Migration[] = [
  {
    // Evidence records of every message state change (engine/evidence.ts). (stream, seq) names the JetStream
    // message a record came from (seq = stream sequence * 256 + index), so a redelivery is recognised; chain is
    // the position in the hash chain (prev_hash, record_hash); batch_id and proof are for the trust core's
    // Merkle batches.
    id: '0001_evidence',
    sql: `CREATE TABLE IF NOT EXISTS evidence (
  stream LowCardinality(String),
  seq UInt64,
  chain UInt64,
  id String,
  message_id String,
  conversation_id String,
  stage LowCardinality(String),
  at DateTime64(3, 'UTC'),
  from_partner LowCardinality(String),
  to_partner LowCardinality(String),
  service LowCardinality(String),
  action LowCardinality(String),
  protocol LowCardinality(String),
  code LowCardinality(String),
  detail String,
  size UInt64,
  sha256 String,
  raw String,
  raw_ref String,
  signature String,
  node LowCardinality(String),
  prev_hash String,
  record_hash String,
  batch_id String,
  proof String,
  INDEX idx_message message_id TYPE bloom_filter GRANULARITY 4
) ENGINE = ReplacingMergeTree ORDER BY (stream, seq)`,
  },
  {
    // Time-stamps of evidence. Each archive write is a block: a Merkle tree over its records' hashes (the records
    // carry batch_id = block_id and their inclusion proof). Blocks are stamped together: one RFC 3161 token over the
    // root of a second tree whose leaves are the block roots; stamp_proof proves a block root in that tree, and tsr
    // is the TimeStampResp (DER, base64) whose imprint is SHA-256(stamp_root bytes).
    id: '0002_evidence_batches',
    sql: `CREATE TABLE IF NOT EXISTS evidence_batches (
  block_id String,
  node LowCardinality(String),
  first_chain UInt64,
  last_chain UInt64,
  records UInt32,
  root String,
  written_at DateTime64(3, 'UTC'),
  stamp_id String,
  stamp_root String,
  stamp_proof String,
  tsr String,
  gen_time DateTime64(3, 'UTC'),
  tsa String
) ENGINE = ReplacingMergeTree ORDER BY block_id`,
  },
  {
    // What message search and latency need of every record, outside the hash chain (recordHash covers
    // hashedColumns only): ref_to is the Swx-Ref-To the sender signed, received_at the receipt time of the message a
    // record is about (a delivery's latency is at - received_at), file_name the name a file-based protocol carried.
    // Each repeats a fact of the message already proven by its hashed records; an empty value or zero means unknown.
    id: '0003_evidence_search_columns',
    sql: [
      `ALTER TABLE evidence ADD COLUMN IF NOT EXISTS ref_to String DEFAULT ''`,
      `ALTER TABLE evidence ADD COLUMN IF NOT EXISTS file_name String DEFAULT ''`,
      `ALTER TABLE evidence ADD COLUMN IF NOT EXISTS received_at DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC')`,
    ],
  },
  {
    // Message search (dashboards/search.ts), kept by materialized views as evidence is inserted, so that no search
    // scans evidence. A message is (from_partner, message_id): senders choose their ids. Its first record is
    // `verified` (accepted), `rejected`, `answered` or `query_failed` (a query): one per submission.
    // - message_keys: every id a message can be looked up by, sorted by the id.
    // - messages: one row per message with the facts of its first record, sorted by time for keyset paging.
    // - message_state: what became of a message, merged from all of its records, sorted by (from_partner, message_id).
    // Evidence already archived is copied in once, before the views exist (on a fresh store there is none; see copyIn).
    // Granules are small: these tables answer point lookups (a page's 50 messages), and a lookup reads whole granules;
    // message_state's aggregate states are the dearest to read (with 8192 rows a granule, a page cost ~350 ms at 300k
    // messages, most of it deserialising states of messages not asked for).
    id: '0004_message_search',
    sql: [
      `CREATE TABLE IF NOT EXISTS message_keys (
  key String,
  key_kind LowCardinality(String),
  from_partner LowCardinality(String),
  message_id String,
  at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY (key, key_kind, from_partner, message_id) SETTINGS index_granularity = 1024`,
      `CREATE TABLE IF NOT EXISTS messages (
  at DateTime64(3, 'UTC'),
  from_partner LowCardinality(String),
  message_id String,
  to_partner LowCardinality(String),
  conversation_id String,
  ref_to String,
  file_name String,
  service LowCardinality(String),
  action LowCardinality(String),
  protocol LowCardinality(String),
  size UInt64,
  sha256 String,
  outcome LowCardinality(String),
  code LowCardinality(String),
  INDEX idx_from from_partner TYPE set(1024) GRANULARITY 4,
  INDEX idx_to to_partner TYPE set(1024) GRANULARITY 4,
  INDEX idx_service service TYPE set(1024) GRANULARITY 4,
  INDEX idx_protocol protocol TYPE set(64) GRANULARITY 4
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(at) ORDER BY (at, from_partner, message_id) SETTINGS index_granularity = 1024`,
      `CREATE TABLE IF NOT EXISTS message_state (
  from_partner LowCardinality(String),
  message_id String,
  first_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
  last_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
  last_stage AggregateFunction(argMax, LowCardinality(String), DateTime64(3, 'UTC')),
  last_code AggregateFunction(argMax, LowCardinality(String), DateTime64(3, 'UTC')),
  receivers SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
  delivered_to SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
  failed_to SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
  dead_to SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
  records SimpleAggregateFunction(sum, UInt64),
  rejected SimpleAggregateFunction(sum, UInt64),
  redelivered SimpleAggregateFunction(sum, UInt64),
  resent SimpleAggregateFunction(sum, UInt64),
  answered SimpleAggregateFunction(sum, UInt64),
  query_failed SimpleAggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree ORDER BY (from_partner, message_id) SETTINGS index_granularity = 256`,
      ...copyIn('message_keys', messageKeysSelect),
      ...copyIn('messages', messagesSelect),
      ...copyIn('message_state', `${messageStateSelect} GROUP BY from_partner, message_id`),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS message_keys_mv TO message_keys AS ${messageKeysSelect}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS messages_mv TO messages AS ${messagesSelect}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS message_state_mv TO message_state AS ${messageStateSelect} GROUP BY from_partner, message_id`,
    ],
  },
  {
    // Statistics rollups (dashboards/stats.ts): per hour and per day by service, protocol, stage and code, and per day
    // by partner as well, kept by materialized views, so that a chart over a year reads rollup rows, not evidence.
    // Latency is from the message's receipt to the receiver's receipt (`delivered` records), as t-digest quantile
    // states. Rollups keep their rows when evidence expires.
    id: '0005_statistics',
    sql: [
      ...rollups.map(rollupTable),
      ...rollups.flatMap((r) => copyIn(r.table, rollupSelect(r))),
      ...rollups.map((r) => `CREATE MATERIALIZED VIEW IF NOT EXISTS ${r.table}_mv TO ${r.table} AS ${rollupSelect(r)}`),
    ],
  },
  {
    // The console's audit log (dashboards/audit.ts): who changed what, hash-chained per node as evidence is.
    id: '0006_audit',
    sql: `CREATE TABLE IF NOT EXISTS audit (
  node LowCardinality(String),
  chain UInt64,
  at DateTime64(3, 'UTC'),
  actor String,
  role LowCardinality(String),
  action LowCardinality(String),
  target String,
  before String,
  after String,
  reason String,
  prev_hash String,
  record_hash String
) ENGINE = ReplacingMergeTree ORDER BY (node, chain)`,
  },
  {
    // The per-minute rollup of the last weeks, kept by its own view like the others (dashboards/stats.ts, grain minute).
    id: '0007_minute_statistics',
    sql: [
      rollupTable(minuteRollup),
      ...copyIn(minuteRollup.table, `${rollupSelect(minuteRollup)} HAVING minute >= now() - INTERVAL ${minuteRollup.ttlDays} DAY`),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${minuteRollup.table}_mv TO ${minuteRollup.table} AS ${rollupSelect(minuteRollup)}`,
    ],
  },
  {
    // Every delivery attempt, one row each (a receipt, a refusal, a dead letter, a repeat's receipt), by receiver and
    // time: a partner's delivery history without reading evidence.
    id: '0008_delivery_attempts',
    sql: [
      `CREATE TABLE IF NOT EXISTS delivery_attempts (
  at DateTime64(3, 'UTC'),
  to_partner LowCardinality(String),
  from_partner LowCardinality(String),
  message_id String,
  protocol LowCardinality(String),
  outcome LowCardinality(String),
  code LowCardinality(String),
  latency_ms Int64
) ENGINE = ReplacingMergeTree PARTITION BY toYear(at) ORDER BY (to_partner, at, from_partner, message_id, outcome)`,
      ...copyIn('delivery_attempts', deliveryAttemptsSelect),
      `CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_attempts_mv TO delivery_attempts AS ${deliveryAttemptsSelect}`,
    ],
  },
];

function statements(m: Migration): readonly string[] {
  return typeof m.sql === 'string' ? [m.sql] : m.sql;
}

/** Checksum of a migration's statements, whitespace-insensitive at line ends. */
export function migrationChecksum(m: Migration): string {
  const text = statements(m)
    .map((s) => s.trim().replace(/[ \t]+$/gm, ''))
    .join('\n;\n');
  return createHash('sha256').update(text).digest('hex');
}

/** SQL creating the record of applied migrations (ReplacingMergeTree: two hubs recording the same id collapse). */
export const migrationsTableSql = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
  id String,
  checksum String,
  applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY id`;

/** Apply the migrations not yet recorded, in order; returns the ids applied now. */
export async function migrate(
  store: Pick<Store, 'query' | 'command'>,
  list: readonly Migration[] = migrations,
  onApplied?: (id: string) => void,
): Promise<string[]> {
  const ids = list.map((m) => m.id);
  for (let i = 1; i < ids.length; i++) {
    if (ids[i]! <= ids[i - 1]!) throw new StoreError('INVALID_ARGUMENT', `migration ids must be unique and increasing: ${ids[i - 1]} then ${ids[i]}`);
  }
  await store.command(migrationsTableSql);
  const rows = await store.query<{ id: string; checksum: string }>(`SELECT id, any(checksum) AS checksum FROM ${MIGRATIONS_TABLE} GROUP BY id`);
  const applied = new Map(rows.map((r) => [r.id, r.checksum]));
  const done: string[] = [];
  for (const m of list) {
    const checksum = migrationChecksum(m);
    const recorded = applied.get(m.id);
    if (recorded !== undefined) {
      if (recorded !== checksum) {
        throw new StoreError(
          'MIGRATION_CHANGED',
          `migration ${m.id} was changed after it was applied (checksum ${recorded.slice(0, 12)}… recorded, ${checksum.slice(0, 12)}… now): add a new migration instead of editing an applied one`,
        );
      }
      continue;
    }
    for (const sql of statements(m)) await store.command(sql);
    await store.command(`INSERT INTO ${MIGRATIONS_TABLE} (id, checksum) SELECT {id:String}, {checksum:String}`, { id: m.id, checksum });
    done.push(m.id);
    onApplied?.(m.id);
  }
  return done;
}
