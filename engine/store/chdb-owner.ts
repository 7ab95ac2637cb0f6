// The chDB owner: the one process that loads chDB and holds the data folder of an embedded store.
// Forked by engine/store/embedded.ts with `serialization: 'advanced'`; talks to its parent over IPC only
// (see OwnerRequest / OwnerReply in common.ts).
//
// Rules it keeps (see /work/shared/field-notes.md, chDB gotchas):
// - chDB lives on this process's main thread only, for the whole life of the process;
// - it never exits while a chDB call is running: shutdown drains (stop accepting, await running calls,
//   client.close(), drainPending()) and only then lets the process end;
// - it shuts down by itself when the parent goes away (IPC 'disconnect') and on SIGTERM;
// - every call carries max_execution_time, so a drain is bounded.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection, type ChdbConnection } from 'chdb/connection';
import { drainPending } from 'chdb';
import {
  StoreError,
  baseSettings,
  insertSettings,
  toWireError,
  trimSql,
  type InsertPath,
  type OwnerReply,
  type OwnerRequest,
} from './common.ts';

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

if (typeof process.send !== 'function') {
  process.stderr.write('chdb-owner: must be started with child_process.fork (no IPC channel)\n');
  process.exit(2);
}

// If the parent dies, our stderr pipe may break: never let that become an uncaught exception.
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});

let conn: ChdbConnection | undefined;
let client: ClickHouseClient | undefined;
let settings: Record<string, number> = {};
let insertPath: InsertPath = 'raw';
let accepting = true;
let shuttingDown: Promise<void> | undefined;
const running = new Set<Promise<unknown>>();
/** Rows of inserts still arriving in parts, by request id. */
const insertParts = new Map<number, string[][]>();

/** Send a reply; resolves once it was handed to the channel (or the parent is gone: then 'disconnect' handles it). */
function reply(msg: OwnerReply): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve(); // parent gone: nobody to answer
    process.send!(msg, undefined, {}, () => resolve());
  });
}

/** When opening fails, tell "another process holds this folder" apart from other failures. */
function explainOpenFailure(dataDir: string, err: unknown): StoreError {
  const message = err instanceof Error ? err.message : String(err);
  let holder: number | undefined;
  try {
    const status = readFileSync(join(dataDir, 'status'), 'utf8');
    const pid = Number(/^PID:\s*(\d+)/m.exec(status)?.[1]);
    if (pid && pid !== process.pid) {
      process.kill(pid, 0); // throws when no such process: then the status file is stale, not a lock
      holder = pid;
    }
  } catch {
    /* no status file, or a stale one */
  }
  if (holder !== undefined) {
    return new StoreError(
      'DATA_DIR_LOCKED',
      `chDB data folder ${dataDir} is in use by another process (pid ${holder}; chDB locks ${join(dataDir, 'status')}). ` +
        'One process at a time can open a data folder: stop the other hub, or give this one its own folder, or point it at a ClickHouse server.',
      { cause: err },
    );
  }
  return new StoreError('OPEN_FAILED', `could not open chDB data folder ${dataDir}: ${message}`, { cause: err });
}

async function open(req: Extract<OwnerRequest, { op: 'open' }>): Promise<void> {
  mkdirSync(req.dataDir, { recursive: true });
  try {
    conn = createChdbConnection({ path: req.dataDir });
  } catch (err) {
    throw explainOpenFailure(req.dataDir, err);
  }
  settings = baseSettings(req.maxExecutionTimeSec);
  insertPath = req.insertPath;
  client = createClient({
    // Same interface at run time; only the type declarations differ (client 1.23.1 bundles its own copy of
    // client-common's types, chdb is typed against @clickhouse/client-common 1.23.0).
    connection: conn as unknown as ClientConnection,
    // Rows arrive already serialised: pass strings through instead of JSON-encoding them again.
    json: { parse: JSON.parse, stringify: (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v)) },
  });
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${req.database}\``, clickhouse_settings: settings });
  // chDB ignores the client's `database` option; USE sticks to the session, so unqualified names resolve as on a server.
  await client.command({ query: `USE \`${req.database}\``, clickhouse_settings: settings });
}

