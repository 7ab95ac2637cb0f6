// Message search for the console: by any id, by time, partner, service, protocol and state, with keyset paging over
// the `messages` table (newest first), and a message's whole life as one timeline. Reads the tables of migration
// 0004_message_search; evidence itself only for one message's timeline (its message_id bloom filter finds the rows).
import type { Store } from '../engine/store/index.ts';
import { keyKinds, messageStates, type KeyKind, type MessageState } from './message-terms.ts';

export { keyKinds, messageStates, type KeyKind, type MessageState };

const stateSql = `multiIf(
  sum(rejected) > 0 AND empty(groupUniqArrayArray(receivers)), 'rejected',
  sum(answered) > 0, 'answered',
  sum(query_failed) > 0, 'query_failed',
  notEmpty(groupUniqArrayArray(receivers)) AND hasAll(groupUniqArrayArray(delivered_to), groupUniqArrayArray(receivers)), 'delivered',
  NOT hasAll(groupUniqArrayArray(delivered_to), groupUniqArrayArray(dead_to)), 'dead_lettered',
  NOT hasAll(groupUniqArrayArray(delivered_to), groupUniqArrayArray(failed_to)), 'failing',
  'routed')`;

/** What one partial row of message_state must show for the message to be in a state: a necessary condition, cheap to scan. */
const stateCandidates: Record<MessageState, string> = {
  rejected: 'rejected > 0', answered: 'answered > 0', query_failed: 'query_failed > 0', delivered: 'notEmpty(delivered_to)',
  dead_lettered: 'notEmpty(dead_to)', failing: 'notEmpty(failed_to)', routed: 'records > 0',
};

export interface MessageFilter {
  /** Received at or after (ISO 8601). */
  since?: string;
  /** Received before (ISO 8601). */
  until?: string;
  sender?: string;
  /** The direct receiver, or one of a topic's or channel's receivers. */
  receiver?: string;
  /** Sent or received by this partner. */
  partner?: string;
  service?: string;
  action?: string;
  protocol?: string;
  state?: MessageState;
  /** Any id of the message; `keyKind` narrows which. */
  key?: string;
  keyKind?: KeyKind;
}

/** Where a page ended: the next page starts after this message (keyset paging, never OFFSET). */
export interface MessageCursor { at: string; from: string; messageId: string }

export interface MessageSummary {
  at: string;
  from: string;
  messageId: string;
  /** The direct receiver; '' for a message to a topic or channel (see `receivers`). */
  to: string;
  receivers: string[];
  conversationId: string;
  refTo: string;
  fileName: string;
  service: string;
  action: string;
  protocol: string;
  size: number;
  sha256: string;
  state: MessageState;
  lastStage: string;
  lastCode: string;
  lastAt: string;
  delivered: string[];
  redelivered: number;
  resent: number;
}

export interface MessagePage { rows: MessageSummary[]; next?: MessageCursor }

export const maxPageSize = 1000;

const time = (iso: string) => iso.replace('T', ' ').replace('Z', '');

/** One page of messages matching `filter`, newest first, after `cursor` when given. */
export async function searchMessages(store: Store, filter: MessageFilter = {}, cursor?: MessageCursor, limit = 50): Promise<MessagePage> {
  if (!Number.isInteger(limit) || limit < 1 || limit > maxPageSize) throw new RangeError(`limit must be 1-${maxPageSize}`);
  const where: string[] = [];
  const params: Record<string, unknown> = { limit };
  if (filter.since) { where.push("at >= {since:DateTime64(3, 'UTC')}"); params.since = time(filter.since); }
  if (filter.until) { where.push("at < {until:DateTime64(3, 'UTC')}"); params.until = time(filter.until); }
  for (const [field, column] of [['sender', 'from_partner'], ['service', 'service'], ['action', 'action'], ['protocol', 'protocol']] as const) {
    if (filter[field] !== undefined) { where.push(`${column} = {${field}:String}`); params[field] = filter[field]; }
  }
  // A topic's or channel's receivers are known from its routed copies (message_state), not from the message row.
  const receivedBy = (param: string) => `to_partner = {${param}:String} OR (to_partner = '' AND (from_partner, message_id) IN
      (SELECT from_partner, message_id FROM message_state WHERE has(receivers, {${param}:String})))`;
  if (filter.receiver !== undefined) {
    where.push(`(${receivedBy('receiver')})`);
    params.receiver = filter.receiver;
  }
  if (filter.partner !== undefined) {
    where.push(`(from_partner = {partner:String} OR ${receivedBy('partner')})`);
    params.partner = filter.partner;
  }
  if (filter.key !== undefined) {
    where.push(`(at, from_partner, message_id) IN (SELECT at, from_partner, message_id FROM message_keys WHERE key = {key:String}${filter.keyKind ? ' AND key_kind = {keyKind:String}' : ''})`);
    params.key = filter.key;
    if (filter.keyKind) params.keyKind = filter.keyKind;
  }
  if (filter.state !== undefined) {
    // The state is judged over all of a message's partial rows; a column only one state needs narrows which messages
    // are judged at all (a WHERE on the judged rows themselves would judge from part of the records).
    where.push(`(from_partner, message_id) IN (SELECT from_partner, message_id FROM message_state
      WHERE (from_partner, message_id) IN (SELECT from_partner, message_id FROM message_state WHERE ${stateCandidates[filter.state]})
      GROUP BY from_partner, message_id HAVING ${stateSql} = {state:String})`);
    params.state = filter.state;
  }
  if (cursor) {
    // The bare `at <=` lets the primary key skip what the tuple comparison alone might not.
    where.push("at <= {cursorAt:DateTime64(3, 'UTC')} AND (at, from_partner, message_id) < ({cursorAt:DateTime64(3, 'UTC')}, {cursorFrom:String}, {cursorId:String})");
    Object.assign(params, { cursorAt: time(cursor.at), cursorFrom: cursor.from, cursorId: cursor.messageId });
  }
  const rows = await store.query<MessageRow>(
    `SELECT toString(messages.at) AS at_text, from_partner, message_id, to_partner, conversation_id, ref_to, file_name, service, action, protocol, size, sha256, outcome, code
     FROM messages ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY messages.at DESC, from_partner DESC, message_id DESC
     LIMIT {limit:UInt32}`,
    params);
  // A row stored twice (before its parts merged) sorts next to its twin: kept once here, where it costs nothing, rather
  // than by LIMIT 1 BY, which would keep ClickHouse from reading in key order and stopping at the limit.
  const unique = rows.filter((row, i) => i === 0 || row.at_text !== rows[i - 1]!.at_text || row.from_partner !== rows[i - 1]!.from_partner || row.message_id !== rows[i - 1]!.message_id);
  const states = await messageStatesOf(store, unique);
  const page = unique.map((row) => summary(row, states.get(`${row.from_partner}\u0000${row.message_id}`)));
  const last = rows.at(-1);
  return { rows: page, ...(last && rows.length === limit ? { next: { at: isoTime(last.at_text), from: last.from_partner, messageId: last.message_id } } : {}) };
}

