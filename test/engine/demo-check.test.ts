// The judge of `swx demo --check` (app/demo-check.ts) on inboxes written by hand: it passes a round that arrived whole
// and in order, and names a channel item stored out of order, a message where it was not sent, a `delivered` count
// that is not one per receiver, and a reply without its Ref-To.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkDelivered } from '../../app/demo-check.ts';
import { arrivalLog, demoDir, type DemoHub, type SentMessage } from '../../app/demo.ts';
import { tempDir } from '../helpers/hub.ts';

const sent: SentMessage[] = [
  { id: 'ITEM-1', from: 'CUSTOMS', to: ['BOE', 'COA'], service: 'exchange.trade-statistics' },
  { id: 'ITEM-2', from: 'CUSTOMS', to: ['BOE', 'COA'], service: 'exchange.trade-statistics' },
  { id: 'ALERT-1', from: 'BSMI', to: ['TFDA'], service: 'notify.food-toy' },
  { id: 'REPLY-1', from: 'TFDA', to: ['BSMI'], service: 'notify.food-toy', refTo: 'ALERT-1' },
];

/** A data folder whose receivers stored `stored` (agency → ids in the order stored), as the demo agencies write it. */
function storedAs(stored: Record<string, string[]>, refTo: Record<string, string> = {}): string {
  const dataDir = tempDir('demo-check');
  for (const [agency, ids] of Object.entries(stored)) {
    mkdirSync(join(demoDir(dataDir, agency), 'inbox'), { recursive: true });
    for (const id of ids) {
      writeFileSync(join(demoDir(dataDir, agency), 'inbox', `${id}.json`), JSON.stringify({ id, ...(refTo[id] ? { refToMessageId: refTo[id] } : {}) }));
      appendFileSync(arrivalLog(dataDir, agency), `${id}\n`);
    }
  }
  return dataDir;
}

const hubOver = (dataDir: string, delivered: Record<string, number> = {}): DemoHub => ({
  dataDir, agencyPort: 0, opsPort: 0,
  operator: async (_method, _path, body) => Object.fromEntries((body as { ids: string[] }).ids.map((id) => [id, { delivered: delivered[id] ?? sent.find((m) => m.id === id)!.to.length }])),
});

const whole = { BOE: ['ITEM-1', 'ITEM-2'], COA: ['ITEM-1', 'ITEM-2'], TFDA: ['ALERT-1'], BSMI: ['REPLY-1'] };

test('a round that reached every receiver, in order, with its evidence, passes', async () => {
  const result = await checkDelivered(hubOver(storedAs(whole, { 'REPLY-1': 'ALERT-1' })), sent, [], 1_000);
  assert.ok(result.ok, JSON.stringify(result));
});

test('a channel item stored before the one published ahead of it fails its lane only', async () => {
  const result = await checkDelivered(hubOver(storedAs({ ...whole, COA: ['ITEM-2', 'ITEM-1'] }, { 'REPLY-1': 'ALERT-1' })), sent, [], 1_000);
  assert.not.ok(result.ok);
  assert.equal(result.notInOrder, ['trade-statistics → COA']);
  assert.equal(result.missingInbox, []);
});

test('a message where it was not sent, a delivered count off by one, a reply without Ref-To: each named', async () => {
  const dataDir = storedAs({ ...whole, FA: ['ALERT-1'] });
  const result = await checkDelivered(hubOver(dataDir, { 'ITEM-2': 3 }), sent, [], 1_000);
  assert.equal(result.stray, ['ALERT-1 at FA']);
  assert.equal(result.missingEvidence, ['ITEM-2']);
  assert.equal(result.lostRefTo, ['REPLY-1']);
  assert.equal([...result.failed].sort(), ['ALERT-1', 'ITEM-2', 'REPLY-1']);
});

test('a requester that never stored an item is missing it, and the check gives up at its deadline', async () => {
  const started = Date.now();
  const result = await checkDelivered(hubOver(storedAs({ ...whole, COA: ['ITEM-1'] }, { 'REPLY-1': 'ALERT-1' })), sent, [], 600);
  assert.ok(Date.now() - started >= 600);
  assert.equal(result.missingInbox, ['ITEM-2']);
  assert.equal(result.notInOrder, ['trade-statistics → COA']);
});

test('deliveries are counted per protocol from what each receiver stored, once each; legs to MQ agencies are skipped with /readyz\'s reason', async () => {
  const mixed: SentMessage[] = [
    { id: 'DECL-1', from: 'CUSTOMS', to: ['BOFT', 'MPB', 'FIA'], service: 'exchange.declarations', protocol: 'sftp', skipped: ['NTA'] },
    { id: 'FISH-1', from: 'TFDA', to: ['BSMI', 'FA'], service: 'notify.fishery-safety', protocol: 'rest' },
    { id: 'FEED-1', from: 'COA-DAI', to: ['TFDA'], service: 'notify.substandard-feed', protocol: 'as4' },
  ];
  const dataDir = storedAs({ BOFT: ['DECL-1'], MPB: ['DECL-1'], FIA: ['DECL-1'], BSMI: ['FISH-1'], FA: ['FISH-1'], TFDA: ['FEED-1'] });
  const reason = 'IBM MQ client library not available: install the IBM MQ redistributable client';
  const hub: DemoHub = {
    dataDir, agencyPort: 0, opsPort: 0,
    operator: async (method, _path, body) => (method === 'GET'
      ? { status: 'ready', connectors: { mq: { ok: false, detail: reason } } }
      : Object.fromEntries((body as { ids: string[] }).ids.map((id) => [id, { delivered: mixed.find((m) => m.id === id)!.to.length }]))),
  };
  const result = await checkDelivered(hub, mixed, [], 1_000);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.sentBy, { sftp: 1, rest: 1, as4: 1 });
  assert.equal(result.deliveredBy, { rest: 3, 'sftp-pull': 2, as4: 1 });
  assert.equal(result.skipped, [{ id: 'DECL-1', from: 'CUSTOMS', to: 'NTA', service: 'exchange.declarations', protocol: 'mq', reason }]);
});

test.run();
