// Console users: local accounts with scrypt-hashed passwords, their roles, the TLS client certificates they may sign in
// with, and their API tokens (kept as digests, shown once). A JetStream KV bucket with history, which every hub
// process keeps a watched copy of, as it does the partner registry.
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { SwxError } from '../engine/errors.ts';
import { log } from '../engine/log.ts';
import { followBucket } from '../engine/nats/follow.ts';
import { revisions, type Revision } from '../engine/nats/shared-entries.ts';
import type { Bus } from '../engine/nats/jetstream.ts';
import { roles, type Role } from './access.ts';

export { roles, type Role };

export const userName = z.string().regex(/^[a-z][a-z0-9._-]{1,63}$/, 'user names are 2-64 lower-case letters, digits and . _ -, starting with a letter');
export const passwordSchema = z.string().min(12, 'a password has at least 12 characters').max(1024);
export const tokenId = z.string().regex(/^[A-Za-z0-9_-]{16,32}$/, 'a token id as `swx user token list` shows it');

const userSchema = z.object({
  name: userName,
  roles: z.array(z.enum(roles)).min(1),
  /** scrypt$N$r$p$salt$key, base64url; absent for a user who signs in by certificate only. */
  password: z.string().optional(),
  /** SHA-256 thumbprints (base64url) of the TLS client certificates the user signs in with. */
  certificates: z.array(z.string()).default([]),
  disabled: z.boolean().default(false),
  created: z.string(),
});
export type User = z.infer<typeof userSchema>;

