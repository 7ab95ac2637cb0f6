// The operator routes: health, readiness, Prometheus metrics and the JSON admin API (partners, services, topics,
// channels, dead letters, evidence), as handlers on a route table. Who may call them (the operator token, users and
// their roles) is the console's to judge (dashboards/console.ts), which serves them on its listeners.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { z } from 'zod';
import { listDeadLetters, resendDeadLetter } from './deadletters.ts';
import { SwxError } from './errors.ts';
import { evidenceStages, type EvidenceLog, type EvidenceStage, type StampHealth } from './evidence.ts';
import { readBody, readJson, sendJson, sendProblem, type RouteHandler } from './http.ts';
import { log } from './log.ts';
import { connectorHealthy, metricsRegistry } from './metrics.ts';
import type { ConnectorHealth } from './connector.ts';
import type { ProbeResult } from './probe.ts';
import type { Bus } from './nats/jetstream.ts';
import { datasetSchema, type Catalogue } from './catalogue.ts';
import { verifyBundle } from './evidence-bundle.ts';
import { messageIdPattern } from './envelope.ts';
import { openRaw, type Keyring } from './keyring.ts';
import { channelId, checkedId, partnerId, serviceId, topicId, type Channel, type Partner, type Registry } from './registry.ts';
import { sshFingerprint } from './ssh-key.ts';
import type { Store } from './store/index.ts';

export interface AdminDeps {
  bus: Bus;
  registry: Registry;
  /** Puts a channel's items since a time on one requester's lane again (pipelines/route.ts). */
  resendChannel(channel: string, requester: string, since: Date): Promise<{ resent: number }>;
  store?: Store;
  evidence: EvidenceLog;
  /** The evidence time-stamping backlog, in the process that archives. */
  stamping: () => StampHealth | undefined;
  /** The query-service catalogue with its access matrix (engine/catalogue.ts). */
  catalogue: Catalogue;
  /** Opens sealed evidence bytes for the operator (SWX_KEYRING). */
  keyring?: Keyring;
  /** The evidence bundle of a message (engine/evidence-bundle.ts), in the process that archives. */
  bundle?: (messageId: string) => Promise<{ name: string; tar: Buffer }>;
  isReady(): boolean;
  /** Each started connector's own account of its health, by protocol. */
  connectors(): Record<string, ConnectorHealth>;
  /** The connection test of a partner's endpoint by the connector of its protocol, or why there is none. */
  probe(protocol: string, partner: Partner, endpoint: unknown): Promise<ProbeResult>;
}

/** Where the operator routes are added: `pattern` as `/api/partners/:partner`; the console serves them. */
export interface RouteTable {
  add(method: string, pattern: string, handle: RouteHandler): unknown;
}

/** Where the hub keeps its operator token; `swx` commands read it from there. */
export function opsTokenPath(dataDir: string): string {
  return join(dataDir, 'ops-token');
}

/** Visible ASCII, as an Authorization header carries it, and long enough not to be guessed. */
const tokenShape = /^[\x21-\x7e]{32,512}$/;

/**
 * The operator token: `fromEnv` (SWX_OPS_TOKEN) when given, else <data>/ops-token, made at first start
 * (32 random bytes, base64url, mode 0600). Throws, naming the setting or file, when the token is unusable.
 */
export function opsToken(dataDir: string, fromEnv?: string): string {
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!tokenShape.test(fromEnv)) throw new Error('invalid setting SWX_OPS_TOKEN: 32-512 visible ASCII characters, no spaces');
    return fromEnv;
  }
  const file = opsTokenPath(dataDir);
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if (statSync(file).mode & 0o077) log.warn({ file }, 'the operator token file is readable by other users; chmod 600 it');
  }
  const token = readFileSync(file, 'utf8').trim();
  if (!tokenShape.test(token)) throw new Error(`operator token file ${file}: 32-512 visible ASCII characters, no spaces; delete it to have a new one made`);
  return token;
}

