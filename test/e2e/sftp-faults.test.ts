// kill -9 of the hub while twenty large files are uploaded through its SFTP server by OpenSSH's sftp and pushed on by
// the hub to a requester's own SFTP server (a real OpenSSH sshd), another requester receiving over REST. The agency
// uploads again what was cut, as a careful system does (the same file and signature, so the same message). Judged from
// outside, counted: every accepted file reaches every requester, stored once; none is lost; the repeats are bounded by
// what each requester's lane holds in flight and are evidenced as redeliveries; no half-file is ever delivered (the
// requester's inbox folder is watched throughout, and every file and request body delivered is checked by SHA-256).
// SWX_TEST_SFTP_FAULT_MB sets the file size (default 20: large enough that a push is caught with less than half of it
// written and the kill lands in its middle, which the test asserts).
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { InboxEntry } from '../../connectors/rest/agency.ts';
import { hubClientKey } from '../../connectors/sftp/client/index.ts';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import { issueAgency } from '../../engine/pki/index.ts';
import { addAgency, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { fanOutSettled, stagesOf } from '../helpers/delivery.ts';
import { SftpAgencySide } from '../helpers/sftp.ts';
import { startSshd, type Sshd } from '../../app/sshd.ts';

const MiB = 1024 * 1024;
const fileBytes = Number(process.env.SWX_TEST_SFTP_FAULT_MB ?? 20) * MiB;
const files = 20;
/** Uploads the agency keeps going at once. */
const uploadsAtOnce = 4;
const channel = 'bulk';
const requesterIds = ['PORTS', 'BOFT'];
/** A requester's lane holds one item at a time: one kill can repeat at most that one. */
const repeatsPerRequester = 1;

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let sshd: Sshd;
let side: SftpAgencySide;
let bus: Bus;
let key: string;
let inbox: string;
const sshdDir = tempDir('sftp-faults-sshd');
/** The ids BOFT's receiver stored, in order. */
const storedAtBoft: string[] = [];
/** Per message id, the SHA-256 of every complete request body that reached BOFT. */
const boftRequests = new Map<string, string[]>();
/** Files seen under a final name in PORTS's inbox folder with fewer bytes than sent. */
const halfFiles: string[] = [];
let watching = true;

const nameOf = (index: number) => `bulk-${String(index).padStart(2, '0')}.bin`;

/** A file of `fileBytes`: 1 MiB of one random block, each MiB stamped with the file's index and its own position. */
function makeFile(path: string, index: number, block: Buffer): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < fileBytes; at += block.length) {
      const piece = Buffer.from(block.subarray(0, Math.min(block.length, fileBytes - at)));
      piece.writeUInt32BE(index, 0);
      piece.writeUInt32BE(at / MiB, 4);
      writeSync(fd, piece);
      hash.update(piece);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_BACKOFF_MS: '100,200,400', SWX_PROBE_INTERVAL_MS: '500' } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT', { onMessage: (entry: InboxEntry) => storedAtBoft.push(entry.id) });
  boft.receiver!.server.on('request', (req) => {
    const messageId = String(req.headers['swx-message-id']);
    const digest = createHash('sha256');
    req.on('data', (chunk: Buffer) => digest.update(chunk));
    req.on('end', () => boftRequests.set(messageId, [...(boftRequests.get(messageId) ?? []), digest.digest('hex')]));
  });
  sshd = await startSshd(sshdDir, [hubClientKey(hub.dataDir, 'hub').publicKey]);
  inbox = join(sshd.root, 'inbox');
  mkdirSync(inbox);
  const ports = await issueAgency(join(hub.dataDir, 'pki'), 'PORTS');
  const registered = await hub.admin('PUT', '/api/partners/PORTS', {
    name: 'Port authority (own SFTP server)', certificates: [ports.certPem],
    endpoints: { sftp: { remote: { host: '127.0.0.1', port: sshd.port, user: sshd.user, hostKeyFingerprint: sshd.fingerprint, inboxDir: inbox } } },
  });
  assert.is(registered.status, 200, JSON.stringify(registered.body));
  const put = await hub.admin('PUT', `/api/channels/${channel}`, { name: 'Bulk data', dataset: 'bulk files', providers: ['CUSTOMS'], requesters: requesterIds });
  assert.is(put.status, 200, JSON.stringify(put.body));
  side = new SftpAgencySide(hub);
  key = side.sshKey('customs');
  await side.register('CUSTOMS', key);
  bus = await connectBus(`nats://127.0.0.1:${hub.natsPort}`, 'sftp-faults-test');
});

