// Where the console's audit entries go: every change made through the API, every refused sign-in and every lockout.
// The hub wires a sink: the ClickHouse audit log (dashboards/audit.ts) in the process that holds the store, and
// AuditFile, a hash-chained JSON-lines file of its own, in a process that does not.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditLog } from './audit.ts';

export interface AuditEntry {
  /** The user (or `local-operator`, the holder of the operator token; `anonymous` before a sign-in). */
  actor: string;
  /** The role the route was allowed under. */
  role: string;
  /** What was done: the route (`PUT /api/partners/:partner`) or the event (`session.refused`, `session.lockout`). */
  action: string;
  /** What it was done to: `partners/CUSTOMS`, `users/alice`. */
  target: string;
  before: unknown;
  after: unknown;
  reason?: string;
}

export interface AuditSink {
  append(entry: AuditEntry): Promise<void>;
}

/** The ClickHouse audit log as a sink: the states before and after as JSON text, '' for none. */
export function auditLogSink(log: AuditLog): AuditSink {
  const json = (value: unknown) => (value === undefined || value === null ? '' : JSON.stringify(value));
  return {
    async append(entry) {
      await log.append({ ...entry, before: json(entry.before), after: json(entry.after), reason: entry.reason ?? '' });
    },
  };
}

/**
 * A JSON line per entry, each with the digest of the line before it (`prev`) and its own (`hash`): a line changed or
 * removed breaks the chain from there on. One file per hub process, as each process chains its own evidence.
 */
export class AuditFile implements AuditSink {
  private last: Promise<string>;

  constructor(readonly path: string, private readonly node: string) {
    this.last = readFile(path, 'utf8').then(
      (text) => (JSON.parse(text.trimEnd().split('\n').at(-1) || '{}') as { hash?: string }).hash ?? '',
      () => '',
    );
  }

  append(entry: AuditEntry): Promise<void> {
    const previous = this.last;
    const written = previous.then(async (prev) => {
      const record = { at: new Date().toISOString(), node: this.node, ...entry, before: entry.before ?? null, after: entry.after ?? null, prev };
      const hash = createHash('sha256').update(JSON.stringify(record)).digest('hex');
      await mkdir(dirname(this.path), { recursive: true });
      await appendFile(this.path, `${JSON.stringify({ ...record, hash })}\n`, { mode: 0o600 });
      return hash;
    });
    // A failed write leaves the chain where it was for the next entry; the caller hears of the failure.
    this.last = written.catch(() => previous);
    return written.then(() => undefined);
  }
}

/** Checks a chain AuditFile wrote: each line's hash is the digest of the rest of it, and `prev` is the line before's. */
export function auditChainBreak(text: string): string | undefined {
  let prev = '';
  for (const [index, line] of text.trimEnd().split('\n').filter(Boolean).entries()) {
    const { hash, ...record } = JSON.parse(line) as { hash: string; prev: string };
    if (record.prev !== prev) return `line ${index + 1}: prev is not the hash of the line before`;
    if (createHash('sha256').update(JSON.stringify(record)).digest('hex') !== hash) return `line ${index + 1}: hash does not match the line`;
    prev = hash;
  }
  return undefined;
}
