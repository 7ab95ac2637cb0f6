// The console's audit log: every change made through the console or its API, one row each in `audit`, hash-chained
// per node as evidence is (prev_hash, record_hash over the row's columns in a fixed order), so that a changed,
// removed or inserted row breaks the chain where it happened. The console API writes it; verifyAudit checks it.
import { hash } from 'node:crypto';
import type { Store } from '../engine/store/index.ts';

export interface AuditEntry {
  /** Who: a user name, or a token's owner. */
  actor: string;
  role: string;
  /** What was done, e.g. `partner.update`, `dlq.resend`, `user.disable`. */
  action: string;
  /** What it was done to, e.g. `partner:NTA`. */
  target: string;
  /** The state before and after (JSON), '' when there is none. */
  before: string;
  after: string;
  reason: string;
}

export interface AuditRecord extends AuditEntry { node: string; chain: number; at: string; prevHash: string; recordHash: string }

/** The columns a record's hash covers, in the order they are hashed. */
const hashedColumns = ['node', 'chain', 'at', 'actor', 'role', 'action', 'target', 'before', 'after', 'reason', 'prev_hash'] as const;
type AuditRow = Record<(typeof hashedColumns)[number], string | number> & { record_hash?: string };

/** SHA-256 (hex) of prev_hash followed by the JSON of the hashed columns in their order. */
export function auditHash(row: AuditRow): string {
  const ordered = Object.fromEntries(hashedColumns.map((column) => [column, row[column]]));
  return hash('sha256', `${row.prev_hash}${JSON.stringify(ordered)}`, 'hex');
}

/** Appends to one node's chain; appends from this process go in one at a time, so the chain is a single sequence. */
export class AuditLog {
  private chain = 0;
  private prevHash = '';
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: Store, readonly node: string) {}

  /** The log of `node`, continuing its chain from the last row stored. One process per node name writes it. */
  static async open(store: Store, node: string): Promise<AuditLog> {
    const log = new AuditLog(store, node);
    const [last] = await store.query<{ chain: number; record_hash: string }>(
      'SELECT chain, record_hash FROM audit FINAL WHERE node = {node:String} ORDER BY chain DESC LIMIT 1', { node });
    log.chain = last ? Number(last.chain) + 1 : 0;
    log.prevHash = last?.record_hash ?? '';
    return log;
  }

  /** Appends an entry; resolves with the stored record once the insert returned. */
  append(entry: AuditEntry, at = new Date()): Promise<AuditRecord> {
    const run = this.queue.then(() => this.appendNow(entry, at));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendNow(entry: AuditEntry, at: Date): Promise<AuditRecord> {
    const row: AuditRow = {
      node: this.node, chain: this.chain, at: at.toISOString().replace('T', ' ').replace('Z', ''),
      actor: entry.actor, role: entry.role, action: entry.action, target: entry.target, before: entry.before, after: entry.after, reason: entry.reason,
      prev_hash: this.prevHash,
    };
    const recordHash = auditHash(row);
    await this.store.insert('audit', [JSON.stringify({ ...row, record_hash: recordHash })]);
    const record: AuditRecord = { ...entry, node: this.node, chain: this.chain, at: at.toISOString(), prevHash: this.prevHash, recordHash };
    this.chain++;
    this.prevHash = recordHash;
    return record;
  }
}

export interface AuditVerdict {
  ok: boolean;
  /** Rows checked, over every node's chain. */
  records: number;
  /** The first broken place of each broken chain. */
  broken: { node: string; chain: number; reason: string }[];
}

const pageRows = 10_000;

/** Checks every node's chain from its first row: contiguous positions, each row's hash, each link to the row before. */
export async function verifyAudit(store: Store): Promise<AuditVerdict> {
  const nodes = await store.query<{ node: string }>('SELECT DISTINCT node FROM audit ORDER BY node');
  const verdict: AuditVerdict = { ok: true, records: 0, broken: [] };
  for (const { node } of nodes) {
    let expected = 0;
    let prevHash = '';
    let broken: string | undefined;
    for (;;) {
      const rows = await store.query<AuditRow & { record_hash: string }>(
        `SELECT node, chain, toString(at) AS at, actor, role, action, target, before, after, reason, prev_hash, record_hash
         FROM audit FINAL WHERE node = {node:String} AND chain >= {from:UInt64} ORDER BY chain LIMIT {limit:UInt32}`,
        { node, from: expected, limit: pageRows });
      for (const row of rows) {
        verdict.records++;
        const chain = Number(row.chain);
        if (chain !== expected) broken = `row ${expected} is missing (next is ${chain})`;
        else if (row.prev_hash !== prevHash) broken = 'prev_hash does not name the row before';
        else if (auditHash({ ...row, chain }) !== row.record_hash) broken = 'record_hash does not match the row';
        if (broken) { verdict.broken.push({ node, chain: expected, reason: broken }); break; }
        prevHash = row.record_hash;
        expected++;
      }
      if (broken || rows.length < pageRows) break;
    }
  }
  verdict.ok = verdict.broken.length === 0;
  return verdict;
}
