// MQ inbound and outbound against the hub's own parts: a real nats-server with the hub's streams, the real intake
// stage, partner registry and trust store, and the in-memory queue manager standing for IBM MQ. In one process, so
// that the test holds the queue manager the loop reads and can pause the nats-server under it: what a partner and the
// hub each see on the queues, what JetStream stored, and what the evidence stream says. (A hub under test runs as a
// child process, where its in-memory queues cannot be reached; test/connectors/mq-hub.test.ts drives that one.)
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deliveryMessage, InMemoryQueueManager, InMemoryQueueManagers, MqInbound, MqOutbound, mqEndpoint, mqIdOf, type MqEndpoint } from '../../connectors/mq/index.ts';
import type { OutgoingMqMessage } from '../../connectors/mq/session.ts';
import type { Envelope } from '../../engine/envelope.ts';
import { DeliveryError } from '../../engine/outbound.ts';
import { inboundBackouts } from '../../engine/metrics.ts';
import { signCms, signXml, verifyCms, verifyXml } from '../../engine/trust/index.ts';
import { tempDir, waitFor } from '../helpers/hub.ts';
import { startIntakeParts, type IntakeParts } from '../helpers/intake-parts.ts';
import { pause, resume } from '../helpers/pause.ts';

let hub: IntakeParts;

const endpoint: MqEndpoint = mqEndpoint.parse({
  queueManager: 'QM1', connectionName: 'mq.customs.example(1414)', channel: 'SWX.SVRCONN',
  getQueue: 'CUSTOMS.TO.SWX', putQueue: 'SWX.TO.CUSTOMS', errorQueue: 'CUSTOMS.ERRORS', backoutQueue: 'CUSTOMS.BACKOUT',
  backoutThreshold: 3, pollIntervalMs: 50,
});

test.before(async () => {
  hub = await startIntakeParts(tempDir('mq-inbound'), ['CUSTOMS', 'BOFT']);
  await hub.registry.putPartner({ id: 'CUSTOMS', name: 'Customs', certificates: [hub.agencies.CUSTOMS!.certPem], endpoints: { mq: endpoint } });
  await hub.registry.putPartner({ id: 'BOFT', name: 'Foreign Trade', certificates: [hub.agencies.BOFT!.certPem], receive: 'pull' });
  await hub.registry.putService({ id: 'customs.declaration', name: 'Declarations', rules: [{ from: ['CUSTOMS'], to: ['BOFT'] }] });
});

test.after(async () => {
  await hub?.close();
});

/** The inbound loop of CUSTOMS over `managers`, as the connector starts it. */
function inbound(managers: InMemoryQueueManagers): MqInbound {
  return new MqInbound('CUSTOMS', endpoint as MqEndpoint & { getQueue: string }, managers, {
    intake: hub.intake, registry: hub.registry, trust: hub.trust, payloadVerifiers: { verifyCms, verifyXml }, signing: hub.signing,
    maxMessageBytes: 1024 * 1024, backoutQueue: 'SWX.BACKOUT', onHealth: () => undefined,
  });
}

/** A message as CUSTOMS's system puts it: a declaration in CMS SignedData, the envelope in properties. */
async function declaration(id: string, extra: { properties?: Record<string, string>; signed?: boolean; replyToQ?: string } = {}): Promise<OutgoingMqMessage> {
  const document = Buffer.from(JSON.stringify({ declaration: id, goods: 'tea', value: 1200 }));
  return {
    descriptor: {
      msgId: Buffer.alloc(24), correlId: Buffer.alloc(24), format: extra.signed === false ? 'MQSTR' : '', persistent: true, expiry: -1,
      replyToQ: extra.replyToQ ?? '', replyToQMgr: '',
    },
    properties: { swxService: 'customs.declaration', swxTo: 'BOFT', swxMessageId: id, ...extra.properties },
    body: extra.signed === false ? document : await signCms({ data: document, certPem: hub.agencies.CUSTOMS!.certPem, keyPem: hub.agencies.CUSTOMS!.keyPem }),
  };
}

async function partnerPuts(managers: InMemoryQueueManagers, message: OutgoingMqMessage): Promise<void> {
  const session = managers.manager('QM1').connect();
  await session.put(endpoint.getQueue!, message);
  await session.close();
}

