// eDelivery AS4 2.0 between two swx hubs that sign with Ed25519: each encrypts its payloads to the other's X25519
// certificate (pki/hub-enc; X25519 agreement, HKDF-SHA256, AES-128 key wrap, AES-128-GCM), compressed first, both ways
// over HTTPS with signed receipts; what a hub encrypts opens in the independent Python decrypter; a payload encrypted
// to the wrong key is answered with a signed EBMS:0102, evidenced, and the hubs serve on.
import { createServer as createHttpsServer } from 'node:https';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readAs4Body, readAs4Message, swxPartyIdType } from '../../connectors/as4/index.ts';
import { issueAgency, issueCertificate } from '../../engine/pki/index.ts';
import { addService, evidenceOf, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { twoHubsUnderOneRoot, type TwoHubs } from '../helpers/two-hubs.ts';
import { decryptInPython } from '../helpers/xmlenc-judges.ts';

let hubs: TwoHubs;
let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;

/** The P-Mode of the other hub's MSH: eDelivery AS4 2.0, encrypted to `encryptionCertificate`. */
const pmode = (port: number, partyId: string, encryptionCertificate: string) => ({
  url: `https://localhost:${port}/as4`,
  partyIds: [{ id: partyId, type: swxPartyIdType }],
  services: [{ service: 'customs.declaration', actions: ['deliver'] }, { service: 'trade.reply', actions: ['deliver'] }],
  profile: 'eDelivery-AS4-2.0',
  security: { sign: true, encrypt: true, encryptionCertificate },
});

test.before(async () => {
  hubs = await twoHubsUnderOneRoot('as4v2', {
    signingKey: 'ed25519',
    settings: (dir, party) => writeFileSync(join(dir, 'swx.json'), JSON.stringify({ connectors: { as4: { partyId: { id: party } } } })),
    endpoints: (port, party, other) => ({ as4: pmode(port, party, other.hubEnc!.certPem) }),
    onCustomsMessage: () => undefined,
  });
  ({ hubA, hubB, customs, boft } = hubs);
});

test.after(async () => {
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

test('a partner fetches a hub\'s certificates from its operator port, no token: the signing one and the X25519 one it encrypts to', async () => {
  for (const [hub, pki] of [[hubA, hubs.pkiA], [hubB, hubs.pkiB]] as const) {
    const enc = await fetch(`http://localhost:${hub.opsPort}/pki/hub-enc.pem`);
    assert.is(enc.status, 200);
    assert.is(enc.headers.get('content-type'), 'application/x-pem-file');
    assert.is(await enc.text(), pki.hubEnc!.certPem);
    assert.is(await (await fetch(`http://localhost:${hub.opsPort}/pki/hub-sign.pem`)).text(), pki.hubSign.certPem);
  }
});

test('REST in at hub A, AS4 2.0 signed (Ed25519) and encrypted (X25519) to hub B, REST out to BOFT; the reply back the same way', async () => {
  const declaration = JSON.stringify({ declarationNo: 'AA/BE/13/101/00077', goods: 'frozen shrimp '.repeat(40) });
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from(declaration) });
  assert.is(answer.status, 202, answer.text);
  const id = String(answer.body.id);
  await waitFor('the declaration in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 60_000);
  assert.is(readFileSync(join(boft.inboxDir, `${id}.bin`), 'utf8'), declaration);
  const atA = await evidenceOf(hubA, id, ['delivered'], 30_000);
  const delivered = atA.find((row) => row.stage === 'delivered');
  assert.match(Buffer.from(delivered.raw, 'base64').toString('utf8'), /NonRepudiationInformation/, 'hub B\'s signed receipt');
  assert.match(JSON.parse(delivered.signature).algorithm, /ed25519/i, delivered.signature);
  const received = (await evidenceOf(hubB, id, ['received'], 30_000)).find((row) => row.stage === 'received');
  const base = JSON.parse(received.signature).base as string;
  for (const uri of ['xmldsig-more#x25519', 'xmldsig-more#hkdf', 'xmlenc#kw-aes128', 'xmlenc11#aes128-gcm', 'xmldsig-more#eddsa-ed25519']) assert.ok(base.includes(uri), uri);
  assert.match(base, /<xenc:EncryptedData[^>]*MimeType="application\/gzip"/, 'compressed, then encrypted');

  const reply = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"accepted":true}'), refTo: id });
  assert.is(reply.status, 202, reply.text);
  const replyId = String(reply.body.id);
  await waitFor('the reply in CUSTOMS\'s inbox behind hub A', () => existsSync(join(customs.inboxDir, `${replyId}.json`)), 60_000);
  assert.is(readFileSync(join(customs.inboxDir, `${replyId}.bin`), 'utf8'), '{"accepted":true}');
  assert.ok((await evidenceOf(hubB, replyId, ['delivered'], 30_000)).some((row) => row.stage === 'delivered'), 'hub B holds hub A\'s receipt');
});

test('what hub A encrypts under 2.0 opens in the Python decrypter with the recipient\'s X25519 key, and not with another', async () => {
  const dirA = join(hubs.dirA, 'pki');
  const tls = await issueCertificate(dirA, 'CAPTURE', { profile: 'tls-server', hosts: ['localhost'] });
  const bodies: { body: Buffer; contentType: string }[] = [];
  const msh = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push({ body: Buffer.concat(chunks), contentType: String(req.headers['content-type']) });
      res.writeHead(400, { 'content-type': 'text/plain' }).end('recorded');
    });
  });
  await new Promise<void>((resolve) => msh.listen(0, '127.0.0.1', resolve));
  try {
    const port = (msh.address() as { port: number }).port;
    const owner = await issueAgency(dirA, 'CAPTURE');
    const put = await hubA.admin('PUT', '/api/partners/CAPTURE', { name: 'a recording MSH', certificates: [owner.certPem], endpoints: { as4: pmode(port, 'capture', hubs.pkiB.hubEnc!.certPem) } });
    assert.is(put.status, 200, JSON.stringify(put.body));
    await addService(hubA, 'customs.declaration', ['CUSTOMS'], ['BOFT', 'CAPTURE']);
    const sent = await customs.client.send({ to: 'CAPTURE', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"captured":true}') });
    assert.is(sent.status, 202, sent.text);
    await waitFor('the message at the recording MSH', () => bodies.length > 0, 30_000);
    const wire = await readAs4Body((async function* () { yield bodies[0]!.body; })(), bodies[0]!.contentType, 16 * 1024 * 1024);
    const part = wire.attachments[0]!;
    const python = decryptInPython(wire.envelope, hubs.pkiB.hubEnc!.keyPem, wire.attachments);
    assert.is(python.status, 0, python.err);
    for (const uri of ['xmldsig-more#x25519', 'xmldsig-more#hkdf', 'xmlenc#kw-aes128']) assert.ok(python.report!.algorithms.some((found) => found.endsWith(uri)), uri);
    const user = readAs4Message(wire.envelope, { attachments: [part.contentId] }).message;
    assert.ok(user.kind === 'user' && user.parts[0]!.compressionType === 'application/gzip');
    assert.is(gunzipSync(python.plaintext.get(part.contentId)!).toString('utf8'), '{"captured":true}');
    assert.is.not(decryptInPython(wire.envelope, hubs.pkiA.hubEnc!.keyPem, wire.attachments).status, 0, 'another X25519 key cannot');
  } finally {
    msh.close();
  }
});

