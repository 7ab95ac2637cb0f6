// The SFTP connector as agencies use it, judged by OpenSSH's own sftp client: a registered SSH key logs in to the
// agency's tree; a file uploaded as NAME.part with its detached CMS signature and renamed to NAME reaches every
// requester of a channel, or the receiver of a service, with a receipt the hub signed that openssl accepts; refusals
// come back signed too and are evidenced; what is not the agency's is not there.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addAgency, addService, evidenceOf, startHubProcess, swxBin, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import ssh2 from 'ssh2';
import { outcome, SftpAgencySide } from '../helpers/sftp.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let nta: TestAgency;
let tfda: TestAgency;
let afa: TestAgency;
let side: SftpAgencySide;
const execFileAsync = promisify(execFile);
let customsKey: string;
let boftKey: string;
const sftp = (user: string, key: string, commands: string[]) => side.sftp(user, key, commands);

/**
 * Writes `content` as `name` in the client's folder, signs it as `signer`, and uploads it as CUSTOMS into `dir` as an
 * agency's system does: the signature, then NAME.part renamed to NAME; then fetches what receipts/ says of it.
 */
async function upload(dir: string, name: string, content: string, signer: TestAgency = customs): Promise<{ code: number | null; out: string; file: string }> {
  const file = join(side.work, name);
  writeFileSync(file, content);
  side.sign(signer, file);
  const outcome = await sftp('CUSTOMS', customsKey, [
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
  afa = await addAgency(hub, 'AFA', { receive: 'pull' });
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['TFDA']);
  const channel = await hub.admin('PUT', '/api/channels/taxes-fees', { name: 'Taxes and fees', dataset: 'drawback', providers: ['CUSTOMS'], requesters: ['BOFT', 'NTA', 'AFA'] });
  assert.is(channel.status, 200);
  side = new SftpAgencySide(hub);
  customsKey = side.sshKey('customs');
  boftKey = side.sshKey('boft');
});

