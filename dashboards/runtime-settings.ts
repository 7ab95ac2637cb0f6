// Settings changed while the hub runs: kept in a NATS KV bucket with history (`swx_runtime_settings`) that every hub
// process follows, so a change made through one applies in all. A value set here wins over the start-up value from the
// file and environment until it is reset; everything else (ports, paths, NATS, ClickHouse) is start-up only.
import { z } from 'zod';
import type { Config } from '../engine/config.ts';
import { SwxError } from '../engine/errors.ts';
import type { Bus } from '../engine/nats/jetstream.ts';
import { SharedEntries } from '../engine/nats/shared-entries.ts';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** Each runtime setting: its schema, what it does, and its start-up value. */
export const runtimeSettings = {
  logLevel: {
    schema: z.enum(levels),
    description: 'the level of the JSON logs of every hub process',
    startup: (_config: Config, logLevel: string) => logLevel,
  },
  retentionDays: {
    schema: z.number().int().min(1),
    description: 'days evidence rows are kept; at run time only shorter than the start-up SWX_RETENTION_DAYS (when that is set), as the Object Store keeps payloads by the start-up value',
    startup: (config: Config) => config.evidence.retentionDays,
  },
  tsaGraceSeconds: {
    schema: z.number().int().min(1),
    description: 'how long evidence may wait for its time-stamp before new messages are refused',
    startup: (config: Config) => config.evidence.tsaGraceSeconds,
  },
  maxUnstampedRecords: {
    schema: z.number().int().min(1),
    description: 'evidence records that may wait for a time-stamp before new messages are refused',
    startup: (config: Config) => config.evidence.maxUnstampedRecords,
  },
  analysisMaxExecutionSeconds: {
    schema: z.number().int().min(1).max(600),
    description: 'time limit of an analyst\'s SQL query (ClickHouse max_execution_time)',
    startup: () => 10,
  },
  analysisMaxResultRows: {
    schema: z.number().int().min(1).max(1_000_000),
    description: 'rows an analyst\'s SQL query may return (ClickHouse max_result_rows)',
    startup: () => 10_000,
  },
} as const;

export type RuntimeSettingName = keyof typeof runtimeSettings;
export const runtimeSettingNames = Object.keys(runtimeSettings) as [RuntimeSettingName, ...RuntimeSettingName[]];

const storedSetting = z.object({ value: z.union([z.string(), z.number()]), updatedBy: z.string(), updatedAt: z.string(), reason: z.string().optional() });
export type StoredSetting = z.infer<typeof storedSetting>;

export class RuntimeSettings {
  private constructor(private readonly entries: SharedEntries<typeof storedSetting>, private readonly config: Config, private readonly logLevel: string) {}

  static async open(bus: Bus, config: Config, logLevel: string): Promise<RuntimeSettings> {
    return new RuntimeSettings(await SharedEntries.open(bus, 'swx_runtime_settings', storedSetting, 'runtime settings', 64), config, logLevel);
  }

  /** The value in force: the runtime one when set, else the start-up one. */
  value(name: RuntimeSettingName): string | number {
    const stored = this.entries.get(name);
    const parsed = stored ? (runtimeSettings[name].schema as z.ZodType<string | number>).safeParse(stored.value) : undefined;
    return parsed?.success ? parsed.data : runtimeSettings[name].startup(this.config, this.logLevel);
  }

  list() {
    return runtimeSettingNames.map((name) => {
      const stored = this.entries.get(name);
      return {
        name, value: this.value(name), source: stored ? 'runtime' as const : 'startup' as const,
        startup: runtimeSettings[name].startup(this.config, this.logLevel), description: runtimeSettings[name].description,
        ...(stored ? { updatedBy: stored.updatedBy, updatedAt: stored.updatedAt } : {}),
      };
    });
  }

  /** Sets a value (checked by its schema) for every hub process; null goes back to the start-up value. */
  async set(name: RuntimeSettingName, value: unknown, by: string, reason?: string): Promise<void> {
    if (value === null) {
      if (this.entries.get(name)) await this.entries.remove(name);
      return;
    }
    const parsed = runtimeSettings[name].schema.safeParse(value);
    if (!parsed.success) throw new SwxError('SWX_BAD_REQUEST', `value of ${name}: ${parsed.error.issues[0]!.message}`);
    const startupRetention = this.config.evidence.retentionDays;
    if (name === 'retentionDays' && startupRetention > 0 && (parsed.data as number) > startupRetention) {
      throw new SwxError('SWX_BAD_REQUEST', `retentionDays may not exceed the start-up SWX_RETENTION_DAYS (${startupRetention}): payloads are kept that long; raise it there and restart`);
    }
    await this.entries.put(name, { value: parsed.data, updatedBy: by, updatedAt: new Date().toISOString(), ...(reason ? { reason } : {}) });
  }

  history(name: RuntimeSettingName) { return this.entries.history(name); }

  /** Calls `apply` with each setting's value in force now, and again whenever one changes in any process. */
  follow(apply: (name: RuntimeSettingName, value: string | number) => void): () => void {
    for (const name of runtimeSettingNames) apply(name, this.value(name));
    return this.entries.onChange((name) => {
      if (name in runtimeSettings) apply(name as RuntimeSettingName, this.value(name as RuntimeSettingName));
    });
  }

  close(): void { this.entries.close(); }
}
