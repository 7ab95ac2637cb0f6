// One configuration: <data>/swx.json (or SWX_CONFIG) overlaid by SWX_* environment variables, validated at start.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { rateLimitsSchema } from './ratelimit.ts';

const port = z.coerce.number().int().min(0).max(65535);

export const configSchema = z.object({
  dataDir: z.string().min(1).describe('data folder: PKI, NATS store, chDB, demo agencies'),
  node: z.string().min(1).describe('name of this hub process in logs and evidence'),
  nats: z.object({
    url: z.string().optional().describe('external NATS server; when absent the hub starts its own nats-server'),
    port: port.describe('port of the embedded nats-server (loopback)'),
  }),
  clickhouse: z.object({
    url: z.string().optional().describe('ClickHouse server URL; when absent, embedded chDB in <data>/chdb'),
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
    username: z.string().optional(),
    password: z.string().optional(),
  }),
  http: z.object({
    host: z.string(),
    port: port.describe('agency HTTPS port (REST connector, mutual TLS)'),
    publicUrl: z.url({ protocol: /^https$/ }).refine((url) => ['', '/'].includes(new URL(url).pathname) && !new URL(url).search && !new URL(url).hash && !new URL(url).username, 'an https origin, e.g. https://hub.example:7443')
      .optional().describe('the address agencies reach the agency port at, written into WSDLs; default https://<SWX_HTTP_HOST, or localhost>:<port>'),
    opsHost: z.string(),
    opsNames: z.array(z.string().regex(/^[A-Za-z0-9.:\[\]-]{1,253}$/, 'host names or IP addresses')).describe('names the operator API answers to besides its own address (and the loopback names when on loopback)'),
    opsPort: port.describe('operator HTTP port: health, metrics, admin API'),
    opsToken: z.string().optional().describe('bearer token of the operator API; when absent, <data>/ops-token'),
  }),
  console: z.object({
    host: z.string().describe('address the console\'s HTTPS listener binds to (operators on the network)'),
    port: port.describe('console HTTPS port: the console API with sign-in, roles and audit, served with the hub\'s TLS certificate'),
    clientCertificates: z.union([z.boolean(), z.stringbool()]).describe('ask browsers for a TLS client certificate, for officers who sign in with one (optional: a password still works)'),
    sessionMinutes: z.coerce.number().int().positive().max(7 * 24 * 60).describe('how long a console session lasts after sign-in'),
    lockoutFailures: z.coerce.number().int().positive().describe('failed sign-ins for one user, or from one address, within the window that lock it out'),
    lockoutSeconds: z.coerce.number().int().positive().describe('the lockout window: failures older than this are forgotten, and a lockout ends this long after the failure that started its window'),
  }),
  alerts: z.object({
    intervalSeconds: z.coerce.number().int().positive().describe('how often the hub that archives judges the alerts and publishes their changes on swx.alerts.<kind>'),
    backlog: z.coerce.number().int().positive().describe('deliveries waiting for one partner past which it alerts'),
    stampingBacklog: z.coerce.number().int().positive().describe('evidence records waiting for their time-stamp past which it alerts'),
    receiptMinutes: z.coerce.number().positive().describe('minutes a receiver may take to acknowledge a message before it counts as missing'),
    diskFreeRatio: z.coerce.number().gt(0).lt(1).describe('free share of the data disk below which it warns (critical below half of it)'),
  }),
  limits: z.object({
    maxBodyBytes: z.coerce.number().int().positive().describe('largest message body read whole (JSON, signed payloads, bodies within the inline limit)'),
    inlinePayloadBytes: z.coerce.number().int().positive().describe('larger payloads go to the Object Store'),
    maxStreamedBodyBytes: z.coerce.number().int().positive().describe('largest message body written to the Object Store as it arrives (REST bodies over the inline limit that are neither JSON nor signed payloads); held a window at a time, not whole'),
    inflightBodyBytes: z.coerce.number().int().positive().describe('request body bytes the process holds at once for verified requests; past it, 503 SWX_BUSY'),
    inflightBodyBytesPerPartner: z.coerce.number().int().positive().describe('request body bytes one agency may have in flight at once; past it, 429 SWX_PARTNER_BUSY'),
  }),
  clockSkewSeconds: z.coerce.number().int().positive(),
  dedupeHorizonSeconds: z.coerce.number().int().positive(),
  delivery: z.object({
    timeoutMs: z.coerce.number().int().positive(),
    concurrency: z.coerce.number().int().positive().describe('in-flight deliveries per partner per process'),
    maxAttempts: z.coerce.number().int().positive().describe('attempts before a message the receiver rejects is dead-lettered'),
    backoffMs: z.array(z.coerce.number().int().positive()).min(1),
    breakerFailures: z.coerce.number().int().positive().describe('consecutive transport failures that open the circuit'),
    probeIntervalMs: z.coerce.number().int().positive(),
    inboxVisibilitySeconds: z.coerce.number().int().positive().describe('how long a delivery collected from a pull partner\'s inbox stays handed out before it is offered again, unacknowledged'),
  }),
  evidence: z.object({
    batchSize: z.coerce.number().int().positive().describe('evidence records per archive write (one Merkle block)'),
    batchMs: z.coerce.number().int().positive().describe('longest wait before a partial archive write'),
    stampIntervalMs: z.coerce.number().int().positive().describe('one RFC 3161 time-stamp per interval covers every block written in it'),
    tsaUrl: z.string().url().optional().describe('external RFC 3161 TSA; when absent, the hub\'s built-in TSA (<data>/pki/tsa)'),
    tsaTrustedPem: z.string().optional().describe('PEM file of the anchors the external TSA\'s certificate must chain to'),
    tsaGraceSeconds: z.coerce.number().int().positive().describe('how long evidence may wait for a time-stamp before new messages are refused'),
    maxUnstampedRecords: z.coerce.number().int().positive().describe('evidence records that may wait for a time-stamp; warning at 70 %, refusal when full'),
    keyring: z.string().optional().describe('AES-256-GCM keyring file (operator-held, mode 0600): seals evidence bytes and stored payloads at rest'),
    retentionDays: z.coerce.number().int().min(0).describe('days evidence rows and the payloads in the Object Store are kept (payloads a day longer, so they outlive their evidence); 0 keeps them for ever'),
  }),
  query: z.object({
    deadlineMs: z.coerce.number().int().positive().max(120_000).describe('how long the hub waits for a provider before answering SWX_PROVIDER_TIMEOUT'),
    maxBodyBytes: z.coerce.number().int().positive().describe('largest query request (SOAP or REST) the hub reads'),
    freshnessSeconds: z.coerce.number().int().positive().describe('oldest WS-Security Timestamp / signature creation accepted; requests are also remembered this long to refuse replays'),
    rateLimits: rateLimitsSchema.describe('per-asker token buckets: a default and per-agency limits'),
  }),
  signatureThreads: z.coerce.number().int().min(0).max(64).describe('worker threads that check XML signatures (SOAP); 0 checks them on the main thread'),
  archive: z.boolean().optional().describe('run the archive actor; default: on with the embedded NATS or a ClickHouse server, off for a process that joins an external NATS with embedded chDB'),
  pkiAlg: z.enum(['ecdsa', 'rsa']),
  revocation: z.object({
    graceSeconds: z.coerce.number().int().min(0).describe('how long past its nextUpdate a CRL that cannot be refreshed still answers'),
    failOpen: z.union([z.boolean(), z.stringbool()]).describe('accept certificates whose revocation status is unknown (logged); default refuses'),
    ocsp: z.union([z.boolean(), z.stringbool()]).describe('ask the OCSP responder a certificate names before fetching its CRL'),
    maxAgeSeconds: z.coerce.number().int().positive().describe('fetched CRLs are fetched again at least this often'),
    fetchTimeoutMs: z.coerce.number().int().positive(),
  }),
  connectors: z.record(z.string(), z.record(z.string(), z.unknown())).describe('each connector\'s own settings, by protocol (`swx connectors` lists them); each connector\'s schema checks its part at start'),
  crlUrl: z.url({ protocol: /^http$/ }).optional().describe('CRL distribution point written into certificates the hub CA issues; default http://localhost:<ops port>/pki/crl'),
});

