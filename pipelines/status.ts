// Message status from the evidence archive: what a sender's message became at each receiver, with the receiver's
// signed receipt. Evidence is archived in batches, so a message accepted moments ago may not be in the archive yet:
// then the message stream's tail the archive has not written is looked through (headers only) for its
// de-duplication id, and the message is answered as accepted, not as unknown.
import { DeliverPolicy } from '@nats-io/jetstream';
import type { Envelope } from '../engine/envelope.ts';
import { SwxError, type ErrorCode } from '../engine/errors.ts';
import { openRaw, type Keyring } from '../engine/keyring.ts';
import { streams, type Bus } from '../engine/nats/jetstream.ts';
import { serviceAudience } from '../engine/registry.ts';
import { asSeenBy, type MessageStatus, type Messages, type ReceiverState, type ReceiverStatus } from '../engine/status.ts';
import type { Store } from '../engine/store/index.ts';
import { archiveMessagesActor } from './archive.ts';

/** The stages that say what became of a message at a receiver, and the state each puts it in. */
const receiverStage: Record<string, ReceiverState> = {
  routed: 'routed', delivered: 'delivered', redelivered: 'redelivered', delivery_failed: 'failing', dead_lettered: 'dead_lettered', resent: 'resent',
};
const stages = ['received', 'rejected', ...Object.keys(receiverStage)];

interface Row {
  id: string;
  stage: string;
  at: string;
  to_partner: string;
  service: string;
  action: string;
  conversation_id: string;
  code: string;
  detail: string;
  size: string | number;
  sha256: string;
  raw: string;
  signature: string;
}

// Only a `delivered` record's raw bytes (the receipt) are read: a `received` record's are the message itself.
const statusSql = `SELECT id, stage, toString(at) AS at, to_partner, service, action, conversation_id, code, detail, size, sha256,
       if(stage = 'delivered', raw, '') AS raw, if(stage = 'delivered', signature, '') AS signature
FROM evidence FINAL
WHERE message_id = {id:String} AND from_partner = {from:String} AND stage IN {stages:Array(String)}
ORDER BY at, node, chain`;

/** ClickHouse's `2025-01-02 03:04:05.678` (UTC) as ISO 8601. */
const isoAt = (at: string) => `${at.replace(' ', 'T')}Z`;

/** The accepted envelope's own records are named after its place on the message stream (pipelines/archive.ts). */
const envelopeSeq = (recordId: string) => Number(/^msg:(\d+):received$/.exec(recordId)?.[1] ?? 0);

/**
 * The most unarchived envelopes looked through (their headers, ~100 bytes each) for a message not in the archive yet:
 * a backlog longer than this is an archive far behind its batches, and the answer is to ask again later.
 */
const scanLimit = 10_000;

export class EvidenceMessages implements Messages {
  /** `keyring` opens sealed evidence bytes (the receipts). */
  constructor(private readonly store: Store, private readonly bus: Bus, private readonly options: { keyring?: Keyring } = {}) {}

  async status(from: string, id: string, asker: string): Promise<MessageStatus | undefined> {
    // The floor is read before the archive is asked: whatever it had not written then is on the stream after it.
    const floor = (await this.bus.jsm.consumers.info(streams.messages, archiveMessagesActor)).ack_floor.stream_seq;
    const rows = await this.store.query<Row>(statusSql, { id, from, stages });
    const received = rows.find((row) => row.stage === 'received' && envelopeSeq(row.id) > 0);
    let status: MessageStatus | undefined;
    if (received) {
      status = await this.archived(from, id, received, rows);
    } else {
      const envelope = await this.unarchived(from, id, floor);
      const rejected = rows.filter((row) => row.stage === 'rejected').at(-1);
      status = envelope ? notYetArchived(envelope) : rejected && refused(from, id, rows.find((row) => row.stage === 'received') ?? rejected, rejected);
    }
    return status && asSeenBy(status, asker);
  }

