// Replay refusal shared by every hub process: a signed request is claimed once, by a digest of its signature, in a
// KV bucket whose entries expire after the freshness window. Older requests are refused for staleness anyway, so
// the bucket only ever holds one window of traffic (about 100 bytes of nats-server memory per request).
import { createHash } from 'node:crypto';
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nanos, type Bus } from './nats/jetstream.ts';
import type { ReplayGuard } from './query.ts';

const bucketName = 'swx_replay';

export class KvReplayGuard implements ReplayGuard {
  private constructor(private readonly kv: KV) {}

  static async open(bus: Bus, windowSeconds: number): Promise<KvReplayGuard> {
    const kv = await new Kvm(bus.js).create(bucketName, { history: 1, ttl: windowSeconds * 1000 });
    // An existing bucket keeps the window it was made with: follow the configuration when it changed.
    if ((await kv.status()).ttl !== windowSeconds * 1000) {
      await bus.jsm.streams.update(`KV_${bucketName}`, { max_age: nanos(windowSeconds) });
    }
    return new KvReplayGuard(kv);
  }

  async claim(key: string): Promise<boolean> {
    try {
      await this.kv.create(createHash('sha256').update(key).digest('base64url'), '');
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === JetStreamApiCodes.StreamWrongLastSequence) return false;
      throw error;
    }
  }
}