export type Config = Omit<z.infer<typeof configSchema>, 'archive'> & { archive: boolean };

const defaults = (dataDir: string): z.input<typeof configSchema> => ({
  dataDir,
  node: hostname(),
  nats: { port: 14222 },
  clickhouse: { database: 'swx' },
  http: { host: '0.0.0.0', port: 7443, opsHost: '127.0.0.1', opsPort: 7480, opsNames: [] },
  console: { host: '0.0.0.0', port: 7444, clientCertificates: true, sessionMinutes: 8 * 60, lockoutFailures: 5, lockoutSeconds: 15 * 60 },
  alerts: { intervalSeconds: 60, backlog: 1_000, stampingBacklog: 10_000, receiptMinutes: 30, diskFreeRatio: 0.1 },
  // Four largest messages at once for the hub, one for each agency: a burst from one agency cannot starve the rest.
  limits: { maxBodyBytes: 64 * 1024 * 1024, inlinePayloadBytes: 256 * 1024, maxStreamedBodyBytes: 4 * 1024 ** 3, inflightBodyBytes: 256 * 1024 * 1024, inflightBodyBytesPerPartner: 64 * 1024 * 1024 },
  clockSkewSeconds: 300,
  dedupeHorizonSeconds: 7 * 24 * 3600,
  delivery: { timeoutMs: 15_000, concurrency: 32, maxAttempts: 5, backoffMs: [500, 2_000, 10_000, 30_000], breakerFailures: 3, probeIntervalMs: 2_000, inboxVisibilitySeconds: 300 },
  evidence: { batchSize: 2_000, batchMs: 1_000, stampIntervalMs: 1_000, tsaGraceSeconds: 4 * 3600, maxUnstampedRecords: 2_000_000, retentionDays: 0 },
  query: { deadlineMs: 5_000, maxBodyBytes: 64 * 1024, freshnessSeconds: 300, rateLimits: { default: { ratePerSecond: 1_000, burst: 2_000 }, askers: {} } },
  signatureThreads: Math.max(1, availableParallelism() - 1),
  pkiAlg: 'ecdsa',
  revocation: { graceSeconds: 86_400, failOpen: false, ocsp: false, maxAgeSeconds: 3_600, fetchTimeoutMs: 5_000 },
  connectors: {},
});

