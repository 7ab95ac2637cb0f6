// The demo providers' synthetic data: unified business numbers judged by the Ministry of Finance's published
// examples and numbers of real registered firms, declaration numbers by the CPT entry format, and every Table 1
// dataset answering its sample queries with distinct records.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answer, declarationNumberShape, isValidUbn, queryKeys, sampleQuery, type DemoRecord } from '../../app/demo-data.ts';
import { demoTraffic, itemsPerProvider } from '../../app/demo-traffic.ts';
import { table1 } from '../../app/table1.ts';
import { table2 } from '../../app/table2.ts';
import { table3 } from '../../app/table3.ts';

// The MoF/FIA note on the revised check (營利事業統一編號檢查碼邏輯修正說明) gives 04595257, 10458575 and 10458574
// as valid and 04595252 and 10458570 as test numbers valid only under the revised (divisible by 5) rule.
// 12345675 and 10458574 pass only through the 7th-digit-7 case (their plain total is one short).
const validEitherRule = ['04595257', '10458575', '10458574', '12345675', '12345676'];
const validSince2023 = ['04595252', '10458570', '12345670'];
// Registered firms' numbers as published (TSMC 22099131; the rest from python-stdnum's list of numbers found online),
// including several whose 7th digit is 7.
const registered = ['22099131', '00501503', '00277104', '53212539', '88117125', '01050772', '08551977', '53084078', '80158777'];
const invalid = ['00501502', '00277103', '88117126', '12345678', '04595250', '10458573', '1234567', '123456789', '1234567A', '１２３４５６７５', '', ' 22099131'];

test('UBN check digits: MoF examples, registered firms, and near misses', () => {
  for (const ubn of [...validEitherRule, ...registered]) {
    assert.ok(isValidUbn(ubn), `${ubn} is valid`);
    assert.ok(isValidUbn(ubn, 10), `${ubn} is valid under the old rule too`);
  }
  for (const ubn of validSince2023) {
    assert.ok(isValidUbn(ubn), `${ubn} is valid under the revised rule`);
    assert.not.ok(isValidUbn(ubn, 10), `${ubn} was not valid before 2023`);
  }
  for (const ubn of invalid) assert.not.ok(isValidUbn(ubn), `${JSON.stringify(ubn)} is refused`);
  for (const hostile of [22099131, null, undefined, ['22099131'], { toString: () => '22099131' }]) assert.not.ok(isValidUbn(hostile));
});

/** Every string field named `ubn`, at any depth. */
function ubnsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(ubnsIn);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => (key === 'ubn' && typeof inner === 'string' ? [inner] : ubnsIn(inner)));
}

const declarationDatasets = ['import-declaration-sea', 'import-declaration-air', 'export-declaration-sea', 'export-declaration-air'];

test('every Table 1 dataset answers its sample queries, each with its own record', () => {
  assert.is(table1.length, 16);
  for (const { id, providers } of table1) {
    for (const provider of providers) {
      const queries = sampleQuery(id, 200, providers.length > 1 ? provider : undefined);
      assert.is(queries.length, 200, id);
      const records = queries.map((query) => answer(id, query, provider));
      records.forEach((record, i) => {
        assert.ok(record, `${id} answers ${JSON.stringify(queries[i])} at ${provider}`);
        for (const key of queryKeys(id)) assert.is(record![key], queries[i]![key], `${id}: the answer carries the ${key} asked for`);
      });
      assert.is(new Set(queries.map((query) => JSON.stringify(query))).size, 200, `${id}: distinct queries`);
      assert.is(new Set(records.map((record) => JSON.stringify(record))).size, 200, `${id}: distinct records`);
      for (const ubn of records.flatMap(ubnsIn)) assert.ok(isValidUbn(ubn, 10), `${id}: ${ubn} passes the old and the new check`);
      assert.equal(sampleQuery(id, 200, providers.length > 1 ? provider : undefined), queries, `${id}: the same queries on every run`);
    }
  }
});