/** Every message one id names, of any kind (a message id may be used by two senders, a conversation by many messages). */
export async function findMessages(store: Store, key: string, keyKind?: KeyKind, limit = 100): Promise<MessageSummary[]> {
  return (await searchMessages(store, { key, ...(keyKind ? { keyKind } : {}) }, undefined, limit)).rows;
}

interface MessageRow {
  at_text: string; from_partner: string; message_id: string; to_partner: string; conversation_id: string; ref_to: string; file_name: string;
  service: string; action: string; protocol: string; size: number; sha256: string; outcome: string; code: string;
}

interface StateRow {
  from_partner: string; message_id: string; state: MessageState; final_stage: string; final_code: string; final_at: string;
  all_receivers: string[]; all_delivered: string[]; redeliveries: number; resends: number;
}

async function messageStatesOf(store: Store, rows: MessageRow[]): Promise<Map<string, StateRow>> {
  if (rows.length === 0) return new Map();
  const states = await store.query<StateRow>(
    `SELECT from_partner, message_id, ${stateSql} AS state, argMaxMerge(last_stage) AS final_stage, argMaxMerge(last_code) AS final_code,
       toString(max(last_at)) AS final_at, groupUniqArrayArray(receivers) AS all_receivers, groupUniqArrayArray(delivered_to) AS all_delivered,
       sum(redelivered) AS redeliveries, sum(resent) AS resends
     FROM message_state
     WHERE from_partner IN {froms:Array(String)} AND message_id IN {ids:Array(String)}
       AND has(arrayZip({froms:Array(String)}, {ids:Array(String)}), (from_partner, message_id))
     GROUP BY from_partner, message_id`,
    // Two arrays rather than one of tuples: chDB's parameter binder takes no tuples; the IN lists let the key find the rows.
    { froms: rows.map((row) => row.from_partner), ids: rows.map((row) => row.message_id) });
  return new Map(states.map((state) => [`${state.from_partner}\u0000${state.message_id}`, state]));
}

function summary(row: MessageRow, state: StateRow | undefined): MessageSummary {
  const receivers = state?.all_receivers.length ? [...state.all_receivers].sort() : row.to_partner ? [row.to_partner] : [];
  return {
    at: isoTime(row.at_text), from: row.from_partner, messageId: row.message_id, to: row.to_partner, receivers,
    conversationId: row.conversation_id, refTo: row.ref_to, fileName: row.file_name,
    service: row.service, action: row.action, protocol: row.protocol, size: Number(row.size), sha256: row.sha256,
    state: state?.state ?? (row.outcome === 'rejected' ? 'rejected' : 'routed'),
    lastStage: state?.final_stage ?? row.outcome, lastCode: state?.final_code || row.code, lastAt: isoTime(state?.final_at ?? row.at_text),
    delivered: [...(state?.all_delivered ?? [])].sort(), redelivered: Number(state?.redeliveries ?? 0), resent: Number(state?.resends ?? 0),
  };
}

/** ClickHouse's `2026-01-02 03:04:05.678` as ISO 8601. */
export function isoTime(clickhouse: string): string {
  return `${clickhouse.replace(' ', 'T')}Z`;
}