async function insert(table: string, rows: string[]): Promise<void> {
  if (rows.length === 0) return;
  if (insertPath === 'raw') {
    // One buffer, handed to the engine without another copy; the engine parses it with its own parser.
    const body = Buffer.from(rows.join('\n'), 'utf8');
    await conn!.chdb.rawInsert({ table, values: body, format: 'JSONEachRow', settings: { ...settings, ...insertSettings } });
  } else {
    await client!.insert({ table, values: rows, format: 'JSONEachRow', clickhouse_settings: { ...settings, ...insertSettings } });
  }
}

async function handle(req: OwnerRequest): Promise<unknown[] | undefined> {
  switch (req.op) {
    case 'open':
      if (conn) throw new StoreError('INVALID_ARGUMENT', 'owner already open');
      await open(req);
      return undefined;
    case 'insert':
      await insert(req.table, req.rows);
      return undefined;
    case 'query': {
      const rs = await client!.query({ query: trimSql(req.sql), format: 'JSONEachRow', query_params: req.params, clickhouse_settings: settings });
      return await rs.json<unknown>();
    }
    case 'command':
      await client!.command({ query: req.sql, query_params: req.params, clickhouse_settings: settings });
      return undefined;
    case 'close':
    case 'insert-part':
      return undefined; // handled in onMessage
  }
}

function onMessage(req: OwnerRequest): void {
  if (req.op === 'insert-part') {
    const parts = insertParts.get(req.id);
    if (parts) parts.push(req.rows);
    else insertParts.set(req.id, [req.rows]);
    return;
  }
  if (req.op === 'insert') {
    const parts = insertParts.get(req.id);
    if (parts) {
      insertParts.delete(req.id);
      parts.push(req.rows);
      req = { ...req, rows: parts.flat() };
    }
  }
  if (req.op === 'close') {
    void shutdown('close requested')
      .then(() => reply({ id: req.id, ok: true }))
      .then(() => endProcess());
    return;
  }
  if (!accepting) {
    reply({ id: req.id, ok: false, error: { code: 'STORE_CLOSED', message: 'the chDB owner is shutting down' } });
    return;
  }
  if (req.op !== 'open' && !client) {
    reply({ id: req.id, ok: false, error: { code: 'INVALID_ARGUMENT', message: 'owner not open yet' } });
    return;
  }
  const p = handle(req).then(
    (rows) => reply(rows === undefined ? { id: req.id, ok: true } : { id: req.id, ok: true, rows }),
    (err) => reply({ id: req.id, ok: false, error: toWireError(err, req.op === 'open' ? 'OPEN_FAILED' : 'QUERY_FAILED') }),
  );
  running.add(p);
  void p.finally(() => running.delete(p));
}

/** Drain: stop accepting, await running calls, close, drainPending. Afterwards the process may end. */
function shutdown(reason: string): Promise<void> {
  shuttingDown ??= (async () => {
    accepting = false;
    while (running.size > 0) await Promise.allSettled([...running]);
    try {
      await client?.close();
    } catch (err) {
      process.stderr.write(`chdb-owner: close failed (${reason}): ${String(err)}\n`);
    }
    await drainPending();
    client = undefined;
    conn = undefined;
  })();
  return shuttingDown;
}

/** After a drain: drop the channel and let the process end (nothing native is outstanding any more). */
function endProcess(): void {
  if (process.connected) process.disconnect();
  // Exiting is safe now that nothing chDB runs; normally the process has ended by itself before this fires.
  setTimeout(() => process.exit(0), 2000).unref();
}

/** Shut down and end the process, once nothing native is outstanding. */
function shutdownAndExit(reason: string, notifyParent: boolean): void {
  const notified = notifyParent ? reply({ id: 0, op: 'stopping', reason }) : Promise.resolve();
  void Promise.all([notified, shutdown(reason)]).then(() => endProcess());
}

process.on('message', (msg) => onMessage(msg as OwnerRequest));
// Parent exited, crashed or closed the channel: drain and end.
process.on('disconnect', () => shutdownAndExit('parent disconnected', false));
process.on('SIGTERM', () => shutdownAndExit('SIGTERM', true));
// Ctrl-C reaches the whole process group; the parent decides when the store closes.
process.on('SIGINT', () => {});
