// Confidentiality at rest: payload bytes in evidence rows and in the Object Store are sealed with AES-256-GCM under
// keys the operator holds in a keyring file (outside the data folder, e.g. /etc/swx/evidence-keys.json, mode 0600):
//   { "current": "2026-11", "keys": { "2026-11": "<base64 of 32 random bytes>", "2025-01": "…" } }
// New data is sealed under `current`; every key in the file stays usable for reading, so rotation is: add a key,
// make it current, restart (or `swx keys rotate`). Drop an old key only once nothing sealed under it is kept.
// A sealed value names its key: `swx-enc:v1:<key id>:<base64 of iv | ciphertext | tag>`; the associated data binds
// it to where it belongs (a record id, a payload name), so sealed bytes cannot be moved to another record.
// Stored payloads are sealed as streams, in segments (the STREAM construction), so that neither sealing nor opening
// holds a payload whole: `swx-enc:v2:<key id>:`, an 8-byte random nonce prefix, then each segment of plaintext
// (64 KiB, the last 0-64 KiB) as ciphertext | tag. A segment's nonce is the prefix and its index; its associated data
// binds its index, whether it is the last, and the payload's name, so segments cannot be reordered, dropped, moved
// to another payload, nor the stream cut at a segment boundary, without the opening failing.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ByteReader, sliced, type ByteRange } from './byte-range.ts';
import { SwxError } from './errors.ts';

const prefix = 'swx-enc:v1:';
const chunkedPrefix = 'swx-enc:v2:';
/** Plaintext bytes in each segment of the chunked form but the last. */
export const segmentBytes = 64 * 1024;
const tagBytes = 16;
const noncePrefixBytes = 8;
/** A segment index is 4 bytes of the nonce: 2^32 segments of 64 KiB, 256 TiB, far past any body the hub accepts. */
const maxSegments = 2 ** 32;
const keyId = /^[A-Za-z0-9._-]{1,64}$/;

const keyringSchema = z.object({
  current: z.string().regex(keyId),
  keys: z.record(z.string().regex(keyId), z.string().refine((b64) => Buffer.from(b64, 'base64').length === 32, 'each key is 32 bytes, base64')),
}).refine((ring) => ring.current in ring.keys, 'current must name one of keys');

export type KeyringFile = z.infer<typeof keyringSchema>;

export class Keyring {
  private constructor(private readonly keys: Map<string, Buffer>, readonly current: string) {}

  static load(path: string): Keyring {
    let parsed: KeyringFile;
    try {
      parsed = keyringSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
    } catch (error) {
      const reason = error instanceof z.ZodError ? error.issues.map((issue) => issue.message).join('; ') : (error as Error).message;
      throw new Error(`keyring ${path} is not usable: ${reason}`);
    }
    if ((statSync(path).mode & 0o077) !== 0) throw new Error(`keyring ${path} is readable by others (mode ${(statSync(path).mode & 0o777).toString(8)}); chmod 600 it`);
    return new Keyring(new Map(Object.entries(parsed.keys).map(([id, b64]) => [id, Buffer.from(b64, 'base64')])), parsed.current);
  }

  /** Adds a fresh key and makes it current (creating the file when absent); returns its id. */
  static rotate(path: string, id = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')): string {
    const ring: KeyringFile = existsSync(path) ? keyringSchema.parse(JSON.parse(readFileSync(path, 'utf8'))) : { current: id, keys: {} };
    if (!keyId.test(id) || ring.keys[id]) throw new Error(`key id ${id} is not new or not valid (letters, digits, . _ -)`);
    ring.keys[id] = randomBytes(32).toString('base64');
    ring.current = id;
    writeFileSync(path, `${JSON.stringify(ring, null, 2)}\n`, { mode: 0o600 });
    return id;
  }

  static isSealed(value: string): boolean {
    return value.startsWith(prefix);
  }

  seal(plain: Buffer, associated: string): string {
    return `${prefix}${this.current}:${this.sealBody(plain, associated).toString('base64')}`;
  }

  open(sealed: string, associated: string): Buffer {
    const [id, b64] = sealed.slice(prefix.length).split(':');
    return this.openBody(id ?? '', Buffer.from(b64 ?? '', 'base64'), associated);
  }

  /** The binary form, for Object Store blobs: the same header, then iv | ciphertext | tag as bytes. */
  sealBytes(plain: Buffer, associated: string): Buffer {
    return Buffer.concat([Buffer.from(`${prefix}${this.current}:`), this.sealBody(plain, associated)]);
  }

  /** Opens sealBytes output; bytes that were never sealed come back as they are. */
  openBytes(stored: Buffer, associated: string): Buffer {
    if (!stored.subarray(0, prefix.length).equals(Buffer.from(prefix))) return stored;
    const end = stored.indexOf(0x3a, prefix.length);
    return this.openBody(stored.subarray(prefix.length, end).toString(), stored.subarray(end + 1), associated);
  }

  /** Seals a byte stream in the chunked form under the current key, bound to `associated`; holds one segment at a time. */
  async *sealStream(source: AsyncIterable<Uint8Array>, associated: string): AsyncGenerator<Buffer> {
    const key = this.keys.get(this.current)!;
    const noncePrefix = randomBytes(noncePrefixBytes);
    yield Buffer.concat([Buffer.from(`${chunkedPrefix}${this.current}:`), noncePrefix]);
    const reader = new ByteReader(source);
    try {
      for (let index = 0; index < maxSegments; index++) {
        const plain = await reader.take(segmentBytes);
        const final = !(await reader.more());
        const cipher = createCipheriv('aes-256-gcm', key, segmentNonce(noncePrefix, index));
        cipher.setAAD(segmentAad(associated, index, final));
        yield Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        if (final) return;
      }
      throw new SwxError('SWX_TOO_LARGE', `${associated} is longer than ${maxSegments} segments of ${segmentBytes} bytes`);
    } finally {
      await reader.close();
    }
  }

