// The MQ connector in a real hub process. Here, where IBM's MQ C client library is not installed: the hub starts,
// loads ibmmq only once an MQ partner is registered, then reports the connector unhealthy in /readyz and in its
// metrics, naming what to install, while a message to the MQ partner waits (neither delivered nor dead-lettered).
// With `connectors.mq.queueManager: "in-memory"` (tests and demos) the same delivery is put, committed and evidenced.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MessageStatus } from '../../engine/status.ts';
import { statusCommand } from '../helpers/status-command.ts';
import { addAgency, addService, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

const mqEndpoint = {
  queueManager: 'QM1', connectionName: 'mq.ports.example(1414)', channel: 'SWX.SVRCONN',
  putQueue: 'SWX.TO.PORTS', getQueue: 'PORTS.TO.SWX', tls: { cipherSpec: 'ANY_TLS13_OR_HIGHER', keyRepository: '/etc/swx/mq/key' },
  userEnv: 'SWX_MQ_PORTS_USER', passwordEnv: 'SWX_MQ_PORTS_PASSWORD',
};

/** A hub with a REST sender, CUSTOMS, and an MQ partner, PORTS, that CUSTOMS may send declarations to. */
async function hubWithMqPartner(settings?: Record<string, unknown>): Promise<{ hub: HubProcess; customs: TestAgency }> {
  const dataDir = tempDir('mq-hub');
  if (settings) writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ connectors: { mq: settings } }));
  const hub = await startHubProcess({ dataDir });
  const readyz = (await fetch(`http://127.0.0.1:${hub.opsPort}/readyz`).then((r) => r.json())) as { connectors: Record<string, { ok: boolean; detail?: string }> };
  assert.equal(readyz.connectors.mq, { ok: true, detail: 'no MQ partners' }, 'without MQ partners the connector loads nothing and is healthy');
  assert.not.ok(hub.output().includes('Cannot find MQ C library'), 'ibmmq is not loaded while no partner needs it');
  const customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  const ports = await addAgency(hub, 'PORTS', { receiver: false });
  const refused = await hub.admin('PUT', '/api/partners/PORTS', { name: 'Ports (MQ)', certificates: [ports.credential.certPem], endpoints: { mq: { ...mqEndpoint, connectionName: 'mq.ports.example:1414' } } });
  assert.is(refused.status, 400);
  assert.match(JSON.stringify(refused.body), /endpoint mq\.connectionName: host\(port\)/, 'an endpoint that does not fit the schema is refused, naming the field');
  const registered = await hub.admin('PUT', '/api/partners/PORTS', { name: 'Ports (MQ)', certificates: [ports.credential.certPem], endpoints: { mq: mqEndpoint } });
  assert.is(registered.status, 200, JSON.stringify(registered.body));
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['PORTS']);
  return { hub, customs };
}

const readyz = async (hub: HubProcess) => (await fetch(`http://127.0.0.1:${hub.opsPort}/readyz`)).json() as Promise<{ status: string; connectors: Record<string, { ok: boolean; detail?: string }> }>;
const metrics = async (hub: HubProcess) => (await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`)).text();

test('without IBM\'s MQ client library: the hub runs, the MQ connector says it is unhealthy and what to install, deliveries to MQ partners wait', async () => {
  const { hub, customs } = await hubWithMqPartner();
  try {
    await waitFor('the MQ connector unhealthy', async () => (await readyz(hub)).connectors.mq?.ok === false, 10_000);
    const ready = await readyz(hub);
    assert.is(ready.status, 'ready', 'the hub stays ready for its other partners');
    assert.is(ready.connectors.rest?.ok, true);
    const detail = ready.connectors.mq!.detail ?? '';
    for (const named of ['IBM MQ redistributable client', '/opt/mqm', 'setmqenv', 'npm install ibmmq']) assert.ok(detail.includes(named), `names ${named}: ${detail}`);
    // npm drops the optional package when its postinstall cannot download IBM's client; installed without it, the package
    // itself fails to find the C library: either way the load was tried once PORTS was registered, and failed.
    assert.match(hub.output(), /Cannot find MQ C library|Cannot find (package|module) 'ibmmq'/, 'ibmmq was loaded once PORTS was registered');
    assert.match(await metrics(hub), /swx_connector_healthy\{protocol="mq"\} 0/);
    assert.match(await metrics(hub), /swx_connector_healthy\{protocol="rest"\} 1/);

    const answer = await customs.client.send({ to: 'PORTS', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from('{"declarationNo":"MQ-1"}') });
    assert.is(answer.status, 202, 'accepted: the hub holds it for PORTS');
    const id = String(answer.body.id);
    await waitFor('the circuit to PORTS open', async () => /swx_partner_circuit_open\{partner="PORTS"\} 1/.test(await metrics(hub)), 20_000);
    await sleep(2_000);
    const stages = (await evidenceOf(hub, id, 'routed')).map((row) => row.stage);
    assert.ok(stages.includes('received'), `${stages}`);
    assert.not.ok(stages.includes('delivered'), 'not delivered');
    assert.not.ok(stages.includes('dead_lettered'), 'not dead-lettered');
    assert.equal((await hub.admin('GET', '/api/dlq')).body, [], 'nothing in the dead-letter stream');
  } finally {
    customs.client.close();
    await hub.stop();
  }
});

test('with the in-memory queue manager (tests and demos): a delivery to an MQ partner is put, committed and evidenced as delivered', async () => {
  const { hub, customs } = await hubWithMqPartner({ queueManager: 'in-memory' });
  try {
    const answer = await customs.client.send({ to: 'PORTS', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from('{"declarationNo":"MQ-2"}') });
    assert.is(answer.status, 202);
    const id = String(answer.body.id);
    const rows = await evidenceOf(hub, id, 'delivered', 20_000);
    const delivered = rows.find((row) => row.stage === 'delivered');
    assert.ok(delivered, `delivered: ${rows.map((row) => row.stage)}`);
    assert.match(Buffer.from(delivered.raw, 'base64').toString('utf8'), /^MQCMIT ok: QM1 SWX\.TO\.PORTS MsgId [0-9a-f]{48}/, 'the evidence names the commit');
    const status = await customs.client.status(id);
    assert.is(status.status, 200);
    const [ports] = (status.body as unknown as MessageStatus).receivers;
    assert.is(ports?.state, 'delivered', 'the sender sees it delivered');
    assert.is(ports?.receipt?.signature, undefined, 'with the commit as its receipt, no signature');
    assert.match(Buffer.from(ports!.receipt!.raw, 'base64').toString('utf8'), /^MQCMIT ok/);
    const swx = await statusCommand(hub, customs);
    const command = await swx(id);
    assert.is(command.code, 0, `swx status counts a committed MQ delivery as delivered: ${command.stderr}`);
    assert.match(command.stderr, /^PORTS: delivered, committed to its MQ queue manager/m);
    const mq = (await readyz(hub)).connectors.mq!;
    assert.is(mq.ok, true, JSON.stringify(mq));
    assert.match(mq.detail ?? '', /in-memory/);
  } finally {
    customs.client.close();
    await hub.stop();
  }
});

test.run();
