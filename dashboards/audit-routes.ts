// The audit log as auditors read it: its entries in chain order, paged, and the check of every node's chain. Served
// by the hub process that holds the store, where the console's changes are written (app/hub.ts).
import { z } from 'zod';
import { accessOf } from './access.ts';
import { verifyAudit } from './audit.ts';
import { archiveOf, cursorText, cursorValue, type ConsoleApp, type ConsoleDeps } from './console-context.ts';

const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(1_000),
  /** The x-next-cursor of the page before. */
  cursor: z.string().regex(/^[A-Za-z0-9_-]{1,400}$/).optional(),
});

export function mountAuditRoutes(app: ConsoleApp, deps: Pick<ConsoleDeps, 'store'>): void {
  const archive = () => archiveOf(deps);
  app.get('/api/audit', {
    config: { access: accessOf('GET', '/api/audit').access },
    schema: { summary: 'Audit entries in chain order (node, position); before and after are JSON text', querystring: auditQuery },
  }, async (request, reply) => {
    const { limit, cursor } = request.query;
    const after = (cursor ? cursorValue(cursor) : { node: '', chain: -1 }) as { node: unknown; chain: unknown };
    const rows = await archive().query<{ node: string; chain: string }>(
      `SELECT node, chain, toString(at) AS at, actor, role, action, target, before, after, reason, prev_hash, record_hash
       FROM audit FINAL WHERE (node, chain) > ({node:String}, toInt64({chain:String})) ORDER BY node, chain LIMIT {limit:UInt32}`,
      { node: String(after.node), chain: String(after.chain), limit });
    const last = rows.at(-1);
    if (last && rows.length === limit) reply.header('x-next-cursor', cursorText({ node: last.node, chain: Number(last.chain) }));
    return rows;
  });
  app.get('/api/audit/verify', {
    config: { access: accessOf('GET', '/api/audit/verify').access },
    schema: { summary: 'Checks every node\'s audit chain: positions, hashes, links' },
  }, async () => verifyAudit(archive()));
}
