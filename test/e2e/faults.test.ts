// Faults a hub must survive without losing anything: a receiver that is down for longer than all retry delays,
// kill -9 of the hub and of its nats-server mid-traffic, a resend after JetStream's own two-minute window, and two
// hub processes sharing one NATS. Delivery over HTTP is at least once: a message in flight at a crash may reach the
// receiver again, with the same id and body, and the id makes it once in effect. Each case counts what the receiver
// got per id and what the evidence says: one `delivered` per id, a repeat only ever as `redelivered`.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectBus, streams, type Bus } from '../../engine/nats/jetstream.ts';
import { loadPki } from '../../engine/pki/index.ts';
import { deliverActorName } from '../../pipelines/deliver.ts';
import { startAgencyReceiver, type AgencyClient, type AgencyReceiver, type OutgoingMessage } from '../../connectors/rest/agency.ts';
import { addAgency, addService, freePort, assertChained, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { sendUntilAccepted, stagesOf } from '../helpers/delivery.ts';

/** In-flight deliveries per partner per hub process (SWX_DELIVERY_CONCURRENCY): the actor never holds more unsettled. */
const concurrency = 32;
/** What nats-server hands out to one delivery consumer before acks come back (max_ack_pending in pipelines/deliver.ts). */
const maxAckPending = 4 * concurrency;

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let receiverPort: number;
let lateResendAt = 0;
let bus: Bus;
const lateId = 'CUSTOMS-LATE-0001';

const message = (id: string): OutgoingMessage => ({
  to: 'BOFT', service: 'customs.declaration', messageId: id, contentType: 'application/json',
  body: Buffer.from(JSON.stringify({ declarationNo: `AA/BE/13/${id}`, value: 1 })),
});

async function sendAll(ids: string[], during?: { afterAccepted: number; act: () => Promise<void> }): Promise<void> {
  let accepted = 0;
  let acted: Promise<void> | undefined;
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      await sendUntilAccepted(customs.client, message(id));
      accepted++;
      if (during && accepted === during.afterAccepted) acted = during.act();
    }
  }));
  await acted;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Each request that reached BOFT's receiver, whole: the SHA-256 of its body, per message id. */
const requests = new Map<string, string[]>();

/** Counts the receiver's requests beside its own handling, as a tap on its server. */
function watch(receiver: AgencyReceiver): void {
  receiver.server.on('request', (req) => {
    const id = String(req.headers['swx-message-id']);
    const digest = createHash('sha256');
    req.on('data', (chunk: Buffer) => digest.update(chunk));
    req.on('end', () => {
      const seen = requests.get(id) ?? [];
      seen.push(digest.digest('hex'));
      requests.set(id, seen);
    });
  });
}

const inbox = () => new Set(readdirSync(boft.inboxDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)));

/** Nothing left for BOFT's deliveries or the archive: no more requests can come, and all evidence is archived. */
async function settled(): Promise<boolean> {
  // Deliveries first: the evidence of a delivery is published before its ack, so it is in the evidence count after.
  const consumers: [string, string][] = [[streams.messages, deliverActorName('BOFT')], [streams.messages, 'archive-messages'], [streams.evidence, 'archive']];
  for (const [stream, consumer] of consumers) {
    const info = await bus.jsm.consumers.info(stream, consumer).catch(() => undefined);
    if (!info || info.num_pending + info.num_ack_pending > 0) return false;
  }
  return true;
}

/**
 * Once in effect: every id reached the receiver with the body that was sent, at most `bound` repeats in all, each
 * id evidenced as routed once and delivered once, and no more `redelivered` records than the id's repeats.
 */
async function assertOnceInEffect(fault: string, ids: string[], bound: number): Promise<void> {
  await waitFor('every message in the inbox', () => ids.every((id) => inbox().has(id)), 90_000);
  // Work held by a killed hub returns after the ack wait: 15 s for deliveries, 20 s for the archive.
  await waitFor('deliveries and their evidence settled', async () => {
    if (!(await settled())) return false;
    const stages = await stagesOf(hub, ids);
    return ids.every((id) => (stages[id]?.delivered ?? 0) >= 1 && (stages[id]?.routed ?? 0) >= 1 && (stages[id]?.received ?? 0) >= 1);
  }, 120_000);
  const stages = await stagesOf(hub, ids);
  let repeats = 0;
  let redelivered = 0;
  for (const id of ids) {
    const seen = requests.get(id) ?? [];
    const sent = sha256(message(id).body);
    assert.ok(seen.length >= 1, `${id} reached the receiver`);
    assert.ok(seen.every((digest) => digest === sent), `${id}: every request carried the body that was sent`);
    assert.is(stages[id]!.routed, 1, `${id} routed once: ${JSON.stringify(stages[id])}`);
    assert.is(stages[id]!.delivered, 1, `${id} delivered once in the evidence, requested ${seen.length} times: ${JSON.stringify(stages[id])}`);
    assert.ok((stages[id]!.redelivered ?? 0) <= seen.length - 1, `${id}: a redelivery evidenced for each repeat at most: ${JSON.stringify(stages[id])}`);
    repeats += seen.length - 1;
    redelivered += stages[id]!.redelivered ?? 0;
  }
  console.log(`${fault}: ${ids.length} ids, ${ids.length + repeats} receiver requests, ${repeats} repeats (bound ${bound}), ${redelivered} evidenced as redelivered`);
  assert.ok(repeats <= bound, `${repeats} repeats, more than the in-flight window of ${bound}`);
  const dlq = await hub.admin('GET', '/api/dlq');
  assert.equal(dlq.body, [], 'nothing dead-lettered');
}

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_CONCURRENCY: String(concurrency), SWX_DELIVERY_BACKOFF_MS: '100,200,400', SWX_PROBE_INTERVAL_MS: '500', SWX_BREAKER_FAILURES: '2', SWX_DELIVERY_TIMEOUT_MS: '15000' } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  // From the test's own port range: the receiver is stopped and started again on this port.
  receiverPort = await freePort();
  boft = await addAgency(hub, 'BOFT', { port: receiverPort });
  watch(boft.receiver!);
  bus = await connectBus(`nats://127.0.0.1:${hub.natsPort}`, 'faults-test');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  await sendUntilAccepted(customs.client, message(lateId));
  lateResendAt = Date.now() + 125_000;
});

