// A store that held evidence before the search and statistics views existed: the migrations copy it in, and a copy
// cut short (its statements run, the migration not recorded) and run again counts every record once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { searchMessages, traffic, type MessageSummary, type TrafficRow } from '../../dashboards/index.ts';
import { migrate, type Store } from '../../engine/store/index.ts';
import { archive, backends, testStore, type SampleMessage } from '../helpers/evidence-sample.ts';

const viewMigrations = ['0004_message_search', '0005_statistics'];
const views = ['message_keys', 'messages', 'message_state', 'stats_hourly', 'stats_daily', 'stats_partner_daily'];

const messages: SampleMessage[] = Array.from({ length: 300 }, (_, i) => ({
  id: `U-${i}`, from: ['CUSTOMS', 'BOFT', 'TFDA'][i % 3]!, receivers: [['NTA', 'BSMI'][i % 2]!], service: i % 2 ? 'trade.permit' : 'customs.declaration',
  protocol: i % 3 ? 'rest' : 'soap', receivedAt: new Date(Date.UTC(2026, 4, 1) + i * 3_600_000),
  outcome: (['delivered', 'dead_lettered', 'rejected', 'failed-then-delivered'] as const)[i % 4]!, latencyMs: 100 + i,
}));

async function everything(store: Store): Promise<{ rows: MessageSummary[]; days: TrafficRow[]; partners: TrafficRow[] }> {
  const window = { since: '2026-05-01T00:00:00Z', until: '2026-06-01T00:00:00Z' };
  return {
    rows: (await searchMessages(store, {}, undefined, 1000)).rows,
    days: await traffic(store, { grain: 'day', by: ['service', 'stage'], ...window }),
    partners: await traffic(store, { grain: 'day', by: ['sender'], ...window }),
  };
}

async function forget(store: Store): Promise<void> {
  await store.command(`ALTER TABLE swx_migrations DELETE WHERE id IN {ids:Array(String)} SETTINGS mutations_sync = 1`, { ids: viewMigrations });
}

for (const backend of backends) {
  let store: Store;
  let done: () => Promise<void>;
  test.before(async () => { ({ store, done } = await testStore(backend)); });
  test.after(() => done());

  test(`${backend}: evidence archived before the views is copied in once, also when the copy runs twice`, async () => {
    await archive(store, messages);
    const fedByViews = await everything(store);
    assert.is(fedByViews.rows.length, 300);

    // The store as it was before the views: evidence only.
    for (const table of views) {
      await store.command(`DROP VIEW IF EXISTS ${table}_mv`);
      await store.command(`DROP TABLE IF EXISTS ${table}`);
    }
    await forget(store);
    assert.equal(await migrate(store), viewMigrations);
    assert.equal(await everything(store), fedByViews, 'copied in, as the views would have written it');

    // Statements run, migration not recorded (a crash between): running it again must not count anything twice.
    await forget(store);
    assert.equal(await migrate(store), viewMigrations);
    assert.equal(await everything(store), fedByViews, 'copied again, once');

    // And the views still feed the tables afterwards.
    await archive(store, [{ ...messages[0]!, id: 'U-new', receivedAt: new Date(Date.UTC(2026, 4, 20)) }]);
    assert.is((await searchMessages(store, {}, undefined, 1000)).rows.length, 301);
  });
}

test.run();
