// Sealed streams (the chunked form of stored payloads): what is sealed opens to the same bytes at every size around a
// segment boundary, a range opens to the same slice, and every change to the stored segments (altered, swapped,
// cut at a boundary, moved to another name) fails the opening rather than yielding other bytes.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Keyring, segmentBytes } from '../../engine/keyring.ts';
import { tempDir } from '../helpers/hub.ts';

const path = join(tempDir('keyring'), 'keys.json');
Keyring.rotate(path, 'k1');
const keyring = Keyring.load(path);
const S = segmentBytes;

/** A buffer as a stream in uneven pieces, as a socket or the Object Store would hand it over. */
async function* pieces(bytes: Buffer, size = 10_007): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

const seal = (plain: Buffer, name = 'upload-a') => collect(keyring.sealStream(pieces(plain), name));
const open = (sealed: Buffer, name = 'upload-a', range?: { start: number; end?: number }) => collect(keyring.openStream(pieces(sealed, 65_521), name, range));

/** The header's length: prefix, key id, colon, nonce prefix. */
const headerBytes = 'swx-enc:v2:k1:'.length + 8;
const segment = (sealed: Buffer, index: number) => sealed.subarray(headerBytes + index * (S + 16), headerBytes + (index + 1) * (S + 16));

async function refused(sealed: Buffer, name = 'upload-a'): Promise<string> {
  try {
    await open(sealed, name);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the altered stream opened');
}

test('sealed streams of 0, 1, S-1, S, S+1 bytes and several MB open to the same bytes, and are not the plaintext', async () => {
  for (const size of [0, 1, S - 1, S, S + 1, 2 * S, 5 * 1024 * 1024 + 3]) {
    const plain = randomBytes(size);
    const sealed = await seal(plain);
    assert.ok(sealed.subarray(0, 11).equals(Buffer.from('swx-enc:v2:')), `${size}: chunked header`);
    assert.is(sealed.length, headerBytes + Math.max(1, Math.ceil(size / S)) * 16 + size, `${size}: one tag per segment`);
    // A run of 32 random bytes turns up in the sealed bytes only if they hold the plaintext (a shorter one might by chance).
    if (size >= 32) assert.is(sealed.indexOf(plain.subarray(0, Math.min(size, 64))), -1, `${size}: the plaintext is not stored`);
    assert.ok((await open(sealed)).equals(plain), `${size}: round trip`);
  }
});

test('an altered segment, two swapped segments, a stream cut at a segment boundary and a stream moved to another name do not open', async () => {
  const plain = randomBytes(3 * S + 100);
  const sealed = await seal(plain);
  const altered = Buffer.from(sealed);
  altered[headerBytes + S + 16 + 5]! ^= 1;
  assert.match(await refused(altered), /segment 1 .* does not open/);
  const swapped = Buffer.concat([sealed.subarray(0, headerBytes), segment(sealed, 1), segment(sealed, 0), sealed.subarray(headerBytes + 2 * (S + 16))]);
  assert.match(await refused(swapped), /segment 0 .* does not open/);
  for (const kept of [1, 2, 3]) {
    assert.match(await refused(sealed.subarray(0, headerBytes + kept * (S + 16))), new RegExp(`segment ${kept - 1} .* does not open`), `cut after ${kept} segments`);
  }
  assert.match(await refused(sealed.subarray(0, headerBytes + S + 16 + 7)), /upload-a is truncated at segment 1/);
  assert.match(await refused(sealed.subarray(0, headerBytes - 3)), /truncated/);
  assert.match(await refused(sealed, 'upload-b'), /segment 0 of sealed stream upload-b does not open/);
  // A full last segment cut off leaves a stream that ends at a boundary too.
  const whole = await seal(randomBytes(2 * S));
  assert.match(await refused(whole.subarray(0, headerBytes + S + 16)), /segment 0 .* does not open/);
});

test('a range opens to the same slice at every offset, across and at segment boundaries', async () => {
  const plain = randomBytes(4 * S + 777);
  const sealed = await seal(plain);
  const points = [0, 1, S - 1, S, S + 1, 2 * S - 1, 2 * S, 3 * S + 5, 4 * S, 4 * S + 776];
  for (const start of points) {
    for (const end of [...points.filter((point) => point >= start), undefined]) {
      const got = await open(sealed, 'upload-a', { start, end });
      assert.ok(got.equals(plain.subarray(start, end === undefined ? undefined : end + 1)), `bytes ${start}-${end ?? ''}`);
    }
  }
  assert.is((await open(sealed, 'upload-a', { start: plain.length + 10 })).length, 0, 'a range past the end is empty');
});

test('a range skips the segments before it unopened, and reads no further than its last segment', async () => {
  const plain = randomBytes(4 * S);
  const sealed = await seal(plain);
  const damaged = Buffer.from(sealed);
  damaged[headerBytes + 10]! ^= 1; // segment 0
  damaged[headerBytes + 3 * (S + 16) + 10]! ^= 1; // segment 3
  assert.ok((await open(damaged, 'upload-a', { start: S + 3, end: 2 * S + 9 })).equals(plain.subarray(S + 3, 2 * S + 10)));
});

test('single-piece sealed blobs and bytes never sealed still open', async () => {
  const plain = randomBytes(300_000);
  assert.ok((await open(keyring.sealBytes(plain, 'sha256-x'), 'sha256-x')).equals(plain));
  assert.ok((await open(keyring.sealBytes(plain, 'sha256-x'), 'sha256-x', { start: 7, end: 99 })).equals(plain.subarray(7, 100)));
  assert.ok((await open(plain, 'sha256-x')).equals(plain));
  assert.ok((await open(plain, 'sha256-x', { start: 250_000 })).equals(plain.subarray(250_000)));
});

test('a stream sealed under a key the keyring no longer holds names that key', async () => {
  const otherPath = join(tempDir('keyring-other'), 'keys.json');
  Keyring.rotate(otherPath, 'gone');
  const sealed = await collect(Keyring.load(otherPath).sealStream(pieces(randomBytes(10)), 'upload-a'));
  assert.match(await refused(sealed), /key gone, which the keyring does not hold/);
});

test.run();