test('a payload encrypted to a key hub B does not hold: hub B answers a signed EBMS:0102 and evidences it, hub A fails the delivery saying so; both serve on', async () => {
  const evidencedBefore = await decryptFailures(hubB);
  const wrong = await hubA.admin('PUT', '/api/partners/BOFT', { name: 'BOFT behind hub-b', certificates: [hubs.pkiB.hubSign.certPem], endpoints: { as4: pmode(hubB.agencyPort, 'hub-b', hubs.pkiA.hubEnc!.certPem) } });
  assert.is(wrong.status, 200, JSON.stringify(wrong.body));
  const refused = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"sealed":"wrongly"}') });
  assert.is(refused.status, 202, refused.text);
  const failed = (await evidenceOf(hubA, String(refused.body.id), ['delivery_failed'], 60_000)).find((row) => row.stage === 'delivery_failed');
  assert.ok(failed, 'hub A evidenced the failed delivery');
  assert.is(failed.code, 'SWX_DELIVERY_REJECTED');
  assert.match(failed.detail, /EBMS:0102 FailedDecryption: SWX_DECRYPT_FAILED/);
  await waitFor('hub B\'s count of the decryption failure', async () => await decryptFailures(hubB) > evidencedBefore, 120_000);

  const right = await hubA.admin('PUT', '/api/partners/BOFT', { name: 'BOFT behind hub-b', certificates: [hubs.pkiB.hubSign.certPem], endpoints: { as4: pmode(hubB.agencyPort, 'hub-b', hubs.pkiB.hubEnc!.certPem) } });
  assert.is(right.status, 200, JSON.stringify(right.body));
  const after = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"sealed":"rightly"}') });
  const afterId = String(after.body.id);
  await waitFor('the next declaration in BOFT\'s inbox', () => existsSync(join(boft.inboxDir, `${afterId}.json`)), 60_000);
});

/** The AS4 decryption failures a hub's evidence counts (refused before the signature named the sender). */
async function decryptFailures(hub: HubProcess): Promise<number> {
  const answer = await hub.admin('GET', '/api/evidence?raw=true&stage=refused_unauthenticated&limit=1000');
  const rows = Array.isArray(answer.body) ? answer.body : [];
  return rows.filter((row: any) => row.protocol === 'as4' && row.code === 'SWX_DECRYPT_FAILED').reduce((sum: number, row: any) => sum + Number(JSON.parse(row.detail).count), 0);
}

test.run();
