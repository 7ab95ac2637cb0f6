// SFTP push against a real OpenSSH server standing for the agency's own: the pinned host key, the temporary name and
// rename, a transfer cut by killing the server's connection process and resumed from the size already there once that
// prefix is checked to be the payload's own; a partial file that is not is written afresh.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileNameOf, hubClientKey, sftpClientEndpoint, SftpPushOutbound, type SftpClientEndpoint } from '../../connectors/sftp/client/index.ts';
import type { Envelope } from '../../engine/envelope.ts';
import { hubIdentity } from '../../engine/identity.ts';
import { DeliveryError, type OutgoingPayload } from '../../engine/outbound.ts';
import { initPki, loadPki } from '../../engine/pki/index.ts';
import type { Partner } from '../../engine/registry.ts';
import { verifyCms } from '../../engine/trust/index.ts';
import { tempDir, waitFor } from '../helpers/hub.ts';
import { dropConnections, startSshd, type Sshd } from '../../app/sshd.ts';

let dir: string;
let sshd: Sshd;
let clientKey: Buffer;
let outbound: SftpPushOutbound;
let signing: ReturnType<typeof hubIdentity>['signing'];
let inbox: string;
const partner = { id: 'CUSTOMS', name: 'Customs' } as Partner;

test.before(async () => {
  dir = tempDir('sftp-client-push');
  const pkiDir = join(dir, 'pki');
  await initPki(pkiDir, { agencies: [], alg: 'ecdsa', crlUrl: 'http://127.0.0.1:9/pki/crl' });
  signing = hubIdentity(await loadPki(pkiDir)).signing;
  // The hub's own client key, made under its data folder as a running hub makes it; the agency authorizes its .pub.
  const hubKey = hubClientKey(join(dir, 'data'), 'hub');
  assert.equal(hubClientKey(join(dir, 'data'), 'hub'), hubKey, 'made once, then read');
  clientKey = hubKey.privateKey;
  sshd = await startSshd(join(dir, 'sshd'), [hubKey.publicKey]);
  inbox = join(sshd.root, 'inbox');
  mkdirSync(inbox);
  outbound = new SftpPushOutbound({ clientKey: () => clientKey, signing, timeoutMs: 60_000 });
});

test.after(async () => {
  await sshd?.stop();
});

const endpoint = (extra: Partial<SftpClientEndpoint> = {}): SftpClientEndpoint => sftpClientEndpoint.parse({
  host: '127.0.0.1', port: sshd.port, user: sshd.user, hostKeyFingerprint: sshd.fingerprint, inboxDir: inbox, ...extra,
});

function envelopeOf(id: string, bytes: Buffer, contentType = 'application/json'): Envelope {
  return {
    id, conversationId: id, service: 'customs.declaration', action: 'deliver', from: 'BOFT', to: 'CUSTOMS', protocol: 'rest',
    contentType, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), receivedAt: new Date().toISOString(),
  };
}

/** A payload streamed in 64 KiB pieces, `pauseMs` between them; `opened` records where each open started. */
function slowPayload(bytes: Buffer, pauseMs: number, opened: number[] = []): OutgoingPayload {
  async function* from(start: number) {
    opened.push(start);
    for (let at = start; at < bytes.length; at += 64 * 1024) {
      yield bytes.subarray(at, Math.min(bytes.length, at + 64 * 1024));
      if (pauseMs) await sleep(pauseMs);
    }
  }
  return {
    size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'),
    open: () => Readable.from(from(0)), openAt: (start) => Readable.from(from(start)),
  };
}

