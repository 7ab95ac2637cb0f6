// Evidence records: one per state change of a message, published to the evidence stream and archived in ClickHouse.
import { randomUUID } from 'node:crypto';
import type { Envelope } from './envelope.ts';
import type { ErrorCode } from './errors.ts';
import { subjects, type Bus } from './nats/jetstream.ts';

export type EvidenceStage =
  | 'received' // the raw bytes as they arrived, before any check
  | 'verified'
  | 'rejected'
  | 'routed'
  | 'delivered' // with the receiver's signed receipt
  | 'delivery_failed'
  | 'dead_lettered'
  | 'resent'
  | 'duplicate';

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
  node: string;
}

export type EvidenceFacts = Omit<EvidenceRecord, 'id' | 'at' | 'node'> & { at?: string; id?: string };

/** The fields every record about an envelope repeats. */
export function envelopeFacts(envelope: Envelope) {
  const { id: messageId, conversationId, from, to, service, action, protocol, size, sha256 } = envelope;
  return { messageId, conversationId, from, to, service, action, protocol, size, sha256 };
}

/** Publishes the records of one moment as one stream message; the archive actor writes them to ClickHouse. */
export class EvidenceLog {
  constructor(private readonly bus: Bus, private readonly node: string) {}

  /** A record; give `id` when the same record may be published again (a retry), so the stream de-duplicates it. */
  record(facts: EvidenceFacts): EvidenceRecord {
    return { ...facts, id: facts.id ?? randomUUID(), at: facts.at ?? new Date().toISOString(), node: this.node };
  }

  async publish(records: EvidenceRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.bus.js.publish(subjects.evidence, JSON.stringify(records), { msgID: records[0]!.id });
  }
}