/** Environment variable → config path. Every setting the README lists. */
export const envSettings: Record<string, string> = {
  SWX_NODE_NAME: 'node',
  SWX_NATS_URL: 'nats.url',
  SWX_NATS_PORT: 'nats.port',
  SWX_CLICKHOUSE_URL: 'clickhouse.url',
  SWX_CLICKHOUSE_DATABASE: 'clickhouse.database',
  SWX_CLICKHOUSE_USER: 'clickhouse.username',
  SWX_CLICKHOUSE_PASSWORD: 'clickhouse.password',
  SWX_HTTP_HOST: 'http.host',
  SWX_HTTP_PORT: 'http.port',
  SWX_PUBLIC_URL: 'http.publicUrl',
  SWX_OPS_HOST: 'http.opsHost',
  SWX_OPS_NAMES: 'http.opsNames',
  SWX_OPS_PORT: 'http.opsPort',
  SWX_OPS_TOKEN: 'http.opsToken',
  SWX_CONSOLE_HOST: 'console.host',
  SWX_CONSOLE_PORT: 'console.port',
  SWX_CONSOLE_CLIENT_CERTIFICATES: 'console.clientCertificates',
  SWX_CONSOLE_SESSION_MINUTES: 'console.sessionMinutes',
  SWX_CONSOLE_LOCKOUT_FAILURES: 'console.lockoutFailures',
  SWX_CONSOLE_LOCKOUT_SECONDS: 'console.lockoutSeconds',
  SWX_ALERT_INTERVAL_SECONDS: 'alerts.intervalSeconds',
  SWX_ALERT_BACKLOG: 'alerts.backlog',
  SWX_ALERT_STAMPING_BACKLOG: 'alerts.stampingBacklog',
  SWX_ALERT_RECEIPT_MINUTES: 'alerts.receiptMinutes',
  SWX_ALERT_DISK_FREE_RATIO: 'alerts.diskFreeRatio',
  SWX_MAX_BODY_BYTES: 'limits.maxBodyBytes',
  SWX_INLINE_PAYLOAD_BYTES: 'limits.inlinePayloadBytes',
  SWX_MAX_STREAMED_BODY_BYTES: 'limits.maxStreamedBodyBytes',
  SWX_INFLIGHT_BODY_BYTES: 'limits.inflightBodyBytes',
  SWX_INFLIGHT_BODY_BYTES_PER_PARTNER: 'limits.inflightBodyBytesPerPartner',
  SWX_CLOCK_SKEW_SECONDS: 'clockSkewSeconds',
  SWX_DEDUPE_HORIZON_SECONDS: 'dedupeHorizonSeconds',
  SWX_DELIVERY_TIMEOUT_MS: 'delivery.timeoutMs',
  SWX_DELIVERY_CONCURRENCY: 'delivery.concurrency',
  SWX_DELIVERY_MAX_ATTEMPTS: 'delivery.maxAttempts',
  SWX_DELIVERY_BACKOFF_MS: 'delivery.backoffMs',
  SWX_BREAKER_FAILURES: 'delivery.breakerFailures',
  SWX_PROBE_INTERVAL_MS: 'delivery.probeIntervalMs',
  SWX_INBOX_VISIBILITY_SECONDS: 'delivery.inboxVisibilitySeconds',
  SWX_ARCHIVE: 'archive',
  SWX_EVIDENCE_BATCH_SIZE: 'evidence.batchSize',
  SWX_EVIDENCE_BATCH_MS: 'evidence.batchMs',
  SWX_STAMP_INTERVAL_MS: 'evidence.stampIntervalMs',
  SWX_TSA_URL: 'evidence.tsaUrl',
  SWX_TSA_TRUSTED_PEM: 'evidence.tsaTrustedPem',
  SWX_TSA_GRACE_SECONDS: 'evidence.tsaGraceSeconds',
  SWX_MAX_UNSTAMPED_RECORDS: 'evidence.maxUnstampedRecords',
  SWX_KEYRING: 'evidence.keyring',
  SWX_RETENTION_DAYS: 'evidence.retentionDays',
  SWX_QUERY_DEADLINE_MS: 'query.deadlineMs',
  SWX_QUERY_MAX_BYTES: 'query.maxBodyBytes',
  SWX_QUERY_FRESHNESS_SECONDS: 'query.freshnessSeconds',
  SWX_QUERY_RATE: 'query.rateLimits.default.ratePerSecond',
  SWX_QUERY_BURST: 'query.rateLimits.default.burst',
  SWX_SIGNATURE_THREADS: 'signatureThreads',
  SWX_PKI_ALG: 'pkiAlg',
  SWX_CRL_URL: 'crlUrl',
  SWX_CRL_GRACE_SECONDS: 'revocation.graceSeconds',
  SWX_CRL_MAX_AGE_SECONDS: 'revocation.maxAgeSeconds',
  SWX_CRL_FETCH_TIMEOUT_MS: 'revocation.fetchTimeoutMs',
  SWX_REVOCATION_FAIL_OPEN: 'revocation.failOpen',
  SWX_OCSP: 'revocation.ocsp',
  SWX_SFTP_HOST: 'connectors.sftp.host',
  SWX_SFTP_PORT: 'connectors.sftp.port',
  SWX_SFTP_LEGACY_PORT: 'connectors.sftp.legacyPort',
};

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

