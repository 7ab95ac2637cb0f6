// Payloads over the inline limit live in the JetStream Object Store, named by their SHA-256 when placed whole and by a
// fresh upload id when streamed in as they arrived: a resend or another sender can never replace stored bytes, and
// the bytes are checked against the envelope's SHA-256 on every whole read. With a keyring they are sealed at rest in
// segments (keyring.ts), so neither writing nor reading one ever holds it whole. They are evidence too, so the bucket
// keeps them as long as the evidence (retention.ts), for ever by default: retention is an evidence policy, not a
// delivery one.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { Objm, setSha256Backend, type ObjectStore } from '@nats-io/obj';
import { checkRange, sliced, type ByteRange } from './byte-range.ts';
import type { Envelope } from './envelope.ts';
import type { OutgoingPayload } from './outbound.ts';
import { segmentBytes, type Keyring } from './keyring.ts';
import { nanos, type Bus } from './nats/jetstream.ts';

const bucket = 'swx_payloads';
/**
 * Object Store chunks: one direct get each when read, so larger chunks mean fewer round trips per payload; half of
 * nats-server's default max_payload (1 MiB) leaves room for the headers.
 */
const chunkBytes = 512 * 1024;
// The Object Store client hashes every object it writes; its default is a SHA-256 in JavaScript, which took a quarter
// of the hub's CPU while a 1 GiB payload streamed in. Node's own is the native one.
setSha256Backend('native');

/** A body written to the Object Store as it arrived: where it is, its size, and its digests. */
export interface StoredPayload {
  payloadRef: string;
  size: number;
  /** Hex SHA-256. */
  sha256: string;
  digest(hash: 'sha256' | 'sha512'): Buffer;
}

/** The SHA-256 the Object Store names an object's bytes by (`SHA-256=` and base64url). */
function objectDigest(digest: string): Buffer {
  const prefix = 'SHA-256=';
  if (!digest.startsWith(prefix)) throw new Error(`the Object Store digest ${digest.slice(0, 40)} is not a SHA-256`);
  return Buffer.from(digest.slice(prefix.length), 'base64url');
}

/** Where the Object Store keeps the bucket's chunks: its stream, and the subject of one object's chunks. */
const objectStream = `OBJ_${bucket}`;
const chunkSubject = (nuid: string) => `$O.${bucket}.C.${nuid}`;

/**
 * The most of a body receive() holds at once: the request's buffers, a segment being sealed, the Object Store's chunk
 * being published, with room to spare. A body streamed in is in flight, so it claims this much of the in-flight
 * budget (which then bounds how many stream at once), but not its length, which it never holds.
 */
export const receiveHolds = 1024 * 1024;

/** What names a message's payload: inline bytes, or the Object Store entry and the SHA-256 it must have. */
export type PayloadOf = Pick<Envelope, 'payload' | 'payloadRef' | 'id' | 'sha256'>;

/** A web stream that reads `source` only as the Object Store asks for the next chunk, so no more than that is held. */
function pulled(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const chunks = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await chunks.next();
      if (done) controller.close(); else controller.enqueue(value);
    },
    async cancel() { await chunks.return?.(); },
  }, { highWaterMark: 0 });
}

export class Payloads {
  private constructor(
    private readonly bus: Bus,
    private readonly store: ObjectStore,
    readonly inlineLimit: number,
    private readonly keyring?: Keyring,
    private readonly expires = false,
  ) {}

  /**
   * With a keyring, blobs are sealed (AES-256-GCM, in segments) under its current key; reads open blobs sealed or not.
   * With a retention in days, the bucket keeps a payload that long and one day more, so that it outlives the
   * evidence of every message that names it (see place()); the bucket's max age follows the setting at every start.
   */
  static async open(bus: Bus, inlineLimit: number, keyring?: Keyring, retentionDays = 0): Promise<Payloads> {
    const maxAge = retentionDays > 0 ? nanos((retentionDays + 1) * 86_400) : 0;
    const store = await new Objm(bus.js).create(bucket, { ttl: maxAge });
    const { config } = await bus.jsm.streams.info(objectStream);
    if (config.max_age !== maxAge) await bus.jsm.streams.update(objectStream, { ...config, max_age: maxAge });
    return new Payloads(bus, store, inlineLimit, keyring, retentionDays > 0);
  }

  /** Puts the bytes inline or into the Object Store and returns the envelope fields that say where they are. */
  async place(sha256: string, bytes: Uint8Array): Promise<Pick<Envelope, 'payload' | 'payloadRef'>> {
    if (bytes.length <= this.inlineLimit) return { payload: Buffer.from(bytes).toString('base64') };
    // Under a retention, messages with the same bytes share the object of their day: it was put that day, so it lives
    // at least the retention past the last of them, by the bucket's extra day.
    const name = this.expires ? `sha256-${sha256}-${new Date().toISOString().slice(0, 10)}` : `sha256-${sha256}`;
    const info = await this.store.info(name);
    if (!info || info.deleted) await this.store.put({ name, options: { max_chunk_size: chunkBytes } }, pulled(this.sealed(Readable.from([bytes]), name)));
    return { payloadRef: `${bucket}/${name}` };
  }

  /** The bytes as they go into the Object Store: sealed under `name` when there is a keyring. */
  private sealed(plain: AsyncIterable<Uint8Array>, name: string): AsyncIterable<Uint8Array> {
    return this.keyring ? this.keyring.sealStream(plain, name) : plain;
  }

