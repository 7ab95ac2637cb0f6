// The hub's ClickHouse access, always through @clickhouse/client: embedded chDB by default (in one child process,
// engine/store/chdb-owner.ts), or a ClickHouse server when a URL is given. The same SQL runs on both.
//
//   const store = await openStore({ dataDir: 'data/clickhouse' });          // or { url: 'http://ch:8123' }
//   await store.insert('evidence', records.map((r) => JSON.stringify(r)));  // one insert, JSONEachRow lines
//   const rows = await store.query<{ n: number }>('SELECT count() AS n FROM evidence WHERE message_id = {id:String}', { id });
//   await store.close();                                                     // drains first
//
// Results are JSONEachRow rows; 64-bit integers come back as numbers on both backends
// (output_format_json_quote_64bit_integers = 0). Every call carries max_execution_time.
import { assertDatabaseName, StoreError, type Store, type StoreOptions } from './common.ts';
import { EmbeddedStore } from './embedded.ts';
import { migrate } from './migrations.ts';
import { ServerStore } from './server.ts';

export { StoreError } from './common.ts';
export type { InsertPath, Store, StoreErrorCode, StoreEvent, StoreHealth, StoreOptions } from './common.ts';
export { latencyLevels, migrate, migrations, type Migration } from './migrations.ts';

export const DEFAULT_DATABASE = 'swx';

/** Open the store and run the migrations; resolves once it is ready for use. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const database = options.database ?? DEFAULT_DATABASE;
  assertDatabaseName(database);
  const maxExecutionTimeSec = options.maxExecutionTimeSec ?? 60;
  if (!(maxExecutionTimeSec > 0)) throw new StoreError('INVALID_ARGUMENT', 'maxExecutionTimeSec must be positive');
  let store: Store;
  if (options.url) {
    store = await ServerStore.open({ url: options.url, database, username: options.username, password: options.password, maxExecutionTimeSec });
  } else {
    if (!options.dataDir) throw new StoreError('INVALID_ARGUMENT', 'openStore needs a dataDir (embedded chDB) or a url (ClickHouse server)');
    store = await EmbeddedStore.open({
      dataDir: options.dataDir,
      database,
      maxExecutionTimeSec,
      restartOnCrash: options.restartOnCrash ?? true,
      openTimeoutMs: options.openTimeoutMs ?? 60_000,
      insertPath: options.insertPath ?? 'raw',
      onEvent: options.onEvent,
    });
  }
  try {
    await migrate(store, undefined, (id) => options.onEvent?.({ type: 'migration-applied', id }));
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
