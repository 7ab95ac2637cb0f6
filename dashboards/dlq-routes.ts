// Resending dead letters in bulk: a preview of what a filter matches, then the resend of all of it with a required
// reason, keeping or renewing each message id, audited as one change.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { messageId } from '../engine/admin.ts';
import type { DeadLetter } from '../engine/deadletters.ts';
import { partnerId } from '../engine/registry.ts';
import { accessOf } from './access.ts';
import { auditChange, type ConsoleApp, type ConsoleDeps } from './console-context.ts';

/** Dead letters looked at per preview or resend, oldest first: a bigger backlog is resent a batch at a time. */
export const dlqScanLimit = 10_000;

const filter = z.object({
  to: partnerId.optional(), from: partnerId.optional(), service: z.string().max(64).optional(),
  code: z.string().regex(/^[A-Z0-9_]{1,64}$/).optional(), actor: z.string().max(200).optional(), messageId: messageId.optional(),
  since: z.iso.datetime({ offset: true }).optional().describe('dead-lettered at or after'),
  until: z.iso.datetime({ offset: true }).optional().describe('dead-lettered before'),
}).strict();
type Filter = z.infer<typeof filter>;

const letter = z.object({
  seq: z.number(), at: z.string(), actor: z.string(), code: z.string(), reason: z.string(), subject: z.string(),
  messageId: z.string().optional(), from: z.string().optional(), to: z.string().optional(), service: z.string().optional(),
});

const matches = (f: Filter) => (l: DeadLetter) =>
  (f.to === undefined || l.to === f.to) && (f.from === undefined || l.from === f.from) && (f.service === undefined || l.service === f.service)
  && (f.code === undefined || l.code === f.code) && (f.actor === undefined || l.actor === f.actor) && (f.messageId === undefined || l.messageId === f.messageId)
  && (f.since === undefined || Date.parse(l.at) >= Date.parse(f.since)) && (f.until === undefined || Date.parse(l.at) < Date.parse(f.until));

export function mountDlqRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  const access = (url: string) => ({ access: accessOf('POST', url).access });
  const matching = async (f: Filter) => {
    const scanned = await deps.deadLetters.list(dlqScanLimit);
    return { scanned: scanned.length, matched: scanned.filter(matches(f)) };
  };

  app.post('/api/dlq/preview', {
    config: access('/api/dlq/preview'),
    schema: {
      summary: `What a filter matches on the dead-letter stream (the oldest ${dlqScanLimit} looked at): how many, and the first 20`,
      body: z.object({ filter }).strict(),
      response: { 200: z.object({ count: z.number(), scanned: z.number(), sample: z.array(letter) }) },
    },
  }, async (request) => {
    const { scanned, matched } = await matching(request.body.filter);
    return { count: matched.length, scanned, sample: matched.slice(0, 20) };
  });

  app.post('/api/dlq/resend', {
    config: access('/api/dlq/resend'),
    schema: {
      summary: 'Resends every dead letter a filter matches, with a reason; messageId keep (the same id) or renew (a fresh one each, in the same conversation)',
      body: z.object({ filter, reason: z.string().trim().min(3).max(1_000), messageId: z.enum(['keep', 'renew']).default('keep') }).strict(),
      response: { 200: z.object({ resent: z.number(), letters: z.array(z.object({ seq: z.number(), messageId: z.string().optional(), renewedFrom: z.string().optional() })) }) },
    },
  }, async (request) => {
    const { filter: f, reason, messageId: ids } = request.body;
    const { matched } = await matching(f);
    const letters = [];
    for (const found of matched) {
      const renewId = ids === 'renew' && found.messageId ? randomUUID() : undefined;
      const sent = await deps.deadLetters.resend(found.seq, { ...(renewId ? { renewId } : {}), reason });
      letters.push({ seq: found.seq, ...(sent.messageId ? { messageId: sent.messageId } : {}), ...(renewId ? { renewedFrom: found.messageId } : {}) });
    }
    await auditChange(deps, request, 'dlq', { filter: f, matched: matched.length }, { resent: letters.length, messageId: ids, reason, letters });
    return { resent: letters.length, letters };
  });
}
