// Payloads in the Object Store of a real nats-server: sealed at rest whether placed whole or received as a stream,
// read back as a stream that pulls only as it is read, whole (checked against the envelope's SHA-256) or by range.
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Keyring, segmentBytes } from '../../engine/keyring.ts';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { Payloads, type PayloadOf } from '../../engine/payloads.ts';
import { freePort, tempDir } from '../helpers/hub.ts';

const MiB = 1024 * 1024;
const dir = tempDir('payloads');
let nats: EmbeddedNats;
let bus: Bus;
let sealed: Payloads;
let plain: Payloads;
let store: ObjectStore;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const nameOf = (ref: string) => ref.slice('swx_payloads/'.length);

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

async function failure(stream: Readable): Promise<string> {
  try {
    await collect(stream);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the stream ended cleanly');
}

/** A body as a socket hands it over: in pieces, as they come. */
const body = (bytes: Buffer) => Readable.from((function* pieces() { for (let at = 0; at < bytes.length; at += 16_384) yield bytes.subarray(at, at + 16_384); })());

test.before(async () => {
  nats = await startEmbeddedNats(dir, await freePort());
  bus = await connectBus(nats.url, 'payloads-test');
  const keys = join(dir, 'keys.json');
  Keyring.rotate(keys, 'k1');
  sealed = await Payloads.open(bus, 1024, Keyring.load(keys));
  plain = await Payloads.open(bus, 1024);
  store = await new Objm(bus.js).open('swx_payloads');
});

test.after(async () => {
  await bus?.nc.close();
  await nats?.stop();
});

test('with a keyring, a placed and a received payload are stored sealed and read back whole, as a stream and as bytes', async () => {
  const bytes = randomBytes(3 * MiB + 5);
  const placed = await sealed.place(sha256(bytes), bytes);
  const received = await sealed.receive(body(bytes), ['sha512']);
  assert.is(received.size, bytes.length);
  assert.is(received.sha256, sha256(bytes), 'the plaintext is hashed, not what is stored');
  assert.equal(received.digest('sha512'), createHash('sha512').update(bytes).digest());
  for (const ref of [placed.payloadRef!, received.payloadRef]) {
    const stored = Buffer.from((await store.getBlob(nameOf(ref)))!);
    assert.ok(stored.subarray(0, 11).equals(Buffer.from('swx-enc:v2:')), `${ref} is sealed in segments`);
    assert.is(stored.indexOf(bytes.subarray(1000, 1064)), -1, `${ref} does not hold the plaintext`);
    const envelope: PayloadOf = { id: 'M1', payloadRef: ref, sha256: sha256(bytes) };
    assert.ok((await collect(sealed.stream(envelope))).equals(bytes), `${ref} streams back`);
    assert.ok((await sealed.bytes(envelope)).equals(bytes), `${ref} reads back`);
  }
});

test('without a keyring, a received payload is stored as it came, named by its SHA-256 and size over chunks and a partial last one', async () => {
  const bytes = randomBytes(3 * MiB + 5);
  const received = await plain.receive(body(bytes), ['sha256', 'sha512']);
  assert.is(received.size, bytes.length);
  assert.is(received.sha256, sha256(bytes));
  assert.equal(received.digest('sha256'), createHash('sha256').update(bytes).digest());
  assert.equal(received.digest('sha512'), createHash('sha512').update(bytes).digest());
  assert.ok(Buffer.from((await store.getBlob(nameOf(received.payloadRef)))!).equals(bytes), 'stored as it came');
  assert.ok((await plain.bytes({ id: 'M0', payloadRef: received.payloadRef, sha256: sha256(bytes) })).equals(bytes), 'reads back');
  const empty = await plain.receive(body(Buffer.alloc(0)), []);
  assert.is(empty.sha256, sha256(Buffer.alloc(0)), 'an empty body too');
});

test('a body that fails as it streams in leaves nothing stored and its error is thrown', async () => {
  const before = (await store.list()).length;
  const failing = Readable.from((async function* pieces() { yield randomBytes(300_000); throw new Error('sender gone'); })());
  try {
    await sealed.receive(failing, []);
    assert.unreachable('the body was stored');
  } catch (error) {
    assert.is((error as Error).message, 'sender gone');
  }
  assert.is((await store.list()).length, before);
});

test('a range read equals the slice at many offsets, sealed, unsealed and inline', async () => {
  const bytes = randomBytes(3 * segmentBytes + 300_000);
  const envelopes: [string, Payloads, PayloadOf][] = [
    ['sealed', sealed, { id: 'R1', payloadRef: (await sealed.receive(body(bytes), [])).payloadRef, sha256: sha256(bytes) }],
    ['unsealed', plain, { id: 'R2', payloadRef: (await plain.receive(body(bytes), [])).payloadRef, sha256: sha256(bytes) }],
    ['inline', plain, { id: 'R3', payload: bytes.toString('base64'), sha256: sha256(bytes) }],
  ];
  const points = [0, 1, segmentBytes - 1, segmentBytes, 128 * 1024 - 1, 128 * 1024, 2 * segmentBytes + 17, 400_000, bytes.length - 1];
  for (const [what, payloads, envelope] of envelopes) {
    for (const start of points) {
      for (const end of [start, start + 1, start + 70_000, bytes.length - 1, undefined]) {
        const got = await collect(payloads.stream(envelope, { start, end }));
        assert.ok(got.equals(bytes.subarray(start, end === undefined ? undefined : end + 1)), `${what}: bytes ${start}-${end ?? ''}`);
      }
    }
  }
  assert.throws(() => sealed.stream(envelopes[0]![2], { start: 10, end: 9 }), /not a range/);
});

test('a payload that does not match the envelope\'s SHA-256, or is missing, errors the stream', async () => {
  const bytes = randomBytes(200_000);
  for (const payloads of [sealed, plain]) {
    const { payloadRef } = await payloads.receive(body(bytes), []);
    assert.match(await failure(payloads.stream({ id: 'X1', payloadRef, sha256: sha256(Buffer.from('other')) })), /X1 does not match its SHA-256/);
    await store.delete(nameOf(payloadRef));
    assert.match(await failure(payloads.stream({ id: 'X2', payloadRef, sha256: sha256(bytes) })), /X2 is missing from the Object Store/);
  }
});

test('a payload sealed in one piece (before segments) still reads back', async () => {
  const bytes = randomBytes(100_000);
  const name = `sha256-${sha256(bytes)}-single`;
  await store.putBlob({ name }, Keyring.load(join(dir, 'keys.json')).sealBytes(bytes, name));
  assert.ok((await sealed.bytes({ id: 'V1', payloadRef: `swx_payloads/${name}`, sha256: sha256(bytes) })).equals(bytes));
});

test('a slow reader of a large payload makes the stream pull no more than it reads', async () => {
  const bytes = randomBytes(24 * MiB);
  const { payloadRef } = await sealed.receive(body(bytes), []);
  const stream = sealed.stream({ id: 'S1', payloadRef, sha256: sha256(bytes) });
  const before = bus.nc.stats().inBytes;
  const first = await new Promise<Buffer>((resolve) => stream.once('readable', () => resolve(stream.read() as Buffer)));
  await sleep(500);
  const pulled = bus.nc.stats().inBytes - before;
  console.log(`a reader that took ${first.length} bytes and paused: ${(pulled / 1024).toFixed(0)} KiB came from NATS of a ${bytes.length / MiB} MiB payload`);
  assert.ok(pulled < 2 * MiB, `${pulled} bytes pulled while the reader paused`);
  const rest = await collect(stream);
  assert.ok(Buffer.concat([first, rest]).equals(bytes));
});

test('a retention sets the bucket\'s max age to a day past it, follows the setting at every start, and names placed payloads by their day', async () => {
  const maxAge = async () => (await bus.jsm.streams.info('OBJ_swx_payloads')).config.max_age;
  const retained = await Payloads.open(bus, 1024, undefined, 30);
  assert.is(await maxAge(), 31 * 86_400 * 1e9);
  const bytes = randomBytes(5000);
  const { payloadRef } = await retained.place(sha256(bytes), bytes);
  assert.is(payloadRef, `swx_payloads/sha256-${sha256(bytes)}-${new Date().toISOString().slice(0, 10)}`);
  assert.ok((await retained.bytes({ id: 'T1', payloadRef, sha256: sha256(bytes) })).equals(bytes));
  await Payloads.open(bus, 1024);
  assert.is(await maxAge(), 0, 'kept for ever again');
});

test.run();
