// Message search over the views the store keeps from evidence: every id kind finds its message, keyset paging returns
// every message exactly once (many share one instant), filters and states agree with what was archived, and a
// message's timeline is its life in order. On embedded chDB, and on a ClickHouse server when SWX_TEST_CLICKHOUSE_URL is set.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findMessages, messageTimeline, searchMessages, type MessageCursor, type MessageFilter, type MessageState, type MessageSummary } from '../../dashboards/index.ts';
import { evidenceRow } from '../../engine/evidence.ts';
import type { Store } from '../../engine/store/index.ts';
import { archive, backends, lifeOf, sha256Of, testStore, type SampleMessage } from '../helpers/evidence-sample.ts';

const agencies = ['CUSTOMS', 'BOFT', 'BSMI', 'TFDA', 'NTA'];
const start = Date.UTC(2026, 0, 5, 8);
const outcomes: SampleMessage['outcome'][] = ['delivered', 'dead_lettered', 'failing', 'rejected', 'failed-then-delivered', 'redelivered', 'routed'];
const stateOf: Record<SampleMessage['outcome'], MessageState> = {
  delivered: 'delivered', 'failed-then-delivered': 'delivered', redelivered: 'delivered', dead_lettered: 'dead_lettered',
  failing: 'failing', rejected: 'rejected', routed: 'routed',
};

/** 700 messages, seven to an instant, plus two senders using one id at one instant, a reply and a file. */
function sample(): SampleMessage[] {
  const messages: SampleMessage[] = Array.from({ length: 700 }, (_, i) => ({
    id: `M-${String(i).padStart(4, '0')}`,
    from: agencies[i % 3]!,
    receivers: i % 50 === 0 ? ['BSMI', 'TFDA', 'NTA'] : [agencies[3 + (i % 2)]!],
    topic: i % 50 === 0,
    service: i % 2 ? 'trade.permit' : 'customs.declaration',
    protocol: i % 5 === 0 ? 'soap' : 'rest',
    receivedAt: new Date(start + Math.floor(i / 7) * 60_000),
    outcome: i % 50 === 0 ? 'delivered' : outcomes[i % outcomes.length]!,
    latencyMs: 100 + (i % 13) * 37,
    ...(i === 5 ? { weak: ['RSA-SHA1', 'SHA-1'] } : {}),
  }));
  const at = new Date(start + 3 * 60_000);
  messages.push(
    { id: 'SAME-ID', from: 'CUSTOMS', receivers: ['BOFT'], service: 'customs.declaration', protocol: 'rest', receivedAt: at, outcome: 'delivered' },
    { id: 'SAME-ID', from: 'BSMI', receivers: ['TFDA'], service: 'trade.permit', protocol: 'rest', receivedAt: at, outcome: 'delivered' },
    { id: 'REPLY-1', from: 'BOFT', receivers: ['CUSTOMS'], service: 'customs.declaration', protocol: 'rest', receivedAt: new Date(start + 90 * 60_000), outcome: 'delivered', refTo: 'M-0007', conversationId: 'CONV-7' },
    { id: 'FILE-1', from: 'TFDA', receivers: ['CUSTOMS'], service: 'trade.permit', protocol: 'sftp', receivedAt: new Date(start + 91 * 60_000), outcome: 'delivered', fileName: 'permits-20260105.xml', conversationId: 'CONV-7' },
  );
  return messages;
}

const key = (m: { from: string; messageId?: string; id?: string }) => `${m.from}/${m.messageId ?? m.id}`;

async function allPages(store: Store, filter: MessageFilter, limit: number): Promise<{ rows: MessageSummary[]; pages: number }> {
  const rows: MessageSummary[] = [];
  let cursor: MessageCursor | undefined;
  let pages = 0;
  for (;;) {
    const page = await searchMessages(store, filter, cursor, limit);
    pages++;
    rows.push(...page.rows);
    if (!page.next) return { rows, pages };
    cursor = page.next;
    assert.ok(pages < 1000, 'paging ends');
  }
}

