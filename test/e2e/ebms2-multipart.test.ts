// Several payloads in one ebMS 2.0 message through the hub: a partner's MSH sends two attachments, one Manifest
// Reference each (one with its xlink:role), and the REST agency receives one multipart/related package of them, each
// part's SHA-256 what was sent; an agency's package sent over REST leaves as a message with one Reference and one signed
// MIME part per package part, which hub B takes and xmlsec1 judges with one --url-map per attachment (VERIFY.md's
// command); a second attachment changed after signing is refused with SecurityFailure.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ackRequestedXml, ebmsMultipart, envelopeXml, manifestXml, messageHeaderXml, readEbmsParts, signEbms, swxPartyIdType, swxServiceType, syncReplyXml,
  type EbmsMessage,
} from '../../connectors/ebms2/index.ts';
import { entityOf, messageParts, readPackage, writePackage, type PackagedPart } from '../../engine/mime/index.ts';
import { issueAgency, type Credential } from '../../engine/pki/index.ts';
import { exportCheckedBundle } from '../helpers/bundle.ts';
import { hubAgreement, hubType, registerTfdaGateway, writeEbms2Settings } from '../helpers/ebms2.ts';
import { waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { pythonPackageParts } from '../helpers/package.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let gateway: Credential;
let caPem: string;

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('ebms2-multipart', {
    // Bodies over 256 KiB stream their parts into the Object Store; the small messages here are held as ever.
    settings: (dir, party) => writeEbms2Settings(dir, [{ id: party, type: hubType }], { limits: { inlinePayloadBytes: 256 * 1024 } }),
    endpoints: (port, party) => ({ ebms2: hubAgreement(port, party) }),
    onCustomsMessage: () => undefined,
  });
  ({ hubA, hubB, customs, boft } = hubs);
  caPem = hubs.pkiA.ca.certPem;
  gateway = await issueAgency(join(hubs.dirA, 'pki'), 'TFDA');
  await registerTfdaGateway(hubA, gateway.certPem);
});

