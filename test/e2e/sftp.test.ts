// The SFTP connector as agencies use it, judged by OpenSSH's own sftp client: a registered SSH key logs in to the
// agency's tree; a file uploaded as NAME.part with its detached CMS signature and renamed to NAME reaches every
// requester of a channel, or the receiver of a service, with a receipt the hub signed that openssl accepts; refusals
// come back signed too and are evidenced; what is not the agency's is not there.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { loadPki } from '../../engine/pki/index.ts';
import { addAgency, addService, evidenceOf, startHubProcess, swxBin, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let nta: TestAgency;
let tfda: TestAgency;
let caPem: string;
const work = tempDir('sftp-client');
const knownHosts = join(work, 'known_hosts');

/** An SSH key of an agency, made with ssh-keygen. */
function sshKey(name: string, type = 'ed25519'): string {
  const file = join(work, `${name}_${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name}@agency`, '-f', file]);
  return file;
}

/** Runs OpenSSH's sftp in batch mode as `user` with `key`, pinning the hub's host key; its exit code and output. */
function sftp(user: string, key: string, commands: string[]): { code: number | null; out: string } {
  const batch = join(work, 'batch');
  writeFileSync(batch, `${commands.join('\n')}\n`);
  const run = spawnSync('sftp', [
    '-F', '/dev/null', '-b', batch, '-i', key, '-P', String(hub.sftpPort),
    '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'IdentitiesOnly=yes',
    '-o', 'PasswordAuthentication=no', '-o', 'KbdInteractiveAuthentication=no', '-o', 'BatchMode=yes',
    `${user}@127.0.0.1`,
  ], { cwd: work, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, out: `${run.stdout}${run.stderr}` };
}

/** A detached CMS signature of `file` by the agency, as openssl makes it: `file`.p7s. */
function sign(agency: TestAgency, file: string): string {
  const cert = join(work, `${agency.id}-cert.pem`);
  const key = join(work, `${agency.id}-key.pem`);
  writeFileSync(cert, agency.credentials.certPem);
  writeFileSync(key, agency.credentials.keyPem);
  execFileSync('openssl', ['cms', '-sign', '-binary', '-in', file, '-signer', cert, '-inkey', key, '-outform', 'DER', '-out', `${file}.p7s`]);
  return `${file}.p7s`;
}

/** Checks a file the hub signed (receipt or refusal) with openssl against the hub's CA; true when it verifies. */
function hubSigned(file: string): boolean {
  const ca = join(work, 'ca.pem');
  writeFileSync(ca, caPem);
  const run = spawnSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', `${file}.p7s`, '-content', file, '-CAfile', ca, '-purpose', 'any', '-out', '/dev/null'], { encoding: 'utf8' });
  return run.status === 0;
}

let customsKey: string;
let boftKey: string;

/**
 * Writes `content` as `name` in the client's folder, signs it as `signer`, and uploads it as CUSTOMS into `dir` as an
 * agency's system does: the signature, then NAME.part renamed to NAME; then fetches what receipts/ says of it.
 */
function upload(dir: string, name: string, content: string, signer: TestAgency = customs): { code: number | null; out: string; file: string } {
  const file = join(work, name);
  writeFileSync(file, content);
  sign(signer, file);
  const outcome = sftp('CUSTOMS', customsKey, [
    `cd ${dir}`, `put ${name}.p7s`, `put ${name} ${name}.part`, `-rename ${name}.part ${name}`,
    `-get /receipts/${name}.receipt.json`, `-get /receipts/${name}.receipt.json.p7s`, `-get /receipts/${name}.error.json`, `-get /receipts/${name}.error.json.p7s`,
  ]);
  return { ...outcome, file };
}

test.before(async () => {
  hub = await startHubProcess();
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  nta = await addAgency(hub, 'NTA');
  tfda = await addAgency(hub, 'TFDA');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['TFDA']);
  const channel = await hub.admin('PUT', '/api/channels/taxes-fees', { name: 'Taxes and fees', dataset: 'drawback', providers: ['CUSTOMS'], requesters: ['BOFT', 'NTA'] });
  assert.is(channel.status, 200);
  caPem = (await loadPki(join(hub.dataDir, 'pki'))).ca.certPem;
  const hostKey = execFileSync('ssh-keygen', ['-y', '-f', join(hub.dataDir, 'sftp', 'host_ed25519_key')], { encoding: 'utf8' }).trim();
  writeFileSync(knownHosts, `[127.0.0.1]:${hub.sftpPort} ${hostKey}\n`);
  customsKey = sshKey('customs');
  boftKey = sshKey('boft');
});

