// The SFTP connector's limits, judged from outside: a 200 MiB file streams through the hub into the Object Store and
// on to its requester without the hub holding it (its peak RSS, from /proc); an agency's quota stops an upload and is
// evidenced; a path being uploaded cannot be overwritten by another session; an agency that completes by signature
// has its file taken when the file and its signature are both closed; legacy key signatures log in only where allowed,
// legacy key exchange and ciphers only on the legacy listener, and both are flagged in the evidence of the uploads.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectBus } from '../../engine/nats/jetstream.ts';
import { addAgency, evidenceOf, freePort, startHubProcess, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { pause, resume } from '../helpers/pause.ts';
import { outcome, SftpAgencySide } from '../helpers/sftp.ts';

const MiB = 1024 * 1024;
let hub: HubProcess;
let customs: TestAgency;
let doc: TestAgency;
let spa: TestAgency;
let boft: TestAgency;
let side: SftpAgencySide;
const keys: Record<string, string> = {};

/** Adds an sftp endpoint to a registered agency's entry. */
async function sftpEndpoint(id: string, endpoint: Record<string, unknown>): Promise<void> {
  const { body: partner } = await hub.admin('GET', `/api/partners/${id}`);
  const answer = await hub.admin('PUT', `/api/partners/${id}`, { ...partner, endpoints: { ...partner.endpoints, sftp: endpoint } });
  assert.is(answer.status, 200, JSON.stringify(answer.body));
}

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_SFTP_LEGACY_PORT: String(await freePort()) } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  doc = await addAgency(hub, 'DOC', { receiver: false });
  spa = await addAgency(hub, 'SPA', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  const channel = await hub.admin('PUT', '/api/channels/firms', { name: 'Firms', dataset: 'firm data', providers: ['CUSTOMS', 'DOC', 'SPA'], requesters: ['BOFT'] });
  assert.is(channel.status, 200);
  side = new SftpAgencySide(hub);
  for (const id of ['CUSTOMS', 'DOC', 'SPA']) {
    keys[id] = side.sshKey(id.toLowerCase());
    await side.register(id, keys[id]!);
  }
  await sftpEndpoint('DOC', { quotaBytes: MiB });
  await sftpEndpoint('SPA', { completion: 'signature' });
});

