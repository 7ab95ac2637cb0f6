// SFTP outbox polling against a real OpenSSH server standing for the agency's own, with the hub's real intake stage,
// registry, trust store and Object Store on a real nats-server: complete files taken, their detached signatures
// checked, removed only once JetStream acknowledged, refusals moved to error/ with evidence, a repeat stored once.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { outboxMessageId, sftpClientEndpoint, SftpOutboxPoller, type SftpClientEndpoint } from '../../connectors/sftp/client/index.ts';
import { createHash } from 'node:crypto';
import { signCms, verifyCms, verifyXml } from '../../engine/trust/index.ts';
import { tempDir } from '../helpers/hub.ts';
import { startIntakeParts, type IntakeParts } from '../helpers/intake-parts.ts';
import { pause, resume } from '../helpers/pause.ts';
import { sshKeyPair, startSshd, type Sshd } from '../../app/sshd.ts';

let dir: string;
let sshd: Sshd;
let hub: IntakeParts;
let clientKey: Buffer;
let outbox: string;

test.before(async () => {
  dir = tempDir('sftp-client-poll');
  hub = await startIntakeParts(dir, ['CUSTOMS', 'BOFT']);
  await hub.registry.putPartner({ id: 'CUSTOMS', name: 'Customs', certificates: [hub.agencies.CUSTOMS!.certPem] });
  await hub.registry.putPartner({ id: 'BOFT', name: 'Foreign Trade', certificates: [hub.agencies.BOFT!.certPem], receive: 'pull' });
  await hub.registry.putService({ id: 'customs.declaration', name: 'Declarations', rules: [{ from: ['CUSTOMS'], to: ['BOFT'] }] });
  const hubKey = sshKeyPair(dir, 'hub');
  clientKey = readFileSync(hubKey.privateKeyPath);
  sshd = await startSshd(join(dir, 'sshd'), [hubKey.publicKey]);
  outbox = join(sshd.root, 'outbox');
});

test.after(async () => {
  await sshd?.stop();
  await hub?.close();
});

function poller(extra: Partial<SftpClientEndpoint> = {}): SftpOutboxPoller {
  const endpoint = sftpClientEndpoint.parse({
    host: '127.0.0.1', port: sshd.port, user: sshd.user, hostKeyFingerprint: sshd.fingerprint, outboxDir: outbox, complete: 'signature', ...extra,
  });
  return new SftpOutboxPoller('CUSTOMS', endpoint as SftpClientEndpoint & { outboxDir: string }, {
    intake: hub.intake, registry: hub.registry, payloads: hub.payloads, trust: hub.trust, signatures: { verifyCms, verifyXml },
    clientKey: () => clientKey, maxFileBytes: 64 * 1024 * 1024,
  });
}

/** A declaration as CUSTOMS's system drops it: the file and its detached signature, in outbox/<service>/<RECEIVER>/. */
async function drop(name: string, bytes: Buffer, signer = hub.agencies.CUSTOMS!, signed: Buffer = bytes): Promise<string> {
  const folder = join(outbox, 'customs.declaration', 'BOFT');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, name), bytes);
  writeFileSync(join(folder, `${name}.p7s`), await signCms({ data: signed, certPem: signer.certPem, keyPem: signer.keyPem, detached: true }));
  return join(folder, name);
}

const idOf = (name: string, bytes: Buffer) => outboxMessageId('CUSTOMS', `customs.declaration/BOFT/${name}`, createHash('sha256').update(bytes).digest('hex'));