/** The envelopes JetStream holds for BOFT with this id. */
const stored = (id: string) => hub.stored('BOFT', id);

/**
 * Puts a declaration as CUSTOMS, pauses the nats-server, starts the inbound loop and, once the loop holds the message
 * under syncpoint, runs `whilePaused`; then lets the nats-server go on. Resolves with the loop and the queue manager.
 */
async function gotWhileNatsPaused(id: string, whilePaused: (manager: InMemoryQueueManager) => Promise<void> | void) {
  const managers = new InMemoryQueueManagers();
  const manager = managers.manager('QM1');
  await partnerPuts(managers, await declaration(id));
  const loop = inbound(managers);
  const nats = hub.natsPid();
  try {
    await pause(nats);
    loop.start();
    await waitFor('the loop got the message under syncpoint', () => manager.held(endpoint.getQueue!) === 1, 30_000);
    await whilePaused(manager);
  } catch (error) {
    resume(nats);
    // A loop left running would keep the test process alive past its last test.
    await loop.stop();
    throw error;
  }
  resume(nats);
  return { loop, manager };
}

test('a message is committed only once JetStream acknowledged its envelope: while the nats-server is paused it stays got and uncommitted', async () => {
  const { loop, manager } = await gotWhileNatsPaused('DECL-1', async (paused) => {
    await sleep(1_500);
    assert.is(paused.held(endpoint.getQueue!), 1, 'still held by the uncommitted get while JetStream cannot acknowledge');
    assert.is(paused.depth(endpoint.getQueue!), 0);
  });
  await waitFor('committed', () => manager.held(endpoint.getQueue!) === 0, 30_000);
  await loop.stop();
  assert.is(manager.depth(endpoint.getQueue!), 0, 'committed: gone from the queue');
  const [envelope, ...more] = await stored('DECL-1');
  assert.ok(envelope, 'the envelope is in JetStream');
  assert.is(more.length, 0);
  assert.is(envelope!.protocol, 'mq');
  assert.is(envelope!.from, 'CUSTOMS');
  assert.is(envelope!.service, 'customs.declaration');
  assert.is(envelope!.payloadSignature?.scheme, 'cms', 'the CMS signature in the body was checked and kept');
});

test('a hub that dies before its commit leaves the message on the queue: got again, stored once (the repeat is a duplicate)', async () => {
  const { loop, manager } = await gotWhileNatsPaused('DECL-2', (paused) => {
    // The connection breaks as it does when the hub process dies: the queue manager backs the get out.
    paused.severAll();
    assert.is(paused.depth(endpoint.getQueue!), 1, 'back on the queue');
    assert.is(paused.browse(endpoint.getQueue!)[0]!.descriptor.backoutCount, 1);
  });
  await waitFor('taken again and committed', () => manager.depth(endpoint.getQueue!) === 0 && manager.held(endpoint.getQueue!) === 0, 30_000);
  await loop.stop();
  assert.is((await stored('DECL-2')).length, 1, 'one envelope: JetStream de-duplicated the second acceptance');
  const records = (await hub.evidence.published()).filter((record) => record.messageId === 'DECL-2');
  assert.ok(records.some((record) => record.stage === 'duplicate'), 'the repeat is evidenced as a duplicate');
});

test('a hub failure backs the message out (JetStream does not answer within its timeout); it is taken once the hub is well again', async () => {
  const backouts = async () => (await inboundBackouts.get()).values.find((value) => value.labels.partner === 'CUSTOMS')?.value ?? 0;
  const before = await backouts();
  const { loop, manager } = await gotWhileNatsPaused('DECL-3', async () => {
    // The publish times out after 10 s: the get is backed out, counted, and the message got again.
    await waitFor('a backout', async () => (await backouts()) > before, 30_000);
  });
  await waitFor('committed', () => manager.depth(endpoint.getQueue!) + manager.held(endpoint.getQueue!) === 0, 30_000);
  await loop.stop();
  assert.is((await stored('DECL-3')).length, 1, 'stored once');
  assert.equal(manager.browse('CUSTOMS.BACKOUT'), [], 'an outage does not make a message poison');
});

