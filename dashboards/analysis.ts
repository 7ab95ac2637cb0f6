// The analysts' SQL sandbox: one SELECT, run read-only and held by ClickHouse's own limits, over an allow-list of
// tables. The tables a query reads come from ClickHouse's parse of it (EXPLAIN QUERY TREE, the same on chDB and a
// server), never from the SQL text. Limits are put on the query itself (a SETTINGS clause, with readonly=1 last so that
// nothing in the query can lift them): on chDB, settings given beside a query are SET on the whole session.
// On a ClickHouse server, also give the console a read-only user with grants on these tables only.
import type { Store } from '../engine/store/index.ts';

/** What analysts may read: the rollups and the message summaries, never evidence (payloads, signatures). */
export const analysisTables = ['stats_minutely', 'stats_hourly', 'stats_daily', 'stats_partner_daily', 'messages', 'message_state', 'delivery_attempts'] as const;
/** Readable without data: `SELECT 1` reads system.one; `numbers(N)` generates a series. */
const harmlessTables = ['system.one'];
const harmlessTableFunctions = ['numbers'];

export interface AnalysisLimits {
  maxExecutionTimeSec: number;
  maxResultRows: number;
  maxMemoryBytes: number;
}

export const defaultAnalysisLimits: AnalysisLimits = { maxExecutionTimeSec: 10, maxResultRows: 10_000, maxMemoryBytes: 1 << 30 };

/**
 * NOT_A_QUERY: not one SELECT ClickHouse could read; TABLE_REFUSED: it reads a table off the list; READONLY: ClickHouse
 * refused it in read-only mode while reading it (table functions that reach files or the network); LIMIT: stopped at a limit.
 */
export type AnalysisRefusalCode = 'SWX_SQL_NOT_A_QUERY' | 'SWX_SQL_TABLE_REFUSED' | 'SWX_SQL_READONLY' | 'SWX_SQL_LIMIT';

/** A query the sandbox would not run, or that ClickHouse stopped at a limit. */
export class AnalysisRefused extends Error {
  constructor(readonly code: AnalysisRefusalCode, message: string, readonly table?: string) {
    super(message);
    this.name = 'AnalysisRefused';
  }
}

export interface AnalysisResult { rows: Record<string, unknown>[]; tables: string[] }

/**
 * The settings every sandboxed query carries, in order; readonly=1 comes last, after which no setting may change.
 * `resultRows` differs for the EXPLAIN, whose lines max_result_rows would count too.
 */