const tokenSchema = z.object({
  id: tokenId,
  user: userName,
  label: z.string().max(200),
  /** SHA-256 of the token's secret part, hex. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  created: z.string(),
});
export type ApiToken = z.infer<typeof tokenSchema>;

/** What the API shows of a user: never the password hash. */
export function publicUser(user: User): Omit<User, 'password'> & { password: boolean } {
  const { password, ...rest } = user;
  return { ...rest, password: password !== undefined };
}

/** What the API shows of a token: never its digest. */
export function publicToken(token: ApiToken): Omit<ApiToken, 'digest'> {
  const { digest: _digest, ...rest } = token;
  return rest;
}

// OWASP's scrypt floor is N=2^17 with r=8; 2^15 costs ~50 ms here on the thread pool (off the event loop), and the
// lockout bounds guessing far more than the cost factor does. Kept in each hash, so it can be raised for new ones.
const cost = { N: 2 ** 15, r: 8, p: 1 };
const keyLength = 32;

function derive(password: string, salt: Buffer, options: { N: number; r: number; p: number }): Promise<Buffer> {
  const scryptOptions: ScryptOptions = { ...options, maxmem: 256 * options.N * options.r };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, keyLength, scryptOptions, (error, key) => (error ? reject(error) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `password` matches `stored`, compared in constant time. */
export async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [scheme, N, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const given = await derive(password, Buffer.from(salt, 'base64url'), { N: Number(N), r: Number(r), p: Number(p) });
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// A sign-in for a user that does not exist costs what a wrong password costs: the answer time tells nothing.
const decoy = hashPassword(randomBytes(16).toString('base64url'));

const digestOf = (secret: string) => createHash('sha256').update(secret).digest();

const bucketName = 'swx_console_users';

export class Users {
  private readonly users = new Map<string, User>();
  private readonly tokens = new Map<string, ApiToken>();
  private stopWatch?: () => void;

  private constructor(private readonly kv: KV) {}

  static async open(bus: Bus): Promise<Users> {
    const kv = await new Kvm(bus.js).create(bucketName, { history: 32 });
    const users = new Users(kv);
    users.stopWatch = await followBucket(kv, { put: (key, value) => users.apply(key, value), remove: (key) => users.forget(key) }, 'console users');
    return users;
  }

  private apply(key: string, value: Uint8Array): void {
    if (!key.startsWith('user.') && !key.startsWith('token.')) return;
    try {
      const json = JSON.parse(Buffer.from(value).toString('utf8'));
      if (key.startsWith('user.')) this.users.set(json.name, userSchema.parse(json));
      else if (key.startsWith('token.')) this.tokens.set(json.id, tokenSchema.parse(json));
    } catch (error) {
      log.error({ key, err: error }, 'console user entry is invalid; ignored');
    }
  }

  private forget(key: string): void {
    const [kind, id] = key.split(/\.(.*)/s) as [string, string];
    if (kind === 'user') this.users.delete(id);
    if (kind === 'token') this.tokens.delete(id);
  }

  user(name: string): User | undefined { return this.users.get(name); }
  list(): User[] { return [...this.users.values()].sort((a, b) => a.name.localeCompare(b.name)); }
  count(): number { return this.users.size; }

  private known(name: string): User {
    const user = this.users.get(name);
    if (!user) throw new SwxError('SWX_NOT_FOUND', `no user ${name}`);
    return user;
  }

  private async store(user: User): Promise<User> {
    const parsed = userSchema.parse(user);
    await this.kv.put(`user.${parsed.name}`, JSON.stringify(parsed));
    this.users.set(parsed.name, parsed);
    return parsed;
  }

  /** A new user; SWX_BAD_REQUEST when the name is taken (by this or any other hub process). */
  async add(input: { name: string; roles: Role[]; password?: string }): Promise<User> {
    const user = userSchema.parse({
      name: input.name, roles: [...new Set(input.roles)], created: new Date().toISOString(),
      ...(input.password === undefined ? {} : { password: await hashPassword(passwordSchema.parse(input.password)) }),
    });
    try {
      await this.kv.create(`user.${user.name}`, JSON.stringify(user));
    } catch (error) {
      if (this.users.has(user.name) || /wrong last sequence|exists/i.test(String((error as Error).message))) throw new SwxError('SWX_BAD_REQUEST', `user ${user.name} exists`);
      throw error;
    }
    this.users.set(user.name, user);
    return user;
  }

  async setPassword(name: string, password: string): Promise<User> {
    return this.store({ ...this.known(name), password: await hashPassword(passwordSchema.parse(password)) });
  }

  async setRoles(name: string, given: Role[]): Promise<User> {
    return this.store({ ...this.known(name), roles: [...new Set(given)] });
  }

  async setDisabled(name: string, disabled: boolean): Promise<User> {
    return this.store({ ...this.known(name), disabled });
  }

  /** Registers a TLS client certificate (its thumbprint) for a user; one certificate names one user. */
  async addCertificate(name: string, print: string): Promise<User> {
    const holder = this.byCertificate(print);
    if (holder && holder.name !== name) throw new SwxError('SWX_BAD_REQUEST', `certificate ${print} is registered to user ${holder.name}; one certificate names one user`);
    const user = this.known(name);
    return this.store({ ...user, certificates: [...new Set([...user.certificates, print])] });
  }

  byCertificate(print: string): User | undefined {
    return this.list().find((user) => user.certificates.includes(print));
  }

  /** The user whose password this is, enabled or not (the caller says why a disabled one is refused); else undefined. */
  async checkPassword(name: string, password: string): Promise<User | undefined> {
    const user = this.users.get(name);
    const matches = await passwordMatches(password, user?.password ?? await decoy);
    return user?.password && matches ? user : undefined;
  }

  /** A new API token for a user: the whole token is in the answer only, the bucket keeps its digest. */
  async addToken(name: string, label: string): Promise<{ token: string } & Omit<ApiToken, 'digest'>> {
    this.known(name);
    // Hex, so an id never starts with '-' and reads as an option on a command line (swx user token revoke NAME ID).
    const id = randomBytes(12).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const entry = tokenSchema.parse({ id, user: name, label, digest: digestOf(secret).toString('hex'), created: new Date().toISOString() });
    await this.kv.put(`token.${id}`, JSON.stringify(entry));
    this.tokens.set(id, entry);
    return { token: `swx.${id}.${secret}`, ...publicToken(entry) };
  }

  tokensOf(name: string): ApiToken[] {
    return [...this.tokens.values()].filter((token) => token.user === name).sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  }

  token(id: string): ApiToken | undefined { return this.tokens.get(id); }

  async revokeToken(id: string): Promise<void> {
    await this.kv.delete(`token.${tokenId.parse(id)}`);
    this.tokens.delete(id);
  }

  /** The user and token a bearer value names, when it is a current token of an existing user. */
  byToken(bearer: string): { user: User; token: ApiToken } | undefined {
    const match = /^swx\.([A-Za-z0-9_-]{16,32})\.([A-Za-z0-9_-]{20,100})$/.exec(bearer);
    const token = match ? this.tokens.get(match[1]!) : undefined;
    if (!match || !token) return undefined;
    if (!timingSafeEqual(digestOf(match[2]!), Buffer.from(token.digest, 'hex'))) return undefined;
    const user = this.users.get(token.user);
    return user ? { user, token } : undefined;
  }

  /**
   * A random secret every hub process shares (the first to start makes it): the key of the CSRF tokens, so a token
   * one process gave is good on another.
   */
  async sharedSecret(): Promise<Buffer> {
    const made = randomBytes(32).toString('base64url');
    await this.kv.create('secret.csrf', made).catch(() => undefined);
    const entry = await this.kv.get('secret.csrf');
    if (!entry) throw new Error('the console secret could not be stored in NATS');
    return Buffer.from(entry.string(), 'base64url');
  }

  /** Every stored revision of a user, without its password hash, oldest first. */
  async history(name: string): Promise<Revision[]> {
    userName.parse(name);
    return revisions(this.kv, `user.${name}`, (value) => publicUser(userSchema.parse(value)));
  }

  close(): void { this.stopWatch?.(); }
}