test('a delivery is written under its final name, byte for byte, with the hub\'s signed record of the transfer as receipt', async () => {
  const bytes = Buffer.from(JSON.stringify({ declaration: 'D-1', goods: 'tea' }));
  const envelope = envelopeOf('D-1', bytes);
  const receipt = await outbound.deliver(envelope, slowPayload(bytes, 0), partner, endpoint());
  assert.is(fileNameOf(envelope), 'D-1.json');
  assert.is(fileNameOf({ id: 'P-1', contentType: 'multipart/related; boundary="b1"; type="application/xml"; start="<d@x>"' }), 'P-1.mime', 'a payload package');
  assert.equal(readFileSync(join(inbox, 'D-1.json')), bytes);
  assert.equal(readdirSync(inbox).filter((name) => name.endsWith('.part')), [], 'no temporary file left');
  assert.is(receipt.signature, undefined, 'the agency\'s server signs nothing');
  const { transfer, hubSignature } = JSON.parse(receipt.raw);
  assert.is(transfer.file, join(inbox, 'D-1.json'));
  assert.is(transfer.size, bytes.length);
  assert.is(transfer.sha256, envelope.sha256);
  assert.is(transfer.hostKey, sshd.fingerprint);
  const verdict = await verifyCms(Buffer.from(hubSignature, 'base64'), { pinnedCertPem: signing.certPem });
  assert.ok(verdict.valid, verdict.detail);
  assert.equal(JSON.parse(verdict.content!.toString('utf8')), transfer, 'the hub signed the record');

  const again = await outbound.deliver(envelope, slowPayload(bytes, 0), partner, endpoint());
  assert.is(again.duplicate, true, 'a repeat finds the file whole under its name');
});

test('a server whose host key is not the pinned one is refused permanently, before anything is written', async () => {
  const bytes = Buffer.from('{"declaration":"D-2"}');
  const wrong = `SHA256:${createHash('sha256').update('another key').digest('base64').replace(/=+$/, '')}`;
  const failure = await outbound.deliver(envelopeOf('D-2', bytes), slowPayload(bytes, 0), partner, endpoint({ hostKeyFingerprint: wrong })).catch((error: unknown) => error);
  assert.instance(failure, DeliveryError);
  assert.is((failure as DeliveryError).transient, false, 'never retried, never trusted on first use');
  assert.is((failure as DeliveryError).code, 'SWX_SIG_KEY_MISMATCH');
  assert.match((failure as Error).message, sshd.fingerprint, 'the key presented is named');
  assert.not.ok(readdirSync(inbox).some((name) => name.includes('D-2')));
});

test('no partial file is ever visible under the final name: listed throughout a slow upload', async () => {
  const bytes = Buffer.alloc(2 * 1024 * 1024, 7);
  const envelope = envelopeOf('D-SLOW', bytes, 'application/octet-stream');
  const seen: { temp: number; final: number } = { temp: 0, final: 0 };
  let done = false;
  const delivery = outbound.deliver(envelope, slowPayload(bytes, 20), partner, endpoint()).finally(() => { done = true; });
  while (!done) {
    const names = readdirSync(inbox);
    if (names.includes('.D-SLOW.bin.part')) seen.temp += 1;
    if (names.includes('D-SLOW.bin')) {
      seen.final += 1;
      assert.is(readFileSync(join(inbox, 'D-SLOW.bin')).length, bytes.length, 'whole whenever it is visible');
    }
    await sleep(10);
  }
  await delivery;
  assert.ok(seen.temp > 3, `the temporary name was seen while writing (${seen.temp} times)`);
  assert.equal(readFileSync(join(inbox, 'D-SLOW.bin')), bytes);
});

test('a transfer cut by a dropped connection resumes from the size already there; the final file is byte-identical', async () => {
  const bytes = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 31) & 0xff));
  const envelope = envelopeOf('D-CUT', bytes, 'application/octet-stream');
  const temp = join(inbox, '.D-CUT.bin.part');
  const opened: number[] = [];
  const first = outbound.deliver(envelope, slowPayload(bytes, 20, opened), partner, endpoint()).catch((error: unknown) => error);
  await waitFor('part of the file written', () => existsSync(temp) && readFileSync(temp).length > 512 * 1024, 60_000);
  assert.ok(dropConnections(join(dir, 'sshd')) >= 1, 'the server\'s connection process killed');
  const failure = await first;
  assert.instance(failure, DeliveryError);
  assert.is((failure as DeliveryError).transient, true, 'a cut transfer is retried (the breaker and backoff of the deliver stage)');
  const left = readFileSync(temp).length;
  assert.ok(left > 0 && left < bytes.length, `a partial temporary file is left (${left} bytes)`);
  assert.not.ok(existsSync(join(inbox, 'D-CUT.bin')));

  const receipt = await outbound.deliver(envelope, slowPayload(bytes, 0, opened), partner, endpoint());
  const { transfer } = JSON.parse(receipt.raw);
  assert.is(transfer.resumedFrom, left, 'resumed from the size already there');
  assert.is(transfer.written, bytes.length - left, 'only the rest was written');
  assert.is(transfer.discarded, 0);
  assert.equal(opened, [0, 0, left], 'the payload\'s first bytes read to check the partial file, then opened at its size: not sent again from the start');
  const final = readFileSync(join(inbox, 'D-CUT.bin'));
  assert.is(createHash('sha256').update(final).digest('hex'), envelope.sha256, 'SHA-256 of the final file is the payload\'s');
  assert.not.ok(existsSync(temp));
});