test.after(async () => {
  watching = false;
  await bus?.nc.close();
  customs?.client.close();
  await boft?.receiver?.close();
  await hub?.stop();
  await sshd?.stop();
  // Gigabytes of files: not left behind.
  for (const dir of [side?.work, sshdDir, hub?.dataDir]) if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
});

/** Watches PORTS's inbox folder: a file under its final name must always be whole. */
async function watchInbox(): Promise<void> {
  while (watching) {
    for (const name of readdirSync(inbox)) {
      if (name.startsWith('.')) continue; // a temporary name, invisible to the agency's systems by convention
      const size = statSync(join(inbox, name), { throwIfNoEntry: false })?.size;
      if (size !== undefined && size !== fileBytes) halfFiles.push(`${name} (${size} bytes)`);
    }
    await sleep(5);
  }
}

/** Uploads one file as the agency's system does, again after any failure, until the hub's receipt says it was taken. */
async function uploadUntilTaken(name: string): Promise<{ id: string; attempts: number; duplicate: boolean }> {
  const receipt = join(side.work, `${name}.receipt.json`);
  for (let attempt = 1; attempt <= 10; attempt++) {
    rmSync(receipt, { force: true });
    const { code } = await side.sftp('CUSTOMS', key, [
      `cd /outbox/${channel}`, `put ${name}.p7s`, `put ${name} ${name}.part`, `rename ${name}.part ${name}`, `get /receipts/${name}.receipt.json`,
    ], 20 * 60_000);
    if (code === 0 && existsSync(receipt)) {
      const taken = JSON.parse(readFileSync(receipt, 'utf8'));
      return { id: taken.id, attempts: attempt, duplicate: taken.duplicate };
    }
    // Cut by the kill: sent again once the hub is back.
    await waitFor('the hub ready again', () => fetch(`http://127.0.0.1:${hub.opsPort}/readyz`).then((r) => r.ok, () => false), 120_000);
  }
  throw new Error(`${name} was not taken in 10 attempts`);
}

