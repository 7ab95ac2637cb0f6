// The pull inbox as agencies that cannot host an HTTPS endpoint use it: direct messages, notifications and channel
// items (in order) wait for the agency, which lists them, downloads large payloads with Range, and acknowledges what it
// kept; one never acknowledged comes back after the visibility timeout; nobody else can see, fetch or settle them; a
// partner that switches between push and pull receives everything once; and `swx receive` does it all end to end.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPki } from '../../engine/pki/index.ts';
import type { InboxMessage } from '../../connectors/rest/agency.ts';
import { addAgency, addService, cleanEnv, evidenceOf, startHubProcess, swxBin, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

const run = promisify(execFile);
const visibilitySeconds = 3;
const inlineLimit = 4096;

let hub: HubProcess;
const agencies = new Map<string, TestAgency>();
const agency = (id: string) => agencies.get(id)!;
const json = (value: unknown) => ({ contentType: 'application/json', body: Buffer.from(JSON.stringify(value)) });
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test.before(async () => {
  hub = await startHubProcess({ env: {
    SWX_INBOX_VISIBILITY_SECONDS: String(visibilitySeconds), SWX_INLINE_PAYLOAD_BYTES: String(inlineLimit),
    SWX_DELIVERY_BACKOFF_MS: '200,400', SWX_PROBE_INTERVAL_MS: '300',
  } });
  agencies.set('CUSTOMS', await addAgency(hub, 'CUSTOMS'));
  agencies.set('FIA', await addAgency(hub, 'FIA'));
  for (const id of ['NTA', 'MPB']) agencies.set(id, await addAgency(hub, id, { receive: 'pull' }));
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['NTA', 'MPB', 'FIA']);
  const put = async (path: string, body: unknown) => assert.is((await hub.admin('PUT', path, body)).status, 200);
  await put('/api/topics/fishery-safety', { name: 'Fishery product safety', notifiers: ['CUSTOMS'], receivers: ['NTA'] });
  await put('/api/channels/taxes-fees', { name: 'Taxes and fees', dataset: 'drawback', providers: ['CUSTOMS'], requesters: ['NTA'] });
});

test.after(async () => {
  for (const each of agencies.values()) { each.client.close(); await each.receiver?.close(); }
  await hub?.stop();
});

async function send(message: Parameters<TestAgency['client']['send']>[0]): Promise<void> {
  const answer = await agency('CUSTOMS').client.send(message);
  assert.is(answer.status, 202, JSON.stringify(answer.body));
}

/** Lists and acknowledges `who`'s inbox until every id arrived; the listings in the order they came. */
async function collectAll(who: string, ids: string[]): Promise<InboxMessage[][]> {
  const listings: InboxMessage[][] = [];
  const seen = () => listings.flat().map((message) => message.id);
  const deadline = Date.now() + 30_000;
  while (!ids.every((id) => seen().includes(id))) {
    if (Date.now() > deadline) throw new Error(`${who} collected ${seen().join(', ')}; expected ${ids.join(', ')}`);
    const { messages } = await agency(who).client.inbox({ max: 10, wait: 2 });
    if (messages.length === 0) continue;
    listings.push(messages);
    await agency(who).client.acknowledge(messages);
  }
  return listings;
}

const deliveredTo = async (id: string, to: string) => (await evidenceOf(hub, id)).filter((row) => row.stage === 'delivered' && row.to_partner === to);