  /**
   * Writes a body over the inline limit to the Object Store as it arrives, hashing its plaintext on the way (`hashes`)
   * and sealing it when there is a keyring, so it is never held whole. When the body fails (too large, its sender
   * gone) nothing is left stored and its error is thrown. A body refused afterwards (its digest, its receiver) is the
   * caller's to discard().
   */
  async receive(body: Readable, hashes: ('sha256' | 'sha512')[]): Promise<StoredPayload> {
    const name = `upload-${randomUUID()}`;
    // Unsealed, the bytes stored are the plaintext, whose SHA-256 the Object Store takes anyway: hashed once, not twice.
    const hashedHere = [...new Set(this.keyring ? ['sha256', ...hashes] : hashes.filter((hash) => hash !== 'sha256'))];
    const hashing = new Map<string, Hash>(hashedHere.map((hash) => [hash, createHash(hash)]));
    let size = 0;
    const hashed = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        for (const hash of hashing.values()) hash.update(chunk);
        done(null, chunk);
      },
    });
    // Joined at once: a body refused as it is declared errors before the Object Store asks for its first chunk.
    let failure: Error | undefined;
    pipeline(body, hashed, (error) => { failure = error ?? undefined; });
    let storedDigest: string;
    try {
      storedDigest = (await this.store.put({ name, options: { max_chunk_size: chunkBytes } }, pulled(this.sealed(hashed, name)))).digest;
      if (failure) throw failure;
    } catch (error) {
      hashed.destroy();
      await this.store.delete(name).catch(() => undefined);
      throw failure ?? error;
    }
    const digests = new Map<string, Buffer>([...hashing].map(([hash, state]) => [hash, state.digest()]));
    if (!this.keyring) digests.set('sha256', objectDigest(storedDigest));
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

  /**
   * The payload as a stream, opened (when sealed) as it comes from the Object Store and pulled only as it is read,
   * so a slow reader holds a segment or two, never the payload. Read whole, its SHA-256 is checked against the
   * envelope's at the end: a mismatch or a missing object errors the stream, it never ends cleanly. A range serves
   * bytes start..end (inclusive, as HTTP Range) of the plaintext, what of them there is; it is not checked against
   * the SHA-256 (that covers the whole), but each sealed segment it opens is authenticated.
   */
  stream(envelope: PayloadOf, range?: ByteRange): Readable {
    if (range) checkRange(range);
    return Readable.from(this.read(envelope, range), { objectMode: false, highWaterMark: segmentBytes });
  }

  /** An envelope's payload as a delivery sends it: held when inline, else streamed from the store on each open(). */
  outgoing(envelope: Envelope): OutgoingPayload {
    const held = envelope.payload === undefined ? undefined : Buffer.from(envelope.payload, 'base64');
    return {
      size: envelope.size,
      sha256: envelope.sha256,
      ...(held ? { held } : {}),
      open: () => (held ? Readable.from([held]) : this.stream(envelope)),
      openAt: (start) => (held ? Readable.from([held.subarray(start)]) : this.stream(envelope, { start })),
    };
  }

  /** The whole payload in one buffer: for payloads small enough to hold (an evidence bundle). */
  async bytes(envelope: PayloadOf): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.stream(envelope)) parts.push(part as Buffer);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private async *read(envelope: PayloadOf, range?: ByteRange): AsyncGenerator<Buffer> {
    if (envelope.payload !== undefined) {
      yield* sliced([Buffer.from(envelope.payload, 'base64')], range ?? { start: 0 });
      return;
    }
    const name = envelope.payloadRef?.slice(bucket.length + 1) ?? '';
    const stored = this.chunks(envelope, name);
    const plain = this.keyring ? this.keyring.openStream(stored, name, range) : sliced(stored, range ?? { start: 0 });
    if (range && (range.start > 0 || range.end !== undefined)) {
      yield* plain;
      return;
    }
    const hash = createHash('sha256');
    for await (const part of plain) {
      hash.update(part);
      yield part;
    }
    if (hash.digest('hex') !== envelope.sha256) {
      throw new Error(`payload ${envelope.payloadRef} of message ${envelope.id} does not match its SHA-256`);
    }
  }

  /**
   * The stored bytes of an object, one Object Store chunk per request. The store's own get() pushes every chunk at
   * once into an unbounded queue, so a slow reader would hold the object whole; a direct get of the next chunk when
   * the last is taken holds one.
   */
  private async *chunks(envelope: PayloadOf, name: string): AsyncGenerator<Buffer> {
    const info = await this.store.info(name);
    if (!info || info.deleted) throw new Error(`payload ${envelope.payloadRef} of message ${envelope.id} is missing from the Object Store`);
    let seq = 0;
    let size = 0;
    for (let chunk = 0; chunk < info.chunks; chunk++) {
      const message = await this.bus.jsm.direct.getMessage(objectStream, { seq: seq + 1, next_by_subj: chunkSubject(info.nuid) });
      if (!message) break;
      seq = message.seq;
      size += message.data.length;
      yield Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength);
    }
    if (size !== info.size) {
      throw new Error(`payload ${envelope.payloadRef} of message ${envelope.id} is cut short in the Object Store: ${size} of ${info.size} bytes`);
    }
  }
}