test.after(async () => {
  await bus?.nc.close();
  customs?.client.close();
  await boft?.receiver?.close();
  await hub?.stop();
});

test('a receiver down for longer than all retry delays gets every message once when it is back; nothing dead-lettered', async () => {
  await waitFor('the first message delivered', () => inbox().has(lateId), 15_000);
  await boft.receiver!.close();
  const ids = Array.from({ length: 50 }, (_, i) => `DOWN-${i}`);
  await sendAll(ids);
  await sleep(3_000); // backoff 100+200+400 ms, many probes
  const metrics = await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`).then((r) => r.text());
  assert.match(metrics, /swx_partner_circuit_open\{partner="BOFT"\} 1/);
  assert.ok(ids.every((id) => !inbox().has(id)));
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  boft.receiver = await startAgencyReceiver({ ...boft.credentials, port: receiverPort, hubSignCertPem: pki.hubSign.certPem, inboxDir: boft.inboxDir });
  watch(boft.receiver);
  await assertOnceInEffect('receiver down', ids, 0);
});

test('kill -9 of the hub while 1,000 messages are in flight: none lost, repeats within the killed process\'s window, each delivered once in the evidence', async () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `KILLHUB-${i}`);
  await sendAll(ids, { afterAccepted: 300, act: async () => { await hub.kill(); await hub.restart(); } });
  // Only what the killed process held unsettled can have reached the receiver without its ack reaching NATS.
  await assertOnceInEffect('kill -9 of the hub', ids, concurrency);
});

test('the hash chain runs on across the kill -9 and restart: each record\'s prev_hash is the record before it, per node', async () => {
  const records = await assertChained(hub);
  const has = (messageId: string) => records.some((record) => record.message_id === messageId && record.stage === 'delivered');
  assert.ok(has('DOWN-0') && has('KILLHUB-999'), 'the chain holds records archived before the kill and after the restart');
});

test('kill -9 of the nats-server while 1,000 messages are in flight: none lost, repeats within the consumer\'s window, each delivered once in the evidence', async () => {
  const pidFile = join(hub.dataDir, 'nats', 'nats-server.pid');
  assert.ok(existsSync(pidFile));
  const ids = Array.from({ length: 1000 }, (_, i) => `KILLNATS-${i}`);
  await sendAll(ids, { afterAccepted: 300, act: async () => { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); } });
  // Acks nats-server had not yet taken are lost with it: what it had handed out unacknowledged comes back, and it
  // hands out at most max_ack_pending.
  await assertOnceInEffect('kill -9 of the nats-server', ids, maxAckPending);
});

test('two hub processes on one NATS share the work and the receiver sees each id once', async () => {
  // One deployment, one PKI: the second process signs and serves TLS with the same hub certificates.
  const secondDir = tempDir('second');
  cpSync(join(hub.dataDir, 'pki'), join(secondDir, 'pki'), { recursive: true });
  const second = await startHubProcess({ dataDir: secondDir, env: { SWX_NATS_URL: `nats://127.0.0.1:${hub.natsPort}`, SWX_ARCHIVE: 'off', SWX_NODE_NAME: 'second' } });
  try {
    const secondClient = new (customs.client.constructor as typeof AgencyClient)(`https://localhost:${second.agencyPort}`, customs.credentials);
    const ids = Array.from({ length: 400 }, (_, i) => `TWO-${i}`);
    await Promise.all(ids.map((id, i) => sendUntilAccepted(i % 2 ? secondClient : customs.client, message(id))));
    await assertOnceInEffect('two hub processes', ids, 0);
    const delivered = async (port: number) => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      return Number(/swx_messages_total\{stage="deliver",outcome="ack",code=""\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const [first, other] = [await delivered(hub.opsPort), await delivered(second.opsPort)];
    assert.ok(first > 0 && other > 0, `both processes delivered: first ${first}, second ${other}`);
    secondClient.close();
  } finally {
    await second.stop();
  }
});

test('the same message id sent again after more than two minutes is accepted idempotently, not delivered again', async () => {
  const wait = lateResendAt - Date.now();
  if (wait > 0) await sleep(wait);
  const answer = await customs.client.send(message(lateId));
  assert.is(answer.status, 202);
  assert.is(answer.body.duplicate, true);
  await sleep(1_000);
  assert.ok(inbox().has(lateId));
  assert.is(requests.get(lateId)?.length, 1, 'not delivered again');
  const stages = await stagesOf(hub, [lateId]);
  assert.is(stages[lateId]!.routed, 1);
  assert.ok(stages[lateId]!.duplicate! >= 1);
});

test.run();
