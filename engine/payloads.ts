// Payloads over the inline limit live in the JetStream Object Store, named by their SHA-256: a resend or another
// sender can never replace stored bytes, and the bytes are checked against the envelope on every read. They are
// evidence too, so the bucket keeps them (no time-to-live); retention is an evidence policy, not a delivery one.
import { createHash } from 'node:crypto';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Envelope } from './envelope.ts';
import type { Keyring } from './keyring.ts';
import type { Bus } from './nats/jetstream.ts';

const bucket = 'swx_payloads';

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
