// The analysts' sandbox: a SELECT over the rollups and message summaries runs; a table off the list (evidence, a
// system table, one hidden in a subquery, a join or a CTE), a table function that reads files, a write and anything
// that is not one SELECT are refused before running, naming what was refused; ClickHouse stops a query past its row,
// time or memory limit, and nothing in the query lifts them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AnalysisRefused, runAnalysis, tablesRead, type AnalysisLimits } from '../../dashboards/index.ts';
import type { Store } from '../../engine/store/index.ts';
import { archive, backends, testStore, type SampleMessage } from '../helpers/evidence-sample.ts';

const limits: AnalysisLimits = { maxExecutionTimeSec: 2, maxResultRows: 50, maxMemoryBytes: 200_000_000 };

async function refused(store: Store, sql: string, given = limits): Promise<AnalysisRefused> {
  try {
    await runAnalysis(store, sql, given);
  } catch (err) {
    if (err instanceof AnalysisRefused) return err;
    throw err;
  }
  throw new assert.Assertion({ message: `expected a refusal of ${sql}`, operator: 'refused', expects: 'refusal', actual: 'rows' });
}

for (const backend of backends) {
  let store: Store;
  let done: () => Promise<void>;
  let database: string;
  test.before(async () => {
    ({ store, done } = await testStore(backend));
    const messages: SampleMessage[] = Array.from({ length: 40 }, (_, i) => ({
      id: `A-${i}`, from: i % 2 ? 'CUSTOMS' : 'BOFT', receivers: ['NTA'], service: 'customs.declaration', protocol: 'rest',
      receivedAt: new Date(Date.UTC(2026, 2, 1 + (i % 20))), outcome: 'delivered',
    }));
    await archive(store, messages);
    database = (await store.query<{ d: string }>('SELECT currentDatabase() AS d'))[0]!.d;
  });
  test.after(() => done());

  test(`${backend}: a SELECT over the allowed tables runs, and says what it read`, async () => {
    const result = await runAnalysis(store, `
      SELECT partner, sum(records) AS n FROM stats_partner_daily WHERE side = 'sender' AND stage = 'verified'
      GROUP BY partner ORDER BY partner -- a trailing comment ends on its line
    `, limits);
    assert.equal(result.rows, [{ partner: 'BOFT', n: 20 }, { partner: 'CUSTOMS', n: 20 }]);
    assert.equal(result.tables, [`${database}.stats_partner_daily`]);
    const joined = await runAnalysis(store, `WITH s AS (SELECT from_partner, message_id FROM message_state GROUP BY ALL)
      SELECT count() AS n FROM messages m JOIN s USING (from_partner, message_id);`, limits);
    assert.equal(joined.rows, [{ n: 40 }]);
    assert.equal(joined.tables, [`${database}.message_state`, `${database}.messages`]);
    assert.equal((await runAnalysis(store, 'SELECT 1 AS one', limits)).rows, [{ one: 1 }]);
  });

  test(`${backend}: a table off the list is refused by name, wherever the query hides it`, async () => {
    const cases: [string, string][] = [
      ['SELECT raw FROM evidence LIMIT 1', `${database}.evidence`],
      [`SELECT * FROM ${database}.evidence_batches`, `${database}.evidence_batches`],
      ['SELECT name FROM system.tables', 'system.tables'],
      ['SELECT * FROM system.users', 'system.users'],
      ['SELECT count() FROM messages WHERE message_id IN (SELECT message_id FROM evidence)', `${database}.evidence`],
      ['SELECT * FROM messages AS m LEFT JOIN audit AS a ON a.target = m.message_id', `${database}.audit`],
      ['WITH k AS (SELECT * FROM message_keys) SELECT count() FROM k', `${database}.message_keys`],
      ['SELECT 1 UNION ALL SELECT toUInt8(count()) FROM swx_migrations', `${database}.swx_migrations`],
      ["SELECT * FROM file('/etc/passwd', 'LineAsString')", 'file()'],
      ["SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", 'url()'],
    ];
    for (const [sql, table] of cases) {
      const err = await refused(store, sql);
      // ClickHouse itself refuses a table function that reaches files or the network in read-only mode, before we see its name.
      if (err.code === 'SWX_SQL_READONLY' && /^(file|url)\(\)$/.test(table)) continue;
      assert.is(err.code, 'SWX_SQL_TABLE_REFUSED', sql);
      assert.is(err.table, table, sql);
      assert.ok(err.message.includes(table), err.message);
    }
    assert.equal((await tablesRead(store, 'SELECT * FROM messages WHERE 1 IN (SELECT 1 FROM system.parts)')).sort(), [`${database}.messages`, 'system.parts']);
  });

  test(`${backend}: a write, DDL, two statements or a SETTINGS clause of its own are not one SELECT`, async () => {
    for (const sql of [
      "INSERT INTO messages (message_id) VALUES ('x')",
      'DROP TABLE messages',
      'ALTER TABLE messages DELETE WHERE 1',
      'SELECT 1; DROP TABLE messages',
      'SET readonly = 0',
      "SELECT * FROM messages INTO OUTFILE '/tmp/swx-analysis-outfile.csv'",
      'SELECT * FROM messages FORMAT CSV',
      'SELECT * FROM messages) SETTINGS max_result_rows = 0, readonly = 0 /*',
      '',
    ]) {
      assert.is((await refused(store, sql)).code, 'SWX_SQL_NOT_A_QUERY', sql);
    }
    assert.equal((await store.query<{ n: number }>('SELECT count() AS n FROM messages'))[0], { n: 40 }, 'nothing was written or dropped');
  });

  test(`${backend}: ClickHouse stops a query past its row, time or memory limit, and the query cannot lift them`, async () => {
    const rows = await refused(store, 'SELECT number FROM numbers(1000)');
    assert.is(rows.code, 'SWX_SQL_LIMIT');
    assert.match(rows.message, /TOO_MANY_ROWS_OR_BYTES/);
    const lifted = await refused(store, 'SELECT number FROM numbers(1000) SETTINGS max_result_rows = 100000');
    assert.ok(['SWX_SQL_LIMIT', 'SWX_SQL_READONLY'].includes(lifted.code), `a subquery's own settings do not lift the limit: ${lifted.message}`);
    const t1 = Date.now();
    const longer = await refused(store, 'SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0 SETTINGS max_execution_time = 600, readonly = 0');
    assert.ok(['SWX_SQL_LIMIT', 'SWX_SQL_READONLY'].includes(longer.code), longer.message);
    assert.ok(Date.now() - t1 < 10_000, `a subquery's own time limit does not lift the query's: ${longer.message}`);
    const bigger = await refused(store, "SELECT groupArray(repeat('x', 1000)) FROM numbers(10000000) SETTINGS max_memory_usage = 0", { ...limits, maxExecutionTimeSec: 60 });
    assert.ok(['SWX_SQL_LIMIT', 'SWX_SQL_READONLY'].includes(bigger.code), bigger.message);
    const t0 = Date.now();
    const slow = await refused(store, 'SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0');
    assert.is(slow.code, 'SWX_SQL_LIMIT');
    assert.match(slow.message, /TIMEOUT_EXCEEDED/);
    assert.ok(Date.now() - t0 < 10_000, 'stopped near its 2 s limit');
    const memory = await refused(store, "SELECT groupArray(repeat('x', 1000)) FROM numbers(10000000)", { ...limits, maxExecutionTimeSec: 60 });
    assert.match(memory.message, /MEMORY_LIMIT_EXCEEDED/);
    assert.equal((await runAnalysis(store, 'SELECT number FROM numbers(50)', limits)).rows.length, 50, 'at the limit is allowed');
    // The limits held that query only: the store's own queries are as before.
    assert.equal(await store.query<{ r: number; m: number }>("SELECT toUInt8(getSetting('readonly')) AS r, toUInt64(getSetting('max_result_rows')) AS m"), [{ r: 0, m: 0 }]);
  });
}

test.run();