test.after(async () => {
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

/** A notice and the laboratory report behind it: the business document and its attachment. */
const twoAttachments: PackagedPart[] = [
  { contentId: 'notice@tfda.example', contentType: 'application/xml', properties: [], body: Buffer.from('<Notice xmlns="urn:example:health"><Product>frozen shrimp</Product><Finding>residue over limit</Finding></Notice>') },
  { contentId: 'lab-report@tfda.example', contentType: 'application/pdf', properties: [], role: 'urn:example:role:lab-report', body: Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\nresidue 0.42 mg/kg\n%%EOF\n', 'latin1') },
];

/**
 * The attachments (by default the two above) as TFDA's MSH sends them to hub A: one Manifest Reference each, signed over
 * all, their MIME parts in `wireOrder` (indexes into the Manifest's order) when given.
 */
async function gatewayMessage(messageId: string, options: { tamperSecond?: boolean; parts?: PackagedPart[]; wireOrder?: number[] } = {}): Promise<{ body: Buffer; contentType: string }> {
  const attachments = options.parts ?? twoAttachments;
  const header = messageHeaderXml({
    from: { partyIds: [{ id: 'tfda-gw', type: 'urn:example:party' }] },
    to: { partyIds: [{ id: 'hub-a', type: hubType }, { id: 'CUSTOMS', type: swxPartyIdType }] },
    cpaId: 'tfda-hub-a', conversationId: `conv-${messageId}`,
    service: { value: 'health.notice', type: swxServiceType }, action: 'Submit',
    messageId, timestamp: new Date(), duplicateElimination: true,
  });
  const signed = await signEbms(envelopeXml([header, ackRequestedXml(true), syncReplyXml()], [manifestXml(attachments)]),
    attachments.map((part) => ({ contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body })),
    { keyPem: gateway.keyPem, certPem: gateway.certPem });
  const sent = attachments.map((part, index) => (options.tamperSecond && index === 1 ? { ...part, body: tamper(part.body) } : part));
  const multipart = ebmsMultipart(signed.xml, options.wireOrder ? options.wireOrder.map((index) => sent[index]!) : sent);
  const chunks: Buffer[] = [];
  for await (const chunk of multipart.body) chunks.push(chunk as Buffer);
  return { body: Buffer.concat(chunks), contentType: multipart.contentType };
}

/** The second attachment changed after signing: the lab report's finding, or a large part's middle byte. */
function tamper(body: Buffer): Buffer {
  const changed = Buffer.from(body.toString('latin1').replace('0.42', '0.04'), 'latin1');
  if (!changed.equals(body)) return changed;
  changed[changed.length >> 1]! ^= 1;
  return changed;
}

/** Posts to hub A's ebMS 2.0 path and reads the signal that answers. */
function post(body: Buffer, contentType: string): Promise<{ status: number; signal: EbmsMessage; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hubA.agencyPort}/ebms2`, { method: 'POST', ca: caPem, headers: { soapaction: '"ebXML"', 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const answer = Buffer.concat(chunks);
        try {
          const signal = readEbmsParts(messageParts(entityOf({ 'content-type': String(res.headers['content-type'] ?? '') }, answer)), { at: false });
          resolve({ status: res.statusCode ?? 0, signal, text: answer.toString('utf8') });
        } catch (error) {
          reject(new Error(`${res.statusCode}: no ebMS signal answers (${(error as Error).message}): ${answer.toString('utf8').slice(0, 400)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A delivered package as Python reads it: the parts' Content-IDs, types, roles and SHA-256s as sent. */
function assertPackageOf(contentType: string, body: Buffer, expected: readonly PackagedPart[]): void {
  const read = pythonPackageParts(contentType, body);
  assert.is(read.mediaType, 'multipart/related');
  assert.equal(read.parts.map((part) => part.contentId), expected.map((part) => part.contentId));
  assert.equal(read.parts.map((part) => part.mediaType), expected.map((part) => part.contentType));
  assert.equal(read.parts.map((part) => part.role), expected.map((part) => part.role ?? null));
  assert.equal(read.parts.map((part) => part.sha256), expected.map((part) => sha256(part.body)), 'every part\'s SHA-256 as sent');
}

test('ebMS 2.0 in with two attachments: the Acknowledgment copies every reference, CUSTOMS gets one package of both over REST, and the evidence verifies with xmlsec1 --url-map per attachment', async () => {
  const messageId = 'two-attachments@tfda.example';
  const message = await gatewayMessage(messageId);
  const answer = await post(message.body, message.contentType);
  assert.is(answer.signal.signal, 'Acknowledgment', answer.text.slice(0, 600));
  assert.equal(answer.signal.acknowledgment?.references.map((reference) => reference.uri), ['', 'cid:notice@tfda.example', 'cid:lab-report@tfda.example']);
  await waitFor('the package in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 90_000);
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, `${messageId}.json`), 'utf8'));
  assertPackageOf(entry.contentType, readFileSync(join(customs.inboxDir, `${messageId}.bin`)), twoAttachments);

  const bundle = await exportCheckedBundle(hubA, messageId, ['received', 'delivered']);
  assert.ok(bundle.checks.some((check) => check.check === 'received XML signature' && check.ok && /2 part/.test(check.detail)), JSON.stringify(bundle.checks));
  assert.ok(bundle.commands.some((command) => /^xmlsec1 --verify .*--url-map:cid:notice@tfda\.example parts\/1\.bin --url-map:cid:lab-report@tfda\.example parts\/2\.bin signatures\/received-signed\.xml$/.test(command)), bundle.commands.join('\n'));
});

test('a second attachment changed after signing is refused with SecurityFailure; the hub serves on', async () => {
  const tampered = await gatewayMessage('two-attachments-tampered@tfda.example', { tamperSecond: true });
  const answer = await post(tampered.body, tampered.contentType);
  assert.is(answer.signal.signal, 'MessageError', answer.text.slice(0, 600));
  assert.equal(answer.signal.errorList?.errors.map((error) => error.errorCode), ['SecurityFailure']);
  assert.ok(answer.status < 500, `answered ${answer.status}`);
  const good = await gatewayMessage('two-attachments-after@tfda.example');
  assert.is((await post(good.body, good.contentType)).signal.signal, 'Acknowledgment', 'a good message after it is acknowledged');
});

const kib = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

test('three large attachments (XML, binary, text), the binary on the wire before its turn, stream into one package: the Acknowledgment comes, CUSTOMS gets each part as sent, hub A grows by far less than the parts; a large part changed after signing is refused and nothing of it kept', async () => {
  const rows = Array.from({ length: 60_000 }, (_, i) => `<item seq="${i}">${randomBytes(24).toString('hex')}</item>\n`).join('');
  const large: PackagedPart[] = [
    { contentId: 'goods@tfda.example', contentType: 'application/xml', properties: [], body: Buffer.from(`<goods xmlns="urn:example:goods">\n${rows}</goods>\n`) },
    // Large enough that holding the parts would show past the garbage V8 lets build up between collections.
    { contentId: 'scan@tfda.example', contentType: 'application/octet-stream', properties: [], role: 'urn:example:role:scan', body: randomBytes(120 * 1024 * 1024) },
    { contentId: 'log@tfda.example', contentType: 'text/plain', properties: [], body: Buffer.from(Array.from({ length: 60_000 }, (_, i) => `${i};${randomBytes(24).toString('hex')}\r\n`).join('')) },
  ];
  const total = large.reduce((sum, part) => sum + part.body.length, 0);
  const messageId = 'three-large@tfda.example';
  const message = await gatewayMessage(messageId, { parts: large, wireOrder: [1, 0, 2] });
  const pid = hubA.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const answer = await post(message.body, message.contentType);
  const grown = kib(pid, 'VmHWM') - before;
  console.log(`three parts, ${Math.round(total / 1024 / 1024)} MiB over ebMS 2.0 in: hub A's peak RSS grew ${Math.round(grown / 1024 / 1024)} MiB`);
  assert.is(answer.signal.signal, 'Acknowledgment', JSON.stringify(answer.signal.errorList?.errors));
  assert.ok(grown < total, `hub A grew by ${Math.round(grown / 1024 / 1024)} MiB taking ${Math.round(total / 1024 / 1024)} MiB in three parts`);
  await waitFor('the package in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 120_000);
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, `${messageId}.json`), 'utf8'));
  assertPackageOf(entry.contentType, readFileSync(join(customs.inboxDir, `${messageId}.bin`)), large);

  const tampered = await gatewayMessage('three-large-tampered@tfda.example', { parts: large, tamperSecond: true });
  const refused = await post(tampered.body, tampered.contentType);
  assert.equal(refused.signal.errorList?.errors.map((error) => error.errorCode), ['SecurityFailure'], refused.text.slice(0, 600));
  assert.not.ok(existsSync(join(customs.inboxDir, 'three-large-tampered@tfda.example.bin')));
});