test('declaration numbers have the customs shape: office, transferred-from, ROC year, ship/office code, serial', () => {
  for (const id of declarationDatasets) {
    for (const query of sampleQuery(id, 500)) {
      const number = query.declarationNo!;
      assert.ok(declarationNumberShape.test(number), `${id}: ${JSON.stringify(number)}`);
      // Written by hand from the entry script's split ab/cd/ef/ghi/jklmn, independent of the module's pattern.
      assert.is(number.length, 14);
      assert.match(number.slice(0, 2), /^[A-D][A-Z]$/);
      assert.match(number.slice(2, 4), /^( {2}|[A-G][A-Z0-9])$/);
      const record = answer(id, query) as { declaredOn: string };
      assert.is(Number(number.slice(4, 6)), (Number(record.declaredOn.slice(0, 4)) - 1911) % 100, 'the year part is the ROC year of the declaration');
      assert.match(number.slice(6, 9), /^[A-Z0-9]{3}$/);
      assert.match(number.slice(9), /^[0-9]{5}$/);
    }
  }
});

test('linked records agree: a payment certificate names a real import declaration, a write-off never exceeds its quota', () => {
  for (const query of sampleQuery('tax-payment-certificate', 50)) {
    const certificate = answer('tax-payment-certificate', query) as { declarationNo: string; payer: unknown; certificateNo: string };
    assert.match(certificate.certificateNo, /^[A-D][0-9]{11}$/);
    const declaration = answer('import-declaration-sea', { declarationNo: certificate.declarationNo }) as DemoRecord;
    assert.equal(declaration.importer, certificate.payer);
  }
  for (const query of sampleQuery('tariff-quota-write-off', 100)) {
    const writeOff = answer('tariff-quota-write-off', query) as { quotaKg: number; usedKg: number; writeOffs: { declarationNo: string; kg: number }[] };
    const certificate = answer('tariff-quota-certificate', query) as { quotaKg: number };
    assert.is(writeOff.quotaKg, certificate.quotaKg);
    assert.ok(writeOff.usedKg <= writeOff.quotaKg && writeOff.writeOffs.every((entry) => entry.kg > 0));
    for (const entry of writeOff.writeOffs) assert.ok(answer('import-declaration-sea', { declarationNo: entry.declarationNo }));
  }
  const factory = answer('factory-registration', sampleQuery('factory-registration', 1)[0]!) as { ubn: string; companyName: string };
  assert.is((answer('company-registration', { ubn: factory.ubn }) as { name: string }).name, factory.companyName);
});

test('passengers are plainly fake', () => {
  for (const query of sampleQuery('inbound-passenger', 300)) {
    const passenger = answer('inbound-passenger', query) as { name: string; passportNo: string; nationality: string };
    assert.match(passenger.name, /^TEST PASSENGER [0-9]{4,}$/);
    assert.match(passenger.passportNo, /^TEST[0-9]{5}$/);
    assert.is(passenger.nationality, 'UTO');
  }
});

test('documents attached to permits are held by BAPHIQ or TFDA, and each answers only for its own', () => {
  const baphiq = sampleQuery('permit-attached-documents', 20, 'BAPHIQ');
  const tfda = sampleQuery('permit-attached-documents', 20, 'TFDA');
  for (const query of baphiq) {
    assert.is((answer('permit-attached-documents', query, 'BAPHIQ') as { issuedBy: string }).issuedBy, 'BAPHIQ');
    assert.is(answer('permit-attached-documents', query, 'TFDA'), undefined);
  }
  for (const query of tfda) assert.is(answer('permit-attached-documents', query, 'BAPHIQ'), undefined);
  assert.equal(sampleQuery('permit-attached-documents', 5, 'CUSTOMS'), []);
  assert.is(answer('inbound-passenger', sampleQuery('inbound-passenger', 1)[0]!, 'CUSTOMS'), undefined, 'NIA answers passengers, not Customs');
});

