// AS4 through the hub as agencies' MSHs and another swx hub see it: two hubs under one root exchange AS4 over HTTPS
// both ways (REST in at one, AS4 signed and encrypted under eDelivery AS4 1.x between them, REST out at the other), each
// receipt signed and checked; a partner's MSH sends to a REST agency, in the clear or encrypted to the hub; what the
// hub encrypts opens in the independent Python decrypter and in xmlsec1; and every kind of bad input gets its ebMS
// Error signal and evidence while the hub serves on.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  as4Multipart, checkAs4Security, checkReceipt, compress, decompress, pullRequestEnvelope, readAs4Body, readAs4Message, receiptEnvelope, signAs4, signedAttachment,
  signedReferences, swxPartyIdType, userMessageEnvelope, type As4Message, type SignalMessage,
} from '../../connectors/as4/index.ts';
import { issueAgency, issueCertificate, type Credential } from '../../engine/pki/index.ts';
import { checkWsSecurity, encryptSoapAttachments } from '../../engine/trust/index.ts';
import { collect, hubPmode, writeAs4Settings } from '../helpers/as4.ts';
import { decryptInPython, decryptWithXmlsec1 } from '../helpers/xmlenc-judges.ts';
import { exportCheckedBundle } from '../helpers/bundle.ts';
import { deadLetteredUnanswered, stagesOf } from '../helpers/delivery.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';
import { addService, evidenceOf, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { createServer as createHttpsServer, request } from 'node:https';

const T = swxPartyIdType;
const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let gateway: Credential;
let rogue: Credential;
let nta: Credential;
const ntaMpc = 'urn:example:mpc:nta';
let caPem: string;
let pkiDirA: string;
let pmodeOfHubB: ReturnType<typeof hubPmode>;
let hubBSign: string;
let hubBKey: string;
let hubASign: string;
const arrivedAtCustoms: string[] = [];

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('as4', {
    settings: (dir, partyId) => writeAs4Settings(dir, partyId),
    endpoints: (port, party) => ({ as4: hubPmode(port, party) }),
    onCustomsMessage: (entry) => arrivedAtCustoms.push(entry.id),
  });
  ({ hubA, hubB, customs, boft } = hubs);
  const dirA = hubs.dirA;
  caPem = hubs.pkiA.ca.certPem;
  pkiDirA = join(dirA, 'pki');
  pmodeOfHubB = hubPmode(hubB.agencyPort, 'hub-b');
  hubBSign = hubs.pkiB.hubSign.certPem;
  hubBKey = hubs.pkiB.hubSign.keyPem;
  hubASign = hubs.pkiA.hubSign.certPem;
  // TFDA's own AS4 gateway, registered at hub A with its certificate and P-Mode; it sends, and never receives over AS4.
  gateway = await issueAgency(join(dirA, 'pki'), 'TFDA');
  rogue = await issueAgency(join(dirA, 'pki'), 'ROGUE');
  const put = await hubA.admin('PUT', '/api/partners/TFDA', {
    name: 'TFDA gateway', certificates: [gateway.certPem],
    endpoints: { as4: {
      url: 'https://localhost:9/as4', partyIds: [{ id: 'tfda-gw', type: 'urn:example:party' }],
      services: [{ service: 'urn:example:health-notice', type: 'urn:example', actions: ['Submit'], swx: 'health.notice' }],
      security: { sign: true, encrypt: false },
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'health.notice', ['TFDA'], ['CUSTOMS']);
  // NTA's MSH takes no inbound connection: it pulls from its MPC.
  nta = await issueAgency(join(dirA, 'pki'), 'NTA');
  const ntaPut = await hubA.admin('PUT', '/api/partners/NTA', {
    name: 'NTA gateway (pull)', certificates: [nta.certPem], receive: 'pull',
    endpoints: { as4: {
      partyIds: [{ id: 'nta-gw', type: 'urn:example:party' }], mep: { binding: 'pull', mpc: ntaMpc },
      // Encrypted to NTA's registered RSA certificate with rsa-oaep-mgf1p, which xmlsec1 knows.
      services: [{ service: 'tax.notice', actions: ['deliver'] }], security: { sign: true, encrypt: true, keyTransport: 'rsa-oaep-mgf1p' },
    } },
  });
  assert.is(ntaPut.status, 200, JSON.stringify(ntaPut.body));
  await addService(hubA, 'tax.notice', ['CUSTOMS'], ['NTA']);
});

test.after(async () => {
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

const notice = Buffer.from('<Notice xmlns="urn:example:health"><Product>frozen shrimp</Product><Finding>residue over limit</Finding></Notice>');

interface GatewayOptions {
  messageId: string;
  signer?: Credential;
  fromParty?: string;
  payload?: Buffer;
  /** Sent gzip-compressed, as the AS4 compression feature does. */
  gzip?: boolean;
  /** A header block the hub does not process, marked mustUnderstand. */
  extraHeader?: boolean;
  /** The attachment changed after signing. */
  tamper?: boolean;
  /** Encrypted after signing to this certificate (eDelivery AS4 1.x). */
  encryptTo?: string;
  /** One byte of the ciphertext flipped on the way. */
  alterCiphertext?: boolean;
}

/** A UserMessage as TFDA's MSH sends it to hub A: To hub A's PartyId, the swx receiver in finalRecipient. */
async function gatewayMessage(options: GatewayOptions): Promise<{ body: Buffer; contentType: string; sent: As4Message }> {
  const signer = options.signer ?? gateway;
  const payload = options.payload ?? notice;
  const part = { contentId: `notice-${options.messageId}`, contentType: options.gzip ? 'application/gzip' : 'application/xml', body: options.gzip ? await collect(compress(payload)) : payload };
  const written = userMessageEnvelope({
    messageId: options.messageId,
    from: { partyIds: [{ id: options.fromParty ?? 'tfda-gw', type: 'urn:example:party' }], role },
    to: { partyIds: [{ id: 'hub-a', type: T }], role },
    collaboration: { service: { value: 'urn:example:health-notice', type: 'urn:example' }, action: 'Submit', conversationId: `conv-${options.messageId}` },
    properties: [{ name: 'originalSender', value: 'TFDA' }, { name: 'finalRecipient', value: 'CUSTOMS' }],
    payloads: [{ contentId: part.contentId, mimeType: 'application/xml', ...(options.gzip ? { compressionType: 'application/gzip' as const } : {}) }],
  });
  if (options.extraHeader) written.xml = written.xml.replace('<env:Header>', '<env:Header><x:Routing xmlns:x="urn:example:routing" env:mustUnderstand="true">r1</x:Routing>');
  const xml = await signAs4(written, { keyPem: signer.keyPem, certPem: signer.certPem, attachments: [signedAttachment(part)] });
  const sentBody = options.tamper ? Buffer.from(part.body.toString('utf8').replace('residue', 'RESIDUE')) : part.body;
  let envelope = xml;
  let sentParts = [{ ...part, body: sentBody }];
  if (options.encryptTo) {
    const encrypted = await encryptSoapAttachments(xml, [{ ...part, body: sentBody }], { certPem: options.encryptTo }, 'eDelivery-AS4-1.15');
    envelope = encrypted.envelope;
    sentParts = await Promise.all(encrypted.parts.map(async (p) => ({ ...p, body: await collect(p.body) })));
    if (options.alterCiphertext) sentParts[0]!.body[40]! ^= 1;
  }
  const multipart = as4Multipart(envelope, sentParts.map((p) => ({ ...p, body: (async function* () { yield p.body; })() })));
  return { body: await collect(multipart.body), contentType: multipart.contentType, sent: readAs4Message(Buffer.from(xml), { attachments: [part.contentId], understood: ['{urn:example:routing}Routing'] }) };
}

/** POSTs to hub A's AS4 path as an MSH does (server-authenticated TLS, no client certificate); the answer as bytes. */
function postBytes(body: Buffer, contentType: string): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hubA.agencyPort}/as4`, { method: 'POST', ca: caPem, headers: { 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function post(body: Buffer, contentType: string): Promise<{ status: number; signal: SignalMessage; message: As4Message; text: string }> {
  const answer = await postBytes(body, contentType);
  const text = answer.body.toString('utf8');
  const message = readAs4Message(answer.body);
  assert.is(message.message.kind, 'signal', `an ebMS signal answers: ${text.slice(0, 300)}`);
  // Every answer, receipt or error, is signed by hub A.
  const security = await checkWsSecurity(message.envelope);
  assert.is(security.certificatePem.replace(/\s/g, ''), hubASign.replace(/\s/g, ''));
  return { status: answer.status, signal: message.message as SignalMessage, message, text };
}

const errorCodeOf = (signal: SignalMessage) => signal.errors.map((e) => e.errorCode).join(',');

test('REST in at hub A, AS4 signed and encrypted to hub B, REST out to BOFT; and the reply back the other way, each receipt signed and checked', async () => {
  const declaration = JSON.stringify({ declarationNo: 'AA/BE/13/101/00042', value: 98000 });
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from(declaration) });
  assert.is(answer.status, 202, answer.text);
  const id = String(answer.body.id);
  await waitFor('the declaration in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 60_000);
  assert.is(readFileSync(join(boft.inboxDir, `${id}.bin`), 'utf8'), declaration);
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assert.is(entry.from, 'CUSTOMS');
  assert.is(entry.contentType, 'application/json');

  // Hub A kept hub B's signed Receipt as the delivery's receipt; hub B kept the signed AS4 envelope it received.
  const atA = await evidenceOf(hubA, id, ['received', 'delivered'], 30_000);
  const delivered = atA.find((row) => row.stage === 'delivered');
  assert.ok(delivered, `hub A evidenced the delivery: ${atA.map((row) => row.stage)}`);
  const receiptXml = Buffer.from(delivered.raw, 'base64').toString('utf8');
  assert.match(receiptXml, /NonRepudiationInformation/);
  const receiptSignature = JSON.parse(delivered.signature);
  assert.is(receiptSignature.scheme, 'xmldsig');
  const atB = await evidenceOf(hubB, id, ['received', 'delivered'], 30_000);
  const received = atB.find((row) => row.stage === 'received');
  assert.is(received.protocol, 'as4');
  assert.is(received.from_partner, 'CUSTOMS');
  const signature = JSON.parse(received.signature);
  assert.match(signature.base, /<eb:Messaging[^>]*>.*<eb:MessageId>/s, 'the signed AS4 envelope is kept as evidence');
  assert.match(signature.base, /<xenc:EncryptedKey[^>]*>.*xmlenc11#rsa-oaep".*<xenc:EncryptedData[^>]*MimeType="application\/gzip"/s, 'as it came: its payload compressed, then encrypted to hub B');
  assert.ok(atB.some((row) => row.stage === 'delivered'), 'hub B evidenced the REST delivery to BOFT');

  const reply = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"accepted":true}'), refTo: id });
  assert.is(reply.status, 202, reply.text);
  const replyId = String(reply.body.id);
  await waitFor('the reply in CUSTOMS\'s inbox behind hub A', () => existsSync(join(customs.inboxDir, `${replyId}.json`)), 60_000);
  const replyEntry = JSON.parse(readFileSync(join(customs.inboxDir, `${replyId}.json`), 'utf8'));
  assert.is(replyEntry.from, 'BOFT');
  assert.is(replyEntry.refToMessageId, id);
  const replyAtB = await evidenceOf(hubB, replyId, ['delivered'], 30_000);
  assert.ok(replyAtB.some((row) => row.stage === 'delivered'), 'hub B evidenced hub A\'s receipt for the reply');

  // Hub A's evidence bundle holds hub B's signed Receipt, which swx and xmlsec1 (by the command VERIFY.md gives) verify.
  const bundle = await exportCheckedBundle(hubA, id, ['received', 'delivered']);
  assert.ok(bundle.checks.some((check) => check.check === 'delivered XML signature' && check.ok), JSON.stringify(bundle.checks));
  assert.ok(bundle.commands.some((command) => command.startsWith('xmlsec1 --verify') && command.endsWith('signatures/delivered-BOFT-signed.xml')), bundle.commands.join('\n'));
  assert.match(readFileSync(join(bundle.folder, 'signatures/delivered-BOFT-signed.xml'), 'utf8'), /<eb:Receipt>.*NonRepudiationInformation/s);
});

test('the evidence bundle of a message an AS4 gateway sent holds its signed envelope and payload, which swx evidence verify checks', async () => {
  const messageId = 'notice-bundle@tfda.example';
  const message = await gatewayMessage({ messageId });
  const answer = await post(message.body, message.contentType);
  assert.is(answer.status, 200, answer.text);
  const bundle = await exportCheckedBundle(hubA, messageId, ['received', 'delivered']);
  assert.ok(bundle.checks.some((check) => check.check === 'received XML signature' && check.ok && /1 part/.test(check.detail)), JSON.stringify(bundle.checks));
  assert.equal(readFileSync(join(bundle.folder, 'message.bin')), notice);
  assert.match(readFileSync(join(bundle.folder, 'signatures/received-signed.xml'), 'utf8'), new RegExp(`<eb:MessageId>${messageId}</eb:MessageId>`));
  // The payload's reference uses the SwA transform Debian's xmlsec1 lacks: VERIFY.md leaves it to swx evidence verify.
  assert.match(readFileSync(join(bundle.folder, 'VERIFY.md'), 'utf8'), /received-signed\.xml references its payload through the SwA attachment transform/);
});

test('a partner\'s MSH sends AS4 to a REST agency: signed receipt with every reference; a resend gets the same receipt and is delivered once', async () => {
  const messageId = `notice-1@tfda.example`;
  const message = await gatewayMessage({ messageId, gzip: true });
  const first = await post(message.body, message.contentType);
  assert.is(first.status, 200, first.text);
  assert.is(errorCodeOf(first.signal), '');
  assert.is(checkReceipt(first.signal, { messageId, references: signedReferences(message.sent) }, true), undefined, 'the receipt copies every reference the gateway signed');
  await waitFor('the notice in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 60_000);
  assert.is(readFileSync(join(customs.inboxDir, `${messageId}.bin`), 'utf8'), notice.toString('utf8'), 'inflated to the payload the gateway sent');
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, `${messageId}.json`), 'utf8'));
  assert.is(entry.from, 'TFDA');
  assert.is(entry.service, 'health.notice');
  assert.is(entry.action, 'Submit');
  assert.is(entry.conversationId, `conv-${messageId}`);
  assert.match(entry.contentType, /^application\/xml/);

  const again = await post(message.body, message.contentType);
  assert.is(again.status, 200);
  assert.is(again.text, first.text, 'the stored receipt, byte for byte');
  const resent = await gatewayMessage({ messageId, gzip: true });
  const third = await post(resent.body, resent.contentType);
  assert.is(third.text, first.text, 'a freshly signed resend of the MessageId gets the stored receipt too');
  const stages = (await waitStages(messageId, 'duplicate', 2))[messageId] ?? {};
  assert.is(Number(stages.delivered), 1, `delivered once: ${JSON.stringify(stages)}`);
  assert.is(Number(stages.duplicate), 2, `both repeats evidenced: ${JSON.stringify(stages)}`);
  assert.is(arrivedAtCustoms.filter((id) => id === messageId).length, 1, 'CUSTOMS stored it once');
});

async function waitStages(id: string, stage: string, count: number): Promise<Record<string, Record<string, number>>> {
  let stages: Record<string, Record<string, number>> = {};
  await waitFor(`${count} ${stage} records of ${id}`, async () => {
    stages = await stagesOf(hubA, [id]);
    return Number(stages[id]?.[stage] ?? 0) >= count && Number(stages[id]?.delivered ?? 0) >= 1;
  }, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  return stagesOf(hubA, [id]);
}

test('bad input gets its ebMS Error signal, signed, a 4xx, and evidence; the hub serves on', async () => {
  const refusedBefore = await unauthenticatedCount();
  const cases: [string, () => Promise<{ body: Buffer; contentType: string }>, string][] = [
    ['no eb:Messaging', async () => ({ body: Buffer.from('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header/><env:Body/></env:Envelope>'), contentType: 'application/soap+xml' }), 'EBMS:0009'],
    ['an unknown party', () => gatewayMessage({ messageId: 'bad-party@tfda.example', fromParty: 'nobody' }), 'EBMS:0010'],
    ['a tampered attachment', () => gatewayMessage({ messageId: 'bad-tamper@tfda.example', tamper: true }), 'EBMS:0101'],
    ['a certificate registered to no partner', () => gatewayMessage({ messageId: 'bad-cert@tfda.example', signer: rogue }), 'EBMS:0101'],
    ['a mustUnderstand header not understood', () => gatewayMessage({ messageId: 'bad-mu@tfda.example', extraHeader: true }), 'EBMS:0008'],
    ['truncated MIME', async () => { const m = await gatewayMessage({ messageId: 'bad-cut@tfda.example' }); return { ...m, body: m.body.subarray(0, m.body.length - 120) }; }, 'EBMS:0007'],
  ];
  for (const [what, build, code] of cases) {
    const { body, contentType } = await build();
    const answer = await post(body, contentType);
    assert.is(errorCodeOf(answer.signal), code, `${what}: ${answer.text.slice(0, 600)}`);
    assert.ok(answer.status >= 400 && answer.status < 500, `${what}: answered ${answer.status}`);
  }

  // A gzip bomb from the authenticated gateway: refused as it inflates, evidenced under its MessageId.
  const bomb = await gatewayMessage({ messageId: 'bad-bomb@tfda.example', gzip: true, payload: Buffer.alloc(64 * 1024 * 1024) });
  const bombAnswer = await post(bomb.body, bomb.contentType);
  assert.is(errorCodeOf(bombAnswer.signal), 'EBMS:0303', bombAnswer.text.slice(0, 600));
  assert.ok(bombAnswer.status >= 400 && bombAnswer.status < 500, `the bomb answered ${bombAnswer.status}`);
  const bombEvidence = await evidenceOf(hubA, 'bad-bomb@tfda.example', ['rejected'], 30_000);
  const rejected = bombEvidence.filter((row) => row.stage === 'rejected');
  assert.is(rejected.length, 1);
  assert.is(rejected[0].from_partner, 'TFDA');
  assert.match(rejected[0].detail, /EBMS:0303/);

  // The hub serves on: a good message after all that gets its receipt.
  const good = await gatewayMessage({ messageId: 'after-bad@tfda.example' });
  const goodAnswer = await post(good.body, good.contentType);
  assert.is(goodAnswer.status, 200, goodAnswer.text.slice(0, 600));
  assert.ok(goodAnswer.signal.receipt, 'a Receipt');

  // Refusals before the sender is authenticated are counted per source, code and minute, each one of them.
  let counted = 0;
  await waitFor('the six refusals before authentication counted in evidence', async () => (counted = await unauthenticatedCount() - refusedBefore) >= cases.length, 120_000);
  assert.is(counted, cases.length);
});

test('a partner that pulls gets the waiting message as a signed UserMessage encrypted to it (Python and xmlsec1 open it), acknowledges it with its Receipt, then EBMS:0006', async () => {
  const notice = Buffer.from(JSON.stringify({ taxId: '12345678', amount: 4200 }));
  const sent = await customs.client.send({ to: 'NTA', service: 'tax.notice', action: 'deliver', contentType: 'application/json', body: notice });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  const pullRequest = async () => {
    const xml = await signAs4(pullRequestEnvelope(ntaMpc), { keyPem: nta.keyPem, certPem: nta.certPem });
    return postBytes(Buffer.from(xml), 'application/soap+xml; charset=UTF-8');
  };
  let pulled = await pullRequest();
  // Routed a moment after the 202: until then the MPC is empty, and each PullRequest hands out at most one message.
  await waitFor('the message waiting in NTA\'s inbox', async () => pulled.contentType.startsWith('multipart/related') || ((pulled = await pullRequest()), false), 30_000);
  assert.is(pulled.status, 200);
  const body = await readAs4Body((async function* () { yield pulled.body; })(), pulled.contentType, 16 * 1024 * 1024);
  const message = readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) });
  const user = message.message;
  assert.is(user.kind, 'user');
  if (user.kind !== 'user') return;
  assert.is(user.messageInfo.messageId, id, 'the MessageId is the envelope id');
  assert.is(user.mpc, ntaMpc);
  assert.is(user.properties.find((p) => p.name === 'originalSender')?.value, 'CUSTOMS');
  const ntaKey = { keyPem: nta.keyPem, certPem: nta.certPem };
  const security = await checkAs4Security(message, {
    profile: 'eDelivery-AS4-1.15', keyTransport: 'rsa-oaep-mgf1p', encrypted: true, attachments: body.attachments, decryption: { key: ntaKey, profile: 'eDelivery-AS4-1.15' },
  });
  assert.is(security.certificatePem.replace(/\s/g, ''), hubASign.replace(/\s/g, ''), 'signed by hub A');
  const part = user.parts[0]!;
  assert.is(part.mimeType, 'application/json');
  const attachment = security.attachments[0]!;
  assert.is((await collect(decompress((async function* () { yield attachment.body; })(), part))).toString('utf8'), notice.toString('utf8'));

  // What hub A encrypted opens outside swx: in the Python decrypter and in xmlsec1, to the gzip it compressed first.
  const ciphertext = body.attachments[0]!;
  assert.is(ciphertext.headers['content-type'], 'application/octet-stream');
  const python = decryptInPython(body.envelope, nta.keyPem, [ciphertext]);
  assert.is(python.status, 0, python.err);
  assert.ok(python.report!.algorithms.includes('http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p'), JSON.stringify(python.report));
  assert.is(python.report!.parts[ciphertext.contentId]!.mimeType, 'application/gzip');
  assert.is(gunzipSync(python.plaintext.get(ciphertext.contentId)!).toString('utf8'), notice.toString('utf8'));
  const xmlsec = decryptWithXmlsec1(body.envelope, nta.keyPem, ciphertext.contentId, ciphertext.body);
  assert.is(xmlsec.status, 0, xmlsec.err);
  assert.is(gunzipSync(xmlsec.out).toString('utf8'), notice.toString('utf8'));
  assert.is.not(decryptWithXmlsec1(body.envelope, rogue.keyPem, ciphertext.contentId, ciphertext.body).status, 0, 'and not under another key');

  const receipt = await signAs4(receiptEnvelope(message), { keyPem: nta.keyPem, certPem: nta.certPem });
  const acked = await postBytes(Buffer.from(receipt), 'application/soap+xml; charset=UTF-8');
  assert.is(acked.status, 200, acked.body.toString('utf8').slice(0, 600));
  const rows = await evidenceOf(hubA, id, ['delivered'], 30_000);
  const delivered = rows.filter((row) => row.stage === 'delivered');
  assert.is(delivered.length, 1, `one delivered record: ${rows.map((row) => row.stage)}`);
  assert.match(Buffer.from(delivered[0].raw, 'base64').toString('utf8'), /NonRepudiationInformation/, 'NTA\'s signed Receipt is the evidence');

  const empty = await pullRequest();
  assert.is(empty.status, 200);
  const signal = readAs4Message(empty.body).message as SignalMessage;
  assert.is(errorCodeOf(signal), 'EBMS:0006');
  assert.is(signal.errors[0]!.severity, 'warning');
});

test('a P-Mode the hub cannot honour: 2.0 encryption without the partner\'s X25519 certificate, or with an RSA one, is refused at registration; an Ed25519 profile fails delivery for good with an RSA hub key', async () => {
  const pmode = { url: 'https://localhost:9/as4', partyIds: [{ id: 'ed-gw', type: 'urn:example:party' }], services: [{ service: 'customs.declaration', actions: ['deliver'] }], profile: 'eDelivery-AS4-2.0' };
  const noCertificate = await hubA.admin('PUT', '/api/partners/EDGW', { name: 'Ed25519 gateway', certificates: [rogue.certPem], endpoints: { as4: pmode } });
  assert.is(noCertificate.status, 400);
  assert.match(JSON.stringify(noCertificate.body), /security\.encryptionCertificate: eDelivery-AS4-2\.0 encrypts to an X25519 key/);
  const rsaCertificate = await hubA.admin('PUT', '/api/partners/EDGW', { name: 'Ed25519 gateway', certificates: [rogue.certPem], endpoints: { as4: { ...pmode, security: { encryptionCertificate: rogue.certPem } } } });
  assert.is(rsaCertificate.status, 400);
  assert.match(JSON.stringify(rsaCertificate.body), /encrypts to an X25519 key; this certificate's is rsa/);
  const put = await hubA.admin('PUT', '/api/partners/EDGW', {
    name: 'Ed25519 gateway', certificates: [rogue.certPem], endpoints: { as4: { ...pmode, security: { sign: true, encrypt: false } } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'customs.declaration', ['CUSTOMS'], ['BOFT', 'EDGW']);
  const answer = await customs.client.send({ to: 'EDGW', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"n":1}') });
  assert.is(answer.status, 202, answer.text);
  const rows = await evidenceOf(hubA, String(answer.body.id), ['delivery_failed'], 30_000);
  const failed = rows.find((row) => row.stage === 'delivery_failed');
  assert.ok(failed, `evidenced as failed: ${rows.map((row) => row.stage)}`);
  assert.is(failed.code, 'SWX_SIG_ALG_UNSUPPORTED');
  assert.match(failed.detail, /eDelivery-AS4-2\.0 signs with Ed25519, and the hub's signing key is rsa/);
});

test('a gateway whose P-Mode asks for encryption: signed, compressed and encrypted to hub A is taken; another recipient\'s key or an altered ciphertext is a signed EBMS:0102, a payload in the clear EBMS:0103, each evidenced; the hub serves on', async () => {
  const secure = await issueAgency(pkiDirA, 'SECGW');
  const put = await hubA.admin('PUT', '/api/partners/SECGW', {
    name: 'gateway that encrypts', certificates: [secure.certPem],
    endpoints: { as4: {
      url: 'https://localhost:9/as4', partyIds: [{ id: 'secure-gw', type: 'urn:example:party' }],
      services: [{ service: 'urn:example:health-notice', type: 'urn:example', actions: ['Submit'], swx: 'health.notice' }],
      security: { sign: true, encrypt: true },
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'health.notice', ['TFDA', 'SECGW'], ['CUSTOMS']);
  const send = (messageId: string, extra: Partial<GatewayOptions>) => gatewayMessage({ messageId, signer: secure, fromParty: 'secure-gw', encryptTo: hubASign, gzip: true, ...extra });

  const messageId = 'sealed-1@secgw.example';
  const good = await send(messageId, {});
  const taken = await post(good.body, good.contentType);
  assert.is(taken.status, 200, taken.text.slice(0, 600));
  assert.is(checkReceipt(taken.signal, { messageId, references: signedReferences(good.sent) }, true), undefined, 'the receipt copies every reference signed over the plaintext');
  await waitFor('the decrypted notice in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 60_000);
  assert.is(readFileSync(join(customs.inboxDir, `${messageId}.bin`), 'utf8'), notice.toString('utf8'), 'decrypted, then inflated');
  const received = (await evidenceOf(hubA, messageId, ['received'], 30_000)).find((row) => row.stage === 'received');
  assert.is(received.from_partner, 'SECGW');
  assert.match(JSON.parse(received.signature).base, /<xenc:EncryptedKey.*<ds:Signature/s, 'the envelope as it came, encryption and signature, kept as evidence');

  const refusedBefore = { decrypt: await unauthenticatedCount('SWX_DECRYPT_FAILED') };
  const cases: [string, Partial<GatewayOptions>, string][] = [
    ['encrypted to another recipient', { encryptTo: rogue.certPem }, 'EBMS:0102'],
    ['an altered ciphertext', { alterCiphertext: true }, 'EBMS:0102'],
    ['a payload in the clear', { encryptTo: undefined }, 'EBMS:0103'],
  ];
  for (const [index, [what, extra, code]] of cases.entries()) {
    const bad = await send(`sealed-bad-${index}@secgw.example`, extra);
    const answer = await post(bad.body, bad.contentType);
    assert.is(errorCodeOf(answer.signal), code, `${what}: ${answer.text.slice(0, 600)}`);
    assert.ok(answer.status >= 400 && answer.status < 500, `${what}: answered ${answer.status}`);
    assert.match(answer.signal.errors[0]!.detail ?? '', code === 'EBMS:0102' ? /SWX_DECRYPT_FAILED/ : /requires encrypted payloads/, what);
  }
  // Refused before the signature over the plaintext could say who sent them: counted per source, code and minute.
  await waitFor('the decryption failures counted in evidence', async () => await unauthenticatedCount('SWX_DECRYPT_FAILED') - refusedBefore.decrypt >= 2, 120_000);
  assert.is(await unauthenticatedCount('SWX_DECRYPT_FAILED') - refusedBefore.decrypt, 2);

  const after = await send('sealed-after@secgw.example', {});
  const afterAnswer = await post(after.body, after.contentType);
  assert.is(afterAnswer.status, 200, afterAnswer.text.slice(0, 600));
  assert.ok(afterAnswer.signal.receipt, 'the hub serves on: a Receipt');
});

test('a delivery whose receipt was lost is resent byte for byte: hub B answers with its stored receipt, which checks out; BOFT gets it once', async () => {
  // Between hub A and hub B, a relay that loses the first answer: hub B took the message, hub A never heard.
  const tls = await issueCertificate(pkiDirA, 'RELAY', { profile: 'tls-server', hosts: ['localhost'] });
  let forwarded = 0;
  let firstSent: { body: Buffer; contentType: string } | undefined;
  const relay = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const first = forwarded++ === 0;
      if (first) firstSent = { body: Buffer.concat(chunks), contentType: String(req.headers['content-type']) };
      const onward = request(`https://localhost:${hubB.agencyPort}/as4`, { method: 'POST', ca: caPem, headers: { 'content-type': String(req.headers['content-type']) } }, (answer) => {
        const back: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => back.push(chunk));
        answer.on('end', () => {
          if (first) { req.socket.destroy(); return; }
          res.writeHead(answer.statusCode ?? 502, { 'content-type': String(answer.headers['content-type'] ?? '') });
          res.end(Buffer.concat(back));
        });
      });
      onward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const port = (relay.address() as { port: number }).port;
  try {
    const put = await hubA.admin('PUT', '/api/partners/BOFT', {
      name: 'BOFT behind hub-b', certificates: [hubBSign],
      endpoints: { as4: { ...pmodeOfHubB, url: `https://localhost:${port}/as4`, receptionAwareness: { retrySeconds: [1, 1, 1] } } },
    });
    assert.is(put.status, 200, JSON.stringify(put.body));
    const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"resent":true}') });
    assert.is(answer.status, 202, answer.text);
    const id = String(answer.body.id);
    const atA = await evidenceOf(hubA, id, ['delivered'], 60_000);
    assert.is(atA.filter((row) => row.stage === 'delivered').length, 1, `hub A holds hub B's receipt: ${atA.map((row) => [row.stage, row.code, row.detail])}`);
    assert.ok(forwarded >= 2, `the message went twice: ${forwarded}`);
    const atB = await evidenceOf(hubB, id, ['delivered', 'duplicate'], 30_000);
    assert.is(atB.filter((row) => row.stage === 'duplicate').length, forwarded - 1, 'each resend evidenced as a duplicate at hub B');
    assert.is(atB.filter((row) => row.stage === 'delivered').length, 1, 'BOFT got it once');

    // What went over the wire opens with hub B's key in the Python decrypter: RSA-OAEP (MGF1-SHA-256), AES-128-GCM.
    const wire = await readAs4Body((async function* () { yield firstSent!.body; })(), firstSent!.contentType, 16 * 1024 * 1024);
    const python = decryptInPython(wire.envelope, hubBKey, wire.attachments);
    assert.is(python.status, 0, python.err);
    assert.ok(python.report!.algorithms.includes('http://www.w3.org/2009/xmlenc11#rsa-oaep'), JSON.stringify(python.report));
    assert.is(gunzipSync(python.plaintext.get(wire.attachments[0]!.contentId)!).toString('utf8'), '{"resent":true}');
  } finally {
    relay.close();
    await hubA.admin('PUT', '/api/partners/BOFT', { name: 'BOFT behind hub-b', certificates: [hubBSign], endpoints: { as4: pmodeOfHubB } });
  }
});