test(`kill -9 of the hub during ${files} uploads of ${fileBytes / MiB} MiB and their pushes: every file reaches every requester once, whole`, async () => {
  const block = Buffer.alloc(MiB);
  for (let at = 0; at < MiB; at += 32) createHash('sha256').update(`${at}`).digest().copy(block, at);
  const sent = new Map<string, string>();
  for (let index = 0; index < files; index++) {
    const path = join(side.work, nameOf(index));
    sent.set(nameOf(index), makeFile(path, index, block));
    side.sign(customs, path);
  }
  const watcher = watchInbox();

  const queue = [...sent.keys()];
  const taken = new Map<string, { id: string; attempts: number; duplicate: boolean }>();
  const worker = async () => {
    for (let name = queue.shift(); name; name = queue.shift()) taken.set(name, await uploadUntilTaken(name));
  };
  const uploads = Promise.all(Array.from({ length: uploadsAtOnce }, worker));

  // The kill comes once a push to PORTS has written part of its temporary file, less than half (so that the rest
  // cannot be written in the moment the kill takes), while uploads are still going on.
  let killedAt: { accepted: number; pushing: string[] } | undefined;
  const tempSize = (name: string) => statSync(join(inbox, name), { throwIfNoEntry: false })?.size ?? 0;
  await waitFor('a push under way while uploads go on', () => {
    const pushing = readdirSync(inbox).filter((name) => name.startsWith('.') && tempSize(name) > 0 && tempSize(name) < fileBytes / 2);
    if (pushing.length === 0 || taken.size >= files - uploadsAtOnce) return false;
    killedAt = { accepted: taken.size, pushing };
    return true;
  }, 20 * 60_000);
  await hub.kill();
  assert.ok(killedAt!.pushing.some((name) => existsSync(join(inbox, name)) && tempSize(name) < fileBytes),
    `the kill cut a push short: ${killedAt!.pushing.join(', ')} still under its temporary name, not whole`);
  await hub.restart();

  await uploads;
  const ids = [...sent.keys()].map((name) => taken.get(name)!.id);
  assert.is(new Set(ids).size, files, 'each file is its own message');
  const sha256Of = new Map([...sent].map(([name, digest]) => [taken.get(name)!.id, digest]));

  await waitFor('every file at every requester', () => ids.every((id) => existsSync(join(inbox, `${id}.bin`)) && storedAtBoft.includes(id)), 20 * 60_000);
  await waitFor('the fan-out and its evidence settled', async () => {
    if (!(await fanOutSettled(bus, channel, requesterIds))) return false;
    const stages = await stagesOf(hub, ids);
    return ids.every((id) => (stages[id]?.delivered ?? 0) >= requesterIds.length);
  }, 10 * 60_000);
  watching = false;
  await watcher;

  assert.equal(halfFiles, [], 'no file was ever visible under its final name with fewer bytes than sent');
  // PORTS: one file per message under its final name, each the bytes sent; no temporary file left.
  assert.equal(readdirSync(inbox).sort(), ids.map((id) => `${id}.bin`).sort(), 'PORTS holds each file once, and nothing else');
  for (const id of ids) assert.is(await sha256File(join(inbox, `${id}.bin`)), sha256Of.get(id), `${id} at PORTS is the file sent`);
  // BOFT: stored once each, and every complete request it was sent carried the whole file.
  assert.equal([...storedAtBoft].sort(), [...ids].sort(), 'BOFT stored each file once');
  for (const id of ids) {
    assert.is(await sha256File(join(boft.inboxDir, `${id}.bin`)), sha256Of.get(id), `${id} at BOFT is the file sent`);
    assert.ok((boftRequests.get(id) ?? []).every((digest) => digest === sha256Of.get(id)), `${id}: every request to BOFT carried the whole file`);
  }

  const stages = await stagesOf(hub, ids);
  // A repeat is evidenced either as `redelivered` (the first receipt was kept) or by a receipt in which the requester
  // says it already held the file (the first receipt died with the hub): SFTP's transfer record, REST's answer.
  const evidenced = new Map(requesterIds.map((requester) => [requester, 0]));
  let resumedPushes = 0;
  for (const id of ids) {
    const counts = stages[id]!;
    assert.is(counts.received! - (counts.duplicate ?? 0) - (counts.rejected ?? 0), 1, `${id} accepted once: ${JSON.stringify(counts)}`);
    assert.is(counts.routed, 1 + requesterIds.length, `${id} routed once to each requester: ${JSON.stringify(counts)}`);
    assert.is(counts.delivered, requesterIds.length, `${id} delivered once per requester: ${JSON.stringify(counts)}`);
    for (const row of await evidenceOf(hub, id, 'delivered')) {
      const saysHeld = row.stage === 'delivered' && /"duplicate":\s*true/.test(Buffer.from(row.raw ?? '', 'base64').toString('utf8'));
      if (row.stage === 'redelivered' || saysHeld) evidenced.set(row.to_partner, evidenced.get(row.to_partner)! + 1);
      if (row.stage === 'delivered' && row.to_partner === 'PORTS') {
        const { transfer } = JSON.parse(Buffer.from(row.raw, 'base64').toString('utf8'));
        if (!transfer.duplicate) assert.is(transfer.resumedFrom + transfer.written, fileBytes, `${id}: the push to PORTS wrote what it did not resume`);
        if (transfer.resumedFrom > 0) resumedPushes += 1;
      }
    }
  }
  // What BOFT received more than once: its complete requests beyond the first for each file.
  const boftRepeats = ids.reduce((sum, id) => sum + Math.max(0, (boftRequests.get(id)?.length ?? 0) - 1), 0);
  for (const [requester, count] of evidenced) assert.ok(count <= repeatsPerRequester, `${requester}: ${count} repeats, more than its lane holds in flight`);
  assert.ok(boftRepeats <= evidenced.get('BOFT')!, `each repeat BOFT received is evidenced (${boftRepeats} received, ${evidenced.get('BOFT')} evidenced)`);
  assert.ok(resumedPushes >= 1, 'the push the kill cut short went on from its partial file');
  const reuploads = [...taken.values()].reduce((sum, upload) => sum + upload.attempts - 1, 0);
  console.log(`kill -9 with ${killedAt!.accepted} of ${files} files accepted and ${killedAt!.pushing.length} push(es) writing: ${reuploads} upload(s) sent again, ${resumedPushes} push(es) resumed ` +
    `(${[...taken.values()].filter((upload) => upload.duplicate).length} answered as duplicates); repeats evidenced ${JSON.stringify(Object.fromEntries(evidenced))}, ` +
    `BOFT received ${boftRepeats} repeat(s)`);
  assert.equal((await hub.admin('GET', '/api/dlq')).body, [], 'nothing dead-lettered');
});

test.run();