test('direct messages, notifications and channel items wait in the inbox; channel items come one at a time, in order', async () => {
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'DECL-0001', ...json({ declarationNo: 'AA/01' }) });
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'DECL-0002', refTo: 'DECL-0001', ...json({ declarationNo: 'AA/02' }) });
  await send({ service: 'notify.fishery-safety', action: 'alert', messageId: 'FISH-0001', ...json({ product: 'squid' }) });
  const items = ['TAX-0001', 'TAX-0002', 'TAX-0003'];
  for (const [index, id] of items.entries()) await send({ service: 'exchange.taxes-fees', messageId: id, ...json({ item: index + 1 }) });

  const listings = await collectAll('NTA', ['DECL-0001', 'DECL-0002', 'FISH-0001', ...items]);
  const all = listings.flat();
  assert.equal(all.filter((message) => message.channel === 'taxes-fees').map((message) => message.id), items, 'each item once, in order');
  for (const listing of listings) assert.ok(listing.filter((message) => message.channel).length <= 1, 'a lane hands out one item at a time');
  const first = all.find((message) => message.id === 'DECL-0001')!;
  assert.equal(JSON.parse(Buffer.from(first.payload!, 'base64').toString('utf8')), { declarationNo: 'AA/01' });
  assert.is(first.from, 'CUSTOMS');
  assert.is(first.sha256, sha256(Buffer.from(JSON.stringify({ declarationNo: 'AA/01' }))));
  assert.is(all.find((message) => message.id === 'DECL-0002')!.refTo, 'DECL-0001');
  assert.is(all.find((message) => message.id === 'FISH-0001')!.topic, 'fishery-safety');

  for (const id of ['DECL-0001', 'FISH-0001', 'TAX-0002']) {
    await waitFor(`the delivered record of ${id}`, async () => (await deliveredTo(id, 'NTA')).length === 1, 15_000);
    const [record] = await deliveredTo(id, 'NTA');
    const raw = Buffer.from(record.raw, 'base64').toString('utf8');
    assert.ok(raw.startsWith('POST /v1/inbox/ack\nsignature-input: '), raw.slice(0, 200));
    assert.ok(raw.includes(`"id":"${id}"`), 'the signed acknowledgement is the receipt');
    assert.is(JSON.parse(record.signature).keyId, agency('NTA').credential.thumbprint);
  }
  assert.equal((await agency('NTA').client.inbox({ wait: 0 })).messages, [], 'nothing left once acknowledged');
});

test('a delivery handed out and never acknowledged comes back after the visibility timeout; a late acknowledgement still counts', async () => {
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'LATE-0001', ...json({ late: true }) });
  const [handed] = (await agency('NTA').client.inbox({ wait: 10 })).messages;
  assert.is(handed?.id, 'LATE-0001');
  assert.is(handed!.attempt, 1);
  assert.equal((await agency('NTA').client.inbox({ wait: 1 })).messages, [], 'invisible while handed out');
  await sleep(visibilitySeconds * 1000);
  const [again] = (await agency('NTA').client.inbox({ wait: 10 })).messages;
  assert.is(again?.id, 'LATE-0001', 'back after the visibility timeout');
  assert.is(again!.attempt, 2);
  assert.is.not(again!.token, handed!.token);
  const late = await agency('NTA').client.acknowledge([handed!]);
  assert.equal(late.acknowledged, [{ id: 'LATE-0001', from: 'CUSTOMS', stage: 'delivered' }]);
  const current = await agency('NTA').client.acknowledge([again!]);
  assert.equal(current.acknowledged, [{ id: 'LATE-0001', from: 'CUSTOMS', stage: 'redelivered' }]);
  await sleep(visibilitySeconds * 1000 + 500);
  assert.equal((await agency('NTA').client.inbox({ wait: 1 })).messages, [], 'settled: it does not come back');
});

test('acknowledging twice keeps one delivered record; the repeat is a redelivery', async () => {
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'TWICE-0001', ...json({ twice: true }) });
  const [message] = (await agency('NTA').client.inbox({ wait: 10 })).messages;
  assert.is(message?.id, 'TWICE-0001');
  assert.is((await agency('NTA').client.acknowledge([message!], { storedAs: 'TWICE-0001.bin' })).acknowledged[0]!.stage, 'delivered');
  assert.is((await agency('NTA').client.acknowledge([message!])).acknowledged[0]!.stage, 'redelivered');
  assert.is((await agency('NTA').client.acknowledge([message!])).acknowledged[0]!.stage, 'redelivered');
  await waitFor('the redelivered record', async () => (await evidenceOf(hub, 'TWICE-0001')).some((row) => row.stage === 'redelivered'), 15_000);
  const rows = await evidenceOf(hub, 'TWICE-0001');
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 1);
  assert.is(rows.filter((row) => row.stage === 'redelivered').length, 1, 'the same acknowledgement again is the same record');
  const receipt = Buffer.from(rows.find((row) => row.stage === 'delivered').raw, 'base64').toString('utf8');
  assert.ok(receipt.includes('"receipt":{"storedAs":"TWICE-0001.bin"}'), 'the agency\'s own receipt data is kept');
});

