// Hub processes counting each other on a real nats-server: each keeps its key in the presence bucket fresh, a process
// that stops removes its key, and one that dies without stopping is counted out when its key expires.
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import { presenceBucket, startPresence, type Presence } from '../../engine/nats/presence.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { freePort, tempDir, waitFor } from '../helpers/hub.ts';

// Long enough that a renewal is never late enough on a loaded machine for a live key to expire (it lives three).
const renewMs = 500;
let nats: EmbeddedNats;
let bus: Bus;
const running: Presence[] = [];

test.before(async () => {
  nats = await startEmbeddedNats(tempDir('presence'), await freePort());
  bus = await connectBus(nats.url, 'presence-test');
});

test.after(async () => {
  for (const presence of running) await presence.stop();
  await bus?.nc.close();
  await nats?.stop();
});

test('processes count each other (two on one node, with their own data folders), and a stopped one is counted out at the next renewal', async () => {
  const counts: number[] = [];
  const first = await startPresence(bus, { node: 'hub-a', dataDir: '/srv/swx-a' }, (count) => counts.push(count), renewMs);
  running.push(first);
  assert.is(first.count, 1);
  const second = await startPresence(bus, { node: 'hub-a', dataDir: '/srv/swx-b' }, () => undefined, renewMs);
  assert.is(second.count, 2, 'the second sees the first at once');
  await waitFor('the first to see the second', () => first.count === 2, 5_000);
  await second.stop();
  await waitFor('the first to count the second out', () => first.count === 1, 5_000);
  assert.equal(counts, [2, 1], 'each change reported once');
});

test('a process that died without stopping is counted out when its key expires (three renewals)', async () => {
  const [survivor] = running;
  // What a killed process leaves: its key, never renewed again.
  const kv = await new Kvm(bus.js).open(presenceBucket);
  const put = Date.now();
  await kv.put('hub-killed.4242.deadbeef', JSON.stringify({ node: 'hub-killed', pid: 4242 }));
  await waitFor('the survivor to count the killed process', () => survivor!.count === 2, 5_000);
  await waitFor('the killed process to expire', () => survivor!.count === 1, 10_000);
  assert.ok(Date.now() - put >= 3 * renewMs, 'not before its key expired');
});

test('one node and data folder is one key: a restarted process, whose old key has not expired yet, is not counted twice', async () => {
  const [survivor] = running;
  const killed = await startPresence(bus, { node: 'hub-c', dataDir: '/srv/swx-c' }, () => undefined, renewMs);
  running.push(killed);
  await waitFor('the survivor to count hub-c', () => survivor!.count === 2, 5_000);
  const restarted = await startPresence(bus, { node: 'hub-c', dataDir: '/srv/swx-c' }, () => undefined, renewMs);
  running.push(restarted);
  assert.is(restarted.count, 2, 'the survivor and hub-c once');
  await sleep(2 * renewMs);
  assert.is(survivor!.count, 2, 'the survivor still counts hub-c once');
});

test.run();