test.after(async () => {
  for (const agency of [customs, boft, nta, tfda, afa]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

test('the host key is made once in the data folder and its fingerprint is printed at start as OpenSSH prints it', () => {
  const printed = execFileSync('ssh-keygen', ['-l', '-f', join(hub.dataDir, 'sftp', 'host_ed25519_key')], { encoding: 'utf8' }).split(' ')[1]!;
  assert.match(printed, /^SHA256:/);
  assert.ok(hub.output().includes(`host key ${printed}`) || hub.output().includes(printed), `the start output names ${printed}:\n${hub.output().slice(0, 2000)}`);
});

test('swx partner ssh-key add, list and remove keep the keys on the partner entry, each change in its history', async () => {
  const env = { ...process.env, SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}` };
  const run = async (args: string[]) => (await execFileAsync(swxBin, args, { env, encoding: 'utf8' })).stdout;
  const added = JSON.parse(await run(['partner', 'ssh-key', 'add', 'CUSTOMS', `${customsKey}.pub`, '--data', hub.dataDir]));
  const expected = execFileSync('ssh-keygen', ['-l', '-f', `${customsKey}.pub`], { encoding: 'utf8' }).split(' ')[1];
  assert.is(added.fingerprint, expected, 'the fingerprint is the one ssh-keygen prints');
  await run(['partner', 'ssh-key', 'add', 'BOFT', `${boftKey}.pub`, '--data', hub.dataDir]);
  const spare = side.sshKey('spare');
  const second = JSON.parse(await run(['partner', 'ssh-key', 'add', 'CUSTOMS', `${spare}.pub`, '--data', hub.dataDir]));
  const listed = JSON.parse(await run(['partner', 'ssh-key', 'list', 'CUSTOMS', '--data', hub.dataDir]));
  assert.equal(listed.map((key: { fingerprint: string }) => key.fingerprint), [added.fingerprint, second.fingerprint]);
  await run(['partner', 'ssh-key', 'remove', 'CUSTOMS', second.fingerprint, '--data', hub.dataDir]);
  const { body: entry } = await hub.admin('GET', '/api/partners/CUSTOMS');
  const { sshKeys: _kept, ...withoutKeys } = entry;
  assert.is((await hub.admin('PUT', '/api/partners/CUSTOMS', withoutKeys)).status, 200);
  assert.is((await hub.admin('GET', '/api/partners/CUSTOMS')).body.sshKeys.length, 1, 'an entry put again without sshKeys keeps its keys');
  const history = JSON.parse(await run(['partner', 'history', 'CUSTOMS', '--data', hub.dataDir]));
  assert.equal(history.map((revision: { value?: { sshKeys: unknown[] } }) => revision.value?.sshKeys.length), [0, 1, 2, 1, 1]);
  const taken = await execFileAsync(swxBin, ['partner', 'ssh-key', 'add', 'BOFT', `${customsKey}.pub`, '--data', hub.dataDir], { env, encoding: 'utf8' }).then(() => undefined, (error: { code: number; stderr: string }) => error);
  assert.is(taken?.code, 1);
  assert.match(taken!.stderr, /registered to CUSTOMS/);
});

test('an agency sees its own tree: the channels it provides, the services and receivers it may use, its receipts', async () => {
  const { code, out } = await sftp('CUSTOMS', customsKey, ['ls /', 'ls /outbox', 'ls /outbox/customs.declaration']);
  assert.is(code, 0, out);
  assert.match(out, /outbox/);
  assert.match(out, /receipts/);
  assert.match(out, /taxes-fees/);
  assert.match(out, /customs\.declaration/);
  assert.match(out, /TFDA/);
  const other = await sftp('BOFT', boftKey, ['ls /outbox']);
  assert.is(other.code, 0, other.out);
  assert.not.match(other.out, /taxes-fees|customs\.declaration/, 'BOFT provides nothing and may use no service');
});

test('a file uploaded as .part with its detached signature and renamed reaches every requester of the channel, with a hub-signed receipt', async () => {
  const { code, out, file } = await upload('/outbox/taxes-fees', 'drawback.csv', 'declarationNo,amount\nAA/BE/13/101/00001,1250\n');
  assert.is(code, 0, out);
  assert.not.match(out, /remote rename/, out);
  const receiptFile = join(side.work, 'drawback.csv.receipt.json');
  assert.ok(await side.hubSigned(receiptFile), 'openssl cms -verify accepts the receipt with the hub CA');
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

test('an agency that receives by pull collects from inbox/ and acknowledges with its signature over what it kept', async () => {
  const afaKey = side.sshKey('afa');
  await side.register('AFA', afaKey);
  const listing = await sftp('AFA', afaKey, ['ls -l /inbox']);
  assert.is(listing.code, 0, listing.out);
  const name = /(CUSTOMS\.sftp:[A-Za-z0-9_-]+)\.json/.exec(listing.out)?.[1];
  assert.ok(name, `the channel item is listed with its facts: ${listing.out}`);
  const fetched = await sftp('AFA', afaKey, ['cd /inbox', `get ${name}`, `get ${name}.json`, `get ${name}.sha256`]);
  assert.is(fetched.code, 0, fetched.out);
  assert.is(spawnSync('sha256sum', ['-c', `${name}.sha256`], { cwd: side.work }).status, 0, 'sha256sum -c accepts what was fetched against the hub\'s SHA-256');
  const kept = join(side.work, name!);
  assert.is(readFileSync(kept, 'utf8'), 'declarationNo,amount\nAA/BE/13/101/00001,1250\n');
  const facts = JSON.parse(readFileSync(`${kept}.json`, 'utf8'));
  assert.is(facts.channel, 'taxes-fees');
  assert.is(facts.sha256, createHash('sha256').update(readFileSync(kept)).digest('hex'));
  side.sign(afa, kept);
  const acknowledged = await sftp('AFA', afaKey, ['cd /inbox', `put ${name}.p7s`]);
  assert.is(acknowledged.code, 0, acknowledged.out);
  let delivered: { raw: string } | undefined;
  await waitFor('AFA\'s receipt evidenced as delivered', async () => {
    delivered = (await evidenceOf(hub, facts.id, ['delivered'])).find((row) => row.stage === 'delivered' && row.to_partner === 'AFA');
    return delivered !== undefined;
  }, 20_000);
  assert.match(Buffer.from(delivered!.raw, 'base64').toString('utf8'), /SFTP acknowledgement: AFA uploaded inbox\//);
  const after = await sftp('AFA', afaKey, ['ls /inbox']);
  assert.not.match(after.out, new RegExp(`^${name!.replace(/[.:]/g, '\\$&')}$`, 'm'), 'an acknowledged delivery leaves the inbox');
});

test('a message to one receiver goes through outbox/<service>/<RECEIVER>/', async () => {
  const { code, out, file } = await upload('/outbox/customs.declaration/TFDA', 'declaration.json', JSON.stringify({ declarationNo: 'AA/BE/13/101/00002' }));
  assert.is(code, 0, out);
  const receipt = JSON.parse(readFileSync(join(side.work, 'declaration.json.receipt.json'), 'utf8'));
  assert.is(receipt.to, 'TFDA');
  await waitFor('the message at TFDA', () => existsSync(join(tfda.inboxDir, `${receipt.id}.bin`)), 20_000);
  assert.equal(readFileSync(join(tfda.inboxDir, `${receipt.id}.bin`)), readFileSync(file));
});

test('a file whose signature is not its sender\'s is refused with an .error.json the hub signed, and evidenced', async () => {
  const { code, out } = await upload('/outbox/taxes-fees', 'forged.csv', 'declarationNo,amount\nAA/BE/13/101/00003,99\n', boft);
  assert.is(code, 0, out);
  assert.match(out, /remote rename .*forged\.csv.*: Failure/, 'the rename that completes the file is answered with the refusal');
  const errorFile = join(side.work, 'forged.csv.error.json');
  assert.ok(await side.hubSigned(errorFile), 'openssl cms -verify accepts the refusal with the hub CA');
  const refusal = JSON.parse(readFileSync(errorFile, 'utf8'));
  assert.is(refusal.code, 'SWX_SIG_KEY_MISMATCH');
  const rows = await evidenceOf(hub, refusal.messageId, ['rejected']);
  assert.is(rows.find((row) => row.stage === 'rejected')?.code, 'SWX_SIG_KEY_MISMATCH');
  const listed = await sftp('CUSTOMS', customsKey, ['ls /outbox/taxes-fees', 'ls /receipts']);
  assert.not.match(listed.out.split('ls /receipts')[0]!, /forged\.csv\b(?!\.)/, 'a refused file leaves the outbox');
});

test('traversal, links, writing outside the outbox and another agency\'s folders are refused, and evidenced', async () => {
  const file = join(side.work, 'probe.txt');
  writeFileSync(file, 'probe');
  const { code, out } = await sftp('BOFT', boftKey, [
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
  const messages = await side.session('BOFT', boftKey, (client) => Promise.all([
    outcome((done) => client.readdir('/outbox/../../etc', (error) => done(error))),
    outcome((done) => client.open(`/outbox/x${'\u0000'}y`, 'w', (error) => done(error))),
    outcome((done) => client.open(`/outbox/${'a'.repeat(300)}`, 'w', (error) => done(error))),
    outcome((done) => client.open('/receipts/probe.txt', 'w', (error) => done(error))),
    outcome((done) => client.symlink('/etc/passwd', '/outbox/link', (error) => done(error))),
  ]));
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

test('an unregistered key is refused, and publickey is the only way in offered', async () => {
  const stranger = side.sshKey('stranger');
  const { code, out } = await sftp('CUSTOMS', stranger, ['ls /']);
  assert.not.equal(code, 0);
  assert.match(out, /Permission denied \(publickey\)/, 'publickey is the one method the server lists');
  const withPassword = await new Promise<string>((resolve) => {
    const client = new ssh2.Client();
    client.once('ready', () => { client.end(); resolve('logged in'); }).once('error', (error) => resolve(error.message));
    client.connect({ host: '127.0.0.1', port: hub.sftpPort, username: 'CUSTOMS', password: 'CUSTOMS', tryKeyboard: true });
  });
  assert.match(withPassword, /authentication methods failed/, 'a password and keyboard-interactive are refused');
  const wrongUser = await sftp('BOFT', customsKey, ['ls /']);
  assert.match(wrongUser.out, /Permission denied \(publickey\)/, 'a registered key logs in only as its own agency');
});

test.run();