test('another agency cannot list, download or acknowledge a partner\'s deliveries; a push partner has no inbox', async () => {
  const big = randomBytes(inlineLimit * 3);
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'MINE-0001', contentType: 'application/octet-stream', body: big });
  const [message] = (await agency('NTA').client.inbox({ wait: 10 })).messages;
  assert.is(message?.id, 'MINE-0001');
  assert.ok(message!.payloadUrl, 'over the inline limit: fetched by URL');
  assert.equal((await agency('MPB').client.inbox({ wait: 0 })).messages, [], 'MPB sees only its own');
  const download = await agency('MPB').client.payloadPart(message!, 0).then(() => 'downloaded', (error: Error) => error.message);
  assert.match(download, /answered 404/);
  const ack = await agency('MPB').client.acknowledge([message!]).then(() => 'acknowledged', (error: Error) => error.message);
  assert.match(ack, /^SWX_NOT_FOUND: /);
  const forged = { ...message!, token: Buffer.from(Buffer.from(message!.token, 'base64url').toString().replace('deliver-NTA', 'deliver-MPB')).toString('base64url') };
  assert.match(await agency('MPB').client.acknowledge([forged]).then(() => 'acknowledged', (error: Error) => error.message), /^SWX_NOT_FOUND: /, 'MPB\'s own consumer, NTA\'s message');
  assert.match(await agency('CUSTOMS').client.inbox().then(() => 'listed', (error: Error) => error.message), /^SWX_RECEIVES_BY_PUSH: /);
  assert.is((await agency('NTA').client.payloadPart(message!, 0)).body.length, big.length, 'NTA itself can');
  assert.is((await agency('NTA').client.acknowledge([message!])).acknowledged[0]!.stage, 'delivered', 'nobody else settled it');
});

test('a large payload downloads in two parts with Range and matches its SHA-256', async () => {
  const big = randomBytes(300 * 1024 + 17);
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'LARGE-0001', contentType: 'application/octet-stream', body: big });
  const [message] = (await agency('NTA').client.inbox({ wait: 10 })).messages;
  assert.is(message?.id, 'LARGE-0001');
  assert.is(message!.payload, undefined);
  assert.is(message!.size, big.length);
  const half = Math.floor(big.length / 2);
  const first = await agency('NTA').client.payloadPart(message!, 0, half - 1);
  assert.is(first.status, 206);
  assert.is(first.contentRange, `bytes 0-${half - 1}/${big.length}`);
  const file = join(tempDir('inbox'), 'LARGE-0001.bin.part');
  writeFileSync(file, first.body);
  await agency('NTA').client.download(message!, file); // resumes from what the file holds
  assert.ok(readFileSync(file).equals(big));
  const tail = await agency('NTA').client.payloadPart(message!, big.length - 10);
  assert.is(tail.contentRange, `bytes ${big.length - 10}-${big.length - 1}/${big.length}`);
  assert.ok(tail.body.equals(big.subarray(big.length - 10)));
  assert.match(await agency('NTA').client.payloadPart(message!, big.length + 1).then(() => 'served', (error: Error) => error.message), /answered 416/);
  await agency('NTA').client.acknowledge([message!]);
});