test.after(async () => {
  if (hub?.proc.exitCode !== null) console.log(`the hub exited (${hub?.proc.exitCode}):\n${hub?.output().slice(-4000)}`);
  for (const agency of [customs, doc, spa, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

const kib = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

test('a 200 MiB file streams through: the hub holds far less than the file, and the requester gets it intact', async () => {
  const size = 200 * MiB;
  const file = join(side.work, 'statistics.bin');
  const out = createWriteStream(file);
  for (let written = 0; written < size; written += 8 * MiB) if (!out.write(randomBytes(8 * MiB))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  side.sign(customs, file);
  const pid = hub.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // VmHWM from here holds this upload's peak alone
  const started = Date.now();
  const { code, out: said } = await side.sftp('CUSTOMS', keys.CUSTOMS!, [
    'cd /outbox/firms', 'put statistics.bin.p7s', 'put statistics.bin statistics.bin.part', 'get statistics.bin.part.sha256', 'rename statistics.bin.part statistics.bin',
    'get /receipts/statistics.bin.receipt.json',
  ], 300_000);
  const seconds = (Date.now() - started) / 1000;
  const grown = kib(pid, 'VmHWM') - before;
  console.log(`a ${size / MiB} MiB upload in ${seconds.toFixed(1)} s: the hub's peak RSS grew ${(grown / MiB).toFixed(0)} MiB`);
  assert.is(code, 0, said);
  assert.ok(grown < size / 2, `the hub's RSS peaked ${(grown / MiB).toFixed(0)} MiB over its size before`);
  const receipt = JSON.parse(readFileSync(join(side.work, 'statistics.bin.receipt.json'), 'utf8'));
  const sent = await sha256File(file);
  assert.is(receipt.sha256, sent, 'the receipt names the SHA-256 the hub computed on the way, the sender\'s');
  assert.is(readFileSync(join(side.work, 'statistics.bin.part.sha256'), 'utf8'), `${sent}  statistics.bin.part\n`, 'the upload\'s SHA-256 could be asked before completing it');
  const arrived = join(boft.inboxDir, `${receipt.id}.bin`);
  await waitFor('the file at BOFT', () => existsSync(join(boft.inboxDir, `${receipt.id}.json`)), 240_000);
  assert.is(await sha256File(arrived), sent, 'BOFT stored the same bytes');
});

/** The hub's own nats-server: a child of the hub process, named by its data folder. */
function natsServerPid(): number {
  const children = readFileSync(`/proc/${hub.proc.pid}/task/${hub.proc.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const pid = children.find((child) => readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith('nats-server'));
  if (!pid) throw new Error('the hub\'s nats-server was not found');
  return pid;
}

test('a store that stops taking chunks stops the upload: the hub does not buffer what the agency keeps sending', async () => {
  const size = 96 * MiB;
  const file = join(side.work, 'stalled.bin');
  writeFileSync(file, randomBytes(size));
  side.sign(customs, file);
  const pid = hub.proc.pid!;
  const nats = natsServerPid();
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const bus = await connectBus(`nats://127.0.0.1:${hub.natsPort}`, 'sftp-stall-test');
  const chunks = async () => (await bus.jsm.streams.info('OBJ_swx_payloads')).state.messages;
  const idle = await chunks();
  let settled = false;
  const uploading = side.sftp('CUSTOMS', keys.CUSTOMS!, ['cd /outbox/firms', 'put stalled.bin.p7s', 'put stalled.bin stalled.bin.part', 'rename stalled.bin.part stalled.bin'], 300_000)
    .finally(() => { settled = true; });
  // Stopped once the file's first chunks are in the store: the rest of the upload meets a store that takes nothing.
  await waitFor('the upload under way', async () => (await chunks()) > idle + 4, 30_000);
  await bus.nc.close();
  let stalledGrowth = 0;
  try {
    await pause(nats);
    const atStop = kib(pid, 'VmRSS');
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    stalledGrowth = kib(pid, 'VmRSS') - atStop;
  } finally {
    resume(nats);
  }
  assert.is(settled, false, 'the upload waited for the store');
  const { code, out } = await uploading;
  const grown = kib(pid, 'VmHWM') - before;
  console.log(`store stalled 6 s during a ${size / MiB} MiB upload: the hub's RSS grew ${(stalledGrowth / MiB).toFixed(1)} MiB while stalled, peak +${(grown / MiB).toFixed(0)} MiB`);
  assert.ok(stalledGrowth < 16 * MiB, `while the store took nothing the hub grew ${(stalledGrowth / MiB).toFixed(1)} MiB`);
  assert.is(code, 0, `the upload went on once the store did: ${out}`);
});

test('an upload over the agency\'s quota is stopped and evidenced, and its bytes are released', async () => {
  const big = join(side.work, 'firms-big.csv');
  writeFileSync(big, randomBytes(2 * MiB));
  const { out } = await side.sftp('DOC', keys.DOC!, ['cd /outbox/firms', '-put firms-big.csv firms-big.csv.part', 'ls -l']);
  assert.match(out, /Failure|failed/i, out);
  assert.not.match(out, /^-rw.*firms-big\.csv\.part/m, `nothing of it is left in the outbox: ${out}`);
  await waitFor('the refusal in the evidence', async () => {
    const rows = (await hub.admin('GET', '/api/evidence?partner=DOC&stage=rejected')).body as { code: string; detail: string }[];
    return rows.some((row) => row.code === 'SWX_TOO_LARGE' && /quota/.test(row.detail));
  }, 15_000);
  const small = join(side.work, 'firms-small.csv');
  writeFileSync(small, 'firm,name\n12345675,Example Trading\n');
  side.sign(doc, small);
  const after = await side.sftp('DOC', keys.DOC!, ['cd /outbox/firms', 'put firms-small.csv.p7s', 'put firms-small.csv firms-small.csv.part', 'rename firms-small.csv.part firms-small.csv']);
  assert.is(after.code, 0, `the quota is free again: ${after.out}`);
});

test('a path being uploaded cannot be overwritten from another session; a plain name is refused to an agency that completes by rename', async () => {
  const path = '/outbox/firms/clash.csv.part';
  const [first, second, plain] = await side.session('CUSTOMS', keys.CUSTOMS!, async (a) => {
    const handle = await new Promise<Buffer>((resolve, reject) => a.open(path, 'w', (error, opened) => (error ? reject(error) : resolve(opened))));
    await new Promise<void>((resolve, reject) => a.write(handle, Buffer.from('firm,name\n'), 0, 10, 0, (error) => (error ? reject(error) : resolve())));
    const clash = await side.session('CUSTOMS', keys.CUSTOMS!, (b) => outcome((done) => b.open(path, 'w', (error) => done(error))));
    const direct = await outcome((done) => a.open('/outbox/firms/direct.csv', 'w', (error) => done(error)));
    return ['accepted', clash, direct];
  });
  assert.is(first, 'accepted');
  assert.match(second!, /^SWX_DUPLICATE_CONFLICT: .*being uploaded already/);
  assert.match(plain!, /^SWX_ACL_DENIED: CUSTOMS completes its uploads by rename: write direct\.csv\.part/);
  // The first session ended without completing: the path is free again.
  const again = await side.session('CUSTOMS', keys.CUSTOMS!, (b) => outcome((done) => b.open(path, 'w', (error) => done(error))));
  assert.is(again, 'accepted');
});

test('an agency that completes by signature has its file taken once the file and its signature are both closed', async () => {
  const file = join(side.work, 'science-park.csv');
  writeFileSync(file, 'firm,park\n87654321,Hsinchu\n');
  side.sign(spa, file);
  const { code, out } = await side.sftp('SPA', keys.SPA!, ['cd /outbox/firms', 'put science-park.csv', 'put science-park.csv.p7s', 'get /receipts/science-park.csv.receipt.json']);
  assert.is(code, 0, out);
  const receipt = JSON.parse(readFileSync(join(side.work, 'science-park.csv.receipt.json'), 'utf8'));
  await waitFor('the item at BOFT', () => existsSync(join(boft.inboxDir, `${receipt.id}.bin`)), 20_000);
  assert.equal(readFileSync(join(boft.inboxDir, `${receipt.id}.bin`)), readFileSync(file));
});

test('an RSA key signing with SHA-1 logs in only once the agency\'s endpoint allows legacy keys; with SHA-2 it always does', async () => {
  const rsa = side.sshKey('spa-legacy', 'rsa');
  await side.register('SPA', rsa);
  const sha1Only = ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'];
  const modern = await side.sftp('SPA', rsa, ['ls /']);
  assert.is(modern.code, 0, `rsa-sha2-512 is not legacy: ${modern.out}`);
  const refused = await side.sftp('SPA', rsa, ['ls /'], 30_000, sha1Only);
  assert.not.equal(refused.code, 0, refused.out);
  assert.match(refused.out, /Permission denied \(publickey\)/);
  await sftpEndpoint('SPA', { completion: 'signature', legacyKeyTypes: true });
  const file = join(side.work, 'legacy-key.csv');
  writeFileSync(file, 'firm,park\n11223344,Tainan\n');
  side.sign(spa, file);
  const allowed = await side.sftp('SPA', rsa, ['cd /outbox/firms', 'put legacy-key.csv', 'put legacy-key.csv.p7s', 'get /receipts/legacy-key.csv.receipt.json'], 30_000, sha1Only);
  assert.is(allowed.code, 0, allowed.out);
  const receipt = JSON.parse(readFileSync(join(side.work, 'legacy-key.csv.receipt.json'), 'utf8'));
  const received = (await evidenceOf(hub, receipt.id, 'received')).find((row) => row.stage === 'received');
  assert.is(received.detail, 'flagged: legacy_login', 'the upload of a SHA-1 key login is flagged in its evidence');
  assert.match(hub.output(), /SFTP login with legacy algorithms/);
});

test('legacy key exchange, ciphers and MACs: refused on the main listener; on the legacy one only for an agency allowed, its uploads flagged', async () => {
  const legacyPort = Number(hub.env.SWX_SFTP_LEGACY_PORT);
  const legacyOnly = ['-o', 'KexAlgorithms=diffie-hellman-group14-sha1', '-o', 'Ciphers=aes128-cbc', '-o', 'MACs=hmac-sha1'];
  const main = await side.sftp('CUSTOMS', keys.CUSTOMS!, ['ls /'], 30_000, legacyOnly);
  assert.not.equal(main.code, 0, main.out);
  assert.match(main.out, /no matching key exchange method/, 'the main listener offers no SHA-1 key exchange');
  const modernOnLegacy = await side.sftp('CUSTOMS', keys.CUSTOMS!, ['ls /'], 30_000, [], legacyPort);
  assert.match(modernOnLegacy.out, /Permission denied \(publickey\)/, 'an agency not allowed is refused on the legacy listener, whatever it negotiates');
  const refused = await side.sftp('CUSTOMS', keys.CUSTOMS!, ['ls /'], 30_000, legacyOnly, legacyPort);
  assert.match(refused.out, /Permission denied \(publickey\)/);

  await sftpEndpoint('CUSTOMS', { legacyAlgorithms: true });
  const file = join(side.work, 'legacy-link.csv');
  writeFileSync(file, 'firm,park\n55667788,Taichung\n');
  side.sign(customs, file);
  const accepted = await side.sftp('CUSTOMS', keys.CUSTOMS!, [
    'cd /outbox/firms', 'put legacy-link.csv.p7s', 'put legacy-link.csv legacy-link.csv.part', 'rename legacy-link.csv.part legacy-link.csv', 'get /receipts/legacy-link.csv.receipt.json',
  ], 30_000, [...legacyOnly, '-v'], legacyPort);
  assert.is(accepted.code, 0, accepted.out);
  assert.match(accepted.out, /kex: algorithm: diffie-hellman-group14-sha1/, 'the legacy key exchange was agreed');
  assert.match(accepted.out, /cipher: aes128-cbc MAC: hmac-sha1/, 'and the legacy cipher and MAC');
  const receipt = JSON.parse(readFileSync(join(side.work, 'legacy-link.csv.receipt.json'), 'utf8'));
  await waitFor('the item at BOFT', () => existsSync(join(boft.inboxDir, `${receipt.id}.bin`)), 20_000);
  assert.equal(readFileSync(join(boft.inboxDir, `${receipt.id}.bin`)), readFileSync(file));
  const received = (await evidenceOf(hub, receipt.id, 'received')).find((row) => row.stage === 'received');
  assert.is(received.detail, 'flagged: legacy_algorithms', 'the upload through the legacy listener is flagged in its evidence');

  const modern = await side.sftp('CUSTOMS', keys.CUSTOMS!, ['ls /'], 30_000);
  assert.is(modern.code, 0, `the main listener still serves the agency: ${modern.out}`);
});

test.run();
