// Payloads over the inline limit live in the JetStream Object Store; the envelope carries a reference.
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Envelope } from './envelope.ts';
import type { Bus } from './nats/jetstream.ts';

const bucket = 'swx_payloads';

export class Payloads {
  private constructor(private readonly store: ObjectStore, readonly inlineLimit: number) {}

  static async open(bus: Bus, inlineLimit: number, horizonSeconds: number): Promise<Payloads> {
    const store = await new Objm(bus.js).create(bucket, { ttl: horizonSeconds * 1_000_000_000 });
    return new Payloads(store, inlineLimit);
  }

  /** Puts the bytes inline or into the Object Store and returns the envelope fields that say where they are. */
  async place(id: string, bytes: Uint8Array): Promise<Pick<Envelope, 'payload' | 'payloadRef'>> {
    if (bytes.length <= this.inlineLimit) return { payload: Buffer.from(bytes).toString('base64') };
    await this.store.putBlob({ name: id }, bytes);
    return { payloadRef: `${bucket}/${id}` };
  }

  async bytes(envelope: Pick<Envelope, 'payload' | 'payloadRef' | 'id'>): Promise<Buffer> {
    if (envelope.payload !== undefined) return Buffer.from(envelope.payload, 'base64');
    const name = envelope.payloadRef?.split('/').slice(1).join('/') ?? '';
    const blob = await this.store.getBlob(name);
    if (!blob) throw new Error(`payload ${envelope.payloadRef} of message ${envelope.id} is missing from the Object Store`);
    return Buffer.from(blob);
  }
}
