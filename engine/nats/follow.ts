// Keeping an in-memory copy of a KV bucket in step: every current value first, then every change made by this or
// any other hub process, for as long as the copy lives. The registry and the query catalogue are such copies.
import type { KV } from '@nats-io/kv';
import { log } from '../log.ts';

export interface BucketCopy {
  put(key: string, value: Uint8Array): void;
  remove(key: string): void;
}

/** Every value `kv` holds now, and the revision a watch resumes from to see each change after them. */
export async function bucketEntries(kv: KV): Promise<{ entries: { key: string; value: Uint8Array }[]; nextRevision: number }> {
  const entries: { key: string; value: Uint8Array }[] = [];
  let lastRevision = 0;
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (entry && entry.operation === 'PUT') {
      entries.push({ key, value: entry.value });
      lastRevision = Math.max(lastRevision, entry.revision);
    }
  }
  return { entries, nextRevision: lastRevision + 1 };
}

/** Loads `kv` into `copy` and follows it; returns what stops the following. `what` names the copy in logs. */
export async function followBucket(kv: KV, copy: BucketCopy, what: string): Promise<() => void> {
  const { entries, nextRevision } = await bucketEntries(kv);
  for (const { key, value } of entries) copy.put(key, value);
  const watcher = await kv.watch({ resumeFromRevision: nextRevision });
  (async () => {
    for await (const entry of watcher) {
      if (entry.operation === 'PUT') copy.put(entry.key, entry.value);
      else copy.remove(entry.key);
    }
  })().catch((error) => log.error({ err: error }, `${what} watch ended`));
  return () => watcher.stop();
}
