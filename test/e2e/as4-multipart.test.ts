// Several payloads in one AS4 message through the hub: a partner's MSH sends three parts (one gzipped, one with its own
// PartProperties) and the REST agency receives one multipart/related package holding them, each part's SHA-256 what
// was sent; an agency's package sent over REST leaves as a UserMessage with one PartInfo per part, each compressed,
// signed and encrypted (the independent Python decrypter and verifier judge it), and arrives behind the other hub as the
// same package, and back; a tampered second part is refused with EBMS:0101; the evidence of a
// three-part message verifies with `swx evidence verify`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request } from 'node:https';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  as4Multipart, checkReceipt, compress, gzipType, readAs4Body, readAs4Message, signAs4, signedAttachment, signedReferences, swxPartyIdType, userMessageEnvelope,
  type As4Message, type Property, type SignalMessage,
} from '../../connectors/as4/index.ts';
import { readPackage, writePackage, type PackagedPart } from '../../engine/mime/index.ts';
import { issueAgency, issueCertificate, type Credential } from '../../engine/pki/index.ts';
import { collect, hubPmode, writeAs4Settings } from '../helpers/as4.ts';
import { exportCheckedBundle } from '../helpers/bundle.ts';
import { addService, evidenceOf, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { decryptInPython } from '../helpers/xmlenc-judges.ts';
import { propertiesOf, pythonPackageParts } from '../helpers/package.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';

const verifier = fileURLToPath(new URL('../connectors/as4_verify.py', import.meta.url));
const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let gateway: Credential;
let caPem: string;
let hubASign: string;
let hubBKey: string;
const relayed: { body: Buffer; contentType: string }[] = [];
let closeRelay: () => void = () => undefined;

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('as4-multipart', {
    settings: (dir, partyId) => writeAs4Settings(dir, partyId),
    endpoints: (port, party) => ({ as4: hubPmode(port, party) }),
    onCustomsMessage: () => undefined,
  });
  ({ hubA, hubB, customs, boft } = hubs);
  caPem = hubs.pkiA.ca.certPem;
  hubASign = hubs.pkiA.hubSign.certPem;
  hubBKey = hubs.pkiB.hubSign.keyPem;
  const pkiDirA = join(hubs.dirA, 'pki');
  // Between hub A and hub B a relay keeps what hub A sends, for the independent Python decrypter and verifier.
  const tls = await issueCertificate(pkiDirA, 'RELAY', { profile: 'tls-server', hosts: ['localhost'] });
  const relay = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      relayed.push({ body: Buffer.concat(chunks), contentType: String(req.headers['content-type']) });
      const onward = request(`https://localhost:${hubB.agencyPort}/as4`, { method: 'POST', ca: caPem, headers: { 'content-type': String(req.headers['content-type']) } }, (answer) => {
        const back: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => back.push(chunk));
        answer.on('end', () => {
          res.writeHead(answer.statusCode ?? 502, { 'content-type': String(answer.headers['content-type'] ?? '') });
          res.end(Buffer.concat(back));
        });
      });
      onward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  closeRelay = () => relay.close();
  const put = await hubA.admin('PUT', '/api/partners/BOFT', {
    name: 'BOFT behind hub-b', certificates: [hubs.pkiB.hubSign.certPem],
    endpoints: { as4: { ...hubPmode(hubB.agencyPort, 'hub-b'), url: `https://localhost:${(relay.address() as { port: number }).port}/as4` } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  // TFDA's own AS4 gateway sends to CUSTOMS through hub A.
  gateway = await issueAgency(pkiDirA, 'TFDA');
  const tfda = await hubA.admin('PUT', '/api/partners/TFDA', {
    name: 'TFDA gateway', certificates: [gateway.certPem],
    endpoints: { as4: {
      url: 'https://localhost:9/as4', partyIds: [{ id: 'tfda-gw', type: 'urn:example:party' }],
      services: [{ service: 'urn:example:health-notice', type: 'urn:example', actions: ['Submit'], swx: 'health.notice' }],
      security: { sign: true, encrypt: false },
    } },
  });
  assert.is(tfda.status, 200, JSON.stringify(tfda.body));
  await addService(hubA, 'health.notice', ['TFDA'], ['CUSTOMS']);
});

test.after(async () => {
  closeRelay();
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

/** An XML declaration, a PDF invoice (with its file name as a PartProperty) and a UTF-8 text: one business document and its attachments. */
const documents: { contentId: string; mimeType: string; characterSet?: string; properties: Property[]; body: Buffer }[] = [
  { contentId: 'declaration@tfda.example', mimeType: 'application/xml', properties: [], body: Buffer.from('<Declaration xmlns="urn:example:customs"><No>AA/BE/13/101/00042</No><Value>98000</Value></Declaration>') },
  { contentId: 'invoice@tfda.example', mimeType: 'application/pdf', properties: [{ name: 'originalFileName', value: 'invoice 2026-118.pdf' }], body: Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n', 'latin1') },
  { contentId: 'origin@tfda.example', mimeType: 'text/plain', characterSet: 'utf-8', properties: [], body: Buffer.from('原產地證明 Certificate of origin: TW\n') },
];
const typeOf = (document: typeof documents[number]) => `${document.mimeType}${document.characterSet ? `; charset=${document.characterSet}` : ''}`;

/** The three documents as TFDA's MSH sends them to hub A, signed over every part; the first gzipped when asked. */
async function gatewayMessage(messageId: string, options: { gzipFirst?: boolean; tamperSecond?: boolean } = {}): Promise<{ body: Buffer; contentType: string; sent: As4Message }> {
  const gzipped = (index: number) => options.gzipFirst === true && index === 0;
  const wire = await Promise.all(documents.map(async (document, index) => ({
    contentId: document.contentId,
    contentType: gzipped(index) ? gzipType : typeOf(document),
    body: gzipped(index) ? await collect(compress(document.body)) : document.body,
  })));
  const written = userMessageEnvelope({
    messageId,
    from: { partyIds: [{ id: 'tfda-gw', type: 'urn:example:party' }], role },
    to: { partyIds: [{ id: 'hub-a', type: swxPartyIdType }], role },
    collaboration: { service: { value: 'urn:example:health-notice', type: 'urn:example' }, action: 'Submit', conversationId: `conv-${messageId}` },
    properties: [{ name: 'originalSender', value: 'TFDA' }, { name: 'finalRecipient', value: 'CUSTOMS' }],
    payloads: documents.map((document, index) => ({
      contentId: document.contentId, mimeType: document.mimeType, properties: document.properties,
      ...(gzipped(index) ? { compressionType: gzipType } : {}), ...(document.characterSet ? { characterSet: document.characterSet } : {}),
    })),
  });
  const xml = await signAs4(written, { keyPem: gateway.keyPem, certPem: gateway.certPem, attachments: wire.map((part) => signedAttachment(part)) });
  const sent = wire.map((part, index) => (options.tamperSecond && index === 1 ? { ...part, body: Buffer.from(part.body.toString('latin1').replace('1.4', '1.5'), 'latin1') } : part));
  const multipart = as4Multipart(xml, sent);
  return { body: await collect(multipart.body), contentType: multipart.contentType, sent: readAs4Message(Buffer.from(xml), { attachments: wire.map((part) => part.contentId) }) };
}

/** POSTs to hub A's AS4 path as an MSH does; the signal that answers. */
function post(body: Buffer, contentType: string): Promise<{ status: number; signal: SignalMessage; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hubA.agencyPort}/as4`, { method: 'POST', ca: caPem, headers: { 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const answer = Buffer.concat(chunks);
        const message = readAs4Message(answer).message;
        if (message.kind !== 'signal') reject(new Error(`not a signal: ${answer.toString('utf8').slice(0, 300)}`));
        else resolve({ status: res.statusCode ?? 0, signal: message, text: answer.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Checks a delivered package against the documents: Python reads each part's Content-ID, type and SHA-256 as sent. */
function assertPackageOfDocuments(contentType: string, body: Buffer, expected: readonly PackagedPart[]): void {
  assert.match(contentType, /^multipart\/related; boundary="[^"]+"; type="application\/xml"; start="<[^>]+>"$/);
  const read = pythonPackageParts(contentType, body);
  assert.is(read.start, `<${expected[0]!.contentId}>`);
  assert.equal(read.parts.map((part) => part.contentId), expected.map((part) => part.contentId));
  assert.equal(read.parts.map((part) => part.mediaType), expected.map((part) => part.contentType.split(';')[0]));
  assert.equal(read.parts.map((part) => part.sha256), expected.map((part) => sha256(part.body)), 'every part\'s SHA-256 as sent');
  assert.equal(read.parts.map(propertiesOf), expected.map((part) => Object.fromEntries(part.properties.map((p) => [p.name, p.value]))));
  assert.equal(readPackage(contentType, body), expected);
}

const asPackaged = (contentIdOf: (document: typeof documents[number]) => string = (document) => document.contentId): PackagedPart[] =>
  documents.map((document) => ({ contentId: contentIdOf(document), contentType: typeOf(document), properties: document.properties, body: document.body }));

test('AS4 in with three parts, one gzipped: the receipt copies every reference, CUSTOMS gets over REST one multipart/related package of the parts as sent', async () => {
  const messageId = 'three-parts@tfda.example';
  const message = await gatewayMessage(messageId, { gzipFirst: true });
  const answer = await post(message.body, message.contentType);
  assert.is(answer.status, 200, answer.text.slice(0, 600));
  assert.ok(answer.signal.receipt, 'a Receipt');
  const references = signedReferences(message.sent);
  assert.is(references.filter((reference) => reference.uri.startsWith('cid:')).length, 3, 'the gateway signed every part');
  assert.is(checkReceipt(answer.signal, { messageId, references }, true), undefined, 'the receipt copies every reference, each part\'s included');

  await waitFor('the package in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 60_000);
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, `${messageId}.json`), 'utf8'));
  assert.is(entry.from, 'TFDA');
  assertPackageOfDocuments(entry.contentType, readFileSync(join(customs.inboxDir, `${messageId}.bin`)), asPackaged());
});

test('a three-part AS4 message\'s evidence bundle: swx evidence verify checks the signature over every part of the package kept', async () => {
  const messageId = 'three-parts-evidence@tfda.example';
  const message = await gatewayMessage(messageId);
  const answer = await post(message.body, message.contentType);
  assert.is(answer.status, 200, answer.text.slice(0, 600));
  const bundle = await exportCheckedBundle(hubA, messageId, ['received', 'delivered']);
  assert.ok(bundle.checks.some((check) => check.check === 'received XML signature' && check.ok && /3 part/.test(check.detail)), JSON.stringify(bundle.checks));
});

test('a second part changed after signing is refused with EBMS:0101 and evidenced; the hub serves on', async () => {
  const messageId = 'three-parts-tampered@tfda.example';
  const message = await gatewayMessage(messageId, { tamperSecond: true });
  const answer = await post(message.body, message.contentType);
  assert.equal(answer.signal.errors.map((error) => error.errorCode), ['EBMS:0101'], answer.text.slice(0, 600));
  assert.ok(answer.status >= 400 && answer.status < 500, `answered ${answer.status}`);
  assert.match(answer.signal.errors[0]!.detail ?? '', /invoice@tfda\.example/);
  const again = await gatewayMessage('three-parts-after@tfda.example');
  assert.is((await post(again.body, again.contentType)).status, 200, 'a good message after it gets its receipt');
});

test('REST in with a package: AS4 out with one PartInfo per part, each gzipped, signed and encrypted (the Python decrypter and verifier judge it), BOFT gets the package behind hub B; and back', async () => {
  const packaged = await writePackage(asPackaged((document) => document.contentId.replace('tfda', 'customs')));
  const sent = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: packaged.contentType, body: packaged.body });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  await waitFor('the package in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 60_000).catch(async (error: Error) => {
    const rows = [...await evidenceOf(hubA, id), ...await evidenceOf(hubB, id)];
    throw new Error(`${error.message}: ${JSON.stringify(rows.map((row) => [row.stage, row.code, row.detail]))} relayed ${relayed.length}`);
  });
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assertPackageOfDocuments(entry.contentType, readFileSync(join(boft.inboxDir, `${id}.bin`)), readPackage(packaged.contentType, packaged.body));

  // What hub A sent: three PartInfo, each part gzipped with its MimeType (and PartProperties) kept, then encrypted.
  const wire = relayed.find((body) => body.body.includes(Buffer.from(`<eb:MessageId>${id}</eb:MessageId>`)))!;
  assert.ok(wire, 'the relay kept what hub A sent');
  const body = await readAs4Body((async function* () { yield wire.body; })(), wire.contentType, 16 * 1024 * 1024);
  const user = readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) }).message;
  assert.is(user.kind, 'user');
  if (user.kind !== 'user') return;
  assert.equal(user.parts.map((part) => [part.location.kind === 'attachment' ? part.location.contentId : '', part.mimeType, part.compressionType]), documents.map((document) => [document.contentId.replace('tfda', 'customs'), document.mimeType, gzipType]));
  assert.is(user.parts[1]!.properties.find((p) => p.name === 'originalFileName')?.value, 'invoice 2026-118.pdf');
  assert.is(user.parts[2]!.characterSet, 'utf-8');
  const opened = decryptInPython(body.envelope, hubBKey, body.attachments);
  assert.is(opened.status, 0, opened.err);
  assert.equal(Object.values(opened.report!.parts).map((part) => part.mimeType), [gzipType, gzipType, gzipType], 'each part encrypted on its own, gzipped first');
  // Decrypted, the message is as hub A signed it: the Python verifier checks every reference, each part's included.
  const plain = as4Multipart(body.envelope.toString('utf8'), body.attachments.map((part) => ({ contentId: part.contentId, contentType: gzipType, body: opened.plaintext.get(part.contentId)! })));
  const dir = tempDir('as4-multipart-wire');
  writeFileSync(join(dir, 'message'), await collect(plain.body));
  writeFileSync(join(dir, 'cert.pem'), hubASign);
  const verdict = JSON.parse(execFileSync('/usr/bin/python3', [verifier, join(dir, 'message'), plain.contentType, join(dir, 'cert.pem')], { encoding: 'utf8' }));
  assert.is(verdict.valid, true, JSON.stringify(verdict));
  assert.is(verdict.references.filter((reference: { uri: string; valid: boolean }) => reference.uri.startsWith('cid:') && reference.valid).length, 3, JSON.stringify(verdict));

  // BOFT's answer, a package too, goes from hub B to hub A the same way, each part encrypted to hub A.
  const answer = await writePackage(asPackaged((document) => document.contentId.replace('tfda', 'boft')).slice(0, 2));
  const reply = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', action: 'deliver', contentType: answer.contentType, body: answer.body, refTo: id });
  assert.is(reply.status, 202, reply.text);
  const replyId = String(reply.body.id);
  await waitFor('the answer in CUSTOMS\'s inbox behind hub A', () => existsSync(join(customs.inboxDir, `${replyId}.json`)), 60_000);
  const replyEntry = JSON.parse(readFileSync(join(customs.inboxDir, `${replyId}.json`), 'utf8'));
  assert.equal(readPackage(replyEntry.contentType, readFileSync(join(customs.inboxDir, `${replyId}.bin`))), readPackage(answer.contentType, answer.body));
  const received = (await evidenceOf(hubA, replyId, ['received'], 30_000)).find((row) => row.stage === 'received');
  const signature = JSON.parse(received.signature);
  assert.is((signature.base.match(/<xenc:EncryptedData /g) ?? []).length, 2, 'each part came encrypted to hub A');
});

test.run();
