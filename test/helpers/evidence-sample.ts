// Evidence as the hub archives it, for the dashboards' tests: the records of whole message lives (received, verified,
// routed, delivery failures, dead letters, receipts, repeats, rejections), chained with engine/evidence.ts's
// evidenceRow exactly as the archive does, so the search and statistics views see what production writes.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evidenceRow, type EvidenceRecord, type EvidenceStage } from '../../engine/evidence.ts';
import { openStore, type Store } from '../../engine/store/index.ts';

export interface SampleMessage {
  id: string;
  from: string;
  /** One receiver, or several for a message to a topic or channel (its `to` is then ''). */
  receivers: string[];
  topic?: boolean;
  service: string;
  action?: string;
  protocol: string;
  receivedAt: Date;
  conversationId?: string;
  refTo?: string;
  fileName?: string;
  size?: number;
  /** What happens to every receiver's copy; `rejected` refuses the submission itself. */
  outcome: 'delivered' | 'failed-then-delivered' | 'dead_lettered' | 'failing' | 'redelivered' | 'rejected' | 'routed';
  /** Milliseconds from receipt to each receiver's receipt. */
  latencyMs?: number;
  /** Legacy algorithms the sender's signature used, which its agreement allows. */
  weak?: string[];
}

export const sha256Of = (message: SampleMessage) => createHash('sha256').update(`${message.from}/${message.id}`).digest('hex');

/** The records of one message's life, in the order the hub makes them. */
export function lifeOf(message: SampleMessage): EvidenceRecord[] {
  const received = message.receivedAt.toISOString();
  const later = (ms: number) => new Date(message.receivedAt.getTime() + ms).toISOString();
  const base = {
    messageId: message.id, conversationId: message.conversationId ?? message.id, from: message.from, to: message.topic ? '' : message.receivers[0]!,
    service: message.service, action: message.action ?? 'submit', protocol: message.protocol, size: message.size ?? 2048, sha256: sha256Of(message),
    receivedAt: received, node: 'hub-1', ...(message.refTo ? { refTo: message.refTo } : {}),
  };
  const record = (stage: EvidenceStage, at: string, over: Partial<EvidenceRecord> = {}): EvidenceRecord => ({ ...base, id: randomUUID(), stage, at, ...over });
  if (message.outcome === 'rejected') {
    const { receivedAt: _, ...rejectedBase } = base;
    return [
      { ...rejectedBase, id: randomUUID(), stage: 'received', at: received },
      { ...rejectedBase, id: randomUUID(), stage: 'rejected', at: later(3), code: 'SWX_SIG_INVALID', detail: 'signature does not verify' },
    ];
  }
  const signature = message.weak ? { signature: JSON.stringify({ scheme: 'xmldsig', algorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', weak: message.weak }) } : {};
  const records = [record('received', received, { raw: Buffer.from(`payload of ${message.id}`).toString('base64'), ...signature }), record('verified', received), record('routed', received)];
  const latency = message.latencyMs ?? 250;
  for (const [index, to] of message.receivers.entries()) {
    const copy = { to };
    if (message.topic) records.push(record('routed', later(5 + index), copy));
    switch (message.outcome) {
      case 'delivered': records.push(record('delivered', later(latency), copy)); break;
      case 'failed-then-delivered':
        records.push(record('delivery_failed', later(latency / 2), { ...copy, code: 'SWX_PARTNER_BUSY' }), record('delivered', later(latency), copy));
        break;
      case 'dead_lettered':
        records.push(record('delivery_failed', later(latency / 2), { ...copy, code: 'SWX_DELIVERY_REJECTED' }), record('dead_lettered', later(latency), { ...copy, code: 'SWX_DELIVERY_REJECTED' }));
        break;
      case 'failing': records.push(record('delivery_failed', later(latency), { ...copy, code: 'SWX_PARTNER_BUSY' })); break;
      case 'redelivered': records.push(record('delivered', later(latency), copy), record('redelivered', later(latency * 4), copy)); break;
      case 'routed': break;
    }
  }
  return records;
}

/** JSONEachRow lines of records, hash-chained from `chain` on, with the file name the view indexes where given. */
export function chainedRows(records: EvidenceRecord[], fileNames: Map<string, string> = new Map(), chain = 0, prevHash = ''): { rows: string[]; chain: number; prevHash: string } {
  const rows: string[] = [];
  for (const record of records) {
    const { row, hash } = evidenceRow(record, 'SWX_TEST@1', chain, chain, prevHash);
    const fileName = fileNames.get(record.messageId);
    rows.push(JSON.stringify(fileName ? { ...row, file_name: fileName } : row));
    chain++;
    prevHash = hash;
  }
  return { rows, chain, prevHash };
}

/** Writes the lives of messages to the store's evidence in a few inserts, as archive blocks arrive. */
export async function archive(store: Store, messages: SampleMessage[], blockSize = 500): Promise<EvidenceRecord[]> {
  const records = messages.flatMap(lifeOf);
  const fileNames = new Map(messages.filter((m) => m.fileName).map((m) => [m.id, m.fileName!]));
  const { rows } = chainedRows(records, fileNames);
  for (let i = 0; i < rows.length; i += blockSize) await store.insert('evidence', rows.slice(i, i + blockSize));
  return records;
}

/**
 * A store of its own for a test file: embedded chDB in a fresh folder, or with SWX_TEST_CLICKHOUSE_URL a fresh
 * database on that server. `done` closes it and removes what it made.
 */
export async function testStore(backend: 'chdb' | 'server'): Promise<{ store: Store; done: () => Promise<void> }> {
  if (backend === 'server') {
    const database = `swx_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const store = await openStore({ url: process.env.SWX_TEST_CLICKHOUSE_URL!, database });
    return { store, done: async () => { await store.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => {}); await store.close(); } };
  }
  const dir = mkdtempSync(join(tmpdir(), 'swx-dashboards-'));
  const store = await openStore({ dataDir: join(dir, 'clickhouse') });
  return { store, done: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** The backends a test runs on: chDB always, a ClickHouse server when SWX_TEST_CLICKHOUSE_URL names one. */
export const backends = ['chdb', ...(process.env.SWX_TEST_CLICKHOUSE_URL ? ['server' as const] : [])] as const;