/** The token in <data>/ops-token, if the file is there: what `swx` commands send. */
export function readOpsToken(dataDir: string): string | undefined {
  try {
    return readFileSync(opsTokenPath(dataDir), 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host);
}

/** The host name of a Host header value, lower-case, without port or IPv6 brackets. */
export function hostName(header: string): string {
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.replace(/:[0-9]*$/, '');
  return name.toLowerCase();
}

/**
 * The names the operator server answers to: the address it listens on, the loopback names when that is loopback or
 * every interface, and the names configured (SWX_OPS_NAMES, e.g. the name a proxy in front of it uses).
 */
export function opsNames(opsHost: string, configured: readonly string[]): Set<string> {
  const bare = (name: string) => name.replace(/^\[|\]$/g, '').toLowerCase();
  const names = new Set(configured.map(bare));
  const own = bare(opsHost);
  const everywhere = own === '0.0.0.0' || own === '::';
  if (!everywhere) names.add(own);
  if (everywhere || isLoopback(own)) for (const name of ['localhost', '127.0.0.1', '::1']) names.add(name);
  return names;
}

export const messageId = z.string().regex(messageIdPattern, 'message ids are 1-128 characters of letters, digits and . _ : @ -');

/** The grammar of every path parameter: a handler sees a parameter only once it passed. */
export const pathGrammar: Record<string, z.ZodType<string>> = {
  partner: partnerId,
  service: serviceId,
  topic: topicId,
  channel: channelId,
  dataset: datasetSchema.shape.id,
  messageId,
  fingerprint: sshFingerprint,
  seq: z.string().regex(/^[1-9][0-9]{0,15}$/, 'a dead-letter sequence is a positive integer'),
};

export const resendRequest = z.object({
  requester: partnerId,
  since: z.iso.datetime({ offset: true }),
}).strict();

export const evidenceQuery = z.object({
  messageId: messageId.optional(),
  conversationId: messageId.optional(),
  partner: partnerId.optional(),
  from: z.iso.datetime().optional(),
  to: z.iso.datetime().optional(),
  stage: z.enum(Object.keys(evidenceStages) as [EvidenceStage, ...EvidenceStage[]]).optional(),
  /** Include the raw bytes (base64) and the signature JSON, which are large. */
  raw: z.stringbool().default(false),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  /** The x-next-cursor of the page before: the rows after its last one. */
  cursor: z.string().regex(/^[A-Za-z0-9_-]{1,400}$/).optional(),
});

/** Paging of every list: at most `limit` entries after `cursor`, the x-next-cursor header of the page before. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1_000).default(1_000),
  cursor: z.string().regex(/^[A-Za-z0-9_-]{1,400}$/).optional(),
});

const cursorOf = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');

function cursorKey(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new SwxError('SWX_BAD_REQUEST', 'cursor: not one this server gave');
  }
}

/**
 * One page of a list ordered by `key`: the body stays the list it always was, and when more entries follow, the
 * x-next-cursor header (and a Link rel="next") names where the next page starts.
 */
export function page<T>(req: IncomingMessage, res: ServerResponse, items: readonly T[], key: (item: T) => string | number): T[] {
  const url = new URL(req.url ?? '/', 'http://x');
  const parsed = pageQuery.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) throw new SwxError('SWX_BAD_REQUEST', `${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
  const { limit, cursor } = parsed.data;
  const after = cursor === undefined ? undefined : cursorKey(cursor);
  const rest = after === undefined ? [...items] : items.filter((item) => key(item) > (after as string | number));
  const shown = rest.slice(0, limit);
  if (rest.length > limit) nextPage(req, res, cursorOf(key(shown.at(-1)!)));
  return shown;
}

function nextPage(req: IncomingMessage, res: ServerResponse, cursor: string): void {
  const url = new URL(req.url ?? '/', 'http://x');
  url.searchParams.set('cursor', cursor);
  res.setHeader('x-next-cursor', cursor);
  res.setHeader('link', `<${url.pathname}${url.search}>; rel="next"`);
}

/** What exists now, or SWX_NOT_FOUND naming what was asked for. */
function known<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new SwxError('SWX_NOT_FOUND', `no ${what}`);
  return value;
}

/** A history that holds no revision names something that never existed here. */
function found<T>(history: T[], what: string, code: 'SWX_NOT_FOUND' | 'SWX_UNKNOWN_DATASET' = 'SWX_NOT_FOUND'): T[] {
  if (history.length === 0) throw new SwxError(code, `no ${what}, now or before`);
  return history;
}

/** Bodies a server in front already read and checked against the route's schema (the console's). */
const givenBodies = new WeakMap<IncomingMessage, unknown>();

/** Hands a handler the body the server in front read, instead of reading the request again. */
export function giveBody(req: IncomingMessage, body: unknown): void {
  givenBodies.set(req, body);
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  if (givenBodies.has(req)) return givenBodies.get(req);
  return readJson(await readBody(req, 1024 * 1024));
}

/** Runs a parse (or a registry write that parses first), turning a schema failure into SWX_BAD_REQUEST. */
async function validation<T>(parse: () => T | Promise<T>): Promise<T> {
  try {
    return await parse();
  } catch (error) {
    if (error instanceof z.ZodError) {
      const issue = error.issues[0]!;
      throw new SwxError('SWX_BAD_REQUEST', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    throw error;
  }
}

export function mountAdminApi(router: RouteTable, deps: AdminDeps): void {
  const { registry, bus } = deps;
  const archive = (): Store => {
    if (!deps.store) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not run the archive; ask the one that does');
    return deps.store;
  };
  const route = { add(method: string, pattern: string, handle: RouteHandler) {
    const names = [...pattern.matchAll(/:([a-zA-Z]+)/g)].map((match) => match[1]!);
    const unchecked = names.find((name) => !pathGrammar[name]);
    if (unchecked) throw new Error(`operator route ${pattern}: no grammar for :${unchecked}`);
    router.add(method, pattern, (req, res, params) => {
      for (const name of names) checkedId(pathGrammar[name]!, name, params[name]!);
      return handle(req, res, params);
    });
    return route;
  } };
  // Topics and channels: the same list, show, put, remove and history, each against its own registry entries.
  const collections: ['topic' | 'channel', string, (input: unknown) => Promise<unknown>][] = [
    ['topic', 'topics', (input) => registry.putTopic(input)],
    ['channel', 'channels', (input) => registry.putChannel(input)],
  ];
  for (const [kind, collection, put] of collections) {
    const current = (id: string) => known(kind === 'topic' ? registry.topic(id) : registry.channel(id), `${kind} ${id}`);
    const path = `/api/${collection}/:${kind}`;
    route
      .add('GET', `/api/${collection}`, (req, res) => sendJson(res, 200, page<{ id: string }>(req, res, kind === 'topic' ? registry.listTopics() : registry.listChannels(), (entry) => entry.id)))
      .add('GET', path, (_req, res, params) => sendJson(res, 200, current(params[kind]!)))
      .add('PUT', path, async (req, res, params) => {
        const body = await jsonBody(req) as Record<string, unknown>;
        sendJson(res, 200, await validation(() => put({ ...body, id: params[kind] })));
      })
      .add('DELETE', path, async (_req, res, params) => {
        current(params[kind]!);
        await registry.remove(kind, params[kind]!);
        sendJson(res, 200, { removed: params[kind] });
      })
      .add('GET', `${path}/history`, async (_req, res, params) => sendJson(res, 200, found(await registry.history(kind, params[kind]!), `${kind} ${params[kind]}`)));
  }
  route
    .add('GET', '/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }))
    .add('GET', '/readyz', (_req, res) => {
      const ready = deps.isReady() && !bus.nc.isClosed();
      // A connector in trouble (an MQ client library missing) holds up its own partners, not the hub: the process stays
      // ready for the rest, and says which connector is unhealthy and why.
      if (ready) sendJson(res, 200, { status: 'ready', connectors: deps.connectors() });
      else sendProblem(res, new SwxError('SWX_UNAVAILABLE', 'starting, stopping or disconnected from NATS'));
    })
    .add('GET', '/metrics', async (_req, res) => {
      for (const [protocol, health] of Object.entries(deps.connectors())) connectorHealthy.set({ protocol }, health.ok ? 1 : 0);
      const text = await metricsRegistry.metrics();
      res.writeHead(200, { 'content-type': metricsRegistry.contentType });
      res.end(text);
    })
    .add('GET', '/api/partners', (req, res) => sendJson(res, 200, page(req, res, registry.listPartners(), (partner) => partner.id)))
    .add('GET', '/api/partners/:partner', (_req, res, { partner: id }) => {
      const partner = registry.partner(id!);
      if (!partner) throw new SwxError('SWX_NOT_FOUND', `no partner ${id}`);
      sendJson(res, 200, partner);
    })
    .add('PUT', '/api/partners/:partner', async (req, res, { partner: id }) => {
      const body = await jsonBody(req) as Record<string, unknown>;
      // SSH keys have their own routes: an entry put without them keeps the ones it has (swx partner add again).
      const sshKeys = body.sshKeys ?? registry.partner(id!)?.sshKeys;
      const partner = await validation(() => registry.putPartner({ ...body, id, ...(sshKeys ? { sshKeys } : {}) }));
      sendJson(res, 200, partner);
    })
    .add('DELETE', '/api/partners/:partner', async (_req, res, { partner: id }) => {
      if (!registry.partner(id!)) throw new SwxError('SWX_NOT_FOUND', `no partner ${id}`);
      await registry.removePartner(id!);
      sendJson(res, 200, { removed: id });
    })
    // A partner's SSH keys (SFTP logins): each change is a new revision of the partner's entry, so it has history.
    .add('GET', '/api/partners/:partner/ssh-keys', (_req, res, { partner: id }) => sendJson(res, 200, known(registry.partner(id!), `partner ${id}`).sshKeys))
    .add('POST', '/api/partners/:partner/ssh-keys', async (req, res, { partner: id }) => {
      const body = await jsonBody(req);
      const { key } = await validation(() => z.object({ key: z.string().min(1).max(16_384) }).strict().parse(body));
      sendJson(res, 200, await registry.addSshKey(id!, key));
    })
    .add('DELETE', '/api/partners/:partner/ssh-keys/:fingerprint', async (_req, res, { partner: id, fingerprint }) => {
      await registry.removeSshKey(id!, fingerprint!);
      sendJson(res, 200, { partner: id, removed: fingerprint });
    })
    // Each of the partner's endpoints tried as a delivery would reach it, without a message: what fails and why.
    .add('POST', '/api/partners/:partner/test', async (_req, res, { partner: id }) => {
      const partner = known(registry.partner(id!), `partner ${id}`);
      const results = await Promise.all(Object.entries(partner.endpoints).map(async ([protocol, endpoint]) => ({
        protocol, ...await deps.probe(protocol, partner, endpoint).catch((error: Error) => ({ ok: false, detail: error.message, ms: 0 })),
      })));
      sendJson(res, 200, { partner: partner.id, results });
    })
    .add('GET', '/api/partners/:partner/history', async (_req, res, { partner: id }) => sendJson(res, 200, found(await registry.history('partner', id!), `partner ${id}`)))
    .add('GET', '/api/services', (req, res) => sendJson(res, 200, page(req, res, registry.listServices(), (service) => service.id)))
    .add('PUT', '/api/services/:service', async (req, res, { service: id }) => {
      const body = await jsonBody(req) as Record<string, unknown>;
      sendJson(res, 200, await validation(() => registry.putService({ ...body, id })));
    })
    .add('GET', '/api/services/:service/history', async (_req, res, { service: id }) => sendJson(res, 200, found(await registry.history('service', id!), `service ${id}`)))
    // A requester joins or leaves a channel on its own: the providers' side of the entry is not touched.
    .add('PUT', '/api/channels/:channel/requesters/:partner', async (_req, res, { channel: id, partner }) => {
      const channel = known(registry.channel(id!), `channel ${id}`);
      if (!registry.partner(partner!)) throw new SwxError('SWX_NOT_FOUND', `no partner ${partner}`);
      const requesters = channel.requesters.includes(partner!) ? channel.requesters : [...channel.requesters, partner!];
      sendJson(res, 200, await registry.putChannel({ ...channel, requesters } satisfies Channel));
    })
    .add('DELETE', '/api/channels/:channel/requesters/:partner', async (_req, res, { channel: id, partner }) => {
      const channel = known(registry.channel(id!), `channel ${id}`);
      sendJson(res, 200, await registry.putChannel({ ...channel, requesters: channel.requesters.filter((requester) => requester !== partner) } satisfies Channel));
    })
    // A requester that lost its own copies asks for the channel's items again since a time: they go to it alone.
    .add('POST', '/api/channels/:channel/resend', async (req, res, { channel: id }) => {
      const channel = known(registry.channel(id!), `channel ${id}`);
      const body = await jsonBody(req);
      const { requester, since } = await validation(() => resendRequest.parse(body));
      if (!channel.requesters.includes(requester)) throw new SwxError('SWX_BAD_REQUEST', `${requester} is not a requester of channel ${channel.id}`);
      sendJson(res, 200, { channel: channel.id, requester, since, ...(await deps.resendChannel(channel.id, requester, new Date(since))) });
    })
    .add('GET', '/api/catalogue', (req, res) => sendJson(res, 200, page(req, res, deps.catalogue.list(), (dataset) => dataset.id)))
    .add('GET', '/api/catalogue/:dataset', (_req, res, { dataset: id }) => {
      const dataset = deps.catalogue.dataset(id!);
      if (!dataset) throw new SwxError('SWX_UNKNOWN_DATASET', `no dataset ${id}`);
      sendJson(res, 200, dataset);
    })
    .add('PUT', '/api/catalogue/:dataset', async (req, res, { dataset: id }) => {
      const body = await jsonBody(req) as Record<string, unknown>;
      sendJson(res, 200, await validation(() => deps.catalogue.put({ ...body, id })));
    })
    .add('DELETE', '/api/catalogue/:dataset', async (_req, res, { dataset: id }) => {
      await deps.catalogue.remove(id!);
      sendJson(res, 200, { removed: id });
    })
    .add('GET', '/api/catalogue/:dataset/history', async (_req, res, { dataset: id }) => sendJson(res, 200, found(await deps.catalogue.history(id!), `dataset ${id}`, 'SWX_UNKNOWN_DATASET')))
    .add('GET', '/api/dlq', async (req, res) => {
      // Read from the stream after the cursor's sequence, one more than the page to know whether another follows.
      const { limit, cursor } = pageQuery.parse(Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams));
      const after = cursor === undefined ? 0 : Number(cursorKey(cursor));
      sendJson(res, 200, page(req, res, await listDeadLetters(bus, limit + 1, Number.isSafeInteger(after) ? after : 0), (letter) => letter.seq));
    })
    .add('POST', '/api/dlq/:seq/resend', async (_req, res, { seq }) => {
      sendJson(res, 200, await resendDeadLetter(bus, Number(seq), deps.evidence));
    })
    .add('POST', '/api/messages/stages', async (req, res) => {
      const body = await jsonBody(req);
      const { ids } = await validation(() => z.object({ ids: z.array(messageId).max(10_000) }).parse(body));
      const rows = await archive().query<{ message_id: string; stage: string; count: string }>(
        'SELECT message_id, stage, toString(count()) AS count FROM evidence FINAL WHERE message_id IN {ids:Array(String)} GROUP BY message_id, stage',
        { ids });
      const stages: Record<string, Record<string, number>> = {};
      for (const row of rows) (stages[row.message_id] ??= {})[row.stage] = Number(row.count);
      sendJson(res, 200, stages);
    })
    .add('GET', '/api/evidence', async (req, res) => {
      const store = archive();
      const query = await validation(() => evidenceQuery.parse(Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams)));
      const where: string[] = [];
      if (query.messageId) where.push('message_id = {messageId:String}');
      if (query.conversationId) where.push('conversation_id = {conversationId:String}');
      if (query.partner) where.push('(from_partner = {partner:String} OR to_partner = {partner:String})');
      if (query.stage) where.push('stage = {stage:String}');
      if (query.from) where.push("at >= parseDateTime64BestEffort({from:String}, 3)");
      if (query.to) where.push("at < parseDateTime64BestEffort({to:String}, 3)");
      const params: Record<string, unknown> = { ...query };
      if (query.cursor) {
        const [at, node, chain] = cursorKey(query.cursor) as [string, string, string];
        Object.assign(params, { cursorAt: String(at), cursorNode: String(node), cursorChain: String(chain) });
        where.push("(at, node, chain) > (toDateTime64({cursorAt:String}, 3, 'UTC'), {cursorNode:String}, toUInt64({cursorChain:String}))");
      }
      const rows = await store.query<Record<string, unknown>>(
        `SELECT e.chain AS chain, e.stream AS stream, e.seq AS seq, e.id AS id, e.message_id AS message_id, e.conversation_id AS conversation_id,
                e.stage AS stage, toString(e.at) AS at, e.from_partner AS from_partner, e.to_partner AS to_partner, e.service AS service,
                e.action AS action, e.protocol AS protocol, e.code AS code, e.detail AS detail, e.size AS size, e.sha256 AS sha256,
                ${query.raw ? 'e.raw AS raw, e.signature AS signature,' : ''} e.raw_ref AS raw_ref, e.node AS node, e.prev_hash AS prev_hash,
                e.record_hash AS record_hash, e.batch_id AS batch_id, e.proof AS proof,
                if(b.block_id = '', '', toString(b.gen_time)) AS stamped_at, b.tsa AS tsa
         FROM (SELECT * FROM evidence FINAL ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at, node, chain LIMIT {limit:UInt32}) AS e
         LEFT JOIN (SELECT block_id, gen_time, tsa FROM evidence_batches FINAL
                    WHERE block_id IN (SELECT batch_id FROM evidence ${where.length ? `WHERE ${where.join(' AND ')}` : ''})) AS b ON b.block_id = e.batch_id
         ORDER BY e.at, e.node, e.chain`,
        params,
      );
      const last = rows.at(-1);
      if (last && rows.length === query.limit) nextPage(req, res, cursorOf([last.at, last.node, String(last.chain)]));
      if (query.raw) for (const row of rows) row.raw = openRaw(deps.keyring, String(row.raw), String(row.id));
      sendJson(res, 200, rows);
    })
    .add('GET', '/api/evidence/stamping', (_req, res) => {
      const health = deps.stamping();
      if (!health) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not archive evidence; ask the one that does');
      sendJson(res, 200, health);
    })
    .add('GET', '/api/evidence/bundle/:messageId', async (_req, res, { messageId }) => {
      if (!deps.bundle) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not archive evidence; ask the one that does');
      const { name, tar } = await deps.bundle(messageId!);
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': tar.length, 'content-disposition': `attachment; filename="${name}"` });
      res.end(tar);
    })
    // The console's "verify in place": the bundle made as for download, checked by the code of `swx evidence verify`
    // against the certificates it carries (integrity; identity is pinned offline with --trusted).
    .add('GET', '/api/evidence/bundle/:messageId/verify', async (_req, res, { messageId }) => {
      if (!deps.bundle) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not archive evidence; ask the one that does');
      const { tar } = await deps.bundle(messageId!);
      sendJson(res, 200, await verifyBundle(tar));
    });
}
