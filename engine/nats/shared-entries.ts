// Named entries of one kind in a KV bucket with history, each checked by a schema, kept in step in every hub process
// (followBucket): what one process changes, all apply. The console's shared panels and runtime settings are such.
import { Kvm, type KV } from '@nats-io/kv';
import type { z } from 'zod';
import { log } from '../log.ts';
import { followBucket } from './follow.ts';
import type { Bus } from './jetstream.ts';

/** One stored revision of a key: its value when it was put, none when it was removed. */
export interface Revision<T = unknown> { revision: number; at: string; operation: string; value?: T }

/** Every stored revision of `key`, oldest first; `show` turns a put value into what may be shown. */
export async function revisions<T = unknown>(kv: KV, key: string, show: (value: unknown) => T = (value) => value as T): Promise<Revision<T>[]> {
  const out: Revision<T>[] = [];
  for await (const entry of await kv.history({ key })) {
    out.push({ revision: entry.revision, at: entry.created.toISOString(), operation: entry.operation, ...(entry.operation === 'PUT' ? { value: show(entry.json()) } : {}) });
  }
  return out;
}

export class SharedEntries<S extends z.ZodType> {
  private readonly entries = new Map<string, z.infer<S>>();
  private readonly listeners = new Set<(id: string, value: z.infer<S> | undefined) => void>();
  private stopWatch?: () => void;

  private constructor(private readonly kv: KV, private readonly schema: S, private readonly what: string) {}

  /** Opens (or makes) `bucket`, keeping `history` revisions of each entry. */
  static async open<S extends z.ZodType>(bus: Bus, bucket: string, schema: S, what: string, history = 64): Promise<SharedEntries<S>> {
    const kv = await new Kvm(bus.js).create(bucket, { history });
    const shared = new SharedEntries(kv, schema, what);
    shared.stopWatch = await followBucket(kv, {
      put: (key, value) => {
        const parsed = schema.safeParse(JSON.parse(Buffer.from(value).toString('utf8')));
        if (!parsed.success) { log.error({ key, err: parsed.error.message }, `${what} entry is invalid; ignored`); return; }
        shared.entries.set(key, parsed.data);
        shared.changed(key, parsed.data);
      },
      remove: (key) => { shared.entries.delete(key); shared.changed(key, undefined); },
    }, what);
    return shared;
  }

  private changed(id: string, value: z.infer<S> | undefined): void {
    for (const listener of this.listeners) listener(id, value);
  }

  get(id: string): z.infer<S> | undefined { return this.entries.get(id); }

  list(): [string, z.infer<S>][] { return [...this.entries].sort(([a], [b]) => a.localeCompare(b)); }

  /** Stores an entry, checked by the schema; applied here at once, in every other process when its watch sees it. */
  async put(id: string, value: z.input<S>): Promise<z.infer<S>> {
    const parsed = this.schema.parse(value);
    await this.kv.put(id, JSON.stringify(parsed));
    this.entries.set(id, parsed);
    this.changed(id, parsed);
    return parsed;
  }

  async remove(id: string): Promise<void> {
    await this.kv.delete(id);
    this.entries.delete(id);
    this.changed(id, undefined);
  }

  history(id: string): Promise<Revision<z.infer<S>>[]> { return revisions(this.kv, id); }

  /** Calls `listener` with each change, made here or by another process; returns what stops it. */
  onChange(listener: (id: string, value: z.infer<S> | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void { this.stopWatch?.(); }
}
