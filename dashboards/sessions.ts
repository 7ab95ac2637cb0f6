// Console sessions and sign-in lockout. A session lives in a JetStream KV bucket whose entries expire with it, so a
// cookie one hub process gave is good on every other, and a sign-out anywhere ends it everywhere; the bucket is keyed
// by the digest of the cookie's value, which it never holds.
import { createHash, randomBytes } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { Bus } from '../engine/nats/jetstream.ts';

export interface Session {
  user: string;
  /** How the user proved who they are. */
  via: 'password' | 'certificate';
  created: string;
  /** The digest the bucket keys the session by: what CSRF tokens are bound to. */
  key: string;
}

const bucketName = 'swx_console_sessions';
/** The largest console.sessionMinutes the configuration takes (engine/config.ts). */
const longestSessionMinutes = 7 * 24 * 60;

const keyOf = (token: string) => createHash('sha256').update(token).digest('hex');

export class Sessions {
  private constructor(private readonly kv: KV, private readonly lifetimeMs: number) {}

  static async open(bus: Bus, minutes: number): Promise<Sessions> {
    // The bucket keeps entries for the longest session the settings allow, whatever this process's setting: a bucket's
    // age limit is fixed when it is made, and every process checks a session's own age against its setting.
    return new Sessions(await new Kvm(bus.js).create(bucketName, { history: 1, ttl: longestSessionMinutes * 60_000 }), minutes * 60_000);
  }

  get lifetimeSeconds(): number { return Math.floor(this.lifetimeMs / 1000); }

  /** A new session: the cookie value is returned once, the bucket keeps its digest. */
  async start(user: string, via: Session['via']): Promise<{ token: string; session: Session }> {
    const token = randomBytes(32).toString('base64url');
    const session: Session = { user, via, created: new Date().toISOString(), key: keyOf(token) };
    await this.kv.put(session.key, JSON.stringify(session));
    return { token, session };
  }

  /** The session a cookie value names, while it lasts. */
  async find(token: string): Promise<Session | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const entry = await this.kv.get(keyOf(token));
    if (!entry || entry.operation !== 'PUT') return undefined;
    const session = entry.json<Session>();
    // The bucket's age limit is enforced by the server in passes; the session's own age is the rule.
    return Date.now() - Date.parse(session.created) < this.lifetimeMs ? session : undefined;
  }

  async end(session: Session): Promise<void> {
    await this.kv.purge(session.key);
  }
}

/**
 * Failed sign-ins counted per user and per source address over a sliding window: `failures` within `windowSeconds`
 * lock that user, or that address, out until the oldest of them leaves the window. Counted in the process that
 * answered: a deployment of several hub processes behind one balancer allows that many times as many tries.
 */
const maxTracked = 10_000;

export class Lockout {
  private readonly failed = new Map<string, number[]>();

  constructor(private readonly failures: number, private readonly windowSeconds: number, private readonly now = () => Date.now()) {}

  private recent(key: string): number[] {
    const since = this.now() - this.windowSeconds * 1000;
    const kept = (this.failed.get(key) ?? []).filter((at) => at > since);
    if (kept.length) this.failed.set(key, kept); else this.failed.delete(key);
    return kept;
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  private wait(key: string): number {
    const recent = this.recent(key);
    if (recent.length < this.failures) return 0;
    return Math.max(1, Math.ceil((recent[recent.length - this.failures]! + this.windowSeconds * 1000 - this.now()) / 1000));
  }

  /** Seconds until a sign-in as `user` from `source` may be tried again (the longer of the two); 0 when it may now. */
  lockedFor(user: string, source: string): number {
    return Math.max(this.wait(`user:${user}`), this.wait(`source:${source}`));
  }

  /** Counts a failure; says whether it is the one that locked the user or the address out. */
  fail(user: string, source: string): { locked: boolean; user: number; source: number } {
    // Guesses at many names must not grow the table without end: past a bound, what left its window is dropped.
    if (this.failed.size > maxTracked) for (const key of [...this.failed.keys()]) this.recent(key);
    const keys = [`user:${user}`, `source:${source}`];
    const before = keys.map((key) => this.wait(key) > 0);
    for (const key of keys) this.failed.set(key, [...this.recent(key), this.now()]);
    const after = keys.map((key) => this.wait(key) > 0);
    return { locked: after.some((locked, i) => locked && !before[i]), user: this.recent(keys[0]!).length, source: this.recent(keys[1]!).length };
  }

  /** A good sign-in forgets the user's failures (the address's stay: it may be guessing other users). */
  succeeded(user: string): void {
    this.failed.delete(`user:${user}`);
  }
}
