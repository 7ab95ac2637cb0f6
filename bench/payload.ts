// The body of a bench message: every message distinct, so that none is answered as a duplicate of another.
import { randomUUID } from 'node:crypto';

/** A payload of `bytes`, distinct by its number and a nonce. */
export function benchPayload(n: number, bytes: number): Buffer {
  const body = Buffer.alloc(bytes, 0x20);
  Buffer.from(JSON.stringify({ n, nonce: randomUUID() })).copy(body);
  return body;
}
