// Per-asker rate limits for queries: a token bucket per agency (a rate and a burst), refilled lazily when the
// agency asks again, so a check is a map lookup and some arithmetic, with no timer per agency.
import { z } from 'zod';
import { partnerId } from './registry.ts';

export const rateLimitSchema = z.object({
  ratePerSecond: z.coerce.number().positive().max(1_000_000).describe('sustained requests per second'),
  burst: z.coerce.number().int().min(1).max(1_000_000).describe('requests allowed at once after a quiet spell'),
});
export type RateLimit = z.infer<typeof rateLimitSchema>;

/** The setting as the configuration file holds it: a default and, per asker, its own limit. */
export const rateLimitsSchema = z.object({
  default: rateLimitSchema,
  askers: z.record(partnerId, rateLimitSchema).default({}),
});
export type RateLimits = z.input<typeof rateLimitsSchema>;

export type Admission =
  | { allowed: true; remaining: number }
  /** `retryAfterSeconds` is what a 429's Retry-After carries: whole seconds, at least 1. */
  | { allowed: false; retryAfterMs: number; retryAfterSeconds: number };

/** Refills are fractions (elapsed × rate); a token that is 1 − 1e-15 short through rounding still counts. */
const roundingSlack = 1e-9;

interface Bucket {
  tokens: number;
  at: number;
}

export interface RateLimiterOptions {
  /** Milliseconds on a clock that never goes back; tests inject their own. */
  now?: () => number;
  /**
   * Most askers remembered at once; the least recently seen is forgotten first (it comes back with a full bucket).
   * Askers are authenticated agencies, a few dozen, so the bound only matters against a runaway caller.
   */
  maxAskers?: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxAskers: number;
  private defaultLimit!: RateLimit;
  /** A map, not the parsed object: an asker named `constructor` must not find Object.prototype's. */
  private askerLimits!: Map<string, RateLimit>;
  /** How many hub processes enforce the limits together, each its equal share. */
  private processes = 1;

  constructor(limits: RateLimits, options: RateLimiterOptions = {}) {
    this.configure(limits);
    this.now = options.now ?? (() => performance.now());
    this.maxAskers = options.maxAskers ?? 10_000;
  }

  /** New limits apply from each asker's next request; tokens already saved are capped at the new burst. */
  configure(limits: RateLimits): void {
    const parsed = rateLimitsSchema.parse(limits);
    this.defaultLimit = parsed.default;
    this.askerLimits = new Map(Object.entries(parsed.askers));
  }

  /** The limit an asker is configured with, for the whole hub. */
  limitFor(asker: string): RateLimit {
    return this.askerLimits.get(asker) ?? this.defaultLimit;
  }

  /**
   * Makes this process enforce 1/`processes` of every limit (rate and burst, a burst of at least one request), as one
   * of that many hub processes behind a load balancer that spreads each asker's requests evenly. Saved tokens are
   * capped at the new burst on each asker's next request.
   */
  shareAmong(processes: number): void {
    this.processes = Math.max(1, Math.floor(processes));
  }

  /** Askers currently remembered. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one request's token from `asker`'s bucket, or says how long until one is there. */
  take(asker: string): Admission {
    const limit = this.limitFor(asker);
    const ratePerSecond = limit.ratePerSecond / this.processes;
    const burst = Math.max(1, limit.burst / this.processes);
    const now = this.now();
    const bucket = this.buckets.get(asker) ?? { tokens: burst, at: now };
    // Re-inserting keeps the map ordered from least to most recently seen, which is what eviction needs.
    this.buckets.delete(asker);
    this.buckets.set(asker, bucket);
    if (this.buckets.size > this.maxAskers) this.buckets.delete(this.buckets.keys().next().value!);

    const elapsedMs = Math.max(0, now - bucket.at);
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs / 1000) * ratePerSecond);
    bucket.at = Math.max(bucket.at, now);
    if (bucket.tokens >= 1 - roundingSlack) {
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      return { allowed: true, remaining: Math.floor(bucket.tokens) };
    }
    const retryAfterMs = ((1 - bucket.tokens) / ratePerSecond) * 1000;
    return { allowed: false, retryAfterMs, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
  }
}