test('a partial file whose bytes are not the payload\'s first bytes is written afresh, never extended', async () => {
  const bytes = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 7) & 0xff));
  const envelope = envelopeOf('D-STALE', bytes, 'application/octet-stream');
  // The payload's own first 100 KiB with one byte flipped: the right size to resume from, the wrong bytes.
  const corrupted = Buffer.from(bytes.subarray(0, 100 * 1024));
  corrupted.writeUInt8(corrupted.readUInt8(50_000) ^ 0xff, 50_000);
  writeFileSync(join(inbox, '.D-STALE.bin.part'), corrupted);
  const opened: number[] = [];
  const receipt = await outbound.deliver(envelope, slowPayload(bytes, 0, opened), partner, endpoint());
  const { transfer } = JSON.parse(receipt.raw);
  assert.is(transfer.resumedFrom, 0, 'not resumed');
  assert.is(transfer.discarded, corrupted.length, 'the corrupted partial file was dropped');
  assert.is(transfer.written, bytes.length, 'written whole from the start');
  assert.equal(opened, [0, 0], 'the prefix compared, then the payload sent from its first byte');
  assert.equal(readFileSync(join(inbox, 'D-STALE.bin')), bytes);

  // A partial file longer than the payload cannot be its start either.
  const short = envelopeOf('D-LONG', bytes.subarray(0, 1000), 'application/octet-stream');
  writeFileSync(join(inbox, '.D-LONG.bin.part'), bytes.subarray(0, 2000));
  const again = JSON.parse((await outbound.deliver(short, slowPayload(bytes.subarray(0, 1000), 0), partner, endpoint())).raw).transfer;
  assert.is(again.discarded, 2000);
  assert.equal(readFileSync(join(inbox, 'D-LONG.bin')), bytes.subarray(0, 1000));
});

test('a server that denies writing to the inbox folder refuses the delivery permanently', async () => {
  const hubKey = hubClientKey(join(dir, 'data'), 'hub').publicKey;
  const readOnly = await startSshd(join(dir, 'sshd-read-only'), [hubKey], { readOnly: true });
  try {
    mkdirSync(join(readOnly.root, 'inbox'));
    const bytes = Buffer.from('{"declaration":"D-4"}');
    const failure = await outbound.deliver(envelopeOf('D-4', bytes), slowPayload(bytes, 0), partner, sftpClientEndpoint.parse({
      host: '127.0.0.1', port: readOnly.port, user: readOnly.user, hostKeyFingerprint: readOnly.fingerprint, inboxDir: join(readOnly.root, 'inbox'),
    })).catch((error: unknown) => error);
    assert.instance(failure, DeliveryError);
    assert.is((failure as DeliveryError).transient, false, 'the agency\'s refusal: dead-lettered, not retried for ever');
    assert.is((failure as DeliveryError).code, 'SWX_DELIVERY_REJECTED');
    assert.match((failure as Error).message, /permission denied/);
  } finally {
    await readOnly.stop();
  }
});

test('an unreachable server is a transient failure', async () => {
  const bytes = Buffer.from('{}');
  const failure = await outbound.deliver(envelopeOf('D-3', bytes), slowPayload(bytes, 0), partner, endpoint({ port: 1 })).catch((error: unknown) => error);
  assert.is((failure as DeliveryError).transient, true);
  assert.is((failure as DeliveryError).code, 'SWX_UNAVAILABLE');
});

test.run();
