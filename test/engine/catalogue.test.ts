// The query catalogue on a real nats-server: Table 1 loaded into a fresh deployment decides exactly as the table
// says (expectations transcribed here by hand, not read from app/table1.ts), edits are validated, kept with history
// and seen live by a second hub process's catalogue.
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { Catalogue, type Decision } from '../../engine/catalogue.ts';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { table1 } from '../../app/table1.ts';
import { freePort, tempDir, waitFor } from '../helpers/hub.ts';

// Table 1 (reference/domain.md and the original 表1), by hand: dataset → who asks → who answers.
const clearanceAskers = ['BOFT', 'BSMI', 'IDB', 'NCC', 'COA', 'BAPHIQ', 'PABP', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA', 'MPB'];
const commerceAskers = ['BOFT', 'BSMI', 'IDB', 'COA', 'BAPHIQ', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA'];
const matrix: [dataset: string, askers: string[], providers: string[]][] = [
  ['import-declaration-sea', clearanceAskers, ['CUSTOMS']],
  ['import-declaration-air', clearanceAskers, ['CUSTOMS']],
  ['export-declaration-sea', clearanceAskers, ['CUSTOMS']],
  ['export-declaration-air', clearanceAskers, ['CUSTOMS']],
  ['tax-payment-certificate', clearanceAskers, ['CUSTOMS']],
  ['aeo-company', clearanceAskers, ['CUSTOMS']],
  ['customs-clearance-number', clearanceAskers, ['CUSTOMS']],
  ['company-registration', commerceAskers, ['DOC']],
  ['business-registration', commerceAskers, ['DOC']],
  ['factory-registration', commerceAskers, ['DOC']],
  ['import-alcohol-consent', ['NTA'], ['IDB']],
  ['quarantine-permit', ['CDC'], ['CUSTOMS']],
  ['permit-attached-documents', ['IDB'], ['BAPHIQ', 'TFDA']],
  ['inbound-passenger', ['CUSTOMS'], ['NIA']],
  ['tariff-quota-certificate', ['CUSTOMS'], ['BOT']],
  ['tariff-quota-write-off', ['BOT'], ['CUSTOMS']],
];
// Every agency id in domain.md's list.
const agencies = [
  'CUSTOMS', 'BOFT', 'BSMI', 'IDB', 'NCC', 'COA', 'COA-DAI', 'BAPHIQ', 'PABP', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA', 'HSP',
  'CTSP', 'STSP', 'MPB', 'DOC', 'CDC', 'NIA', 'BOT', 'AFA', 'FA', 'AEC', 'EPA', 'BOE', 'FIA', 'CIB', 'BOM', 'CAA', 'ANWS',
  'MOJ', 'BOCA', 'MOTC', 'TRADEVAN',
];

let dataDir: string;
let nats: EmbeddedNats;
let buses: Bus[] = [];
let catalogue: Catalogue;
let other: Catalogue;

test.before(async () => {
  dataDir = tempDir('catalogue');
  nats = await startEmbeddedNats(dataDir, await freePort());
  buses = [await connectBus(nats.url, 'catalogue-test-a'), await connectBus(nats.url, 'catalogue-test-b')];
  catalogue = await Catalogue.open(buses[0]!);
  other = await Catalogue.open(buses[1]!);
});

test.after(async () => {
  catalogue?.close();
  other?.close();
  for (const bus of buses) await bus.nc.drain();
  await nats?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const denied = (decision: Decision) => (decision.allowed ? 'allowed' : decision.code);

test('a fresh deployment loads Table 1 once; later starts keep the operator\'s edits', async () => {
  assert.is(await catalogue.seed(table1), 16);
  assert.is(await other.seed(table1), 0, 'a second hub process seeds nothing');
  assert.equal(catalogue.list().map((dataset) => dataset.id), matrix.map(([id]) => id).sort());
  await waitFor('the second process to see the seeded catalogue', () => other.list().length === 16, 10_000);
});

test('access matrix: every Table 1 pair is allowed, every other pair among all agencies is denied', () => {
  let allowedPairs = 0;
  let deniedPairs = 0;
  for (const [dataset, askers, providers] of matrix) {
    for (const asker of agencies) {
      const where = `${asker} → ${dataset}`;
      if (!askers.includes(asker)) {
        assert.is(denied(catalogue.decide(asker, dataset)), 'SWX_ACL_DENIED', where);
        for (const provider of providers) assert.is(denied(catalogue.decide(asker, dataset, provider)), 'SWX_ACL_DENIED', `${where} at ${provider}`);
        deniedPairs++;
        continue;
      }
      allowedPairs++;
      for (const provider of providers) assert.equal(catalogue.decide(asker, dataset, provider), { allowed: true, provider }, `${where} at ${provider}`);
      if (providers.length === 1) {
        assert.equal(catalogue.decide(asker, dataset), { allowed: true, provider: providers[0] }, `${where}: the only provider is implied`);
      } else {
        assert.is(denied(catalogue.decide(asker, dataset)), 'SWX_BAD_REQUEST', `${where}: the asker must name the provider`);
      }
      for (const elsewhere of agencies.filter((agency) => !providers.includes(agency))) {
        assert.is(denied(catalogue.decide(asker, dataset, elsewhere)), 'SWX_ACL_DENIED', `${where} at ${elsewhere}`);
      }
    }
  }
  assert.is(allowedPairs, 7 * 13 + 3 * 10 + 6);
  assert.is(allowedPairs + deniedPairs, 16 * agencies.length);
});

test('the same decisions in a second hub process, from its watched copy', () => {
  for (const asker of agencies) {
    for (const [dataset] of matrix) {
      for (const provider of [undefined, 'BAPHIQ', 'CUSTOMS']) {
        assert.equal(other.decide(asker, dataset, provider), catalogue.decide(asker, dataset, provider), `${asker} → ${dataset} at ${provider}`);
      }
    }
  }
});

test('hostile or unknown names get stable codes', () => {
  assert.is(denied(catalogue.decide('BOFT', 'no-such-dataset')), 'SWX_UNKNOWN_DATASET');
  assert.is(denied(catalogue.decide('BOFT', '__proto__')), 'SWX_UNKNOWN_DATASET');
  assert.is(denied(catalogue.decide('IDB', 'permit-attached-documents', 'baphiq')), 'SWX_BAD_REQUEST');
  assert.is(denied(catalogue.decide('IDB', 'permit-attached-documents', '')), 'SWX_BAD_REQUEST');
  const long = catalogue.decide('X'.repeat(10_000), 'inbound-passenger');
  assert.is(denied(long), 'SWX_ACL_DENIED');
  assert.ok(!long.allowed && long.detail.length < 200, 'a huge asker id is clipped in the detail');
});

const sample = {
  id: 'test-vessel-register',
  name: 'Vessel register',
  nameZh: '船舶登記資料',
  service: { id: 'test-service', name: 'Test service', nameZh: '測試查證' },
  keys: ['vesselNo'],
  askers: ['CUSTOMS'],
  providers: ['MPB'],
};

test('an edit is stored with history and reaches the other process live', async () => {
  await catalogue.put(sample);
  await waitFor('the other process to see the new dataset', () => other.dataset(sample.id) !== undefined, 10_000);
  assert.equal(other.decide('CUSTOMS', sample.id), { allowed: true, provider: 'MPB' });

  const changes: string[] = [];
  const stop = other.onChange((id) => changes.push(id));
  await catalogue.put({ ...sample, askers: ['CUSTOMS', 'BOFT'] });
  await waitFor('the other process to apply the change', () => other.decide('BOFT', sample.id).allowed, 10_000);
  assert.ok(changes.includes(sample.id));

  await catalogue.remove(sample.id);
  await waitFor('the other process to drop the dataset', () => other.dataset(sample.id) === undefined, 10_000);
  stop();
  assert.is(denied(other.decide('CUSTOMS', sample.id)), 'SWX_UNKNOWN_DATASET');

  const history = await other.history(sample.id);
  assert.equal(history.map((entry) => entry.operation), ['PUT', 'PUT', 'DEL']);
  assert.equal(history[0]!.value!.askers, ['CUSTOMS']);
  assert.equal(history[1]!.value!.askers, ['CUSTOMS', 'BOFT']);
  assert.ok(history.every((entry, i) => i === 0 || entry.revision > history[i - 1]!.revision));

  try {
    await catalogue.remove(sample.id);
    assert.unreachable('removing an absent dataset');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'SWX_UNKNOWN_DATASET');
  }
  assert.is(await catalogue.seed(table1), 0, 'a catalogue that has held data is never re-seeded');
});

test('a dataset that is not well-formed is refused, naming the field', async () => {
  const cases: [unknown, string][] = [
    [{ ...sample, id: 'Has Spaces' }, 'id'],
    [{ ...sample, askers: [] }, 'askers'],
    [{ ...sample, askers: ['CUSTOMS', 'CUSTOMS'] }, 'askers'],
    [{ ...sample, providers: ['mpb'] }, 'providers.0'],
    [{ ...sample, nameZh: '' }, 'nameZh'],
    [{ ...sample, keys: [] }, 'keys'],
    [{ ...sample, keys: ['vessel no'] }, 'keys.0'],
    [{ ...sample, keys: ['vesselNo', 'vesselNo'] }, 'keys'],
    [{ ...sample, service: { id: 'test-service', name: 'Test service' } }, 'service.nameZh'],
    [null, ''],
  ];
  for (const [input, path] of cases) {
    try {
      await catalogue.put(input);
      assert.unreachable(`accepted ${JSON.stringify(input)}`);
    } catch (error) {
      assert.instance(error, z.ZodError);
      assert.is((error as z.ZodError).issues[0]!.path.join('.'), path);
    }
  }
  assert.is(catalogue.dataset(sample.id), undefined);
});

test.run();