test('a signed file is taken: stored with its checked signature, then removed with its .p7s', async () => {
  const bytes = Buffer.from(JSON.stringify({ declaration: 'F-1', goods: 'tea' }));
  const path = await drop('F-1.json', bytes);
  const result = await poller().poll();
  assert.equal(result.taken, [path]);
  assert.not.ok(existsSync(path), 'removed');
  assert.not.ok(existsSync(`${path}.p7s`));
  const [envelope, ...more] = await hub.stored('BOFT', idOf('F-1.json', bytes));
  assert.ok(envelope, 'stored for BOFT');
  assert.is(more.length, 0);
  assert.is(envelope!.protocol, 'sftp');
  assert.is(envelope!.service, 'customs.declaration');
  assert.is(envelope!.contentType, 'application/json');
  assert.is(envelope!.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.is(envelope!.payloadSignature?.scheme, 'cms');
  assert.equal(envelope!.payloadSignature?.covered, ['detached content']);
});

test('a file is removed only once JetStream acknowledged: while the nats-server is paused it stays in the outbox', async () => {
  const bytes = Buffer.alloc(300 * 1024, 3); // over the inline limit: streamed into the Object Store
  const path = await drop('F-2.bin', bytes);
  let polled: ReturnType<SftpOutboxPoller['poll']> | undefined;
  try {
    await pause(hub.natsPid());
    polled = poller().poll();
    polled.catch(() => undefined);
    await sleep(2_000);
    assert.ok(existsSync(path), 'still in the outbox while nothing is acknowledged');
  } finally {
    resume(hub.natsPid());
  }
  const result = await polled!;
  assert.equal(result.taken, [path]);
  assert.not.ok(existsSync(path), 'removed once stored');
  assert.is((await hub.stored('BOFT', idOf('F-2.bin', bytes))).length, 1);
});

test('a badly signed file is refused with evidence and moved to error/ with name.error.json; one signed by another agency too', async () => {
  await hub.evidence.published();
  const bytes = Buffer.from('{"declaration":"F-3"}');
  const tampered = await drop('F-3.json', bytes, hub.agencies.CUSTOMS!, Buffer.from('{"declaration":"F-0"}'));
  const foreign = await drop('F-4.json', Buffer.from('{"declaration":"F-4"}'), hub.agencies.BOFT!);
  const result = await poller().poll();
  assert.equal(result.refused.sort(), [tampered, foreign].sort());
  assert.not.ok(existsSync(tampered));
  const errors = join(outbox, 'error');
  assert.equal(readdirSync(errors).sort(), ['F-3.json', 'F-3.json.error.json', 'F-3.json.p7s', 'F-4.json', 'F-4.json.error.json', 'F-4.json.p7s']);
  const report = JSON.parse(readFileSync(join(errors, 'F-3.json.error.json'), 'utf8'));
  assert.ok(['SWX_SIG_INVALID', 'SWX_DIGEST_MISMATCH'].includes(report.code), report.code);
  assert.is(JSON.parse(readFileSync(join(errors, 'F-4.json.error.json'), 'utf8')).code, 'SWX_SIG_KEY_MISMATCH');
  const records = await hub.evidence.published();
  const rejected = records.filter((record) => record.stage === 'rejected' && record.protocol === 'sftp');
  assert.equal(rejected.map((record) => record.code).sort(), [report.code, 'SWX_SIG_KEY_MISMATCH'].sort());
  assert.is(rejected.find((record) => record.code === report.code)?.messageId, report.messageId, 'the report names the evidenced id');
  assert.equal(await hub.stored('BOFT', idOf('F-3.json', bytes)), []);

  // The same name refused again replaces what error/ held, rather than failing the move at every listing.
  await drop('F-3.json', bytes, hub.agencies.BOFT!);
  assert.equal((await poller().poll()).refused, [tampered]);
  assert.is(JSON.parse(readFileSync(join(errors, 'F-3.json.error.json'), 'utf8')).code, 'SWX_SIG_KEY_MISMATCH');
  assert.not.ok(existsSync(tampered));
});

test('temporary names are never taken; without a signature rule a file is taken once its size held across two listings', async () => {
  const folder = join(outbox, 'customs.declaration', 'BOFT');
  writeFileSync(join(folder, '.F-5.json.part'), 'partial');
  const bytes = Buffer.from('{"declaration":"F-5"}');
  const path = await drop('F-5.json', bytes);
  const stable = poller({ complete: 'stable' });
  const first = await stable.poll();
  assert.equal(first.taken, []);
  assert.equal(first.waiting, [path], 'seen once: not yet known to be complete');
  const second = await stable.poll();
  assert.equal(second.taken, [path]);
  assert.ok(existsSync(join(folder, '.F-5.json.part')), 'the temporary file is left alone');
});

test('a crash between acceptance and removal takes the file again: stored once, the repeat evidenced as a duplicate', async () => {
  await hub.evidence.published();
  const bytes = Buffer.from(JSON.stringify({ declaration: 'F-6', goods: 'rice' }));
  const signature = await signCms({ data: bytes, certPem: hub.agencies.CUSTOMS!.certPem, keyPem: hub.agencies.CUSTOMS!.keyPem, detached: true });
  const path = await drop('F-6.json', bytes);
  writeFileSync(`${path}.p7s`, signature);
  assert.equal((await poller().poll()).taken, [path]);
  // The state a crash after intake and before the removal leaves: the same file, still in the outbox.
  writeFileSync(path, bytes);
  writeFileSync(`${path}.p7s`, signature);
  assert.equal((await poller().poll()).taken, [path]);
  assert.not.ok(existsSync(path));
  const id = idOf('F-6.json', bytes);
  assert.is((await hub.stored('BOFT', id)).length, 1, 'stored once');
  const records = (await hub.evidence.published()).filter((record) => record.messageId === id);
  assert.ok(records.some((record) => record.stage === 'duplicate'), 'the repeat is evidenced as a duplicate');
});

test.run();
