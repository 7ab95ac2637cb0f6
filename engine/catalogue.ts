// The query-service catalogue (即時查證): each dataset an agency may look up at another, who may ask for it and who
// answers it. Lives in a JetStream KV bucket with history; every hub process keeps a watched copy and decides from it.
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { SwxError } from './errors.ts';
import { log } from './log.ts';
import { followBucket } from './nats/follow.ts';
import { revisions, type Revision } from './nats/shared-entries.ts';
import type { Bus } from './nats/jetstream.ts';
import { checkedId, partnerId } from './registry.ts';

const slug = (example: string) =>
  z.string().regex(/^[a-z][a-z0-9-]{1,63}$/, `lower-case letters, digits and dashes, e.g. ${example}`);

const agencies = z.array(partnerId).min(1).max(64)
  .refine((ids) => new Set(ids).size === ids.length, { message: 'an agency is listed twice' });

/** A dataset id from a request (a URL path) when it has the shape of one; anything else is not looked up or kept. */
export function wellFormedDataset(value: string | undefined): string | undefined {
  return datasetSchema.shape.id.safeParse(value).success ? value : undefined;
}

export const malformedDataset = () => new SwxError('SWX_BAD_REQUEST', 'the dataset in the path must be a dataset id: lower-case letters, digits and dashes');

export const datasetSchema = z.object({
  id: slug('import-declaration-sea'),
  name: z.string().min(1).max(200),
  nameZh: z.string().min(1).max(100),
  service: z.object({
    id: slug('customs-clearance'),
    name: z.string().min(1).max(200),
    nameZh: z.string().min(1).max(100),
  }),
  keys: z.array(z.string().regex(/^[a-z][A-Za-z0-9]{0,39}$/, 'camelCase names, e.g. declarationNo')).min(1).max(8)
    .refine((names) => new Set(names).size === names.length, { message: 'a key is listed twice' })
    .describe('the fields a query names, all required, e.g. ["passportNo", "arrivalDate"]'),
  askers: agencies.describe('agencies that may ask for this dataset'),
  providers: agencies.describe('agencies that answer it; when there are several, the asker names one'),
});
export type Dataset = z.infer<typeof datasetSchema>;

export type Decision =
  | { allowed: true; provider: string }
  | { allowed: false; code: 'SWX_ACL_DENIED' | 'SWX_UNKNOWN_DATASET' | 'SWX_BAD_REQUEST'; detail: string };

export type DatasetRevision = Revision<Dataset>;

const bucketName = 'swx_catalogue';
const keyOf = (id: string) => `dataset.${id}`;
/** Ids come from requests: quote them, and keep a hostile one from flooding a log line or a problem detail. */
const quoted = (value: unknown) => JSON.stringify(String(value).slice(0, 80));

interface Entry {
  dataset: Dataset;
  askers: ReadonlySet<string>;
}

export class Catalogue {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(id: string) => void>();
  private stopWatch?: () => void;

  private constructor(private readonly kv: KV) {}

  static async open(bus: Bus): Promise<Catalogue> {
    const kv = await new Kvm(bus.js).create(bucketName, { history: 32 });
    const catalogue = new Catalogue(kv);
    catalogue.stopWatch = await followBucket(kv, {
      put: (key, value) => catalogue.apply(key, value),
      remove: (key) => catalogue.forget(key.slice('dataset.'.length)),
    }, 'catalogue');
    return catalogue;
  }

  private apply(key: string, value: Uint8Array): void {
    try {
      this.index(datasetSchema.parse(JSON.parse(Buffer.from(value).toString('utf8'))));
    } catch (error) {
      log.error({ key, err: error }, 'catalogue entry is invalid; ignored');
    }
  }

  private index(dataset: Dataset): void {
    this.entries.set(dataset.id, { dataset, askers: new Set(dataset.askers) });
    this.notify(dataset.id);
  }

