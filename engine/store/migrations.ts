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