test('ref_to and received_at stay outside the hash chain: a record hashes as it did before them', () => {
  const record = lifeOf(sample()[7]!)[3]!;
  const { refTo: _refTo, receivedAt: _receivedAt, ...before } = record;
  const withColumns = evidenceRow({ ...record, refTo: 'M-0001' }, 'S@1', 1, 1, 'p');
  const without = evidenceRow(before, 'S@1', 1, 1, 'p');
  assert.is(withColumns.hash, without.hash);
  assert.equal([withColumns.row.ref_to, withColumns.row.received_at], ['M-0001', record.receivedAt!.replace('T', ' ').replace('Z', '')]);
  assert.equal([without.row.ref_to, without.row.received_at], [undefined, undefined]);
});

for (const backend of backends) {
  let store: Store;
  let done: () => Promise<void>;
  const messages = sample();

  test.before(async () => {
    ({ store, done } = await testStore(backend));
    await archive(store, messages);
    // The received record's block, archived and time-stamped, for the timeline.
    const [received] = await store.query<{ chain: number }>("SELECT chain FROM evidence WHERE message_id = 'M-0004' AND stage = 'received'");
    await store.command(`ALTER TABLE evidence UPDATE batch_id = 'hub-1:0' WHERE message_id = 'M-0004' AND stage = 'received' SETTINGS mutations_sync = 1`);
    await store.insert('evidence_batches', [JSON.stringify({
      block_id: 'hub-1:0', node: 'hub-1', first_chain: received!.chain, last_chain: received!.chain, records: 1, root: 'r',
      written_at: '2026-01-05 08:00:00.050', stamp_id: 's', stamp_root: 'r', stamp_proof: '', tsr: '', gen_time: '2026-01-05 08:00:00.060', tsa: 'hub TSA',
    })]);
  });
  test.after(() => done());

  test(`${backend}: each kind of id finds its message`, async () => {
    const ids = (rows: MessageSummary[]) => rows.map(key).sort();
    assert.equal(ids(await findMessages(store, 'M-0042', 'message')), ['CUSTOMS/M-0042']);
    assert.equal(ids(await findMessages(store, 'SAME-ID')), ['BSMI/SAME-ID', 'CUSTOMS/SAME-ID'], 'one id, two senders');
    assert.equal(ids(await findMessages(store, 'M-0007', 'ref_to')), ['BOFT/REPLY-1']);
    assert.equal(ids(await findMessages(store, 'CONV-7', 'conversation')), ['BOFT/REPLY-1', 'TFDA/FILE-1']);
    assert.equal(ids(await findMessages(store, 'permits-20260105.xml', 'file')), ['TFDA/FILE-1']);
    const sha = sha256Of(messages[123]!);
    assert.equal(ids(await findMessages(store, sha, 'sha256')), ['CUSTOMS/M-0123']);
    assert.equal(ids(await findMessages(store, sha)), ['CUSTOMS/M-0123'], 'without a kind, any');
    assert.equal(await findMessages(store, 'M-0042', 'sha256'), [], 'a kind narrows');
    assert.equal(await findMessages(store, 'no-such-id'), []);
    const [reply] = await findMessages(store, 'REPLY-1');
    assert.is(reply!.refTo, 'M-0007');
    assert.is(reply!.conversationId, 'CONV-7');
  });

  test(`${backend}: keyset paging returns every message exactly once, newest first, with seven to an instant`, async () => {
    for (const limit of [3, 7, 37, 1000]) {
      const { rows, pages } = await allPages(store, {}, limit);
      assert.is(rows.length, messages.length, `limit ${limit}: every message`);
      assert.is(new Set(rows.map(key)).size, messages.length, `limit ${limit}: none twice`);
      assert.is(pages, Math.floor(messages.length / limit) + 1, `limit ${limit}: pages`);
      for (let i = 1; i < rows.length; i++) {
        const [a, b] = [rows[i - 1]!, rows[i]!];
        assert.ok(a.at > b.at || (a.at === b.at && (a.from > b.from || (a.from === b.from && a.messageId > b.messageId))), `order at ${i}`);
      }
    }
  });

  test(`${backend}: filters page the same way and match what was archived`, async () => {
    const since = new Date(start + 10 * 60_000).toISOString();
    const until = new Date(start + 60 * 60_000).toISOString();
    const inWindow = (m: SampleMessage) => m.receivedAt.toISOString() >= since && m.receivedAt.toISOString() < until;
    const cases: [MessageFilter, (m: SampleMessage) => boolean][] = [
      [{ sender: 'CUSTOMS', since, until }, (m) => m.from === 'CUSTOMS' && inWindow(m)],
      [{ service: 'trade.permit', protocol: 'soap' }, (m) => m.service === 'trade.permit' && m.protocol === 'soap'],
      [{ receiver: 'BSMI' }, (m) => m.receivers.includes('BSMI')],
      [{ state: 'dead_lettered' }, (m) => m.outcome === 'dead_lettered'],
      [{ state: 'delivered', sender: 'BOFT', since, until }, (m) => stateOf[m.outcome] === 'delivered' && m.from === 'BOFT' && inWindow(m)],
    ];
    for (const state of ['failing', 'rejected', 'routed'] as const) cases.push([{ state }, (m) => stateOf[m.outcome] === state]);
    for (const [filter, wanted] of cases) {
      const expected = messages.filter(wanted).map(key).sort();
      assert.ok(expected.length > 0, `${JSON.stringify(filter)} has messages`);
      const { rows } = await allPages(store, filter, 11);
      assert.equal(rows.map(key).sort(), expected, JSON.stringify(filter));
      if (filter.state) assert.ok(rows.every((row) => row.state === filter.state));
    }
    const [topic] = (await findMessages(store, 'M-0050'));
    assert.equal(topic!.receivers, ['BSMI', 'NTA', 'TFDA']);
    assert.is(topic!.to, '');
    assert.equal(topic!.delivered, ['BSMI', 'NTA', 'TFDA']);
  });

  test(`${backend}: a message's timeline is its life in order, across receipts, failures, repeats and its block`, async () => {
    const stages = async (id: string, from?: string) => (await messageTimeline(store, id, from)).map((entry) => entry.stage);
    assert.equal(await stages('M-0004'), ['received', 'verified', 'routed', 'archived', 'stamped', 'delivery_failed', 'delivered']);
    assert.equal(await stages('M-0005'), ['received', 'verified', 'routed', 'delivered', 'redelivered']);
    assert.equal(await stages('M-0003'), ['received', 'rejected']);
    assert.equal(await stages('M-0050'), ['received', 'verified', 'routed', 'routed', 'routed', 'routed', 'delivered', 'delivered', 'delivered']);
    assert.equal(await stages('SAME-ID', 'BSMI'), ['received', 'verified', 'routed', 'delivered']);
    const failed = await messageTimeline(store, 'M-0001');
    assert.equal(failed.map((entry) => [entry.stage, entry.code]).slice(-2), [['delivery_failed', 'SWX_DELIVERY_REJECTED'], ['dead_lettered', 'SWX_DELIVERY_REJECTED']]);
    const timeline = await messageTimeline(store, 'M-0004');
    assert.ok(timeline.every((entry, i) => i === 0 || entry.at >= timeline[i - 1]!.at), 'in time order');
    assert.is(timeline.find((entry) => entry.stage === 'stamped')!.detail, 'RFC 3161 time-stamp by hub TSA');
    assert.ok(timeline.every((entry) => entry.weak === ''), 'no legacy algorithm');
    // A sender whose agreement lets it sign with RSA-SHA1: its received record says so.
    const legacy = await messageTimeline(store, 'M-0005');
    assert.equal(legacy.map((entry) => entry.weak), ['RSA-SHA1, SHA-1', '', '', '', '']);
  });

  test(`${backend}: a page's summary says what became of the message`, async () => {
    const [dead] = await findMessages(store, 'M-0001');
    assert.is(dead!.state, 'dead_lettered');
    assert.is(dead!.lastCode, 'SWX_DELIVERY_REJECTED');
    assert.is(dead!.lastStage, 'dead_lettered');
    const [again] = await findMessages(store, 'M-0005');
    assert.is(again!.redelivered, 1);
    assert.is(again!.state, 'delivered');
    const [rejected] = await findMessages(store, 'M-0003');
    assert.is(rejected!.state, 'rejected');
    assert.is(rejected!.lastCode, 'SWX_SIG_INVALID');
    assert.equal(rejected!.receivers, messages[3]!.receivers, 'a refused message names the receiver it asked for');
  });
}

test.run();
