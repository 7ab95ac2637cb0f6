// archive: writes evidence to ClickHouse in batches, extending the hash chain, and acks a batch only once its
// insert returned. Two sources feed it: the evidence stream (rejections, duplicates, deliveries, dead letters)
// and the message stream itself, whose every envelope is the evidence that a message was received, verified
// and routed — written atomically with the publish, so a crash cannot separate a message from that evidence.
// In the embedded default exactly one process (the chDB owner's parent) runs it; with a ClickHouse server several
// may, each extending its own chain (records carry the node that wrote them).
import { setImmediate } from 'node:timers/promises';
import { bufferTime, concatMap, filter, from, mergeMap, type OperatorFunction } from 'rxjs';
import { startActor, type Actor, type Delivery, type Settlement } from '../engine/actor.ts';
import type { Envelope } from '../engine/envelope.ts';
import { envelopeFacts, flaggedDetail, evidenceRow, type EvidenceRecord } from '../engine/evidence.ts';
import { SwxError } from '../engine/errors.ts';
import { log } from '../engine/log.ts';
import { messagesTotal } from '../engine/metrics.ts';
import { ensureConsumer, resentFromHeader, streams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import { sealRaw, type Keyring } from '../engine/keyring.ts';
import type { Store } from '../engine/store/index.ts';
import { merkleTree } from '../engine/trust/index.ts';
import type { Block, Stamper } from './stamp.ts';

/** Records per stream message are numbered inside the stream sequence: seq = streamSeq * 256 + index. */
const recordsPerMessage = 256;
/** Rows built between yields to the event loop, which meanwhile takes traffic. */
const rowsPerSlice = 50;

/** The archive's durable consumer of the message stream: its acknowledged floor is how far envelopes are archived. */
export const archiveMessagesActor = 'archive-messages';

export interface ArchiveOptions { batchSize: number; batchMs: number; node: string; keyring?: Keyring }

/** The stream a record came from, named with the stream's creation time: a recreated stream restarts its sequences. */
type Source = string;

/**
 * The records a stored envelope stands for: an accepted message is received, verified and routed (to its receiver, or
 * to its topic's or channel's receivers); a receiver's copy of a message to a topic or channel is routed to it.
 */
export function envelopeRecords(envelope: Envelope, streamSeq: number, subject: string, resentFrom: string | undefined, node: string): EvidenceRecord[] {
  const facts = { ...envelopeFacts(envelope), node };
  const signature = envelope.signature ? JSON.stringify(envelope.signature) : undefined;
  const { audience } = envelope;
  const where = audience && !envelope.to ? `${audience.kind} ${audience.id}: ${audience.receivers.join(', ') || 'no receivers'}` : subject;
  const routed: EvidenceRecord = {
    ...facts, id: `msg:${streamSeq}:routed`, stage: 'routed', at: new Date().toISOString(),
    detail: resentFrom ? `resent from ${resentFrom} as ${subject} seq ${streamSeq}` : `${where} seq ${streamSeq}`,
  };
  if (resentFrom || (audience && envelope.to)) return [routed];
  return [
    { ...facts, id: `msg:${streamSeq}:received`, stage: 'received', at: envelope.receivedAt, raw: envelope.payload, rawRef: envelope.payloadRef, signature, ...flaggedDetail(envelope.flags) },
    // What the verify stage checked: the payload's own signature when it has one, else the transport signature.
    { ...facts, id: `msg:${streamSeq}:verified`, stage: 'verified', at: envelope.receivedAt, signature: envelope.payloadSignature ? JSON.stringify(envelope.payloadSignature) : signature },
    { ...routed, at: envelope.receivedAt },
  ];
}

interface Item { source: Source; delivery: Delivery<EvidenceRecord[]> }

/**
 * Makes one archive write a block: a Merkle tree over the records' hashes (hex), whose root the stamper time-stamps,
 * and each row (the JSON object of its columns) given its block id and its inclusion proof, as the store takes it.
 */
export function blockLines(rows: readonly string[], recordHashes: readonly string[], blockId: string): { lines: string[]; root: Buffer } {
  if (rows.length !== recordHashes.length) throw new SwxError('SWX_INTERNAL', `a block of ${rows.length} rows has ${recordHashes.length} record hashes`);
  const tree = merkleTree(recordHashes);
  const proofs = tree.encodedProofs();
  const batchId = JSON.stringify(blockId);
  // The block's columns are appended to the row's JSON rather than spread into a copy of the row: the copy, and
  // JSON's character scan of a proof that never needs escaping (digits, '/', ':', base64url), cost more than the tree.
  const lines = rows.map((row, index) => `${row.slice(0, -1)},"batch_id":${batchId},"proof":"${proofs[index]!}"}`);
  return { lines, root: tree.root };
}

/** One writer for both sources: batches go in one at a time, so the hash chain is a single sequence. */
class ChainWriter {
  private chain = 0;
  private prevHash = '';
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly node: string,
    private readonly onBlock: (block: Block) => void,
    /** Seals the raw bytes of every record (AES-256-GCM); the hash chain covers what is stored. */
    private readonly keyring?: Keyring,
  ) {}

  async init(): Promise<void> {
    const [last] = await this.store.query<{ chain: number; record_hash: string }>(
      'SELECT chain, record_hash FROM evidence WHERE node = {node:String} ORDER BY chain DESC LIMIT 1', { node: this.node });
    this.chain = last ? Number(last.chain) + 1 : 0;
    this.prevHash = last?.record_hash ?? '';
  }

  write(items: Item[]): Promise<void> {
    const run = this.queue.then(() => this.writeNow(items));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Seqs of redelivered records that an earlier insert already stored (it succeeded, the ack was lost). */
  private async alreadyStored(items: Item[]): Promise<Set<string>> {
    const candidates = items.filter(({ delivery }) => delivery.attempt > 1);
    if (candidates.length === 0) return new Set();
    const seqs = candidates.flatMap(({ delivery }) => delivery.body.map((_, i) => delivery.msg.seq * recordsPerMessage + i));
    const rows = await this.store.query<{ stream: string; seq: number }>(
      'SELECT stream, seq FROM evidence WHERE stream IN {streams:Array(String)} AND seq IN {seqs:Array(UInt64)}',
      { seqs, streams: [...new Set(candidates.map((item) => item.source))] });
    return new Set(rows.map((row) => `${row.stream}:${row.seq}`));
  }

  private async writeNow(items: Item[]): Promise<void> {
    const stored = await this.alreadyStored(items);
    const rows: string[] = [];
    const hashes: string[] = [];
    const firstChain = this.chain;
    let prevHash = this.prevHash;
    for (const { source, delivery } of items) {
      for (const [index, record] of delivery.body.entries()) {
        const seq = delivery.msg.seq * recordsPerMessage + index;
        if (stored.has(`${source}:${seq}`)) continue;
        const sealed = { ...record, raw: sealRaw(this.keyring, record.raw ?? '', record.id) };
        const { row, hash } = evidenceRow(sealed, source, seq, firstChain + rows.length, prevHash);
        prevHash = hash;
        rows.push(JSON.stringify(row));
        hashes.push(hash);
        // A row costs ~50 µs: a second's block built in one go held queries up for 15-30 ms.
        if (rows.length % rowsPerSlice === 0) await setImmediate();
      }
    }
    if (rows.length === 0) return;
    const blockId = `${this.node}:${firstChain}`;
    const { lines, root } = blockLines(rows, hashes, blockId);
    await this.store.insert('evidence', lines);
    this.chain = firstChain + rows.length;
    this.prevHash = prevHash;
    this.onBlock({ blockId, node: this.node, firstChain, lastChain: this.chain - 1, records: rows.length, root, writtenAt: new Date() });
    messagesTotal.inc({ stage: 'archive', outcome: 'stored', code: '' }, rows.length);
  }
}

function batching(source: Source, writer: ChainWriter, options: ArchiveOptions): OperatorFunction<Delivery<EvidenceRecord[]>, Settlement<EvidenceRecord[]>> {
  return (deliveries) => deliveries.pipe(
    bufferTime(options.batchMs, null, options.batchSize),
    filter((batch) => batch.length > 0),
    concatMap((batch) => from(writer.write(batch.sort((a, b) => a.msg.seq - b.msg.seq).map((delivery) => ({ source, delivery })))
      .then(() => batch.map((delivery) => ({ delivery, verdict: { kind: 'ack' } as const })))
      .catch((error) => {
        log.error({ err: error, size: batch.length, source }, 'evidence batch not archived; retrying');
        return batch.map((delivery) => ({ delivery, verdict: { kind: 'retry', reason: String(error), transient: true, delayMs: 2_000 } as const }));
      }))),
    mergeMap((settlements) => from(settlements)),
  );
}

export async function startArchive(bus: Bus, store: Store, options: ArchiveOptions, stamper: Stamper): Promise<Actor[]> {
  const writer = new ChainWriter(store, options.node, (block) => stamper.add(block), options.keyring);
  await writer.init();
  const source = async (stream: string) => `${stream}@${(await bus.jsm.streams.info(stream)).created}`;
  const [evidenceSource, messagesSource] = [await source(streams.evidence), await source(streams.messages)];
  // A batch held by a hub that died comes back after the ack wait; an insert takes well under a second.
  const consumer = { ack_wait: 20_000_000_000, max_deliver: -1, max_ack_pending: options.batchSize * 4 };
  await ensureConsumer(bus.jsm, streams.evidence, { durable_name: 'archive', filter_subject: subjects.evidence, ...consumer });
  await ensureConsumer(bus.jsm, streams.messages, { durable_name: archiveMessagesActor, filter_subject: 'swx.msg.>', ...consumer });
  const common = { maxInFlight: options.batchSize * 2, backoffMs: [2_000], maxAttempts: Number.MAX_SAFE_INTEGER };
  const evidence = await startActor<EvidenceRecord[]>(bus, {
    name: 'archive',
    stream: streams.evidence,
    filterSubject: subjects.evidence,
    decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')) as EvidenceRecord[],
    process: batching(evidenceSource, writer, options),
    ...common,
  });
  const messages = await startActor<EvidenceRecord[]>(bus, {
    name: archiveMessagesActor,
    stream: streams.messages,
    filterSubject: 'swx.msg.>',
    decode: (data, msg) => envelopeRecords(JSON.parse(Buffer.from(data).toString('utf8')) as Envelope, msg.seq, msg.subject, msg.headers?.get(resentFromHeader) || undefined, options.node),
    process: batching(messagesSource, writer, options),
    ...common,
  });
  return [evidence, messages];
}