test('a body with an enveloped XMLDSig by the partner is taken like CMS', async () => {
  const managers = new InMemoryQueueManagers();
  const manager = managers.manager('QM1');
  const xml = await signXml('<declaration xmlns="urn:example:customs"><no>DECL-XML</no><goods>tea</goods></declaration>', { keyPem: hub.agencies.CUSTOMS!.keyPem, certPem: hub.agencies.CUSTOMS!.certPem });
  const message = await declaration('DECL-XML');
  await partnerPuts(managers, { ...message, descriptor: { ...message.descriptor, format: 'MQSTR' }, body: Buffer.from(xml) });
  const loop = inbound(managers);
  loop.start();
  await waitFor('settled', () => manager.depth(endpoint.getQueue!) + manager.held(endpoint.getQueue!) === 0, 30_000);
  await loop.stop();
  const [envelope] = await stored('DECL-XML');
  assert.is(envelope?.contentType, 'application/xml', 'a body beginning with < is XML');
  assert.is(envelope?.payloadSignature?.scheme, 'xmldsig');
});

test('a refused message is evidenced, answered with a signed error report to its ReplyToQ (else the error queue) and committed', async () => {
  const managers = new InMemoryQueueManagers();
  const manager = managers.manager('QM1');
  await hub.evidence.published();
  await partnerPuts(managers, await declaration('DECL-UNSIGNED', { signed: false, replyToQ: 'CUSTOMS.REPLY', properties: { swxContentType: 'application/json' } }));
  await partnerPuts(managers, await declaration('DECL-DENIED', { properties: { swxTo: 'CUSTOMS' } }));
  const original = manager.browse(endpoint.getQueue!)[0]!;
  const loop = inbound(managers);
  loop.start();
  await waitFor('both settled', () => manager.depth(endpoint.getQueue!) + manager.held(endpoint.getQueue!) === 0, 30_000);
  await loop.stop();

  assert.equal(await stored('DECL-UNSIGNED'), []);
  assert.equal(await stored('DECL-DENIED'), []);
  const records = await hub.evidence.published();
  const rejected = (id: string) => records.find((record) => record.messageId === id && record.stage === 'rejected');
  assert.is(rejected('DECL-UNSIGNED')?.code, 'SWX_SIG_MISSING');
  assert.is(rejected('DECL-DENIED')?.code, 'SWX_ACL_DENIED');
  assert.ok(records.some((record) => record.messageId === 'DECL-UNSIGNED' && record.stage === 'received' && record.protocol === 'mq'), 'the raw message is evidenced as received');

  const [reply] = manager.browse('CUSTOMS.REPLY');
  assert.ok(reply, 'the unsigned one is answered on its ReplyToQ');
  assert.ok(reply!.descriptor.correlId.equals(original.descriptor.msgId), 'the report\'s CorrelId is the refused message\'s MsgId');
  assert.is(reply!.properties.swxRefTo, 'DECL-UNSIGNED');
  assert.is(reply!.properties.swxCode, 'SWX_SIG_MISSING');
  const verdict = await verifyCms(reply!.body, { trustedCertsPem: [hub.hubCaPem], pinnedCertPem: hub.signing.certPem });
  assert.ok(verdict.valid, `the report is CMS signed by the hub: ${verdict.detail}`);
  const report = JSON.parse(Buffer.from(verdict.content!).toString('utf8'));
  assert.is(report.code, 'SWX_SIG_MISSING');
  assert.is(report.messageId, 'DECL-UNSIGNED');
  const [error] = manager.browse('CUSTOMS.ERRORS');
  assert.is(error?.properties.swxCode, 'SWX_ACL_DENIED', 'one that names no ReplyToQ is answered on the endpoint\'s error queue');
});

