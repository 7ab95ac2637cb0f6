// Counting refusals before authentication: one evidence record per source address, minute and code, written when the
// minute is over or at stop, on a real nats-server's evidence stream; the clock is the counter's own, moved by the test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EvidenceLog, type EvidenceRecord } from '../../engine/evidence.ts';
import { connectBus, provisionStreams, streams, type Bus } from '../../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { Unauthenticated } from '../../engine/peer.ts';
import { maxSourcesPerMinute, overflowSource, UnauthenticatedRefusals } from '../../engine/unauthenticated.ts';
import { EvidenceStream } from '../helpers/evidence-stream.ts';
import { freePort, tempDir } from '../helpers/hub.ts';

let nats: EmbeddedNats;
let bus: Bus;
let evidence: EvidenceLog;
let stream: EvidenceStream;

test.before(async () => {
  nats = await startEmbeddedNats(tempDir('unauthenticated'), await freePort());
  bus = await connectBus(nats.url, 'unauthenticated-test');
  await provisionStreams(bus.jsm, 3600, 30);
  evidence = new EvidenceLog(bus, 'test');
  stream = new EvidenceStream(bus);
});

test.after(async () => {
  await bus?.nc.drain();
  await nats?.stop();
});

const minute = Date.parse('2030-01-02T03:04:00Z');
const refusal = (source: string, code: 'SWX_AUTH_REQUIRED' | 'SWX_AUTH_UNKNOWN_CERT' = 'SWX_AUTH_REQUIRED') =>
  new Unauthenticated(code, 'refused', source, code === 'SWX_AUTH_UNKNOWN_CERT' ? 'ab'.repeat(32) : '');
const detail = (record: EvidenceRecord) => JSON.parse(record.detail!);

test('one record per source, minute and code, written once the minute is over, with count, first, last and the first sample', async () => {
  let now = minute + 1_000;
  const counter = new UnauthenticatedRefusals(evidence, () => now);
  const ids = new Set<string>();
  for (let i = 0; i < 120; i++) {
    now = minute + 1_000 + i * 100;
    ids.add(counter.count(refusal('192.0.2.1'), { protocol: 'rest', to: i === 0 ? 'BOFT' : 'TFDA' }));
  }
  for (let i = 0; i < 7; i++) counter.count(refusal('192.0.2.1', 'SWX_AUTH_UNKNOWN_CERT'), { protocol: 'soap', dataset: 'import-declaration-sea' });
  for (let i = 0; i < 3; i++) counter.count(refusal('2001:db8::1'), { protocol: 'rest' });
  assert.equal([...ids], ['refused:2030-01-02T03:04:SWX_AUTH_REQUIRED:192.0.2.1'], 'every refusal names its minute\'s record');

  await counter.flush();
  assert.equal(await stream.published(), [], 'nothing is written while the minute is open');
  now = minute + 60_000;
  counter.count(refusal('192.0.2.1'), { protocol: 'rest' });
  await counter.flush();
  const records = await stream.published();
  assert.equal(records.map((record) => [record.code, detail(record).source, detail(record).count]).sort(), [
    ['SWX_AUTH_REQUIRED', '192.0.2.1', 120],
    ['SWX_AUTH_REQUIRED', '2001:db8::1', 3],
    ['SWX_AUTH_UNKNOWN_CERT', '192.0.2.1', 7],
  ]);
  const first = records.find((record) => record.code === 'SWX_AUTH_REQUIRED' && detail(record).source === '192.0.2.1')!;
  assert.equal({ ...first, id: '', at: '', node: '', detail: '' }, {
    id: '', at: '', node: '', detail: '',
    messageId: 'refused:2030-01-02T03:04:SWX_AUTH_REQUIRED:192.0.2.1', conversationId: 'refused:2030-01-02T03:04:SWX_AUTH_REQUIRED:192.0.2.1',
    stage: 'refused_unauthenticated', from: '', to: '', service: '', action: '', protocol: 'rest', code: 'SWX_AUTH_REQUIRED',
  });
  assert.equal(detail(first), {
    source: '192.0.2.1', minute: '2030-01-02T03:04', count: 120,
    first: '2030-01-02T03:04:01.000Z', last: '2030-01-02T03:04:12.900Z', sample: { protocol: 'rest', to: 'BOFT' },
  });
  assert.equal(detail(records.find((record) => record.code === 'SWX_AUTH_UNKNOWN_CERT')!).sample,
    { protocol: 'soap', dataset: 'import-declaration-sea', certificate: 'ab'.repeat(32) }, 'the thumbprint of the certificate shown');

  // The next minute's count is held until stop, which writes it.
  await counter.stop();
  assert.equal((await stream.published()).map((record) => [record.messageId, detail(record).count]), [['refused:2030-01-02T03:05:SWX_AUTH_REQUIRED:192.0.2.1', 1]]);
  await counter.stop();
  assert.equal(await stream.published(), [], 'nothing is written twice');
});

test('addresses beyond the cap in one minute share the overflow count; samples are cut to size', async () => {
  let now = minute;
  const counter = new UnauthenticatedRefusals(evidence, () => now);
  const sources = maxSourcesPerMinute + 44;
  for (let i = 0; i < sources; i++) {
    for (let n = 0; n < 2; n++) counter.count(refusal(`10.0.${i >> 8}.${i & 255}`), { protocol: 'rest', service: 'x'.repeat(1000) });
  }
  now = minute + 60_000;
  await counter.flush();
  const records = await stream.published();
  assert.is(records.length, maxSourcesPerMinute + 1, 'one record per kept address, and one for the overflow');
  assert.is(records.reduce((sum, record) => sum + detail(record).count, 0), 2 * sources, 'every refusal is counted once');
  const overflow = records.filter((record) => detail(record).source === overflowSource);
  assert.equal(overflow.map((record) => detail(record).count), [2 * 44]);
  assert.ok(records.every((record) => detail(record).sample.service.length === 200), 'each sample value is cut to 200 characters');
});

test('a minute the evidence stream did not take is written at the next flush', async () => {
  let now = minute;
  const counter = new UnauthenticatedRefusals(evidence, () => now);
  counter.count(refusal('192.0.2.9'), { protocol: 'rest' });
  now = minute + 60_000;
  await bus.jsm.streams.delete(streams.evidence);
  await counter.flush();
  await provisionStreams(bus.jsm, 3600, 30);
  stream.rewind();
  assert.equal(await stream.published(), [], 'nothing could be written without the stream');
  await counter.flush();
  assert.equal((await stream.published()).map((record) => detail(record).count), [1]);
});

test.run();
