// Faults a hub must survive without losing or duplicating anything: a receiver that is down for longer than all
// retry delays, kill -9 of the hub and of its nats-server mid-traffic, a resend after JetStream's own two-minute
// window, and two hub processes sharing one NATS.
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPki } from '../../engine/pki/index.ts';
import { startAgencyReceiver, type AgencyClient, type OutgoingMessage } from '../../connectors/rest/agency.ts';
import { addAgency, addService, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let receiverPort: number;
let lateResendAt = 0;
const lateId = 'CUSTOMS-LATE-0001';

const message = (id: string): OutgoingMessage => ({
  to: 'BOFT', service: 'customs.declaration', messageId: id, contentType: 'application/json',
  body: Buffer.from(JSON.stringify({ declarationNo: `AA/BE/13/${id}`, value: 1 })),
});

/** What a careful sender does: retry with the same message id until the hub answers 202. */
async function sendUntilAccepted(client: AgencyClient, outgoing: OutgoingMessage, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await client.send(outgoing).catch(() => undefined);
    if (answer?.status === 202) return;
    if (answer && answer.status < 500) throw new Error(`refused: ${JSON.stringify(answer.body)}`);
    if (Date.now() > deadline) throw new Error(`not accepted within ${timeoutMs} ms`);
    await sleep(200);
  }
}

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

const inbox = () => new Set(readdirSync(boft.inboxDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)));

async function stagesOf(ids: string[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (let i = 0; i < ids.length; i += 2000) {
    const answer = await hub.admin('POST', '/api/messages/stages', { ids: ids.slice(i, i + 2000) });
    Object.assign(out, answer.body);
  }
  return out;
}

/** The set that got a 202 equals the receiver's set and the evidenced set; each routed once, none lost. */
async function assertExactlyOnce(ids: string[]): Promise<void> {
  await waitFor('every message in the inbox', () => ids.every((id) => inbox().has(id)), 90_000);
  // Work held by a killed hub returns after the ack wait: 15 s for deliveries, 20 s for the archive. The envelope's
  // records (received, routed) and the delivery's come through different consumers, so wait for both.
  await waitFor('received, routed and delivered evidence for every message', async () => {
    const stages = await stagesOf(ids);
    return ids.every((id) => (stages[id]?.delivered ?? 0) >= 1 && (stages[id]?.routed ?? 0) >= 1 && (stages[id]?.received ?? 0) >= 1);
  }, 90_000);
  const stages = await stagesOf(ids);
  for (const id of ids) {
    assert.is(stages[id]!.routed, 1, `${id} routed exactly once: ${JSON.stringify(stages[id])}`);
    assert.ok(stages[id]!.received! >= 1);
  }
  const dlq = await hub.admin('GET', '/api/dlq');
  assert.equal(dlq.body, [], 'nothing dead-lettered');
}

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_BACKOFF_MS: '100,200,400', SWX_PROBE_INTERVAL_MS: '500', SWX_BREAKER_FAILURES: '2', SWX_DELIVERY_TIMEOUT_MS: '5000' } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  receiverPort = boft.receiver!.port;
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  await sendUntilAccepted(customs.client, message(lateId));
  lateResendAt = Date.now() + 125_000;
});

test.after(async () => {
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
  await assertExactlyOnce(ids);
  assert.is(boft.receiver.deliveries, ids.length, 'each message reached the receiver once');
});

test('kill -9 of the hub while 1,000 messages are in flight: none lost, none twice', async () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `KILLHUB-${i}`);
  await sendAll(ids, { afterAccepted: 300, act: async () => { await hub.kill(); await hub.restart(); } });
  await assertExactlyOnce(ids);
});

test('kill -9 of the nats-server while 1,000 messages are in flight: none lost, none twice', async () => {
  const pidFile = join(hub.dataDir, 'nats', 'nats-server.pid');
  assert.ok(existsSync(pidFile));
  const ids = Array.from({ length: 1000 }, (_, i) => `KILLNATS-${i}`);
  await sendAll(ids, { afterAccepted: 300, act: async () => { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); } });
  await assertExactlyOnce(ids);
});

test('two hub processes on one NATS share the work and the receiver sees each id once', async () => {
  // One deployment, one PKI: the second process signs and serves TLS with the same hub certificates.
  const secondDir = tempDir('second');
  cpSync(join(hub.dataDir, 'pki'), join(secondDir, 'pki'), { recursive: true });
  const second = await startHubProcess({ dataDir: secondDir, env: { SWX_NATS_URL: `nats://127.0.0.1:${hub.natsPort}`, SWX_ARCHIVE: 'off', SWX_NODE_NAME: 'second' } });
  try {
    const secondClient = new (customs.client.constructor as typeof AgencyClient)(`https://localhost:${second.agencyPort}`, customs.credentials);
    const before = boft.receiver!.deliveries;
    const ids = Array.from({ length: 400 }, (_, i) => `TWO-${i}`);
    await Promise.all(ids.map((id, i) => sendUntilAccepted(i % 2 ? secondClient : customs.client, message(id))));
    await assertExactlyOnce(ids);
    assert.is(boft.receiver!.deliveries - before, ids.length, 'each id delivered once in all');
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
  assert.is(boft.receiver!.deliveriesOf(lateId), 0, 'not delivered again (the receiver restarted after the first delivery)');
  const stages = await stagesOf([lateId]);
  assert.is(stages[lateId]!.routed, 1);
  assert.ok(stages[lateId]!.duplicate! >= 1);
});

test.run();
