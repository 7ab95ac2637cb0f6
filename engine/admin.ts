// The operator server: health, readiness, Prometheus metrics and the JSON admin API (partners, services,
// dead letters, evidence). Bound to loopback by default.
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { listDeadLetters, resendDeadLetter } from './deadletters.ts';
import { SwxError } from './errors.ts';
import type { EvidenceLog } from './evidence.ts';
import { readBody, readJson, sendJson, sendProblem, type Router } from './http.ts';
import { metricsRegistry } from './metrics.ts';
import type { Bus } from './nats/jetstream.ts';
import type { Registry } from './registry.ts';
import type { Store } from './store/index.ts';

export interface AdminDeps {
  bus: Bus;
  registry: Registry;
  store?: Store;
  evidence: EvidenceLog;
  isReady(): boolean;
}

const evidenceQuery = z.object({
  messageId: z.string().max(200).optional(),
  conversationId: z.string().max(200).optional(),
  partner: z.string().max(40).optional(),
  from: z.iso.datetime().optional(),
  to: z.iso.datetime().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  return readJson(await readBody(req, 1024 * 1024));
}

function validation<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof z.ZodError) {
      const issue = error.issues[0]!;
      throw new SwxError('SWX_BAD_REQUEST', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    throw error;
  }
}

export function mountAdminApi(router: Router, deps: AdminDeps): void {
  const { registry, bus } = deps;
  const archive = (): Store => {
    if (!deps.store) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not run the archive; ask the one that does');
    return deps.store;
  };
  router
    .add('GET', '/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }))
    .add('GET', '/readyz', (_req, res) => {
      const ready = deps.isReady() && !bus.nc.isClosed();
      if (ready) sendJson(res, 200, { status: 'ready' });
      else sendProblem(res, new SwxError('SWX_UNAVAILABLE', 'starting, stopping or disconnected from NATS'));
    })
    .add('GET', '/metrics', async (_req, res) => {
      const text = await metricsRegistry.metrics();
      res.writeHead(200, { 'content-type': metricsRegistry.contentType });
      res.end(text);
    })
    .add('GET', '/api/partners', (_req, res) => sendJson(res, 200, registry.listPartners()))
    .add('GET', '/api/partners/:id', (_req, res, { id }) => {
      const partner = registry.partner(id!);
      if (!partner) throw new SwxError('SWX_NOT_FOUND', `no partner ${id}`);
      sendJson(res, 200, partner);
    })
    .add('PUT', '/api/partners/:id', async (req, res, { id }) => {
      const body = await jsonBody(req) as Record<string, unknown>;
      const partner = await validation(() => registry.putPartner({ ...body, id }));
      sendJson(res, 200, partner);
    })
    .add('DELETE', '/api/partners/:id', async (_req, res, { id }) => {
      if (!registry.partner(id!)) throw new SwxError('SWX_NOT_FOUND', `no partner ${id}`);
      await registry.removePartner(id!);
      sendJson(res, 200, { removed: id });
    })
    .add('GET', '/api/partners/:id/history', async (_req, res, { id }) => sendJson(res, 200, await registry.history('partner', id!)))
    .add('GET', '/api/services', (_req, res) => sendJson(res, 200, registry.listServices()))
    .add('PUT', '/api/services/:id', async (req, res, { id }) => {
      const body = await jsonBody(req) as Record<string, unknown>;
      sendJson(res, 200, await validation(() => registry.putService({ ...body, id })));
    })
    .add('GET', '/api/services/:id/history', async (_req, res, { id }) => sendJson(res, 200, await registry.history('service', id!)))
    .add('GET', '/api/dlq', async (_req, res) => sendJson(res, 200, await listDeadLetters(bus)))
    .add('POST', '/api/dlq/:seq/resend', async (_req, res, { seq }) => {
      const number = Number(seq);
      if (!Number.isInteger(number) || number < 1) throw new SwxError('SWX_BAD_REQUEST', 'sequence must be a positive integer');
      sendJson(res, 200, await resendDeadLetter(bus, number, deps.evidence));
    })
    .add('POST', '/api/messages/stages', async (req, res) => {
      const body = await jsonBody(req);
      const { ids } = validation(() => z.object({ ids: z.array(z.string().max(200)).max(10_000) }).parse(body));
      const rows = await archive().query<{ message_id: string; stage: string; count: string }>(
        'SELECT message_id, stage, toString(count()) AS count FROM evidence FINAL WHERE message_id IN {ids:Array(String)} GROUP BY message_id, stage',
        { ids });
      const stages: Record<string, Record<string, number>> = {};
      for (const row of rows) (stages[row.message_id] ??= {})[row.stage] = Number(row.count);
      sendJson(res, 200, stages);
    })
    .add('GET', '/api/evidence', async (req, res) => {
      const store = archive();
      const query = validation(() => evidenceQuery.parse(Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams)));
      const where: string[] = [];
      if (query.messageId) where.push('message_id = {messageId:String}');
      if (query.conversationId) where.push('conversation_id = {conversationId:String}');
      if (query.partner) where.push('(from_partner = {partner:String} OR to_partner = {partner:String})');
      if (query.from) where.push("at >= parseDateTime64BestEffort({from:String}, 3)");
      if (query.to) where.push("at < parseDateTime64BestEffort({to:String}, 3)");
      const rows = await store.query(
        `SELECT chain, stream, seq, id, message_id, conversation_id, stage, toString(at) AS at, from_partner, to_partner, service, action,
                protocol, code, detail, size, sha256, raw, signature, node, prev_hash, record_hash
         FROM evidence FINAL ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY chain LIMIT {limit:UInt32}`,
        query,
      );
      sendJson(res, 200, rows);
    });
}