  private forget(id: string): void {
    this.entries.delete(id);
    this.notify(id);
  }

  private notify(id: string): void {
    for (const listener of this.listeners) listener(id);
  }

  /** Called with a dataset id whenever that dataset is put or removed, here or in another hub process. */
  onChange(listener: (id: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): Dataset[] {
    return [...this.entries.values()].map((entry) => entry.dataset).sort((a, b) => a.id.localeCompare(b.id));
  }

  dataset(id: string): Dataset | undefined {
    return this.entries.get(id)?.dataset;
  }

  /** Validates and stores a dataset (new or changed); throws a ZodError naming the first bad field. */
  async put(input: unknown): Promise<Dataset> {
    const dataset = datasetSchema.parse(input);
    await this.kv.put(keyOf(dataset.id), JSON.stringify(dataset));
    this.index(dataset);
    return dataset;
  }

  async remove(id: string): Promise<void> {
    checkedId(datasetSchema.shape.id, 'dataset', id);
    if (!this.entries.has(id)) throw new SwxError('SWX_UNKNOWN_DATASET', `no dataset ${quoted(id)} in the catalogue`);
    await this.kv.delete(keyOf(id));
    this.forget(id);
  }

  /** Every stored revision of a dataset, oldest first (the bucket keeps the last 32); SWX_BAD_REQUEST for a malformed id. */
  async history(id: string): Promise<DatasetRevision[]> {
    checkedId(datasetSchema.shape.id, 'dataset', id);
    return revisions(this.kv, keyOf(id), (value) => value as Dataset);
  }

  /**
   * Loads `datasets` (Table 1 for a fresh deployment) only when the catalogue has never held anything, so an
   * operator's later edits and removals survive restarts. Safe when several hub processes start at once: each
   * key is created only if absent. Returns how many datasets this call wrote.
   */
  async seed(datasets: readonly unknown[]): Promise<number> {
    const valid = datasets.map((input) => datasetSchema.parse(input));
    if ((await this.kv.status()).values > 0) return 0;
    let written = 0;
    for (const dataset of valid) {
      try {
        await this.kv.create(keyOf(dataset.id), JSON.stringify(dataset));
      } catch (error) {
        // Another hub process seeded this key first.
        if ((error as { code?: unknown }).code === JetStreamApiCodes.StreamWrongLastSequence) continue;
        throw error;
      }
      this.index(dataset);
      written++;
    }
    return written;
  }

  /**
   * Whether `asker` may query `datasetId`, and at which provider. With one provider the provider is implied (naming
   * another is refused); with several the asker must name one of them. Cheap: two map lookups per request.
   */
  decide(asker: string, datasetId: string, provider?: string): Decision {
    const entry = this.entries.get(datasetId);
    if (!entry) return { allowed: false, code: 'SWX_UNKNOWN_DATASET', detail: `no dataset ${quoted(datasetId)} in the catalogue` };
    const { dataset, askers } = entry;
    if (!askers.has(asker)) {
      return { allowed: false, code: 'SWX_ACL_DENIED', detail: `${quoted(asker)} may not query ${dataset.id}` };
    }
    if (provider === undefined) {
      if (dataset.providers.length === 1) return { allowed: true, provider: dataset.providers[0]! };
      return { allowed: false, code: 'SWX_BAD_REQUEST', detail: `${dataset.id} has several providers: name one of ${dataset.providers.join(', ')}` };
    }
    if (!partnerId.safeParse(provider).success) {
      return { allowed: false, code: 'SWX_BAD_REQUEST', detail: `provider ${quoted(provider)} is not an agency id` };
    }
    if (!dataset.providers.includes(provider)) {
      return { allowed: false, code: 'SWX_ACL_DENIED', detail: `${dataset.id} is answered by ${dataset.providers.join(', ')}, not ${provider}` };
    }
    return { allowed: true, provider };
  }

  close(): void { this.stopWatch?.(); }
}