test('a poison message goes to the backout queue with evidence; one at the threshold is tried once more and taken', async () => {
  const managers = new InMemoryQueueManagers();
  const manager = managers.manager('QM1');
  await hub.evidence.published();
  const crash = async (times: number) => {
    for (let i = 0; i < times; i++) {
      const session = manager.connect();
      await session.get(endpoint.getQueue!, 1024 * 1024);
      session.sever(); // the process that got it died
    }
  };
  const settled = async () => {
    const loop = inbound(managers);
    loop.start();
    await waitFor('settled', () => manager.depth(endpoint.getQueue!) + manager.held(endpoint.getQueue!) === 0, 30_000);
    await loop.stop();
  };
  await partnerPuts(managers, await declaration('DECL-POISON'));
  await crash(2 * endpoint.backoutThreshold);
  assert.is(manager.browse(endpoint.getQueue!)[0]!.descriptor.backoutCount, 6);
  await settled();
  await partnerPuts(managers, await declaration('DECL-UNLUCKY'));
  await crash(endpoint.backoutThreshold);
  assert.is(manager.browse(endpoint.getQueue!)[0]!.descriptor.backoutCount, 3);
  await settled();

  const [poison, ...others] = manager.browse('CUSTOMS.BACKOUT');
  assert.is(others.length, 0);
  assert.is(poison?.properties.swxMessageId, 'DECL-POISON', 'moved whole, properties and body, to the backout queue');
  assert.is(poison?.descriptor.backoutCount, 0, 'a fresh put');
  assert.equal(await stored('DECL-POISON'), [], 'not accepted');
  const records = await hub.evidence.published();
  const evidenced = records.find((record) => record.messageId === 'DECL-POISON' && record.stage === 'rejected');
  assert.is(evidenced?.code, 'SWX_MQ_BACKOUT');
  assert.match(evidenced?.detail ?? '', /backed out 6 times; moved to CUSTOMS\.BACKOUT/);
  assert.is((await stored('DECL-UNLUCKY')).length, 1, 'a message at the threshold that succeeds on its last try is taken');
});

test('outbound: a delivery is put under syncpoint and committed, MQMD and properties from the envelope; no queue manager is a transient failure', async () => {
  const managers = new InMemoryQueueManagers();
  const manager = managers.manager('QM1');
  const outbound = new MqOutbound(() => managers, 1024 * 1024);
  const now = Date.now();
  const body = Buffer.from('<declaration/>');
  const envelope: Envelope = {
    id: 'ANSWER-1', conversationId: 'CONV-1', refToMessageId: 'DECL-1', service: 'customs.declaration', action: 'deliver', from: 'BOFT', to: 'CUSTOMS',
    protocol: 'rest', contentType: 'application/xml', size: body.length, sha256: '00', receivedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
  };
  const partner = hub.registry.partner('CUSTOMS')!;
  const receipt = await outbound.deliver(envelope, { size: body.length, sha256: '00', held: body, open: () => { throw new Error('held'); } }, partner, endpoint);
  assert.match(receipt.raw, /^MQCMIT ok: QM1 SWX\.TO\.CUSTOMS MsgId /);
  assert.is(receipt.signature, undefined, 'MQ\'s acknowledgement is the commit, not a signature');
  const [put] = manager.browse('SWX.TO.CUSTOMS');
  assert.ok(put, 'committed: visible on the put queue');
  assert.ok(put!.descriptor.msgId.equals(mqIdOf('ANSWER-1')));
  assert.ok(put!.descriptor.correlId.equals(mqIdOf('DECL-1')), 'CorrelId from the message it answers');
  assert.is(put!.descriptor.persistent, true);
  assert.is(put!.descriptor.format, 'MQSTR');
  assert.ok(put!.descriptor.expiry > 590 && put!.descriptor.expiry <= 600, `Expiry in tenths of a second from the time-to-live: ${put!.descriptor.expiry}`);
  assert.equal(put!.properties, {
    swxMessageId: 'ANSWER-1', swxTo: 'CUSTOMS', swxService: 'customs.declaration', swxAction: 'deliver', swxConversationId: 'CONV-1',
    swxRefTo: 'DECL-1', swxContentType: 'application/xml', swxFrom: 'BOFT', swxReceivedAt: envelope.receivedAt,
  });
  assert.equal(put!.body, body);
  assert.equal(deliveryMessage(envelope, body, endpoint, now).descriptor.expiry, 600);

  const unreachable = new MqOutbound(() => { throw new Error('IBM MQ client library not available'); }, 1024 * 1024);
  const failure = await unreachable.deliver(envelope, { size: body.length, sha256: '00', held: body, open: () => { throw new Error('held'); } }, partner, endpoint).catch((error: unknown) => error);
  assert.instance(failure, DeliveryError);
  assert.is((failure as DeliveryError).transient, true, 'transient: the delivery waits behind the partner\'s circuit breaker, never dead-lettered');
  assert.match((failure as Error).message, /IBM MQ client library not available/);
});

test.run();
