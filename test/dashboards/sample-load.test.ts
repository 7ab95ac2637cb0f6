// `swx sample load`: a year of traffic written into evidence fills the search and statistics tables through their
// materialized views, with the mix, peaks and failures it promises, chained like the archive's own records.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { loadSample } from '../../app/sample-load.ts';
import { openStore, type Store } from '../../engine/store/index.ts';
import { swxCommand, tempDir } from '../helpers/hub.ts';
import { testStore } from '../helpers/evidence-sample.ts';

let store: Store;
let done: () => Promise<void>;
const from = new Date('2025-01-01T00:00:00Z');

test.before(async () => {
  ({ store, done } = await testStore('chdb'));
});
test.after(() => done());

test('a loaded year fills messages and the rollups, with Tables 1-3, office-hour and month-end peaks and every outcome', async () => {
  const first = await loadSample(store, { messages: 1_500, from, batchRows: 2_000 });
  assert.is(first.messages, 1_500);
  assert.ok(first.records > 4 * 1_500 * 0.9, `${first.records} records`);
  const [{ messages }] = await store.query<{ messages: string }>('SELECT toString(uniqExact(message_id)) AS messages FROM messages') as [{ messages: string }];
  assert.is(Number(messages), 1_500);
  const stages = await store.query<{ stage: string; n: string }>("SELECT stage, toString(sum(records)) AS n FROM stats_daily GROUP BY stage");
  const count = (stage: string) => Number(stages.find((row) => row.stage === stage)?.n ?? 0);
  for (const stage of ['received', 'verified', 'routed', 'delivered', 'answered', 'rejected', 'delivery_failed', 'dead_lettered']) assert.ok(count(stage) > 0, `${stage} in ${JSON.stringify(stages)}`);
  assert.is(count('received'), 1_500);
  const kinds = await store.query<{ kind: string }>("SELECT DISTINCT splitByChar('.', service)[1] AS kind FROM messages ORDER BY kind");
  assert.ok(['exchange', 'notify'].every((kind) => kinds.some((row) => row.kind === kind)), JSON.stringify(kinds));
  const [shape] = await store.query<{ months: string; office: string; monthEnd: string; protocols: string }>(
    `SELECT toString(uniqExact(toStartOfMonth(at))) AS months,
       toString(countIf(toHour(at, 'Asia/Taipei') BETWEEN 8 AND 17) / count()) AS office,
       toString((countIf(toDayOfMonth(at, 'Asia/Taipei') >= 25) / 7) / (countIf(toDayOfMonth(at, 'Asia/Taipei') < 25) / 24)) AS monthEnd,
       toString(uniqExact(protocol)) AS protocols
     FROM messages WHERE at >= '2025-01-01' AND at < '2026-01-01'`) as [{ months: string; office: string; monthEnd: string; protocols: string }];
  assert.is(Number(shape.months), 12);
  assert.ok(Number(shape.office) > 0.6, `office hours ${shape.office}`);
  assert.ok(Number(shape.monthEnd) > 1.3, `a month-end day against another ${shape.monthEnd}`);
  assert.ok(Number(shape.protocols) >= 4);
  // A second load continues the sample node's chain: positions without a gap, each linked to the one before.
  await loadSample(store, { messages: 50, from, seed: 7 });
  const [chain] = await store.query<{ rows: string; top: string; broken: string }>(
    `SELECT toString(count()) AS rows, toString(max(chain)) AS top,
       toString(countIf(prev_hash != prev)) AS broken
     FROM (SELECT chain, prev_hash, lagInFrame(record_hash, 1, '') OVER (ORDER BY chain ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev
           FROM evidence WHERE node = 'sample')`) as [{ rows: string; top: string; broken: string }];
  assert.is(Number(chain.top), Number(chain.rows) - 1);
  assert.is(Number(chain.broken), 0);
});

test('swx sample load writes into a data folder\'s embedded store', async () => {
  const dataDir = tempDir('sample');
  const loaded = await swxCommand(['sample', 'load', '--messages', '40', '--from', '2025-06-01', '--data', dataDir]);
  assert.is(loaded.code, 0, loaded.stderr);
  assert.is(JSON.parse(loaded.stdout).messages, 40);
  const own = await openStore({ dataDir: join(dataDir, 'chdb') });
  try {
    const [{ n }] = await own.query<{ n: string }>('SELECT toString(uniqExact(message_id)) AS n FROM messages') as [{ n: string }];
    assert.is(Number(n), 40);
  } finally {
    await own.close();
  }
  assert.is((await swxCommand(['sample', 'load', '--messages', 'many', '--data', dataDir])).code !== 0, true);
});

test.run();
