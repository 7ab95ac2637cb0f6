// What the console's parts share: who is calling (and how), what the hub hands the console, its cookies, and the
// reason a caller gives for a change.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { RouteTable } from '../engine/admin.ts';
import type { DeadLetter } from '../engine/deadletters.ts';
import type { Catalogue } from '../engine/catalogue.ts';
import type { Registry } from '../engine/registry.ts';
import type { Store } from '../engine/store/index.ts';
import type { CertificateCheck } from '../engine/trust/index.ts';
import { SwxError } from '../engine/errors.ts';
import { allowedRole, type Access } from './access.ts';
import type { AuditSink } from './audit-sink.ts';
import type { AlertEvaluator, AlertThresholds } from './alerts.ts';
import type { Panels } from './panels.ts';
import type { RuntimeSettings } from './runtime-settings.ts';
import type { Lockout, Session, Sessions } from './sessions.ts';
import type { HubWatch } from './watch.ts';
import type { Role, Users } from './users.ts';

/** Who is calling: a user, or the holder of the operator token on loopback. */
export interface Principal {
  name: string;
  roles: readonly Role[];
  via: 'operator-token' | 'api-token' | 'session';
  session?: Session;
}

declare module 'fastify' {
  interface FastifyRequest { principal?: Principal }
  interface FastifyContextConfig { access?: Access }
}

export interface ConsoleDeps {
  users: Users;
  sessions: Sessions;
  lockout: Lockout;
  audit: AuditSink;
  /** The deployment's judgement of a certificate: officers' client certificates are held to it. */
  trust: CertificateCheck;
  /** The operator token (<data>/ops-token or SWX_OPS_TOKEN): every role, on the loopback listener only. */
  opsToken: string;
  /** The loopback listener's address and the other names it answers to (SWX_OPS_HOST, SWX_OPS_NAMES). */
  opsHost: string;
  opsNames: readonly string[];
  /** The shared key of CSRF tokens (Users.sharedSecret). */
  csrfKey: Buffer;
  /** Adds the operator routes (engine/admin.ts, the CRL distribution point) to the console's route table. */
  operatorRoutes(table: RouteTable): void;
  registry: Pick<Registry, 'partner' | 'service' | 'topic' | 'channel'>;
  catalogue: Pick<Catalogue, 'dataset'>;
  /** The settings the hub runs with, without secrets (GET /api/settings). */
  settings(): unknown;
  /** The store, in the process that archives: where the audit log is read. */
  store?: Store;
  /** What the overview and the alerts read of the running hub. */
  watch: HubWatch;
  /** The analysts' shared dashboard. */
  panels: Panels;
  alerts: { evaluator: AlertEvaluator; thresholds: AlertThresholds };
  /** The settings every hub process applies while running. */
  runtime: RuntimeSettings;
  /** The dead-letter stream, oldest first, and the resend of one letter (engine/deadletters.ts). */
  deadLetters: {
    list(limit: number): Promise<DeadLetter[]>;
    resend(seq: number, options: { renewId?: string; reason?: string }): Promise<DeadLetter>;
  };
}

export interface ConsoleListener {
  kind: 'loopback' | 'network';
  /** The network listener's TLS: the hub's credential; `requestCert` asks for an officer's client certificate. */
  tls?: { key: string; cert: string; ca: string[]; requestCert: boolean };
}

export const sessionCookie = '__Host-swx-session';
export const csrfCookie = '__Host-swx-csrf';
/** Cookies the console sets: sent back only over HTTPS, to this host alone, never to a script, never cross-site. */
export const cookieOptions = { path: '/', httpOnly: true, secure: true, sameSite: 'strict' } as const;

/** The reason a change is made for, when the caller gives one (x-swx-reason, URL-encoded). */
export function reasonOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-swx-reason'];
  if (typeof header !== 'string' || header === '') return undefined;
  try { return decodeURIComponent(header).slice(0, 1_000); } catch { return header.slice(0, 1_000); }
}


/** The console's fastify application, with zod schemas as its type provider. */
export type ConsoleApp = FastifyInstance<any, any, any, any, ZodTypeProvider>;

/** The store, or SWX_UNAVAILABLE in a hub process that does not hold it. */
export function archiveOf(deps: Pick<ConsoleDeps, 'store'>): Store {
  if (!deps.store) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not hold the store; ask the one that archives');
  return deps.store;
}

/** The audit entry of a change made through a console route: who, under which role, the route, its target, before and after. */
export function auditChange(deps: Pick<ConsoleDeps, 'audit'>, request: FastifyRequest, target: string, before: unknown, after: unknown): Promise<void> {
  const principal = request.principal!;
  const access = request.routeOptions.config?.access ?? 'signed-in';
  return deps.audit.append({
    actor: principal.name, role: allowedRole(access, principal.roles) ?? '', action: `${request.method} ${request.routeOptions.url}`,
    target, before, after, reason: reasonOf(request),
  });
}

/** An opaque cursor (base64url JSON) of a keyset position, and its reading; a cursor not made here is SWX_BAD_REQUEST. */
export const cursorText = (key: unknown): string => Buffer.from(JSON.stringify(key)).toString('base64url');
export function cursorValue(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new SwxError('SWX_BAD_REQUEST', 'cursor: not one this server gave');
  }
}
