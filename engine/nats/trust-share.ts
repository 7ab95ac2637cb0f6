// The trust store's share between hub processes (TrustShare of engine/pki) as a NATS KV bucket: each process puts the
// anchors, intermediates and hub CA CRL its data folder holds and takes those every other process puts.
import { Kvm } from '@nats-io/kv';
import { log } from '../log.ts';
import type { TrustShare } from '../pki/index.ts';
import { bucketEntries } from './follow.ts';
import type { Bus } from './jetstream.ts';

const bucketName = 'swx_trust';

export async function trustBucket(bus: Bus): Promise<TrustShare> {
  const kv = await new Kvm(bus.js).create(bucketName, { history: 4 });
  let nextRevision = 1;
  return {
    async entries() {
      const current = await bucketEntries(kv);
      nextRevision = current.nextRevision;
      return current.entries;
    },
    async follow(apply) {
      const watcher = await kv.watch({ resumeFromRevision: nextRevision });
      (async () => {
        for await (const entry of watcher) if (entry.operation === 'PUT') await apply(entry.key, entry.value);
      })().catch((error) => log.error({ err: error }, 'trust store watch ended'));
      return () => watcher.stop();
    },
    async create(key, value) {
      await kv.create(key, value);
    },
    async put(key, value) {
      await kv.put(key, value);
    },
  };
}