test('a partner that switches push → pull → push receives every message once, each with one delivered record', async () => {
  const fia = agency('FIA');
  const partner = async (receive: 'push' | 'pull') => {
    const current = (await hub.admin('GET', '/api/partners/FIA')).body;
    assert.is((await hub.admin('PUT', '/api/partners/FIA', { ...current, receive })).status, 200);
  };
  const ids = (from: number) => Array.from({ length: 3 }, (_, index) => `SW-${String(from + index).padStart(4, '0')}`);
  for (const id of ids(1)) await send({ to: 'FIA', service: 'customs.declaration', messageId: id, ...json({ id }) });
  await waitFor('pushed before the switch', () => ids(1).every((id) => fia.receiver!.deliveriesOf(id) === 1), 15_000);
  await partner('pull');
  for (const id of ids(4)) await send({ to: 'FIA', service: 'customs.declaration', messageId: id, ...json({ id }) });
  const pulled = (await collectAll('FIA', ids(4))).flat().map((message) => message.id);
  assert.equal(pulled.sort(), ids(4));
  await partner('push');
  for (const id of ids(7)) await send({ to: 'FIA', service: 'customs.declaration', messageId: id, ...json({ id }) });
  await waitFor('pushed after the switch back', () => ids(7).every((id) => fia.receiver!.deliveriesOf(id) === 1), 15_000);
  await sleep(1_000);
  for (const id of [...ids(1), ...ids(7)]) assert.is(fia.receiver!.deliveriesOf(id), 1, `${id} pushed once`);
  for (const id of ids(4)) assert.is(fia.receiver!.deliveriesOf(id), 0, `${id} collected, not pushed`);
  for (const id of [...ids(1), ...ids(4), ...ids(7)]) {
    await waitFor(`the delivered record of ${id}`, async () => (await deliveredTo(id, 'FIA')).length === 1, 15_000);
    assert.is((await evidenceOf(hub, id)).filter((row) => row.stage === 'delivered' || row.stage === 'redelivered').length, 1, `${id}: one receipt`);
  }
});

test('swx receive --once stores each message with its metadata, checked, and acknowledges it', async () => {
  const big = randomBytes(64 * 1024);
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'RECV-0001', ...json({ small: true }) });
  await send({ to: 'NTA', service: 'customs.declaration', messageId: 'RECV-0002', contentType: 'application/octet-stream', body: big });
  await send({ service: 'exchange.taxes-fees', messageId: 'TAX-0101', ...json({ item: 101 }) });
  await send({ service: 'exchange.taxes-fees', messageId: 'TAX-0102', ...json({ item: 102 }) });
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  const { credential } = agency('NTA');
  const out = tempDir('receive');
  const { stdout } = await run(swxBin, [
    'receive', '--hub', `https://localhost:${hub.agencyPort}`, '--cert', credential.certPath, '--key', credential.keyPath,
    '--ca', pki.ca.certPath, '--hub-cert', pki.hubSign.certPath, '--out', out, '--wait', '5', '--once',
  ], { env: cleanEnv(), timeout: 60_000 });
  const stored = stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: string; sha256: string; from: string });
  assert.equal(stored.map((entry) => entry.id).sort(), ['RECV-0001', 'RECV-0002', 'TAX-0101', 'TAX-0102']);
  assert.ok(readFileSync(join(out, 'RECV-0002.bin')).equals(big));
  assert.is(JSON.parse(readFileSync(join(out, 'RECV-0002.json'), 'utf8')).sha256, sha256(big));
  assert.equal(JSON.parse(readFileSync(join(out, 'RECV-0001.bin'), 'utf8')), { small: true });
  assert.ok(!existsSync(join(out, 'RECV-0002.bin.part')));
  for (const id of ['RECV-0001', 'RECV-0002', 'TAX-0102']) await waitFor(`the delivered record of ${id}`, async () => (await deliveredTo(id, 'NTA')).length === 1, 15_000);
  assert.equal((await agency('NTA').client.inbox({ wait: 0 })).messages, [], 'everything acknowledged');
});

test('a hub that stops answers a listing waiting for mail at once and stops within seconds, not after the wait', async () => {
  const waiting = agency('MPB').client.inbox({ wait: 30 }).then(() => 'answered', (error: Error) => `refused: ${error.message}`);
  await sleep(500);
  const started = Date.now();
  await hub.stop();
  const stoppedMs = Date.now() - started;
  assert.ok(stoppedMs < 15_000, `the hub took ${stoppedMs} ms to stop with a listing waiting`);
  const outcome = await Promise.race([waiting, sleep(5_000).then(() => 'still waiting')]);
  assert.is.not(outcome, 'still waiting', 'the waiting listing was answered or closed when the hub stopped');
});

test.run();
