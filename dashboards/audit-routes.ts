// The audit log as auditors read it: its entries in chain order, paged, and the check of every node's chain. Served
// by the hub process that holds the store, where the console's changes are written (app/hub.ts).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SwxError } from '../engine/errors.ts';
import type { Store } from '../engine/store/index.ts';
import { accessOf } from './access.ts';
import { verifyAudit } from './audit.ts';

type App = FastifyInstance<any, any, any, any, ZodTypeProvider>;

const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(1_000),
  /** The x-next-cursor of the page before. */
  cursor: z.string().regex(/^[A-Za-z0-9_-]{1,400}$/).optional(),
});

export function mountAuditRoutes(app: App, store: Store | undefined): void {
  const archive = () => {
    if (!store) throw new SwxError('SWX_UNAVAILABLE', 'this hub process does not hold the store; ask the one that archives');
    return store;
  };
  app.get('/api/audit', {
    config: { access: accessOf('GET', '/api/audit').access },
    schema: { summary: 'Audit entries in chain order (node, position); before and after are JSON text', querystring: auditQuery },
  }, async (request, reply) => {
    const { limit, cursor } = request.query;
    let after = { node: '', chain: -1 };
    if (cursor) {
      try { after = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')); } catch { throw new SwxError('SWX_BAD_REQUEST', 'cursor: not one this server gave'); }
    }
    const rows = await archive().query<{ node: string; chain: string }>(
      `SELECT node, chain, toString(at) AS at, actor, role, action, target, before, after, reason, prev_hash, record_hash
       FROM audit FINAL WHERE (node, chain) > ({node:String}, toInt64({chain:String})) ORDER BY node, chain LIMIT {limit:UInt32}`,
      { node: String(after.node), chain: String(after.chain), limit });
    const last = rows.at(-1);
    if (last && rows.length === limit) reply.header('x-next-cursor', Buffer.from(JSON.stringify({ node: last.node, chain: Number(last.chain) })).toString('base64url'));
    return rows;
  });
  app.get('/api/audit/verify', {
    config: { access: accessOf('GET', '/api/audit/verify').access },
    schema: { summary: 'Checks every node\'s audit chain: positions, hashes, links' },
  }, async () => verifyAudit(archive()));
}