function limitSettings(limits: AnalysisLimits, resultRows = limits.maxResultRows): [string, string | number][] {
  const int = (n: number, name: string) => {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer`);
    return n;
  };
  return [
    ['max_execution_time', int(limits.maxExecutionTimeSec, 'maxExecutionTimeSec')],
    ['max_result_rows', int(resultRows, 'maxResultRows')],
    ['result_overflow_mode', 'throw'],
    ['max_memory_usage', int(limits.maxMemoryBytes, 'maxMemoryBytes')],
    ['readonly', 1],
  ];
}

const settingsClause = (limits: AnalysisLimits, resultRows?: number) =>
  limitSettings(limits, resultRows).map(([name, value]) => `${name} = ${typeof value === 'string' ? `'${value}'` : value}`).join(', ');

/** The settings line EXPLAIN QUERY TREE prints for the root query when it carries exactly these limits. */
const treeSettingsLine = (limits: AnalysisLimits, resultRows?: number) => `SETTINGS ${limitSettings(limits, resultRows).map(([name, value]) => `${name}=${value}`).join(' ')}`;

/** The query as it is explained and run: the analyst's SELECT as a subquery (its own lines, so a trailing comment ends there). */
function sandboxed(sql: string, limits: AnalysisLimits, resultRows?: number): string {
  return `SELECT * FROM (\n${sql.replace(/[\s;]+$/, '')}\n) SETTINGS ${settingsClause(limits, resultRows)}`;
}

/**
 * Lines of query tree an EXPLAIN may print. The explained text differs from the one run only in this number, inside
 * the closing clause: if the analyst's text swallowed that clause (a string or comment left open), the root query would
 * not carry it, which the check below refuses.
 */
const explainLines = 1_000_000;

/** The tables and table functions a query reads, from its query tree: `db.table`, or `fn()` for a table function. */
export async function tablesRead(store: Store, sql: string): Promise<string[]> {
  return tablesIn(await explain(store, sql));
}

function tablesIn(tree: string[]): string[] {
  const tables = new Set<string>();
  for (const line of tree) {
    const table = /^\s*TABLE id: \d+.*?, table_name: ([^,\s]+)/.exec(line);
    if (table) tables.add(table[1]!);
    const fn = /^\s*TABLE_FUNCTION id: \d+.*?, table_function_name: ([^,\s]+)/.exec(line);
    if (fn) tables.add(`${fn[1]!}()`);
  }
  return [...tables].sort();
}

/** The settings line of the root query node: where the tree shows the limits that hold for the whole query. */
function rootSettings(tree: string[]): string | undefined {
  return tree.find((line) => /^ {2}SETTINGS /.test(line))?.trim();
}

/**
 * Runs an analyst's SELECT: refused before it runs when it is not one query or reads a table off the list (the error
 * names the table); stopped by ClickHouse when it passes its time, row or memory limit.
 */
export async function runAnalysis(store: Store, sql: string, limits: AnalysisLimits = defaultAnalysisLimits): Promise<AnalysisResult> {
  const tables = await checkAnalysis(store, sql, limits);
  const query = sandboxed(sql, limits);
  try {
    return { rows: await store.query<Record<string, unknown>>(query), tables };
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === 'READONLY') throw new AnalysisRefused('SWX_SQL_READONLY', `refused by ClickHouse in read-only mode: ${(err as Error).message}`);
    if (type && /^(TIMEOUT_EXCEEDED|TOO_MANY_ROWS_OR_BYTES|MEMORY_LIMIT_EXCEEDED|TOO_SLOW)$/.test(type)) {
      throw new AnalysisRefused('SWX_SQL_LIMIT', `stopped by ClickHouse (${type}): ${(err as Error).message}`);
    }
    throw err;
  }
}

/** Refuses, without running it, a query that is not one SELECT or reads a table off the list; else the tables it reads. */
export async function checkAnalysis(store: Store, sql: string, limits: AnalysisLimits = defaultAnalysisLimits): Promise<string[]> {
  if (sql.trim() === '') throw new AnalysisRefused('SWX_SQL_NOT_A_QUERY', 'the query is empty');
  const [{ database }] = await store.query<{ database: string }>('SELECT currentDatabase() AS database') as [{ database: string }];
  const tree = await explain(store, sandboxed(sql, limits, explainLines));
  // The limits must be the root query's own; text that closed the subquery early and added its own clause would move them.
  if (rootSettings(tree) !== treeSettingsLine(limits, explainLines)) {
    throw new AnalysisRefused('SWX_SQL_NOT_A_QUERY', 'the query must be one SELECT, without a SETTINGS clause of its own at the end');
  }
  const tables = tablesIn(tree);
  const allowed = new Set([...analysisTables.map((table) => `${database}.${table}`), ...harmlessTables, ...harmlessTableFunctions.map((fn) => `${fn}()`)]);
  const refused = tables.find((table) => !allowed.has(table));
  if (refused) {
    throw new AnalysisRefused('SWX_SQL_TABLE_REFUSED', `the query reads ${refused}, which is not open to analysis (allowed: ${analysisTables.join(', ')})`, refused);
  }
  return tables;
}

async function explain(store: Store, query: string): Promise<string[]> {
  try {
    return (await store.query<{ explain: string }>(`EXPLAIN QUERY TREE ${query}`)).map((row) => row.explain);
  } catch (err) {
    if ((err as { type?: string }).type === 'READONLY') throw new AnalysisRefused('SWX_SQL_READONLY', `refused by ClickHouse in read-only mode: ${(err as Error).message}`);
    throw new AnalysisRefused('SWX_SQL_NOT_A_QUERY', `not a query ClickHouse could read: ${(err as Error).message}`);
  }
}
