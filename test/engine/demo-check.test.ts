// The judge of `swx demo --check` (app/demo-check.ts) on inboxes written by hand: it passes a round that arrived whole
// and in order, and names a channel item stored out of order, a message where it was not sent, a `delivered` count
// that is not one per receiver, a reply without its Ref-To, and a file pushed over SFTP that is not what was sent.
// BOE receives by SFTP push (its own server's folder holds the files), as the demo runs it where sshd is installed.
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkDelivered } from '../../app/demo-check.ts';
import { arrivalLog, demoDir, pushInbox, type DemoHub, type SentMessage } from '../../app/demo.ts';
import { receiveProtocol } from '../../app/demo-protocols.ts';
import { tempDir } from '../helpers/hub.ts';

/** The body of each message sent, and its SHA-256 as the demo records it. */
const bodyOf = (id: string) => JSON.stringify({ item: id });
const sha256 = (id: string) => createHash('sha256').update(bodyOf(id)).digest('hex');

const sent: SentMessage[] = [
  { id: 'ITEM-1', from: 'CUSTOMS', to: ['BOE', 'COA'], service: 'exchange.trade-statistics', sha256: sha256('ITEM-1') },
  { id: 'ITEM-2', from: 'CUSTOMS', to: ['BOE', 'COA'], service: 'exchange.trade-statistics', sha256: sha256('ITEM-2') },
  { id: 'ALERT-1', from: 'BSMI', to: ['TFDA'], service: 'notify.food-toy', sha256: sha256('ALERT-1') },
  { id: 'REPLY-1', from: 'TFDA', to: ['BSMI'], service: 'notify.food-toy', refTo: 'ALERT-1', sha256: sha256('REPLY-1') },
];

/**
 * A data folder whose receivers stored `stored` (agency → ids in the order stored), as the demo agencies write it: an
 * inbox entry each, or for an agency that receives by SFTP push the file as the hub names it in its server's folder.
 */
function storedAs(stored: Record<string, string[]>, refTo: Record<string, string> = {}): string {
  const dataDir = tempDir('demo-check');
  for (const [agency, ids] of Object.entries(stored)) {
    const pushed = receiveProtocol(agency) === 'sftp-push';
    const folder = pushed ? pushInbox(dataDir, agency) : join(demoDir(dataDir, agency), 'inbox');
    mkdirSync(folder, { recursive: true });
    for (const id of ids) {
      writeFileSync(join(folder, `${id}.json`), pushed ? bodyOf(id) : JSON.stringify({ id, ...(refTo[id] ? { refToMessageId: refTo[id] } : {}) }));
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

test('a file pushed over SFTP is counted under its final name only, and only with the SHA-256 of what was sent', async () => {
  assert.is(receiveProtocol('BOE'), 'sftp-push', 'sshd is installed here (scripts/prerequisites.sh)');
  const dataDir = storedAs({ ...whole, BOE: ['ITEM-1'] }, { 'REPLY-1': 'ALERT-1' });
  writeFileSync(join(pushInbox(dataDir, 'BOE'), '.ITEM-2.json.part'), bodyOf('ITEM-2'));
  const partial = await checkDelivered(hubOver(dataDir), sent, [], 300);
  assert.equal(partial.missingInbox, ['ITEM-2'], 'a file under its temporary name is not delivered yet');
  writeFileSync(join(pushInbox(dataDir, 'BOE'), 'ITEM-2.json'), bodyOf('ITEM-1'));
  appendFileSync(arrivalLog(dataDir, 'BOE'), 'ITEM-2\n');
  const corrupt = await checkDelivered(hubOver(dataDir), sent, [], 1_000);
  assert.equal(corrupt.missingInbox, []);
  assert.equal(corrupt.corrupt, ['ITEM-2 at BOE']);
  assert.equal([...corrupt.failed], ['ITEM-2']);
  assert.not.ok(corrupt.ok);
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
    { id: 'DECL-1', from: 'CUSTOMS', to: ['BOFT', 'MPB', 'FIA', 'BOE'], service: 'exchange.declarations', protocol: 'sftp', skipped: ['NTA'], sha256: sha256('DECL-1') },
    { id: 'FISH-1', from: 'TFDA', to: ['BSMI', 'FA'], service: 'notify.fishery-safety', protocol: 'rest', sha256: sha256('FISH-1') },
    { id: 'FEED-1', from: 'COA-DAI', to: ['TFDA'], service: 'notify.substandard-feed', protocol: 'as4', sha256: sha256('FEED-1') },
    { id: 'CLR-1', from: 'CUSTOMS', to: ['TRADEVAN'], service: 'exchange.clearance-data', protocol: 'rest', sha256: sha256('CLR-1') },
  ];
  const dataDir = storedAs({ BOFT: ['DECL-1'], MPB: ['DECL-1'], FIA: ['DECL-1'], BOE: ['DECL-1'], BSMI: ['FISH-1'], FA: ['FISH-1'], TFDA: ['FEED-1'], TRADEVAN: ['CLR-1'] });
  const reason = 'IBM MQ client library not available: install the IBM MQ redistributable client';
  const hub: DemoHub = {
    dataDir, agencyPort: 0, opsPort: 0,
    operator: async (method, _path, body) => (method === 'GET'
      ? { status: 'ready', connectors: { mq: { ok: false, detail: reason } } }
      : Object.fromEntries((body as { ids: string[] }).ids.map((id) => [id, { delivered: mixed.find((m) => m.id === id)!.to.length }]))),
  };
  const result = await checkDelivered(hub, mixed, [], 1_000);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.sentBy, { sftp: 1, rest: 2, as4: 1 });
  assert.equal(result.deliveredBy, { rest: 3, 'sftp-pull': 2, 'sftp-push': 2, as4: 1 });
  assert.equal(result.skipped, [{ id: 'DECL-1', from: 'CUSTOMS', to: 'NTA', service: 'exchange.declarations', protocol: 'mq', reason }]);
});

test.run();
