// Types and helpers shared by both Store backends and by the chDB owner process.
// Nothing here loads chDB or @clickhouse/client: the parent of an embedded store must not load chDB at all.

/** The hub's ClickHouse access: embedded chDB (in a child process) or a ClickHouse server. */
export interface Store {
  readonly backend: 'chdb' | 'server';
  /** Insert rows given as JSONEachRow lines (each string one JSON object), in one insert. */
  insert(table: string, rows: string[]): Promise<void>;
  /** Run a query and return its rows (JSONEachRow). `{name:Type}` placeholders are bound server-side from `params`. */
  query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Run a statement whose result is not needed (DDL, INSERT … SELECT, ALTER …). */
  command(sql: string, params?: Record<string, unknown>): Promise<void>;
  /** Drain first: stop accepting calls, await running calls, close the connection (embedded: drainPending, then the owner exits). Idempotent. */
  close(): Promise<void>;
  /** Current state, for health checks and logs. */
  health(): StoreHealth;
}

export interface StoreHealth {
  backend: 'chdb' | 'server';
  /** `ok`: serving; `restarting`: the chDB owner crashed and is being restarted; `stopped`: closed or the owner was stopped; `failed`: gave up. */
  state: 'ok' | 'restarting' | 'stopped' | 'failed';
  /** Calls sent and not yet answered. */
  inFlight: number;
  /** Embedded only: pid of the chDB owner process. */
  ownerPid?: number;
  /** Embedded only: how many times the owner was restarted after a crash. */
  restarts: number;
  lastError?: string;
}

export interface StoreOptions {
  /** Embedded chDB data folder (used when no `url` is given). */
  dataDir?: string;
  /** ClickHouse server URL (http(s)://host:port); when set, no chDB is used. */
  url?: string;
  /** Database holding the hub's tables; created if missing. Default `swx`. */
  database?: string;
  username?: string;
  password?: string;
  /** `max_execution_time` (seconds) put on every query, insert and command, so that a drain is bounded. Default 60. */
  maxExecutionTimeSec?: number;
  /** Embedded only: restart the owner process when it crashes (pending calls still fail). Default true. */
  restartOnCrash?: boolean;
  /** Embedded only: how long to wait for the owner to open the data folder. Default 60 s. */
  openTimeoutMs?: number;
  /**
   * Embedded only: how the owner inserts. `raw` (default): rows joined into one Buffer, chDB's raw JSONEachRow insert
   * (`connection.chdb.rawInsert`); `client`: `client.insert` with the strings passed through. Measured through the store,
   * `raw` was ~15 % faster (10k-row batches of 1.36 KB rows); in-process the two were within noise.
   */
  insertPath?: InsertPath;
  /** Notified of owner exits, restarts and similar events (for logs and metrics). */
  onEvent?: (event: StoreEvent) => void;
}

export type InsertPath = 'raw' | 'client';

export type StoreEvent =
  | { type: 'owner-started'; pid: number; restarts: number }
  | { type: 'owner-exited'; pid: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean; failedCalls: number }
  | { type: 'owner-stopped'; pid: number; reason: string }
  | { type: 'owner-restart-failed'; error: string }
  | { type: 'migration-applied'; id: string };

export type StoreErrorCode =
  | 'STORE_CLOSED' // close() was called, or the owner was stopped (SIGTERM)
  | 'OWNER_EXITED' // the chDB owner process died while the call was pending
  | 'OWNER_UNAVAILABLE' // the owner crashed and could not be restarted
  | 'DATA_DIR_LOCKED' // another process holds the chDB data folder
  | 'OPEN_FAILED'
  | 'QUERY_FAILED' // ClickHouse refused or failed the statement (see clickhouseCode/type)
  | 'INVALID_ARGUMENT'
  | 'MIGRATION_CHANGED';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** ClickHouse error code (e.g. '60' for UNKNOWN_TABLE), when ClickHouse produced the error. */
  readonly clickhouseCode?: string;
  /** ClickHouse error type (e.g. 'UNKNOWN_TABLE'). */
  readonly type?: string;
  constructor(code: StoreErrorCode, message: string, extra?: { clickhouseCode?: string; type?: string; cause?: unknown }) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'StoreError';
    this.code = code;
    if (extra?.clickhouseCode !== undefined) this.clickhouseCode = extra.clickhouseCode;
    if (extra?.type !== undefined) this.type = extra.type;
  }
}

