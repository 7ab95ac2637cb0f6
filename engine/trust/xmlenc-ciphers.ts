// The primitives of XML Encryption as AS4 uses them (xmlenc.ts writes and reads the XML around them): AES-GCM over a
// stream of chunks, laid out IV ‖ ciphertext ‖ tag, its tag held back until the end; AES key wrap; the X25519 + HKDF
// key-encryption key. All node:crypto, native and cheap enough to run on the event loop a chunk at a time.
import { createCipheriv, createDecipheriv, diffieHellman, hkdfSync, randomBytes, type DecipherGCM, type KeyObject } from 'node:crypto';
import { SwxError } from '../errors.ts';

const aes128gcm = 'http://www.w3.org/2009/xmlenc11#aes128-gcm';
const aes256gcm = 'http://www.w3.org/2009/xmlenc11#aes256-gcm';

/** Content ciphers by URI: Node's name and the key length. */
export const contentCiphers: Record<string, { cipher: 'aes-128-gcm' | 'aes-256-gcm'; keyLength: number }> = {
  [aes128gcm]: { cipher: 'aes-128-gcm', keyLength: 16 },
  [aes256gcm]: { cipher: 'aes-256-gcm', keyLength: 32 },
};
export const ivLength = 12;
export const tagLength = 16;
/** RFC 3394 2.2.3.1: the default initial value of AES key wrap. */
const keyWrapIv = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
export const hkdfKeyLength = 16;

export function chunks(body: Buffer | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return Buffer.isBuffer(body) ? (async function* () { yield body; })() : body;
}

/** IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes), as xmlenc 1.1 5.2.4 lays out AES-GCM. */
export async function* gcmSealed(source: AsyncIterable<Uint8Array>, cipherName: 'aes-128-gcm' | 'aes-256-gcm', key: Buffer): AsyncGenerator<Buffer> {
  const iv = randomBytes(ivLength);
  const cipher = createCipheriv(cipherName, key, iv, { authTagLength: tagLength });
  yield iv;
  for await (const chunk of source) {
    const out = cipher.update(chunk);
    if (out.length > 0) yield out;
  }
  const last = cipher.final();
  if (last.length > 0) yield last;
  yield cipher.getAuthTag();
}

/**
 * The plaintext of IV ‖ ciphertext ‖ tag as it arrives: the last 16 bytes seen are always held back as the possible
 * tag, and only `final()` says whether all that was given is authentic. On failure the generator throws
 * SWX_DECRYPT_FAILED after the last chunk: what it yielded before must then be discarded.
 */
export async function* gcmOpened(source: AsyncIterable<Uint8Array>, cipherName: 'aes-128-gcm' | 'aes-256-gcm', key: Buffer, what: string): AsyncGenerator<Buffer> {
  let head: Buffer = Buffer.alloc(0);
  let decipher: DecipherGCM | undefined;
  let tail: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    let bytes: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!decipher) {
      head = head.length === 0 ? bytes : Buffer.concat([head, bytes]);
      if (head.length < ivLength) continue;
      decipher = createDecipheriv(cipherName, key, head.subarray(0, ivLength), { authTagLength: tagLength });
      bytes = head.subarray(ivLength);
    }
    if (tail.length + bytes.length <= tagLength) {
      tail = Buffer.concat([tail, bytes]);
      continue;
    }
    // What was held back is ciphertext after all: it goes first, then all of this chunk but its last 16 bytes (with
    // fewer than 16 in the chunk, part of the held bytes stays held).
    const keep = Math.max(0, tagLength - bytes.length);
    const released = tail.length > keep ? decipher.update(tail.subarray(0, tail.length - keep)) : undefined;
    const out = bytes.length > tagLength ? decipher.update(bytes.subarray(0, bytes.length - tagLength)) : undefined;
    // A copy, so that the held tag does not keep a whole source chunk alive.
    tail = Buffer.concat([tail.subarray(tail.length - keep), bytes.subarray(Math.max(0, bytes.length - tagLength))]);
    if (released && released.length > 0) yield released;
    if (out && out.length > 0) yield out;
  }
  if (!decipher || tail.length < tagLength) throw new SwxError('SWX_DECRYPT_FAILED', `${what}: the ciphertext is shorter than its IV and tag (truncated?)`);
  decipher.setAuthTag(tail);
  let last: Buffer;
  try {
    last = decipher.final();
  } catch {
    throw new SwxError('SWX_DECRYPT_FAILED', `${what}: the AES-GCM tag does not match: the ciphertext was altered or cut short, or the key is not the one it was encrypted with; discard every byte already read`);
  }
  if (last.length > 0) yield last;
}

export function wrapWithKek(kek: Buffer, key: Buffer): Buffer {
  const cipher = createCipheriv('id-aes128-wrap', kek, keyWrapIv);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

export function unwrapWithKek(kek: Buffer, wrapped: Buffer): Buffer {
  const decipher = createDecipheriv('id-aes128-wrap', kek, keyWrapIv);
  return Buffer.concat([decipher.update(wrapped), decipher.final()]);
}

export interface HkdfParams { salt: Buffer; info: Buffer; keyLength: number }

export function derivedKek(privateKey: KeyObject, publicKey: KeyObject, params: HkdfParams): Buffer {
  const secret = diffieHellman({ privateKey, publicKey });
  return Buffer.from(hkdfSync('sha256', secret, params.salt, params.info, params.keyLength));
}
