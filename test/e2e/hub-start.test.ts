// A hub that never becomes ready (its NATS cannot be reached) fails its start and is stopped with everything it
// started: nothing is left holding the ports and folders of the next test.
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stopLeftNats, startEmbeddedNats } from '../../engine/nats/server.ts';
import { freePort, startHubProcess, tempDir, waitFor } from '../helpers/hub.ts';

/** Pids of the processes whose environment holds `entry`: a hub and whatever it started inherit its SWX_* settings. */
function processesWith(entry: string): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
    } catch {
      return false; // ended meanwhile, or not ours to read
    }
  });
}

test('a hub not ready in time is stopped, and no process of it is left behind', async () => {
  const ports = { agency: await freePort(), ops: await freePort(), nats: await freePort() };
  const nowhere = await freePort(); // nothing listens there
  const marker = `SWX_NATS_URL=nats://127.0.0.1:${nowhere}`;
  let running = false;
  const watching = waitFor('the hub process running', () => (running = processesWith(marker).length > 0), 30_000);
  const startedAt = Date.now();
  const started = await startHubProcess({ ports, env: { SWX_NATS_URL: `nats://127.0.0.1:${nowhere}` }, readyWithinMs: 3_000 })
    .then(() => undefined, (error: Error) => error);
  await watching.catch(() => undefined);
  assert.ok(running, 'the hub was started');
  assert.instance(started, Error);
  assert.match(started!.message, /hub not ready within 3 s/);
  // Stopped by SIGTERM while still connecting, well before the supervisor's SIGKILL (20 s): a process it started (the
  // TypeScript loader's helper) may take a moment after it to go, but none stays.
  assert.ok(Date.now() - startedAt < 15_000, `the hub took ${Date.now() - startedAt} ms to stop`);
  await waitFor('every process of the hub gone', () => processesWith(marker).length === 0, 10_000).catch(() => undefined);
  assert.equal(processesWith(marker), [], 'the hub and what it started are gone');
});

test('a nats-server left running by a hub killed mid-start is stopped by the supervisor that gave up on it', async () => {
  const dataDir = tempDir('left-nats');
  // Started as a hub starts its own (a process group of its own), then left as a SIGKILLed hub leaves it.
  const left = await startEmbeddedNats(dataDir, await freePort());
  const pid = Number(readFileSync(`${dataDir}/nats/nats-server.pid`, 'utf8').trim());
  assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('nats-server'), 'the nats-server runs');
  await stopLeftNats(dataDir);
  await waitFor('the nats-server gone', () => { try { process.kill(pid, 0); return false; } catch { return true; } }, 10_000);
  await left.stop().catch(() => undefined);
});

test.run();
