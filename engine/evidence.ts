// Evidence records: one per state change of a message, published to the evidence stream and archived in ClickHouse.
import { hash, randomUUID } from 'node:crypto';
import type { Envelope } from './envelope.ts';
import type { ErrorCode } from './errors.ts';
import { subjects, type Bus } from './nats/jetstream.ts';

/** Every stage a record can have, with what it proves: the archive, `swx evidence list --stage` and the README use these. */
export const evidenceStages = {
  received: 'the raw bytes as they arrived, before any check',
  verified: 'the signature that was checked',
  rejected: 'a refusal, with its code',
  routed: 'stored for delivery to its receiver',
  delivered: 'the receiver\'s first signed receipt the hub holds for the message',
  redelivered: 'a repeat of a delivered message (delivery is at least once), with the receiver\'s receipt for it',
  delivery_failed: 'the receiver refused it; it is retried',
  dead_lettered: 'given up, with the reason',
  resent: 'put back for delivery by an operator: from a dead letter, or a channel\'s items for one requester',
  duplicate: 'the same id sent again by its sender; not delivered again',
  answered: 'a query\'s verified answer from its provider, with the provider\'s signature',
  query_failed: 'a query the provider did not answer in time, or answered wrongly',
  refused_unauthenticated: 'the requests from one address in one minute refused before a registered certificate named their sender, counted',
} as const;

export type EvidenceStage = keyof typeof evidenceStages;

export interface EvidenceRecord {
  /** Unique per record; the first record's id is the Nats-Msg-Id of their publish. */
  id: string;
  messageId: string;
  conversationId: string;
  stage: EvidenceStage;
  at: string;
  from: string;
  to: string;
  service: string;
  action: string;
  protocol: string;
  code?: ErrorCode;
  detail?: string;
  size?: number;
  sha256?: string;
  /** Base64 of the bytes this record proves: the request as received, or the receipt. */
  raw?: string;
  rawRef?: string;
  /** JSON of the signature information checked at this stage. */
  signature?: string;
  /** The message this record is about referred to this one (Swx-Ref-To): for search, outside the hash (see evidenceRow). */
  refTo?: string;
  /** When the hub received the message this record is about: for latency, outside the hash (see evidenceRow). */
  receivedAt?: string;
  node: string;
}

export type EvidenceFacts = Omit<EvidenceRecord, 'id' | 'at' | 'node'> & { at?: string; id?: string };

/** The detail of a received record whose connection was flagged (Envelope.flags). */
export const flaggedDetail = (flags: readonly string[] | undefined) => (flags?.length ? { detail: `flagged: ${flags.join(', ')}` } : {});

/** The fields every record about an envelope repeats. */
export function envelopeFacts(envelope: Envelope) {
  const { id: messageId, conversationId, from, to, service, action, protocol, size, sha256, receivedAt } = envelope;
  return { messageId, conversationId, from, to, service, action, protocol, size, sha256, receivedAt, ...(envelope.refToMessageId ? { refTo: envelope.refToMessageId } : {}) };
}

/** The fields of a record that a later record about the same message repeats. */
export function sameMessage(record: EvidenceRecord) {
  const { messageId, conversationId, from, to, service, action, protocol, size, sha256 } = record;
  return { messageId, conversationId, from, to, service, action, protocol, size, sha256, ...(record.refTo ? { refTo: record.refTo } : {}), ...(record.receivedAt ? { receivedAt: record.receivedAt } : {}) };
}

/** Publishes the records of one moment as one stream message; the archive actor writes them to ClickHouse. */
export class EvidenceLog {
  constructor(private readonly bus: Bus, private readonly node: string) {}

  /** A record; give `id` when the same record may be published again (a retry), so the stream de-duplicates it. */
  record(facts: EvidenceFacts): EvidenceRecord {
    return { ...facts, id: facts.id ?? randomUUID(), at: facts.at ?? new Date().toISOString(), node: this.node };
  }

  /**
   * Publishes records as one stream message, de-duplicated by the first record's id or by `messageId` when given.
   * Resolves false when the stream already held that id (within its duplicate window), so nothing was added.
   */
  async publish(records: EvidenceRecord[], messageId?: string): Promise<boolean> {
    if (records.length === 0) return true;
    const ack = await this.bus.js.publish(subjects.evidence, JSON.stringify(records), { msgID: messageId ?? records[0]!.id });
    return !ack.duplicate;
  }
}

/** The evidence time-stamping backlog of the process that archives (pipelines/stamp.ts), as operators see it. */
export interface StampHealth {
  unstampedRecords: number;
  oldestUnstampedSeconds: number;
  failingSince?: string;
  lastError?: string;
  tsa: string;
}

/** The ClickHouse columns a record's hash covers, in the order they are hashed; record_hash, batch_id and proof follow. */
export const hashedColumns = [
  'stream', 'seq', 'chain', 'id', 'message_id', 'conversation_id', 'stage', 'at', 'from_partner', 'to_partner', 'service', 'action',
  'protocol', 'code', 'detail', 'size', 'sha256', 'raw', 'raw_ref', 'signature', 'node', 'prev_hash',
] as const;

export type HashedRow = Record<(typeof hashedColumns)[number], string | number>;

/** SHA-256 (hex) of prev_hash followed by the JSON of the hashed columns in their order: the link in the chain. */
export function recordHash(row: HashedRow): string {
  const ordered = Object.fromEntries(hashedColumns.map((column) => [column, row[column]]));
  return hash('sha256', `${row.prev_hash}${JSON.stringify(ordered)}`, 'hex');
}

/** Columns a row carries beside the hashed ones: facts of the message its hashed records prove, kept for search and statistics. */
export interface SearchColumns { ref_to?: string; received_at?: string }

const clickhouseTime = (iso: string) => iso.replace('T', ' ').replace('Z', '');

/**
 * The row a record is archived as: `source` is the stream it came from, `seq` its position there, `chain` in the hash
 * chain. ref_to and received_at are left out of the hash, so that rows written before them still verify.
 */
export function evidenceRow(record: EvidenceRecord, source: string, seq: number, chain: number, prevHash: string): { row: HashedRow & SearchColumns & { record_hash: string }; hash: string } {
  const row: HashedRow = {
    stream: source,
    seq,
    chain,
    id: record.id,
    message_id: record.messageId,
    conversation_id: record.conversationId,
    stage: record.stage,
    at: clickhouseTime(record.at),
    from_partner: record.from,
    to_partner: record.to,
    service: record.service,
    action: record.action,
    protocol: record.protocol,
    code: record.code ?? '',
    detail: record.detail ?? '',
    size: record.size ?? 0,
    sha256: record.sha256 ?? '',
    raw: record.raw ?? '',
    raw_ref: record.rawRef ?? '',
    signature: record.signature ?? '',
    node: record.node,
    prev_hash: prevHash,
  };
  const recordHashHex = recordHash(row);
  const search: SearchColumns = {
    ...(record.refTo ? { ref_to: record.refTo } : {}),
    ...(record.receivedAt ? { received_at: clickhouseTime(record.receivedAt) } : {}),
  };
  return { row: { ...row, ...search, record_hash: recordHashHex }, hash: recordHashHex };
}