test.after(async () => {
  for (const agency of [customs, boft, nta, tfda]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

test('the host key is made once in the data folder and its fingerprint is printed at start as OpenSSH prints it', () => {
  const printed = execFileSync('ssh-keygen', ['-l', '-f', join(hub.dataDir, 'sftp', 'host_ed25519_key')], { encoding: 'utf8' }).split(' ')[1]!;
  assert.match(printed, /^SHA256:/);
  assert.ok(hub.output().includes(`host key ${printed}`) || hub.output().includes(printed), `the start output names ${printed}:\n${hub.output().slice(0, 2000)}`);
});

test('swx partner ssh-key add, list and remove keep the keys on the partner entry, each change in its history', () => {
  const env = { ...process.env, SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}` };
  const run = (args: string[]) => execFileSync(swxBin, args, { env, encoding: 'utf8' });
  const added = JSON.parse(run(['partner', 'ssh-key', 'add', 'CUSTOMS', `${customsKey}.pub`, '--data', hub.dataDir]));
  const expected = execFileSync('ssh-keygen', ['-l', '-f', `${customsKey}.pub`], { encoding: 'utf8' }).split(' ')[1];
  assert.is(added.fingerprint, expected, 'the fingerprint is the one ssh-keygen prints');
  run(['partner', 'ssh-key', 'add', 'BOFT', `${boftKey}.pub`, '--data', hub.dataDir]);
  const spare = sshKey('spare');
  const second = JSON.parse(run(['partner', 'ssh-key', 'add', 'CUSTOMS', `${spare}.pub`, '--data', hub.dataDir]));
  const listed = JSON.parse(run(['partner', 'ssh-key', 'list', 'CUSTOMS', '--data', hub.dataDir]));
  assert.equal(listed.map((key: { fingerprint: string }) => key.fingerprint), [added.fingerprint, second.fingerprint]);
  run(['partner', 'ssh-key', 'remove', 'CUSTOMS', second.fingerprint, '--data', hub.dataDir]);
  const history = JSON.parse(run(['partner', 'history', 'CUSTOMS', '--data', hub.dataDir]));
  assert.equal(history.map((revision: { value?: { sshKeys: unknown[] } }) => revision.value?.sshKeys.length), [0, 1, 2, 1]);
  const taken = spawnSync(swxBin, ['partner', 'ssh-key', 'add', 'BOFT', `${customsKey}.pub`, '--data', hub.dataDir], { env, encoding: 'utf8' });
  assert.is(taken.status, 1);
  assert.match(taken.stderr, /registered to CUSTOMS/);
});

test('an agency sees its own tree: the channels it provides, the services and receivers it may use, its receipts', () => {
  const { code, out } = sftp('CUSTOMS', customsKey, ['ls /', 'ls /outbox', 'ls /outbox/customs.declaration']);
  assert.is(code, 0, out);
  assert.match(out, /outbox/);
  assert.match(out, /receipts/);
  assert.match(out, /taxes-fees/);
  assert.match(out, /customs\.declaration/);
  assert.match(out, /TFDA/);
  const other = sftp('BOFT', boftKey, ['ls /outbox']);
  assert.is(other.code, 0, other.out);
  assert.not.match(other.out, /taxes-fees|customs\.declaration/, 'BOFT provides nothing and may use no service');
});

test('a file uploaded as .part with its detached signature and renamed reaches every requester of the channel, with a hub-signed receipt', async () => {
  const { code, out, file } = upload('/outbox/taxes-fees', 'drawback.csv', 'declarationNo,amount\nAA/BE/13/101/00001,1250\n');
  assert.is(code, 0, out);
  assert.not.match(out, /remote rename/, out);
  const receiptFile = join(work, 'drawback.csv.receipt.json');
  assert.ok(hubSigned(receiptFile), 'openssl cms -verify accepts the receipt with the hub CA');
  const receipt = JSON.parse(readFileSync(receiptFile, 'utf8'));
  assert.is(receipt.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'), 'the receipt names the SHA-256 of what was sent');
  assert.is(receipt.service, 'exchange.taxes-fees');
  for (const requester of [boft, nta]) {
    await waitFor(`the item at ${requester.id}`, () => existsSync(join(requester.inboxDir, `${receipt.id}.bin`)), 20_000);
    assert.equal(readFileSync(join(requester.inboxDir, `${receipt.id}.bin`)), readFileSync(file));
  }
  const rows = await evidenceOf(hub, receipt.id, ['received', 'routed']);
  const received = rows.find((row) => row.stage === 'received');
  assert.is(received.protocol, 'sftp');
  assert.is(JSON.parse(received.signature).scheme, 'cms');
});

test('a message to one receiver goes through outbox/<service>/<RECEIVER>/', async () => {
  const { code, out, file } = upload('/outbox/customs.declaration/TFDA', 'declaration.json', JSON.stringify({ declarationNo: 'AA/BE/13/101/00002' }));
  assert.is(code, 0, out);
  const receipt = JSON.parse(readFileSync(join(work, 'declaration.json.receipt.json'), 'utf8'));
  assert.is(receipt.to, 'TFDA');
  await waitFor('the message at TFDA', () => existsSync(join(tfda.inboxDir, `${receipt.id}.bin`)), 20_000);
  assert.equal(readFileSync(join(tfda.inboxDir, `${receipt.id}.bin`)), readFileSync(file));
});

test('a file whose signature is not its sender\'s is refused with an .error.json the hub signed, and evidenced', async () => {
  const { code, out } = upload('/outbox/taxes-fees', 'forged.csv', 'declarationNo,amount\nAA/BE/13/101/00003,99\n', boft);
  assert.is(code, 0, out);
  assert.match(out, /remote rename .*forged\.csv.*: Failure/, 'the rename that completes the file is answered with the refusal');
  const errorFile = join(work, 'forged.csv.error.json');
  assert.ok(hubSigned(errorFile), 'openssl cms -verify accepts the refusal with the hub CA');
  const refusal = JSON.parse(readFileSync(errorFile, 'utf8'));
  assert.is(refusal.code, 'SWX_SIG_KEY_MISMATCH');
  const rows = await evidenceOf(hub, refusal.messageId, ['rejected']);
  assert.is(rows.find((row) => row.stage === 'rejected')?.code, 'SWX_SIG_KEY_MISMATCH');
  const listed = sftp('CUSTOMS', customsKey, ['ls /outbox/taxes-fees', 'ls /receipts']);
  assert.not.match(listed.out.split('ls /receipts')[0]!, /forged\.csv\b(?!\.)/, 'a refused file leaves the outbox');
});

/** The messages the hub's SFTP status replies carry, read with ssh2's client (OpenSSH's sftp shows only the status). */
async function statusMessages(user: string, keyFile: string, ask: (client: SFTPWrapper) => Promise<string>[]): Promise<string[]> {
  const hostKey = readFileSync(knownHosts, 'utf8').split(' ').slice(1, 3).join(' ');
  const connection = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    connection.once('ready', resolve).once('error', reject).connect({
      host: '127.0.0.1', port: hub.sftpPort, username: user, privateKey: readFileSync(keyFile),
      hostVerifier: (key: Buffer) => `ssh-ed25519 ${key.toString('base64')}` === hostKey,
    });
  });
  try {
    const client = await new Promise<SFTPWrapper>((resolve, reject) => connection.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))));
    return await Promise.all(ask(client));
  } finally {
    connection.end();
  }
}

const refusal = (run: (done: (error: Error | null | undefined) => void) => void) => new Promise<string>((resolve) => run((error) => resolve(error ? error.message : 'accepted')));

test('traversal, links, writing outside the outbox and another agency\'s folders are refused, and evidenced', async () => {
  const file = join(work, 'probe.txt');
  writeFileSync(file, 'probe');
  const { code, out } = sftp('BOFT', boftKey, [
    '-ls /outbox/../../etc', '-get /../etc/passwd', '-put probe.txt /receipts/probe.txt', '-put probe.txt /probe.txt',
    '-ln -s /etc/passwd /outbox/link', '-ls /outbox/taxes-fees', '-put probe.txt /outbox/taxes-fees/probe.txt.part', '-mkdir /outbox/mine',
  ]);
  assert.is(code, 0, out);
  assert.match(out, /Can't ls: "\/outbox\/\.\.\/\.\.\/etc" not found/);
  assert.match(out, /dest open "\/receipts\/probe\.txt": Permission denied/);
  assert.match(out, /remote symlink .*: Permission denied/);
  assert.match(out, /Can't ls: "\/outbox\/taxes-fees" not found/, 'CUSTOMS\'s channel is not in BOFT\'s tree');
  assert.match(out, /dest open "\/outbox\/taxes-fees\/probe\.txt\.part": Permission denied/);
  assert.not.match(out, /root:/);
  const messages = await statusMessages('BOFT', boftKey, (client) => [
    refusal((done) => client.readdir('/outbox/../../etc', (error) => done(error))),
    refusal((done) => client.open(`/outbox/x${'\u0000'}y`, 'w', (error) => done(error))),
    refusal((done) => client.open(`/outbox/${'a'.repeat(300)}`, 'w', (error) => done(error))),
    refusal((done) => client.open('/receipts/probe.txt', 'w', (error) => done(error))),
    refusal((done) => client.symlink('/etc/passwd', '/outbox/link', (error) => done(error))),
  ]);
  assert.match(messages[0]!, /^SWX_BAD_REQUEST: path refused: it climbs with \.\./);
  assert.match(messages[1]!, /^SWX_BAD_REQUEST: path refused: it holds a NUL byte/);
  assert.match(messages[2]!, /^SWX_BAD_REQUEST: path refused: a name is longer than 255 bytes/);
  assert.match(messages[3]!, /^SWX_ACL_DENIED: files are written only into the outbox/);
  assert.match(messages[4]!, /^SWX_ACL_DENIED: links cannot be made/);
  let rows: { code: string; detail: string; protocol: string }[] = [];
  await waitFor('the refusals in the evidence', async () => {
    rows = (await hub.admin('GET', '/api/evidence?partner=BOFT&stage=rejected&limit=1000')).body;
    return rows.some((row) => /links cannot be made/.test(row.detail));
  }, 15_000);
  assert.ok(rows.some((row) => row.protocol === 'sftp' && /climbs/.test(row.detail)), 'traversal is evidenced');
  assert.ok(rows.some((row) => row.protocol === 'sftp' && /links cannot be made/.test(row.detail)), 'a link is evidenced');
  assert.ok(rows.some((row) => row.protocol === 'sftp' && /only into the outbox/.test(row.detail)), 'writing outside the outbox is evidenced');
});

test('an unregistered key and a password are refused', () => {
  const stranger = sshKey('stranger');
  const { code, out } = sftp('CUSTOMS', stranger, ['ls /']);
  assert.not.equal(code, 0);
  assert.match(out, /Permission denied \(publickey\)/);
});

test.run();