test('120 MiB REST in at hub A goes ebMS 2.0 to hub B streamed from hub A\'s Object Store (signed by its stored SHA-256) and into hub B\'s, and reaches BOFT with its SHA-256; neither hub grows by the payload', async () => {
  const payload = randomBytes(120 * 1024 * 1024);
  const pids = [hubA.proc.pid!, hubB.proc.pid!];
  const before = pids.map((pid) => kib(pid, 'VmRSS'));
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const sent = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/zip', body: payload });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  await waitFor('the payload in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 180_000);
  const grown = pids.map((pid, index) => kib(pid, 'VmHWM') - before[index]!);
  console.log(`120 MiB REST in, ebMS 2.0 across, REST out: peak RSS grew ${Math.round(grown[0]! / 1024 / 1024)} MiB (hub A), ${Math.round(grown[1]! / 1024 / 1024)} MiB (hub B)`);
  assert.is(sha256(readFileSync(join(boft.inboxDir, `${id}.bin`))), sha256(payload), 'the bytes CUSTOMS sent');
  assert.ok(grown.every((bytes) => bytes < payload.length), `hub A grew by ${Math.round(grown[0]! / 1024 / 1024)} MiB, hub B by ${Math.round(grown[1]! / 1024 / 1024)} MiB`);
});

