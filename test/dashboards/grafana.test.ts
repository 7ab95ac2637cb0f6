// The Grafana dashboard (dashboards/grafana/): every panel's SQL runs on chDB over a loaded sample, its Grafana time
// macro expanded as the ClickHouse data source expands it, and reads only tables the analysts may read.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadSample } from '../../app/sample-load.ts';
import { analysisTables, tablesRead } from '../../dashboards/index.ts';
import type { Store } from '../../engine/store/index.ts';
import { testStore } from '../helpers/evidence-sample.ts';

const dashboard = JSON.parse(readFileSync(new URL('../../dashboards/grafana/swx-statistics.json', import.meta.url), 'utf8'));
let store: Store;
let done: () => Promise<void>;
const from = new Date('2025-01-01T00:00:00Z');

/** `$__timeFilter(column)` as the data source writes it for the dashboard's range: here the sample's year. */
const expand = (sql: string) => sql.replace(/\$__timeFilter\(([a-z_]+)\)/g, "$1 >= toDateTime('2025-01-01 00:00:00', 'UTC') AND $1 < toDateTime('2026-01-01 00:00:00', 'UTC')");

test.before(async () => {
  ({ store, done } = await testStore('chdb'));
  await loadSample(store, { messages: 2_000, from });
});
test.after(() => done());

test('every panel\'s SQL runs on chDB, returns rows over a loaded year, and reads only the statistics tables', async () => {
  assert.ok(dashboard.panels.length >= 6);
  const [{ database }] = await store.query<{ database: string }>('SELECT currentDatabase() AS database') as [{ database: string }];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      assert.match(target.rawSql, /\$__timeFilter\(/, `${panel.title}: filtered by the dashboard's range`);
      const sql = expand(target.rawSql);
      const rows = await store.query(sql);
      assert.ok(rows.length > 0, `${panel.title}: no rows`);
      const tables = await tablesRead(store, sql);
      for (const table of tables) assert.ok(analysisTables.some((allowed) => table === `${database}.${allowed}`), `${panel.title} reads ${table}`);
    }
  }
});

test.run();
