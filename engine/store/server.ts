// Server backend: a ClickHouse server (or cluster endpoint) through @clickhouse/client, in this process.
import type { ClickHouseClient } from '@clickhouse/client';
import {
  StoreError,
  assertTableName,
  baseSettings,
  insertSettings,
  isPlainParams,
  toWireError,
  trimSql,
  type Store,
  type StoreHealth,
} from './common.ts';

export interface ServerOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
  maxExecutionTimeSec: number;
}

function wrap(op: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const w = toWireError(err);
  return new StoreError(w.code, `${op} failed: ${w.message}`, { clickhouseCode: w.clickhouseCode, type: w.type, cause: err });
}

export class ServerStore implements Store {
  readonly backend = 'server' as const;
  private closing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly settings: Record<string, number>;

  private constructor(
    private readonly client: ClickHouseClient,
    opts: ServerOptions,
  ) {
    this.settings = baseSettings(opts.maxExecutionTimeSec);
  }

  static async open(opts: ServerOptions): Promise<ServerStore> {
    // Loaded here so that an embedded store's process does not load the HTTP client it does not use.
    const { createClient, ClickHouseLogLevel } = await import('@clickhouse/client');
    // Failures reach the caller as StoreErrors with the full detail; the client's own console logging would say it twice.
    const log = { level: ClickHouseLogLevel.OFF };
    const auth = { ...(opts.username !== undefined ? { username: opts.username } : {}), ...(opts.password !== undefined ? { password: opts.password } : {}) };
    // The server refuses any request naming a database that does not exist yet: create it without naming it.
    const admin = createClient({ url: opts.url, ...auth, application: 'swx', log });
    try {
      await admin.command({ query: `CREATE DATABASE IF NOT EXISTS \`${opts.database}\``, clickhouse_settings: baseSettings(opts.maxExecutionTimeSec) });
    } catch (err) {
      throw new StoreError('OPEN_FAILED', `could not reach ClickHouse at ${redact(opts.url)}: ${(err as Error).message}`, { cause: err });
    } finally {
      await admin.close();
    }
    const client = createClient({
      url: opts.url,
      database: opts.database,
      ...auth,
      application: 'swx',
      log,
      // Leave room for max_execution_time before the HTTP request itself gives up.
      request_timeout: (opts.maxExecutionTimeSec + 30) * 1000,
      json: { parse: JSON.parse, stringify: (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v)) },
    });
    return new ServerStore(client, opts);
  }

  private track<T>(op: string, run: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new StoreError('STORE_CLOSED', 'the store is closed'));
    const p = run().catch((err: unknown) => {
      throw wrap(op, err);
    });
    this.inFlight.add(p);
    const done = (): void => void this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  insert(table: string, rows: string[]): Promise<void> {
    try {
      assertTableName(table);
    } catch (err) {
      return Promise.reject(err);
    }
    if (rows.length === 0) return Promise.resolve();
    // Strings pass through the client's JSON encoder unchanged (see `json.stringify` above), one per line.
    return this.track('insert', async () => {
      await this.client.insert({ table, values: rows, format: 'JSONEachRow', clickhouse_settings: { ...this.settings, ...insertSettings } });
    });
  }

  query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    if (!isPlainParams(params)) return Promise.reject(new StoreError('INVALID_ARGUMENT', 'params must be an object'));
    return this.track('query', async () => {
      const rs = await this.client.query({ query: trimSql(sql), format: 'JSONEachRow', query_params: params, clickhouse_settings: this.settings });
      return rs.json<T>();
    });
  }

  command(sql: string, params?: Record<string, unknown>): Promise<void> {
    if (!isPlainParams(params)) return Promise.reject(new StoreError('INVALID_ARGUMENT', 'params must be an object'));
    return this.track('command', async () => {
      await this.client.command({ query: sql, query_params: params, clickhouse_settings: this.settings });
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.client.close();
    })();
    return this.closing;
  }

  health(): StoreHealth {
    return { backend: 'server', state: this.closing ? 'stopped' : 'ok', inFlight: this.inFlight.size, restarts: 0 };
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
