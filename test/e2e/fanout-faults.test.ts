// A channel's fan-out must survive what a single delivery survives: kill -9 of the hub, and of its nats-server, while
// 200 items fan out to 20 requesters. Counted per requester and id: every requester stores every item once and in the
// order published, every request carried the body that was sent, repeats stay within one in-flight item per
// requester's lane, and the evidence holds one `delivered` record per item and requester.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import type { InboxEntry, OutgoingMessage } from '../../connectors/rest/agency.ts';
import { addAgency, startHubProcess, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { fanOutSettled, sendUntilAccepted, stagesOf } from '../helpers/delivery.ts';

const channel = 'declarations';
const requesterIds = Array.from({ length: 20 }, (_, i) => `REQ-${String(i + 1).padStart(2, '0')}`);
/** A lane holds one item at a time: a crash can repeat at most that one per requester. */
const repeatsPerRequester = 1;

let hub: HubProcess;
let customs: TestAgency;
let bus: Bus;
const requesters = new Map<string, TestAgency>();
/** Per requester, the ids its receiver stored, in order. */
const stored = new Map<string, string[]>();
/** Per requester and id, the SHA-256 of every request body that reached it. */
const requests = new Map<string, Map<string, string[]>>();

const item = (id: string): OutgoingMessage => ({
  service: `exchange.${channel}`, action: 'export-declaration', messageId: id, contentType: 'application/json',
  body: Buffer.from(JSON.stringify({ declarationNo: `EX/${id}`, value: id.length * 1000 })),
});
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_BACKOFF_MS: '100,200,400', SWX_PROBE_INTERVAL_MS: '500', SWX_DELIVERY_TIMEOUT_MS: '15000' } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  for (const id of requesterIds) {
    stored.set(id, []);
    requests.set(id, new Map());
    const agency = await addAgency(hub, id, { onMessage: (entry: InboxEntry) => stored.get(id)!.push(entry.id) });
    // A tap on the receiver's server: every request, repeats included, with the digest of what it carried.
    agency.receiver!.server.on('request', (req) => {
      const messageId = String(req.headers['swx-message-id']);
      const digest = createHash('sha256');
      req.on('data', (chunk: Buffer) => digest.update(chunk));
      req.on('end', () => {
        const seen = requests.get(id)!;
        seen.set(messageId, [...(seen.get(messageId) ?? []), digest.digest('hex')]);
      });
    });
    requesters.set(id, agency);
  }
  const put = await hub.admin('PUT', `/api/channels/${channel}`, { name: 'Declarations', dataset: 'export declarations', providers: ['CUSTOMS'], requesters: requesterIds });
  assert.is(put.status, 200, JSON.stringify(put.body));
  bus = await connectBus(`nats://127.0.0.1:${hub.natsPort}`, 'fanout-faults-test');
});

test.after(async () => {
  await bus?.nc.close();
  customs?.client.close();
  for (const agency of requesters.values()) await agency.receiver?.close();
  await hub?.stop();
});

/** Publishes the items one after another (their order is the channel's), running `act` once `after` are accepted. */
async function publish(ids: string[], after: number, act: () => Promise<void>): Promise<void> {
  let acted: Promise<void> | undefined;
  for (const [index, id] of ids.entries()) {
    await sendUntilAccepted(customs.client, item(id));
    if (index + 1 === after) acted = act();
  }
  await acted;
}

async function assertEveryRequesterOnceInOrder(fault: string, ids: string[]): Promise<void> {
  const storedOf = (requester: string) => stored.get(requester)!.filter((id) => ids.includes(id));
  await waitFor('every item at every requester', () => requesterIds.every((requester) => storedOf(requester).length === ids.length), 120_000);
  await waitFor('the fan-out and its evidence settled', async () => {
    if (!(await fanOutSettled(bus, channel, requesterIds))) return false;
    const stages = await stagesOf(hub, ids);
    return ids.every((id) => (stages[id]?.delivered ?? 0) >= requesterIds.length);
  }, 120_000);
  const stages = await stagesOf(hub, ids);
  let repeats = 0;
  for (const requester of requesterIds) {
    assert.equal(storedOf(requester), ids, `${requester} stored each item once, in the order published`);
    let repeatsHere = 0;
    for (const id of ids) {
      const seen = requests.get(requester)!.get(id) ?? [];
      assert.ok(seen.length >= 1 && seen.every((digest) => digest === sha256(item(id).body)), `${requester} ${id}: every request carried the body sent`);
      repeatsHere += seen.length - 1;
    }
    assert.ok(repeatsHere <= repeatsPerRequester, `${requester}: ${repeatsHere} repeats, more than its lane holds in flight`);
    repeats += repeatsHere;
  }
  for (const id of ids) {
    // An attempt refused while nats-server was down is evidenced as received and rejected; the one accepted, once.
    assert.is(stages[id]!.received! - (stages[id]!.rejected ?? 0), 1, `${id} accepted once: ${JSON.stringify(stages[id])}`);
    // One for the channel message, one for each requester's copy.
    assert.is(stages[id]!.routed, 1 + requesterIds.length, `${id} routed: ${JSON.stringify(stages[id])}`);
    assert.is(stages[id]!.delivered, requesterIds.length, `${id} delivered once per requester: ${JSON.stringify(stages[id])}`);
  }
  console.log(`${fault}: ${ids.length} items to ${requesterIds.length} requesters, ${ids.length * requesterIds.length + repeats} requests, ${repeats} repeats`);
  assert.equal((await hub.admin('GET', '/api/dlq')).body, [], 'nothing dead-lettered');
}

test('kill -9 of the hub while 200 channel items fan out to 20 requesters: every requester stores every item once, in order', async () => {
  const ids = Array.from({ length: 200 }, (_, i) => `FAN-HUB-${String(i).padStart(3, '0')}`);
  await publish(ids, 60, async () => { await hub.kill(); await hub.restart(); });
  await assertEveryRequesterOnceInOrder('kill -9 of the hub', ids);
});

test('kill -9 of the nats-server while 200 channel items fan out to 20 requesters: every requester stores every item once, in order', async () => {
  const pidFile = join(hub.dataDir, 'nats', 'nats-server.pid');
  assert.ok(existsSync(pidFile));
  const ids = Array.from({ length: 200 }, (_, i) => `FAN-NATS-${String(i).padStart(3, '0')}`);
  await publish(ids, 60, async () => { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); });
  await assertEveryRequesterOnceInOrder('kill -9 of the nats-server', ids);
});

test.run();