  private async archived(from: string, id: string, received: Row, rows: Row[]): Promise<MessageStatus> {
    const named = serviceAudience(received.service);
    // A message to a topic or channel names its receivers in its envelope: those whose copy is not archived yet wait.
    const receivers = received.to_partner ? [received.to_partner] : (await this.envelope(envelopeSeq(received.id), from, id))?.audience?.receivers ?? [];
    const entries = new Map<string, ReceiverStatus>(receivers.map((to) => [to, { to, state: 'waiting' }]));
    for (const row of rows) {
      const state = receiverStage[row.stage];
      if (!state || !row.to_partner) continue;
      const at = isoAt(row.at);
      const entry = entries.get(row.to_partner) ?? { to: row.to_partner, state: 'waiting' };
      entries.set(row.to_partner, entry);
      if (state === 'routed') {
        entry.routedAt ??= at;
        // Being stored for delivery comes before anything else about the copy, whenever its record was archived.
        if (entry.state === 'waiting') Object.assign(entry, { state, at });
        continue;
      }
      Object.assign(entry, { state, at, code: (row.code || undefined) as ErrorCode | undefined, detail: row.detail || undefined });
      if (row.stage === 'delivered') {
        entry.deliveredAt = at;
        entry.receipt = { raw: openRaw(this.options.keyring, row.raw, row.id), ...(row.signature ? { signature: JSON.parse(row.signature) } : {}) };
      }
    }
    return {
      ...facts(from, id, received),
      ...(named ? { [named.kind]: named.id } : {}),
      state: 'accepted',
      archived: true,
      receivers: [...entries.values()],
    };
  }

  /** The envelope stored at `seq` on the message stream, if it is still there and is this message. */
  private async envelope(seq: number, from: string, id: string): Promise<Envelope | undefined> {
    const stored = await this.bus.jsm.streams.getMessage(streams.messages, { seq }).catch(() => null);
    const envelope = stored ? JSON.parse(Buffer.from(stored.data).toString('utf8')) as Envelope : undefined;
    return envelope?.from === from && envelope.id === id ? envelope : undefined;
  }

  /** The envelope of (from, id) among those on the message stream after `floor`, which the archive has not written yet. */
  private async unarchived(from: string, id: string, floor: number): Promise<Envelope | undefined> {
    const consumer = await this.bus.js.consumers.get(streams.messages, {
      filter_subjects: 'swx.msg.>', deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: floor + 1, headers_only: true,
    });
    let pending = (await consumer.info()).num_pending;
    if (pending > scanLimit) {
      throw new SwxError('SWX_UNAVAILABLE', `the evidence archive is ${pending} messages behind; ask again when it has caught up`, { retryAfterSeconds: 30 });
    }
    // Intake stores a message under its sender and id (pipelines/intake.ts); a receiver's copy adds its receiver.
    const wanted = `${from}/${id}`;
    while (pending > 0) {
      let fetched = 0;
      for await (const msg of await consumer.fetch({ max_messages: Math.min(pending, 1_000), expires: 2_000 })) {
        fetched++;
        pending = msg.info.pending;
        if (msg.headers?.get('Nats-Msg-Id') === wanted) return this.envelope(msg.seq, from, id);
      }
      if (fetched === 0) break;
    }
    return undefined;
  }
}

function facts(from: string, id: string, received: Row) {
  return {
    id, from, service: received.service, action: received.action, conversationId: received.conversation_id,
    receivedAt: isoAt(received.at), size: Number(received.size), sha256: received.sha256,
  };
}

/** A message the hub has stored but not yet archived: each receiver it names is waiting. */
function notYetArchived(envelope: Envelope): MessageStatus {
  const receivers = envelope.to ? [envelope.to] : envelope.audience?.receivers ?? [];
  return {
    id: envelope.id, from: envelope.from, service: envelope.service, action: envelope.action, conversationId: envelope.conversationId,
    receivedAt: envelope.receivedAt, size: envelope.size, sha256: envelope.sha256,
    ...(envelope.audience ? { [envelope.audience.kind]: envelope.audience.id } : {}),
    state: 'accepted',
    archived: false,
    receivers: receivers.map((to) => ({ to, state: 'waiting' })),
  };
}

/** A message refused when it was sent: its sender may ask why; it has no receivers. */
function refused(from: string, id: string, received: Row, rejected: Row): MessageStatus {
  return {
    ...facts(from, id, received), state: 'rejected', archived: true, code: rejected.code as ErrorCode, detail: rejected.detail, receivers: [],
  };
}