test('a receiver that takes the message and never answers with a receipt: resent byte for byte on the P-Mode\'s schedule, then EBMS:0301, evidenced and dead-lettered', async () => {
  const tls = await issueCertificate(pkiDirA, 'SILENT-MSH', { profile: 'tls-server', hosts: ['localhost'] });
  const taken: Buffer[] = [];
  const silent = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => { taken.push(Buffer.concat(chunks)); res.writeHead(200); res.end(); });
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const put = await hubA.admin('PUT', '/api/partners/SILENT', {
      name: 'An MSH that never sends its receipt', certificates: [(await issueAgency(pkiDirA, 'SILENT')).certPem],
      endpoints: { as4: {
        url: `https://localhost:${(silent.address() as { port: number }).port}/as4`, partyIds: [{ id: 'silent-gw', type: 'urn:example:party' }],
        services: [{ service: 'customs.silent', actions: ['deliver'] }], security: { sign: true, encrypt: false },
        receptionAwareness: { retrySeconds: [1, 2] },
      } },
    });
    assert.is(put.status, 200, JSON.stringify(put.body));
    await addService(hubA, 'customs.silent', ['CUSTOMS'], ['SILENT']);
    const { id, detail } = await deadLetteredUnanswered(hubA, customs.client, { to: 'SILENT', service: 'customs.silent', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"unanswered":true}') }, 3);
    assert.ok(detail.startsWith(`EBMS:0301 MissingReceipt: no receipt for ${id} after 3 sends`), detail);
    // The first send and both resends (the P-Mode's two retries), the same signed message each time.
    assert.is(taken.length, 3);
    assert.ok(taken[0]!.includes(`<eb:MessageId>${id}</eb:MessageId>`), 'the envelope id is the MessageId');
    assert.ok(taken.every((body) => body.equals(taken[0]!)), 'each resend is the first send byte for byte');
  } finally {
    silent.close();
  }
});

/** How many AS4 refusals before authentication hub A's evidence counts (of one code when given). */
async function unauthenticatedCount(code?: string): Promise<number> {
  const answer = await hubA.admin('GET', '/api/evidence?raw=true&stage=refused_unauthenticated&limit=1000');
  const rows = Array.isArray(answer.body) ? answer.body : [];
  return rows.filter((row: any) => row.protocol === 'as4' && (code === undefined || row.code === code)).reduce((sum: number, row: any) => sum + Number(JSON.parse(row.detail).count), 0);
}

test.run();