function envValue(name: string, raw: string): unknown {
  if (name === 'SWX_DELIVERY_BACKOFF_MS' || name === 'SWX_OPS_NAMES') return raw.split(',').map((part) => part.trim()).filter(Boolean);
  if (name === 'SWX_ARCHIVE') return !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
  return raw;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)
      ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
      : value;
  }
  return out;
}

/** Loads and validates; a bad setting stops the start with a message naming it. */
export function loadConfig(dataDir = process.env.SWX_DATA ?? './data', env: NodeJS.ProcessEnv = process.env): Config {
  const dir = resolve(dataDir);
  let merged: Record<string, unknown> = defaults(dir) as unknown as Record<string, unknown>;
  const file = env.SWX_CONFIG ?? join(dir, 'swx.json');
  if (existsSync(file)) {
    try {
      merged = merge(merged, JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>);
    } catch (error) {
      throw new Error(`config file ${file} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const overrides: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(envSettings)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(overrides, path, envValue(name, raw));
  }
  merged = merge(merged, overrides);
  merged.dataDir = dir;
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.join('.');
    const envName = Object.entries(envSettings).find(([, p]) => p === path)?.[0];
    throw new Error(`invalid setting ${path}${envName ? ` (${envName})` : ''}: ${issue.message}`);
  }
  const { maxBodyBytes, inflightBodyBytes, inflightBodyBytesPerPartner, inlinePayloadBytes, maxStreamedBodyBytes } = parsed.data.limits;
  if (maxStreamedBodyBytes <= inlinePayloadBytes) {
    throw new Error(`invalid setting limits.maxStreamedBodyBytes (SWX_MAX_STREAMED_BODY_BYTES): ${maxStreamedBodyBytes} is not above limits.inlinePayloadBytes (SWX_INLINE_PAYLOAD_BYTES) ${inlinePayloadBytes}, so every body streamed to the Object Store would be refused`);
  }
  // A message the budget could never hold would be refused as busy forever: say so at start instead. Streamed bodies
  // claim only the window they hold (engine/payloads.ts), so their maximum is not bound to the budget.
  if (inflightBodyBytesPerPartner < maxBodyBytes) {
    throw new Error(`invalid setting limits.inflightBodyBytesPerPartner (SWX_INFLIGHT_BODY_BYTES_PER_PARTNER): ${inflightBodyBytesPerPartner} is below limits.maxBodyBytes (SWX_MAX_BODY_BYTES) ${maxBodyBytes}, so the largest message could never be read`);
  }
  if (inflightBodyBytes < inflightBodyBytesPerPartner) {
    throw new Error(`invalid setting limits.inflightBodyBytes (SWX_INFLIGHT_BODY_BYTES): ${inflightBodyBytes} is below limits.inflightBodyBytesPerPartner (SWX_INFLIGHT_BODY_BYTES_PER_PARTNER) ${inflightBodyBytesPerPartner}`);
  }
  // A second process on an external NATS with its own embedded chDB would split the evidence: it archives only when told.
  const { archive, ...rest } = parsed.data;
  return { ...rest, archive: archive ?? (!rest.nats.url || Boolean(rest.clickhouse.url)) };
}

/**
 * The origin agencies reach the agency port at (written into WSDLs): SWX_PUBLIC_URL, else built from the address the
 * port is bound to, `localhost` for loopback or every interface (a name the hub's TLS certificate always carries).
 */
export function publicUrl(config: Pick<Config, 'http'>, agencyPort: number): string {
  if (config.http.publicUrl) return new URL(config.http.publicUrl).origin;
  const host = config.http.host.replace(/^\[|\]$/g, '');
  const local = ['0.0.0.0', '::', ''].includes(host) || host === '::1' || /^127\./.test(host);
  const name = local ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `https://${name}:${agencyPort}`;
}