/** Plain-data form of an error, as it crosses the IPC channel. */
export interface WireError {
  code: StoreErrorCode;
  message: string;
  clickhouseCode?: string;
  type?: string;
}

export function toWireError(err: unknown, fallback: StoreErrorCode = 'QUERY_FAILED'): WireError {
  if (err instanceof StoreError) {
    return { code: err.code, message: err.message, clickhouseCode: err.clickhouseCode, type: err.type };
  }
  const e = err as { message?: unknown; code?: unknown; type?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // @clickhouse/client's ClickHouseError carries the numeric code as a string and the type name.
  const clickhouseCode = typeof e?.code === 'string' && /^\d+$/.test(e.code) ? e.code : undefined;
  const type = typeof e?.type === 'string' ? e.type : undefined;
  return { code: fallback, message, clickhouseCode, type };
}

export function fromWireError(w: WireError, context?: string): StoreError {
  return new StoreError(w.code, context ? `${context}: ${w.message}` : w.message, { clickhouseCode: w.clickhouseCode, type: w.type });
}

// ---- IPC protocol between the parent and the chDB owner --------------------------------------

export type OwnerRequest =
  | { id: number; op: 'open'; dataDir: string; database: string; maxExecutionTimeSec: number; insertPath: InsertPath }
  /** A large insert travels as parts (each up to ~INSERT_PART_CHARS), then the insert itself with the last rows. */
  | { id: number; op: 'insert-part'; rows: string[] }
  | { id: number; op: 'insert'; table: string; rows: string[] }
  | { id: number; op: 'query'; sql: string; params?: Record<string, unknown> }
  | { id: number; op: 'command'; sql: string; params?: Record<string, unknown> }
  | { id: number; op: 'close' };

export type OwnerReply =
  | { id: number; ok: true; rows?: unknown[] }
  | { id: number; ok: false; error: WireError }
  /** Sent unprompted before the owner exits by itself (SIGTERM): no restart, the store is stopped. */
  | { id: 0; op: 'stopping'; reason: string };

/**
 * Serialising a message for IPC copies it on the sender's main thread (v8 serializer, then Buffer.concat): a 13 MB
 * batch blocked the parent's event loop 25-60 ms in one piece. Sent as parts of this many characters, with the
 * event loop free between parts, no single block is longer than about a millisecond.
 */
export const INSERT_PART_CHARS = 512 * 1024;

// ---- helpers ----------------------------------------------------------------------------------

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function assertDatabaseName(name: string): void {
  if (!IDENT.test(name)) throw new StoreError('INVALID_ARGUMENT', `invalid database name ${JSON.stringify(name)}: use letters, digits and _`);
}

export function assertTableName(name: string): void {
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw new StoreError('INVALID_ARGUMENT', `invalid table name ${JSON.stringify(name)}: use [database.]table with letters, digits and _`);
  }
}

/** Settings put on every call, identical on both backends so that the same SQL gives the same rows. */
export function baseSettings(maxExecutionTimeSec: number): Record<string, number> {
  return {
    max_execution_time: maxExecutionTimeSec,
    // 64-bit integers come back as JSON numbers on both backends (the default differs between versions).
    output_format_json_quote_64bit_integers: 0,
  };
}

/** Extra settings on inserts: accept ISO 8601 timestamps (`2024-01-02T03:04:05.678Z`) as well as ClickHouse's own format. */
export const insertSettings = { date_time_input_format: 'best_effort' } as const;

/** `client.query` appends `FORMAT JSONEachRow`; a trailing semicolon would break that. */
export function trimSql(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

export function isPlainParams(params: unknown): params is Record<string, unknown> | undefined {
  return params === undefined || (typeof params === 'object' && params !== null && !Array.isArray(params));
}