// ---- timeline ---------------------------------------------------------------------------------------------------

export interface TimelineEntry {
  at: string;
  /** An evidence stage, or `archived` (written to ClickHouse in a Merkle block) and `stamped` (its RFC 3161 time). */
  stage: string;
  from: string;
  to: string;
  protocol: string;
  code: string;
  detail: string;
  /** The evidence record's id; for `archived` and `stamped`, the block's. */
  recordId: string;
  node: string;
  chain: number;
  /** Legacy algorithms the record's signature used, as an old agreement allows (RSA-SHA1, SHA-1): '' when none. A
   *  delivery's is its receiver's Acknowledgment's, made in the same agreement as the hub's own signature. */
  weak: string;
}

/** The order of stages that share one instant (received, verified and routed carry the message's receipt time). */
const stageOrder = ['received', 'verified', 'archived', 'stamped', 'rejected', 'duplicate', 'routed', 'resent', 'delivery_failed', 'dead_lettered', 'delivered', 'redelivered', 'answered', 'query_failed'];

/**
 * Every record of a message, in order: received, verified, archived (and stamped), routed, each delivery with its
 * receipt or error, redeliveries and resends, across every protocol it travelled. `from` narrows to one sender's message.
 */
export async function messageTimeline(store: Store, messageId: string, from?: string): Promise<TimelineEntry[]> {
  const params = { messageId, ...(from !== undefined ? { from } : {}) };
  const fromSql = from !== undefined ? ' AND from_partner = {from:String}' : '';
  // A signature in legacy algorithms lists them (`weak`): a partner's message, or its Acknowledgment of the hub's.
  const records = await store.query<{ at: string; stage: string; from_partner: string; to_partner: string; protocol: string; code: string; detail: string; id: string; node: string; chain: number; batch_id: string; weak: string[] }>(
    `SELECT toString(at) AS at, stage, from_partner, to_partner, protocol, code, detail, id, node, chain, batch_id,
       JSONExtract(signature, 'weak', 'Array(String)') AS weak
     FROM evidence FINAL WHERE message_id = {messageId:String}${fromSql} ORDER BY at, node, chain`, params);
  const entries: TimelineEntry[] = records.map((r) => ({
    at: isoTime(r.at), stage: r.stage, from: r.from_partner, to: r.to_partner, protocol: r.protocol, code: r.code, detail: r.detail,
    recordId: r.id, node: r.node, chain: Number(r.chain), weak: r.weak.join(', '),
  }));
  // The received record's Merkle block says when the message was archived and time-stamped.
  const received = records.find((r) => r.stage === 'received' && r.batch_id !== '');
  if (received) {
    const [block] = await store.query<{ written_at: string; gen_time: string; tsa: string }>(
      "SELECT toString(written_at) AS written_at, toString(gen_time) AS gen_time, tsa FROM evidence_batches FINAL WHERE block_id = {block:String} LIMIT 1",
      { block: received.batch_id });
    if (block) {
      const at = (t: string) => (t.startsWith('1970-') ? undefined : isoTime(t));
      const base = { from: received.from_partner, to: received.to_partner, protocol: received.protocol, code: '', recordId: received.batch_id, node: received.node, chain: Number(received.chain), weak: '' };
      const written = at(block.written_at);
      const stamped = at(block.gen_time);
      if (written) entries.push({ ...base, at: written, stage: 'archived', detail: `Merkle block ${received.batch_id}` });
      if (stamped) entries.push({ ...base, at: stamped, stage: 'stamped', detail: `RFC 3161 time-stamp by ${block.tsa}` });
    }
  }
  const rank = (stage: string) => { const i = stageOrder.indexOf(stage); return i < 0 ? stageOrder.length : i; };
  return entries.sort((a, b) => a.at.localeCompare(b.at) || rank(a.stage) - rank(b.stage) || a.chain - b.chain);
}

/**
 * Receivers still without a receipt (or a dead letter) for messages received between `since` and `before`: how many
 * each is waiting on. A message routed and never delivered shows here before anyone asks after it.
 */
export async function awaitingReceipt(store: Store, since: string, before: string): Promise<{ receiver: string; waiting: number }[]> {
  const rows = await store.query<{ receiver: string; waiting: string }>(
    `SELECT receiver, toString(count()) AS waiting FROM (
       SELECT groupUniqArrayArray(receivers) AS all_receivers, groupUniqArrayArray(delivered_to) AS all_delivered, groupUniqArrayArray(dead_to) AS all_dead
       FROM message_state
       WHERE (from_partner, message_id) IN (SELECT from_partner, message_id FROM messages
         WHERE at >= {since:DateTime64(3, 'UTC')} AND at < {before:DateTime64(3, 'UTC')})
       GROUP BY from_partner, message_id)
     ARRAY JOIN arrayFilter(r -> NOT has(all_delivered, r) AND NOT has(all_dead, r), all_receivers) AS receiver
     GROUP BY receiver ORDER BY count() DESC, receiver`,
    { since: time(since), before: time(before) });
  return rows.map((row) => ({ receiver: row.receiver, waiting: Number(row.waiting) }));
}
