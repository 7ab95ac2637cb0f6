// Bodies over the inline limit whose checks need none of their bytes (not JSON, not a payload that signs itself) are
// written to the Object Store as they arrive, sealed at rest with the hub's keyring: the hub never holds one whole,
// the receiver gets it intact (streamed out of the store again), and a body refused once it has streamed past (its digest) leaves nothing stored. Such
// bodies have their own maximum, far above the one for bodies read whole, and claim from the in-flight budget only
// the window they hold.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Objm } from '@nats-io/obj';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Keyring } from '../../engine/keyring.ts';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import { addAgency, addService, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { rawPost } from '../helpers/raw.ts';

const MiB = 1024 * 1024;
let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let bus: Bus;

test.before(async () => {
  const keyring = join(tempDir('streamed-keys'), 'keys.json');
  Keyring.rotate(keyring, 'k1');
  // Bodies read whole stop at 8 MiB and the budget holds 16 MiB per agency, yet a streamed body may be 200 MiB.
  hub = await startHubProcess({ env: {
    SWX_KEYRING: keyring, SWX_MAX_BODY_BYTES: String(8 * MiB), SWX_MAX_STREAMED_BODY_BYTES: String(200 * MiB),
    SWX_INFLIGHT_BODY_BYTES: String(32 * MiB), SWX_INFLIGHT_BODY_BYTES_PER_PARTNER: String(16 * MiB),
  } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  await addService(hub, 'bulk.dataset', ['CUSTOMS'], ['BOFT']);
  bus = await connectBus(`nats://127.0.0.1:${hub.natsPort}`, 'streamed-body-test');
});

test.after(async () => {
  await bus?.nc.close();
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

const uploadNames = async () => (await (await new Objm(bus.js).open('swx_payloads')).list()).filter((info) => info.name.startsWith('upload-')).map((info) => info.name);
const uploads = async () => (await uploadNames()).length;
const kib = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const bulk = (body: Buffer, messageId: string) => ({ to: 'BOFT', service: 'bulk.dataset', contentType: 'application/zip', body, messageId });

test('a 192 MiB body sealed as it streams in, refused for its digest once it streamed past: the hub held far less than the body, and nothing of it is stored', async () => {
  const size = 192 * MiB;
  const headers = customs.client.signedHeaders(bulk(Buffer.alloc(1), 'STREAMED-REFUSED'));
  const pid = hub.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // VmHWM from here holds this request's peak alone
  const refused = await rawPost(`https://localhost:${hub.agencyPort}/v1/messages`, { ...headers, 'content-length': String(size) }, randomBytes(size), {
    cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem,
  });
  const grown = kib(pid, 'VmHWM') - before;
  console.log(`a ${size / MiB} MiB body streamed past: the hub's peak RSS grew ${(grown / MiB).toFixed(0)} MiB`);
  assert.is(refused.status, 400, refused.text);
  assert.is(refused.body.code, 'SWX_DIGEST_MISMATCH');
  // Held whole, the body alone would be 192 MiB; streamed, the hub holds chunks and the garbage they leave.
  assert.ok(grown < size / 2, `the hub's RSS peaked ${(grown / MiB).toFixed(0)} MiB over its size before`);
  const rows = await evidenceOf(hub, String(refused.body.messageId), 'rejected');
  assert.is(rows.find((row) => row.stage === 'rejected')?.code, 'SWX_DIGEST_MISMATCH');
  assert.is(Number(rows.find((row) => row.stage === 'received')?.size), size, 'the evidence names the size that arrived');
  assert.is(await uploads(), 0, 'nothing of the refused body is left in the Object Store');
});

test('a streamed body declared over SWX_MAX_STREAMED_BODY_BYTES is refused before any of it is read', async () => {
  const headers = customs.client.signedHeaders(bulk(Buffer.alloc(1), 'STREAMED-TOO-LARGE'));
  const refused = await rawPost(`https://localhost:${hub.agencyPort}/v1/messages`, headers, Buffer.alloc(200 * MiB + 1), {
    cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem,
  });
  assert.is(refused.status, 413, refused.text);
  assert.is(refused.body.code, 'SWX_TOO_LARGE');
  assert.match(String(refused.body.detail), /limit of 209715200 bytes/);
});

test('a 24 MiB body, three times the limit for bodies read whole, streams into the Object Store sealed and reaches the receiver intact, named by its digest in the evidence', async () => {
  const body = randomBytes(24 * MiB);
  const answer = await customs.client.send(bulk(body, 'STREAMED-1'));
  assert.is(answer.status, 202, answer.text);
  await waitFor('the streamed message in BOFT inbox', () => existsSync(join(boft.inboxDir, 'STREAMED-1.json')), 60_000);
  const sha256 = createHash('sha256').update(body).digest('hex');
  assert.is(createHash('sha256').update(readFileSync(join(boft.inboxDir, 'STREAMED-1.bin'))).digest('hex'), sha256);
  assert.is(await uploads(), 1, 'the accepted body is kept');
  const stored = Buffer.from((await (await new Objm(bus.js).open('swx_payloads')).getBlob((await uploadNames())[0]!))!);
  assert.ok(stored.subarray(0, 14).equals(Buffer.from('swx-enc:v2:k1:')), 'stored sealed in segments under the current key');
  assert.is(stored.indexOf(body.subarray(5_000_000, 5_000_064)), -1, 'the Object Store does not hold the plaintext');
  const received = (await evidenceOf(hub, 'STREAMED-1', 'received')).find((row) => row.stage === 'received');
  assert.is(received?.sha256, sha256);
  // Sent again: a duplicate, whose second copy is not kept.
  const again = await customs.client.send(bulk(body, 'STREAMED-1'));
  assert.is(again.body.duplicate, true);
  assert.is(await uploads(), 1, 'the resend\'s copy is discarded');
});

test('a chunked body (no Content-Length) three times the limit for bodies read whole streams into the Object Store; a small chunked one is held inline as ever', async () => {
  const chunked = (body: Buffer, messageId: string) => rawPost(`https://localhost:${hub.agencyPort}/v1/messages`, customs.client.signedHeaders(bulk(body, messageId)), body, {
    cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem, chunked: true,
  });
  const stored = await uploads();
  const body = randomBytes(24 * MiB);
  const answer = await chunked(body, 'CHUNKED-LARGE');
  assert.is(answer.status, 202, answer.text);
  assert.is(await uploads(), stored + 1, 'streamed into the Object Store');
  await waitFor('the chunked message in BOFT inbox', () => existsSync(join(boft.inboxDir, 'CHUNKED-LARGE.json')), 60_000);
  assert.is(createHash('sha256').update(readFileSync(join(boft.inboxDir, 'CHUNKED-LARGE.bin'))).digest('hex'), createHash('sha256').update(body).digest('hex'));

  const small = randomBytes(3000);
  const smallAnswer = await chunked(small, 'CHUNKED-SMALL');
  assert.is(smallAnswer.status, 202, smallAnswer.text);
  assert.is(await uploads(), stored + 1, 'a small body is not put in the Object Store');
  const received = (await evidenceOf(hub, 'CHUNKED-SMALL', 'received')).find((row) => row.stage === 'received');
  assert.is(received?.raw, small.toString('base64'), 'held inline, its bytes in the evidence');
  await waitFor('the small chunked message in BOFT inbox', () => existsSync(join(boft.inboxDir, 'CHUNKED-SMALL.json')), 60_000);
  assert.ok(readFileSync(join(boft.inboxDir, 'CHUNKED-SMALL.bin')).equals(small));

  // A digest that does not match is refused after the body streamed past, and nothing of it is kept.
  const wrong = customs.client.signedHeaders(bulk(body, 'CHUNKED-WRONG'));
  const altered = Buffer.from(body);
  altered[altered.length - 1]! ^= 1;
  const refused = await rawPost(`https://localhost:${hub.agencyPort}/v1/messages`, wrong, altered, {
    cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem, chunked: true,
  });
  assert.is(refused.status, 400, refused.text);
  assert.is(refused.body.code, 'SWX_DIGEST_MISMATCH');
  assert.is(await uploads(), stored + 1, 'the refused body is not kept');
});

test('a 192 MiB body streams in and out again: accepted, sealed, delivered intact, and the hub held far less than the body', async () => {
  const size = 192 * MiB;
  const body = randomBytes(size);
  const pid = hub.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const answer = await customs.client.send(bulk(body, 'STREAMED-LARGE'));
  assert.is(answer.status, 202, answer.text);
  await waitFor('the large message in BOFT inbox', () => existsSync(join(boft.inboxDir, 'STREAMED-LARGE.json')), 120_000);
  const grown = kib(pid, 'VmHWM') - before;
  console.log(`a ${size / MiB} MiB body in and out: the hub's peak RSS grew ${(grown / MiB).toFixed(0)} MiB`);
  assert.ok(grown < size / 2, `the hub's RSS peaked ${(grown / MiB).toFixed(0)} MiB over its size before`);
  const sha256 = createHash('sha256').update(body).digest('hex');
  assert.is(JSON.parse(readFileSync(join(boft.inboxDir, 'STREAMED-LARGE.json'), 'utf8')).sha256, sha256);
  assert.is(createHash('sha256').update(readFileSync(join(boft.inboxDir, 'STREAMED-LARGE.bin'))).digest('hex'), sha256);
  await evidenceOf(hub, 'STREAMED-LARGE', 'delivered');
});

test.run();
