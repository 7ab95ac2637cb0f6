// The queue manager under the MQ connector keeps MQ's unit-of-work semantics: the in-memory one always, and IBM MQ
// itself when SWX_TEST_MQ_QMGR, SWX_TEST_MQ_CONNAME, SWX_TEST_MQ_CHANNEL and SWX_TEST_MQ_QUEUE point at a queue
// manager and an empty local queue (SWX_TEST_MQ_USER_ENV / SWX_TEST_MQ_PASSWORD_ENV name the variables holding
// credentials when it needs them); without them that part is reported as skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InMemoryQueueManager, InMemoryQueueManagers, ibmMqMissing, loadIbmMq, mqEndpoint, type QueueManagers } from '../../connectors/mq/index.ts';
import { IbmMqQueueManagers } from '../../connectors/mq/ibmmq.ts';
import type { OutgoingMqMessage } from '../../connectors/mq/session.ts';

const message = (text: string): OutgoingMqMessage => ({
  descriptor: { msgId: Buffer.alloc(24), correlId: Buffer.alloc(24), format: 'MQSTR', persistent: true, expiry: -1, replyToQ: '', replyToQMgr: '' },
  properties: { swxService: 'customs.declaration' },
  body: Buffer.from(text),
});

/** The same checks against any queue manager: what the partner and the hub would each see through their own sessions. */
async function syncpointSemantics(managers: QueueManagers, endpointOf: (queue: string) => unknown, queue: string): Promise<void> {
  const endpoint = mqEndpoint.parse(endpointOf(queue));
  const partner = await managers.open(endpoint, 'PARTNER');
  const hub = await managers.open(endpoint, 'HUB');
  const other = await managers.open(endpoint, 'OTHER');
  try {
    // A put under syncpoint is invisible until commit.
    await partner.put(queue, message('first'));
    assert.is(await hub.get(queue, 1024), undefined, 'an uncommitted put is seen by no one');
    await partner.commit();

    // A get under syncpoint hides the message from everyone else until commit or backout.
    const got = await hub.get(queue, 1024);
    assert.is(got?.body.toString(), 'first');
    assert.is(got?.descriptor.backoutCount, 0);
    assert.is(got?.properties.swxService, 'customs.declaration', 'properties travel with the message');
    assert.is(await other.get(queue, 1024), undefined, 'a message got under syncpoint is hidden from other sessions');

    // Backout returns it, counted.
    await hub.backout();
    const again = await other.get(queue, 1024);
    assert.is(again?.body.toString(), 'first', 'backout returns the message to the queue');
    assert.is(again?.descriptor.backoutCount, 1, 'BackoutCount counts the backout');
    assert.ok(again?.descriptor.msgId.equals(got!.descriptor.msgId), 'the same message, same MsgId');

    // Commit deletes it.
    await other.commit();
    assert.is(await hub.get(queue, 1024), undefined, 'a committed get removes the message');
    await hub.commit();

    // A put backed out is discarded.
    await partner.put(queue, message('discarded'));
    await partner.backout();
    await partner.commit();
    assert.is(await hub.get(queue, 1024), undefined, 'a backed-out put never reaches the queue');
    await hub.commit();
  } finally {
    for (const session of [partner, hub, other]) {
      await session.backout().catch(() => undefined);
      await session.close().catch(() => undefined);
    }
  }
}

const inMemoryEndpoint = (queue: string) => ({ queueManager: 'QM1', connectionName: 'localhost(1414)', channel: 'DEV.APP.SVRCONN', getQueue: queue });

test('in-memory: put invisible until commit, get hidden until commit, backout returns it counted, backed-out put discarded', async () => {
  await syncpointSemantics(new InMemoryQueueManagers(), inMemoryEndpoint, 'SWX.SEMANTICS');
});

test('in-memory: a connection that breaks before commit (a crash) returns what it got, counted; a disconnect commits', async () => {
  const manager = new InMemoryQueueManager('QM1');
  const partner = manager.connect();
  await partner.put('Q', message('one'));
  await partner.put('Q', message('two'));
  await partner.commit();

  const crashed = manager.connect();
  assert.is((await crashed.get('Q', 1024))?.body.toString(), 'one');
  assert.is(manager.depth('Q'), 1);
  assert.is(manager.held('Q'), 1);
  crashed.sever();
  assert.is(manager.depth('Q'), 2, 'the crashed session\'s get is backed out');
  assert.match(await crashed.get('Q', 1024).then(() => '', (error: Error) => error.message), /closed/, 'a broken connection takes no more calls');

  const next = manager.connect();
  const redelivered = await next.get('Q', 1024);
  assert.is(redelivered?.body.toString(), 'one', 'redelivered in its place, first');
  assert.is(redelivered?.descriptor.backoutCount, 1);
  await next.put('Q', message('three'));
  await next.close(); // MQDISC: the open unit of work is committed
  assert.equal(manager.browse('Q').map((m) => m.body.toString()), ['two', 'three']);
});

test('in-memory: a message past its Expiry is discarded; one over the get\'s buffer comes truncated (MQGMO_ACCEPT_TRUNCATED_MSG)', async () => {
  let now = 1_000_000;
  const manager = new InMemoryQueueManager('QM1', () => now);
  const session = manager.connect();
  await session.put('Q', { ...message('short-lived'), descriptor: { ...message('').descriptor, expiry: 10 } }); // 1 s
  await session.put('Q', message('0123456789'));
  await session.commit();
  now += 1_001;
  const got = await session.get('Q', 4);
  assert.is(got?.body.toString(), '0123');
  assert.is(got?.truncated, true);
  assert.is(manager.depth('Q'), 0, 'the expired one is gone, the truncated one held');
});

test('ibmmq cannot load here without IBM\'s client library: the error says what to install', async () => {
  const loaded = await loadIbmMq().then(() => true, (error: Error) => {
    assert.ok(error.message.startsWith(ibmMqMissing), error.message);
    for (const named of ['redistributable client', '/opt/mqm', 'setmqenv', 'npm install ibmmq']) assert.ok(error.message.includes(named), `names ${named}`);
    return false;
  });
  if (loaded) console.log('  (the ibmmq package and IBM\'s MQ client library are installed here)');
});

const real = ['SWX_TEST_MQ_QMGR', 'SWX_TEST_MQ_CONNAME', 'SWX_TEST_MQ_CHANNEL', 'SWX_TEST_MQ_QUEUE'].every((name) => process.env[name]);
// Without a queue manager to run against, the suite reports this test as skipped.
(real ? test : test.skip)('IBM MQ (SWX_TEST_MQ_*): the same syncpoint semantics through ibmmq against a real queue manager', async () => {
  const env = process.env;
  await syncpointSemantics(new IbmMqQueueManagers(await loadIbmMq()), (queue) => ({
    queueManager: env.SWX_TEST_MQ_QMGR, connectionName: env.SWX_TEST_MQ_CONNAME, channel: env.SWX_TEST_MQ_CHANNEL, getQueue: queue, putQueue: queue,
    ...(env.SWX_TEST_MQ_USER_ENV ? { userEnv: env.SWX_TEST_MQ_USER_ENV } : {}),
    ...(env.SWX_TEST_MQ_PASSWORD_ENV ? { passwordEnv: env.SWX_TEST_MQ_PASSWORD_ENV } : {}),
  }), env.SWX_TEST_MQ_QUEUE!);
});

test.run();