test('unknown keys find nothing; malformed queries are bad requests', () => {
  const [passenger] = sampleQuery('inbound-passenger', 1);
  assert.is(answer('inbound-passenger', { ...passenger!, arrivalDate: '1999-01-01' }), undefined, 'the passport with another arrival date');
  const [declaration] = sampleQuery('import-declaration-sea', 1);
  const number = declaration!.declarationNo!;
  assert.is(answer('import-declaration-sea', { declarationNo: `${number.slice(0, 13)}${(Number(number[13]) + 1) % 10}` }), undefined);
  assert.is(answer('import-declaration-air', declaration!), undefined, 'a sea declaration is not an air one');
  assert.is(answer('company-registration', { ubn: '04595252' }), undefined, 'a valid UBN that is not in the demo');
  assert.is(answer('company-registration', { ubn: sampleQuery('business-registration', 1)[0]!.ubn! }), undefined, 'a sole proprietorship is not a company');
  assert.is(answer('company-registration', { ubn: '22099132' }), undefined);
  assert.is(answer('factory-registration', { factoryNo: '1e7' }), undefined);

  const code = (run: () => unknown) => { try { run(); return 'answered'; } catch (error) { return (error as { code?: string }).code; } };
  assert.is(code(() => answer('inbound-passenger', { passportNo: passenger!.passportNo! })), 'SWX_BAD_REQUEST');
  assert.is(code(() => answer('company-registration', { ubn: '22099131', extra: 'x' })), 'SWX_BAD_REQUEST');
  assert.is(code(() => answer('company-registration', { ubn: 'x'.repeat(65) })), 'SWX_BAD_REQUEST');
  // Lengths are counted in characters (code points), as the hub counts them: 64 emoji fit, 65 do not.
  assert.is(code(() => answer('import-declaration-sea', { declarationNo: '\u{1F600}'.repeat(33) })), 'answered');
  assert.is(code(() => answer('import-declaration-sea', { declarationNo: '\u{1F600}'.repeat(64) })), 'answered');
  assert.is(code(() => answer('import-declaration-sea', { declarationNo: '\u{1F600}'.repeat(65) })), 'SWX_BAD_REQUEST');
  assert.is(code(() => answer('company-registration', { ubn: 22099131 } as never)), 'SWX_BAD_REQUEST');
  assert.is(code(() => answer('company-registration', JSON.parse('{"__proto__": "x", "ubn": "22099131"}'))), 'SWX_BAD_REQUEST');
  assert.is(code(() => answer('company-registration', null as never)), 'SWX_BAD_REQUEST');
  assert.is(code(() => answer('no-such-dataset', {})), 'SWX_UNKNOWN_DATASET');
  assert.is(code(() => answer('constructor', {})), 'SWX_UNKNOWN_DATASET');
  assert.throws(() => sampleQuery('inbound-passenger', -1), RangeError);
});

test('the demo providers expect exactly the query keys the catalogue seed publishes for each dataset', () => {
  for (const dataset of table1) assert.equal([...queryKeys(dataset.id)], dataset.keys, dataset.id);
});

test('a round of demo traffic notifies on every topic, replies on every two-way one, and feeds every channel from each provider', () => {
  for (const round of [1, 2]) {
    const traffic = demoTraffic(round);
    for (const topic of table2) {
      const messages = traffic.filter((message) => message.service === `notify.${topic.id}`);
      assert.ok(messages.some((message) => topic.notifiers.includes(message.from) && message.replyTo === undefined), `${topic.id}: a notification`);
      const replies = messages.filter((message) => message.replyTo !== undefined);
      assert.is(replies.length, topic.twoWay ? 1 : 0, `${topic.id}: a reply only in a two-way topic`);
      for (const reply of replies) {
        assert.ok(topic.receivers.includes(reply.from), `${topic.id}: a receiver replies`);
        assert.is(traffic[reply.replyTo!]!.service, reply.service, `${topic.id}: the reply answers a notification of its topic`);
      }
    }
    for (const channel of table3) {
      const items = traffic.filter((message) => message.service === `exchange.${channel.id}`);
      for (const provider of channel.providers) assert.is(items.filter((item) => item.from === provider).length, itemsPerProvider, `${channel.id} from ${provider}`);
      const sequences = items.map((item) => item.body.sequence as number);
      assert.equal(sequences, sequences.map((_, i) => sequences[0]! + i), `${channel.id}: items numbered in the order sent`);
    }
    for (const message of traffic) assert.ok(JSON.stringify(message.body).length < 2048, `${message.service}: a small body`);
  }
  const [first, second] = [demoTraffic(1), demoTraffic(2)].map((traffic) => new Set(traffic.map((message) => JSON.stringify(message.body))));
  assert.ok([...second!].every((body) => !first!.has(body)), 'each round sends other records');
});

test.run();
