// The console's message search and a message's timeline, over the search tables (dashboards/search.ts): keyset pages
// whose opaque cursor names where the next one starts.
import { z } from 'zod';
import { messageId } from '../engine/admin.ts';
import { SwxError } from '../engine/errors.ts';
import { partnerId, serviceId } from '../engine/registry.ts';
import { accessOf } from './access.ts';
import { archiveOf, cursorText, cursorValue, type ConsoleApp, type ConsoleDeps } from './console-context.ts';
import { keyKinds, maxPageSize, messageStates, messageTimeline, searchMessages, type MessageCursor } from './search.ts';

const instant = z.iso.datetime({ offset: true });
const cursor = z.string().regex(/^[A-Za-z0-9_-]{1,600}$/);

export const messageQuery = z.object({
  key: z.string().min(1).max(1024).optional().describe('any id of the message: message id, conversation, reference-to, file name, SHA-256'),
  keyKind: z.enum(keyKinds).optional().describe('which kind of id `key` is'),
  partner: partnerId.optional().describe('sent or received by this partner'),
  sender: partnerId.optional(),
  receiver: partnerId.optional(),
  service: serviceId.optional(),
  action: z.string().min(1).max(200).optional(),
  protocol: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
  state: z.enum(messageStates).optional(),
  since: instant.optional().describe('received at or after'),
  until: instant.optional().describe('received before'),
  limit: z.coerce.number().int().min(1).max(maxPageSize).default(50),
  cursor: cursor.optional().describe('`next` of the page before'),
});

export const messageSummary = z.object({
  at: z.string(), from: z.string(), messageId: z.string(), to: z.string(), receivers: z.array(z.string()),
  conversationId: z.string(), refTo: z.string(), fileName: z.string(), service: z.string(), action: z.string(), protocol: z.string(),
  size: z.number(), sha256: z.string(), state: z.enum(messageStates), lastStage: z.string(), lastCode: z.string(), lastAt: z.string(),
  delivered: z.array(z.string()), redelivered: z.number(), resent: z.number(),
});

export const timelineEntry = z.object({
  at: z.string(), stage: z.string(), from: z.string(), to: z.string(), protocol: z.string(), code: z.string(), detail: z.string(),
  recordId: z.string(), node: z.string(), chain: z.number(), weak: z.string(),
});

const messageCursor = z.object({ at: z.string().max(40), from: z.string().max(200), messageId: z.string().max(200) });

export function mountMessageRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/api/messages', {
    config: { access: accessOf('GET', '/api/messages').access },
    schema: {
      summary: 'Messages matching a filter, newest first, a page at a time (keyset paging: `next` is the cursor of the page after)',
      querystring: messageQuery,
      response: { 200: z.object({ rows: z.array(messageSummary), next: cursor.optional() }) },
    },
  }, async (request) => {
    const { limit, cursor: after, ...filter } = request.query;
    let from: MessageCursor | undefined;
    if (after !== undefined) {
      const parsed = messageCursor.safeParse(cursorValue(after));
      if (!parsed.success) throw new SwxError('SWX_BAD_REQUEST', 'cursor: not one this server gave');
      from = parsed.data;
    }
    const page = await searchMessages(archiveOf(deps), filter, from, limit);
    return { rows: page.rows, ...(page.next ? { next: cursorText(page.next) } : {}) };
  });

  app.get('/api/messages/:messageId/timeline', {
    config: { access: accessOf('GET', '/api/messages/:messageId/timeline').access },
    schema: {
      summary: 'A message\'s life as one timeline: received, verified, archived, stamped, routed, each delivery with its receipt or error, redeliveries and resends',
      params: z.object({ messageId }),
      querystring: z.object({ from: partnerId.optional().describe('the sender, when two senders used one id') }),
      response: { 200: z.object({ messageId: z.string(), entries: z.array(timelineEntry) }) },
    },
  }, async (request) => {
    const { messageId: id } = request.params;
    const entries = await messageTimeline(archiveOf(deps), id, request.query.from);
    if (entries.length === 0) throw new SwxError('SWX_NOT_FOUND', `no message ${id}${request.query.from ? ` from ${request.query.from}` : ''} in the archive`);
    return { messageId: id, entries };
  });
}
