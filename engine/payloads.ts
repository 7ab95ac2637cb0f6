// Payloads over the inline limit live in the JetStream Object Store, named by their SHA-256 when placed whole and by a
// fresh upload id when streamed in as they arrived: a resend or another sender can never replace stored bytes, and
// the bytes are checked against the envelope's SHA-256 on every read. They are evidence too, so the bucket keeps them
// (no time-to-live); retention is an evidence policy, not a delivery one.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Envelope } from './envelope.ts';
import type { Keyring } from './keyring.ts';
import type { Bus } from './nats/jetstream.ts';

const bucket = 'swx_payloads';

/** A body written to the Object Store as it arrived: where it is, its size, and its digests. */
export interface StoredPayload {
  payloadRef: string;
  size: number;
  /** Hex SHA-256. */
  sha256: string;
  digest(hash: 'sha256' | 'sha512'): Buffer;
}

/** A web stream that reads `source` only as the Object Store asks for the next chunk, so no more than that is held. */
function pulled(source: Readable): ReadableStream<Uint8Array> {
  const chunks = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await chunks.next();
      if (done) controller.close(); else controller.enqueue(value as Buffer);
    },
    async cancel() { await chunks.return?.(); },
  }, { highWaterMark: 0 });
}

export class Payloads {
  private constructor(private readonly store: ObjectStore, readonly inlineLimit: number, private readonly keyring?: Keyring) {}

  /** With a keyring, blobs are sealed (AES-256-GCM) under its current key; reads open blobs sealed or not. */
  static async open(bus: Bus, inlineLimit: number, keyring?: Keyring): Promise<Payloads> {
    return new Payloads(await new Objm(bus.js).create(bucket), inlineLimit, keyring);
  }

  /** Puts the bytes inline or into the Object Store and returns the envelope fields that say where they are. */
  async place(sha256: string, bytes: Uint8Array): Promise<Pick<Envelope, 'payload' | 'payloadRef'>> {
    if (bytes.length <= this.inlineLimit) return { payload: Buffer.from(bytes).toString('base64') };
    const name = `sha256-${sha256}`;
    if (!(await this.store.info(name))) await this.store.putBlob({ name }, this.keyring ? this.keyring.sealBytes(Buffer.from(bytes), name) : bytes);
    return { payloadRef: `${bucket}/${name}` };
  }

  /** Bodies can be streamed to the store only unsealed: sealing at rest (a keyring) seals a payload in one piece. */
  get streams(): boolean {
    return !this.keyring;
  }

  /**
   * Writes a body over the inline limit to the Object Store as it arrives, hashing it on the way (`hashes`), so it is
   * never held whole. When the body fails (too large, its sender gone) nothing is left stored and its error is thrown.
   * A body refused afterwards (its digest, its receiver) is the caller's to discard().
   */
  async receive(body: Readable, hashes: ('sha256' | 'sha512')[]): Promise<StoredPayload> {
    const name = `upload-${randomUUID()}`;
    const hashing = new Map<string, Hash>(['sha256', ...hashes].map((hash) => [hash, createHash(hash)]));
    let size = 0;
    const hashed = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        for (const hash of hashing.values()) hash.update(chunk);
        done(null, chunk);
      },
    });
    let failure: Error | undefined;
    pipeline(body, hashed, (error) => { failure = error ?? undefined; });
    try {
      await this.store.put({ name }, pulled(hashed));
      if (failure) throw failure;
    } catch (error) {
      await this.store.delete(name).catch(() => undefined);
      throw failure ?? error;
    }
    const digests = new Map([...hashing].map(([hash, state]) => [hash, state.digest()]));
    return {
      payloadRef: `${bucket}/${name}`,
      size,
      sha256: digests.get('sha256')!.toString('hex'),
      digest: (hash) => digests.get(hash) ?? Buffer.alloc(0),
    };
  }

  /** Removes a received body that was refused, or that turned out to be a resend of a message already stored. */
  async discard(stored: StoredPayload): Promise<void> {
    const name = stored.payloadRef.slice(bucket.length + 1);
    if (await this.store.info(name)) await this.store.delete(name);
  }

  async bytes(envelope: Pick<Envelope, 'payload' | 'payloadRef' | 'id' | 'sha256'>): Promise<Buffer> {
    if (envelope.payload !== undefined) return Buffer.from(envelope.payload, 'base64');
    const name = envelope.payloadRef?.slice(bucket.length + 1) ?? '';
    const blob = await this.store.getBlob(name);
    if (!blob) throw new Error(`payload ${envelope.payloadRef} of message ${envelope.id} is missing from the Object Store`);
    const stored = Buffer.from(blob);
    const bytes = this.keyring ? this.keyring.openBytes(stored, name) : stored;
    if (createHash('sha256').update(bytes).digest('hex') !== envelope.sha256) {
      throw new Error(`payload ${envelope.payloadRef} of message ${envelope.id} does not match its SHA-256`);
    }
    return bytes;
  }
}