test('a 140 MiB payload package REST in at hub A goes ebMS 2.0 to hub B part by part, streamed both ways, and BOFT gets each part as sent; neither hub grows by the package', async () => {
  const parts: PackagedPart[] = [
    { contentId: 'declaration@customs.example', contentType: 'application/xml', properties: [], body: Buffer.from(`<d xmlns="urn:example:d">${'<line>x</line>'.repeat(100_000)}</d>`) },
    { contentId: 'scan@customs.example', contentType: 'application/octet-stream', properties: [], role: 'urn:example:role:scan', body: randomBytes(128 * 1024 * 1024) },
  ];
  const packaged = await writePackage(parts);
  const pids = [hubA.proc.pid!, hubB.proc.pid!];
  const before = pids.map((pid) => kib(pid, 'VmRSS'));
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const sent = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: packaged.contentType, body: packaged.body });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  await waitFor('the package in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 180_000);
  const grown = pids.map((pid, index) => kib(pid, 'VmHWM') - before[index]!);
  console.log(`${Math.round(packaged.body.length / 1024 / 1024)} MiB package REST in, ebMS 2.0 across, REST out: peak RSS grew ${Math.round(grown[0]! / 1024 / 1024)} MiB (hub A), ${Math.round(grown[1]! / 1024 / 1024)} MiB (hub B)`);
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assertPackageOf(entry.contentType, readFileSync(join(boft.inboxDir, `${id}.bin`)), parts);
  assert.ok(grown.every((bytes) => bytes < packaged.body.length), `hub A grew by ${Math.round(grown[0]! / 1024 / 1024)} MiB, hub B by ${Math.round(grown[1]! / 1024 / 1024)} MiB`);
});

test('REST in with a package: ebMS 2.0 out with one Reference per part, hub B takes it (xmlsec1 --url-map per attachment judges the signature), BOFT gets the package', async () => {
  const packaged = await writePackage(twoAttachments.map((part) => ({ ...part, contentId: part.contentId.replace('tfda', 'customs') })));
  const sent = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: packaged.contentType, body: packaged.body });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  await waitFor('the package in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 90_000);
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assertPackageOf(entry.contentType, readFileSync(join(boft.inboxDir, `${id}.bin`)), readPackage(packaged.contentType, packaged.body));

  // Hub B kept what hub A signed: one Manifest Reference per part (its role kept), and VERIFY.md's xmlsec1 command,
  // one --url-map per attachment, verifies it (exportCheckedBundle runs every command).
  const bundle = await exportCheckedBundle(hubB, id, ['received', 'delivered']);
  const signed = readFileSync(join(bundle.folder, 'signatures/received-signed.xml'), 'utf8');
  assert.match(signed, /<eb:Manifest[^>]*><eb:Reference [^>]*xlink:href="cid:notice@customs\.example"\/><eb:Reference [^>]*xlink:href="cid:lab-report@customs\.example" xlink:role="urn:example:role:lab-report"\/><\/eb:Manifest>/);
  assert.ok(bundle.commands.some((command) => /--url-map:cid:notice@customs\.example parts\/1\.bin --url-map:cid:lab-report@customs\.example parts\/2\.bin signatures\/received-signed\.xml$/.test(command)), bundle.commands.join('\n'));
  assert.ok(bundle.checks.some((check) => check.check === 'received XML signature' && check.ok && /2 part/.test(check.detail)), JSON.stringify(bundle.checks));
});

test.run();