  /**
   * Opens stored bytes as they arrive: the chunked form a segment at a time, the single-piece form whole (it was
   * written whole), and bytes never sealed as they are. With a range, only its bytes come out; chunked segments
   * before it are skipped unopened, and the source is let go once the range is served.
   */
  async *openStream(source: AsyncIterable<Uint8Array>, associated: string, range: ByteRange = { start: 0 }): AsyncGenerator<Buffer> {
    const reader = new ByteReader(source);
    try {
      const head = await reader.peek(chunkedPrefix.length + 65);
      if (head.subarray(0, chunkedPrefix.length).equals(Buffer.from(chunkedPrefix))) {
        yield* this.openChunked(reader, head, associated, range);
      } else if (head.subarray(0, prefix.length).equals(Buffer.from(prefix))) {
        yield* sliced([this.openBytes(await reader.take(Infinity), associated)], range);
      } else {
        yield* sliced(reader.rest(), range);
      }
    } finally {
      await reader.close();
    }
  }

  private async *openChunked(reader: ByteReader, head: Buffer, associated: string, range: ByteRange): AsyncGenerator<Buffer> {
    const end = head.indexOf(0x3a, chunkedPrefix.length);
    if (end < 0) throw new SwxError('SWX_INTERNAL', `sealed stream ${associated} has no key id in its header`);
    const id = head.subarray(chunkedPrefix.length, end).toString();
    const key = this.key(id);
    await reader.take(end + 1);
    const noncePrefix = await reader.take(noncePrefixBytes);
    const first = Math.floor(range.start / segmentBytes);
    const last = range.end === undefined ? Infinity : Math.floor(range.end / segmentBytes);
    for (let index = 0; ; index++) {
      const sealed = await reader.take(segmentBytes + tagBytes);
      if (noncePrefix.length < noncePrefixBytes || sealed.length < tagBytes) {
        throw new SwxError('SWX_INTERNAL', `sealed stream ${associated} is truncated at segment ${index}`);
      }
      // The last segment is known by what follows it: nothing. One cut at a segment boundary is opened as the last
      // and fails, as it was sealed as not the last.
      const final = sealed.length < segmentBytes + tagBytes || !(await reader.more());
      if (index >= first) {
        const decipher = createDecipheriv('aes-256-gcm', key, segmentNonce(noncePrefix, index));
        decipher.setAAD(segmentAad(associated, index, final));
        decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
        let plain: Buffer;
        try {
          plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - tagBytes)), decipher.final()]);
        } catch {
          throw new SwxError('SWX_INTERNAL', `segment ${index} of sealed stream ${associated} does not open under key ${id}: altered, reordered, cut short or moved from another payload`);
        }
        yield* sliced([plain], range, index * segmentBytes);
      }
      if (final || index >= last) return;
    }
  }

  private key(id: string): Buffer {
    const key = this.keys.get(id);
    if (!key) throw new SwxError('SWX_INTERNAL', `sealed with key ${id}, which the keyring does not hold; add it back to read this data`);
    return key;
  }

  private sealBody(plain: Buffer, associated: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.current)!, iv);
    cipher.setAAD(Buffer.from(associated));
    return Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  private openBody(id: string, body: Buffer, associated: string): Buffer {
    const key = this.key(id);
    if (body.length < 28) throw new SwxError('SWX_INTERNAL', 'sealed value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, 12));
    decipher.setAAD(Buffer.from(associated));
    decipher.setAuthTag(body.subarray(body.length - 16));
    try {
      return Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]);
    } catch {
      throw new SwxError('SWX_INTERNAL', `sealed value does not open under key ${id} for ${associated}: altered, or moved from another record`);
    }
  }
}

/** A segment's nonce: the stream's random prefix, then the segment's index (big-endian). */
function segmentNonce(noncePrefix: Buffer, index: number): Buffer {
  const nonce = Buffer.alloc(12);
  noncePrefix.copy(nonce);
  nonce.writeUInt32BE(index, noncePrefixBytes);
  return nonce;
}

/** A segment's associated data: its index, whether it is the last, then the name of what it belongs to. */
function segmentAad(associated: string, index: number, final: boolean): Buffer {
  const fixed = Buffer.alloc(5);
  fixed.writeUInt32BE(index);
  fixed[4] = final ? 1 : 0;
  return Buffer.concat([fixed, Buffer.from(associated)]);
}

/** Base64 evidence bytes as stored: sealed when a keyring is set, plain otherwise; `associated` names the record. */
export function sealRaw(keyring: Keyring | undefined, rawBase64: string, associated: string): string {
  return keyring && rawBase64 ? keyring.seal(Buffer.from(rawBase64, 'base64'), associated) : rawBase64;
}

/** The inverse of sealRaw: base64 of the original bytes. */
export function openRaw(keyring: Keyring | undefined, stored: string, associated: string): string {
  if (!Keyring.isSealed(stored)) return stored;
  if (!keyring) throw new SwxError('SWX_UNAVAILABLE', 'this evidence is sealed (AES-256-GCM) and no keyring is configured; set SWX_KEYRING');
  return keyring.open(stored, associated).toString('base64');
}
