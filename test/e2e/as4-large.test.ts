// AS4 payloads larger than the inline limit (set small here) through hub processes: a partner's MSH sends 160 MiB, signed
// and encrypted to the hub, and it reaches the REST agency with the same SHA-256 while the hub's resident memory grows
// by well under the payload's size (its part streamed into the Object Store, decrypted and digested on the way); 160 MiB
// REST in at one hub goes out AS4 to the other streamed from its Object Store (signed with the stored SHA-256,
// encrypted as it streams); a body cut short, or a payload altered after signing, gets its ebMS Error signal (4xx) and
// nothing of it is delivered.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  as4Multipart, checkAs4Security, pullRequestEnvelope, readAs4Body, readAs4Message, signAs4, signedAttachment, swxPartyIdType, userMessageEnvelope, type SignalMessage,
} from '../../connectors/as4/index.ts';
import { defaultMimeLimits, readPackage, writePackage, type PackagedPart } from '../../engine/mime/index.ts';
import { issueAgency, type Credential } from '../../engine/pki/index.ts';
import { checkWsSecurity, encryptSoapAttachments } from '../../engine/trust/index.ts';
import { collect, hubPmode, writeAs4Settings } from '../helpers/as4.ts';
import { stagesOf } from '../helpers/delivery.ts';
import { addService, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';

const T = swxPartyIdType;
const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
const inlineLimit = 256 * 1024;
const payloadBytes = 64 * 1024 * 1024;

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let gateway: Credential;
let caPem: string;
let hubASign: string;

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('as4-large', {
    settings: (dir, partyId) => writeAs4Settings(dir, partyId, { limits: { inlinePayloadBytes: inlineLimit } }),
    endpoints: (port, party) => ({ as4: hubPmode(port, party) }),
    onCustomsMessage: () => undefined,
  });
  ({ hubA, hubB, customs, boft } = hubs);
  caPem = hubs.pkiA.ca.certPem;
  hubASign = hubs.pkiA.hubSign.certPem;
  gateway = await issueAgency(join(hubs.dirA, 'pki'), 'BIGGW');
  const put = await hubA.admin('PUT', '/api/partners/BIGGW', {
    name: 'gateway that sends large payloads', certificates: [gateway.certPem],
    endpoints: { as4: {
      url: 'https://localhost:9/as4', partyIds: [{ id: 'big-gw', type: 'urn:example:party' }],
      services: [{ service: 'urn:example:scan', type: 'urn:example', actions: ['Submit'], swx: 'scan.image' }],
      security: { sign: true, encrypt: true },
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'scan.image', ['BIGGW'], ['CUSTOMS']);
});

test.after(async () => {
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

interface LargePart { payload: Buffer; mimeType: string; gzip?: boolean }

/**
 * A UserMessage from the gateway: the payloads signed, then (the last one altered when asked) encrypted to hub A; the
 * HTTP body whole, its MIME parts in `wireOrder` (indexes into the PartInfo order) when given.
 */
async function largeMessage(messageId: string, payloads: Buffer | LargePart[], options: { alter?: boolean | ((body: Buffer) => Buffer); gzip?: boolean; wireOrder?: number[] } = {}): Promise<{ body: Buffer; contentType: string }> {
  const named = Buffer.isBuffer(payloads) ? [{ payload: payloads, mimeType: 'application/octet-stream', gzip: options.gzip === true }] : payloads;
  const parts = named.map((part, index) => ({
    contentId: `scan-${index}-${messageId}`, contentType: part.gzip ? 'application/gzip' : part.mimeType, body: part.gzip ? gzipSync(part.payload) : part.payload,
  }));
  const written = userMessageEnvelope({
    messageId,
    from: { partyIds: [{ id: 'big-gw', type: 'urn:example:party' }], role },
    to: { partyIds: [{ id: 'hub-a', type: T }], role },
    collaboration: { service: { value: 'urn:example:scan', type: 'urn:example' }, action: 'Submit', conversationId: `conv-${messageId}` },
    properties: [{ name: 'originalSender', value: 'BIGGW' }, { name: 'finalRecipient', value: 'CUSTOMS' }],
    payloads: named.map((part, index) => ({ contentId: parts[index]!.contentId, mimeType: part.mimeType, ...(part.gzip ? { compressionType: 'application/gzip' as const } : {}) })),
  });
  const xml = await signAs4(written, { keyPem: gateway.keyPem, certPem: gateway.certPem, attachments: parts.map((part) => signedAttachment(part)) });
  const sent = parts.map((part): { contentId: string; contentType: string; body: Buffer } => ({ ...part, body: Buffer.from(part.body) }));
  const last = sent.at(-1)!;
  if (typeof options.alter === 'function') last.body = options.alter(last.body);
  else if (options.alter) last.body[last.body.length - 1]! ^= 1;
  const onWire = options.wireOrder ? options.wireOrder.map((index) => sent[index]!) : sent;
  const encrypted = await encryptSoapAttachments(xml, onWire, { certPem: hubASign }, 'eDelivery-AS4-1.15');
  const multipart = as4Multipart(encrypted.envelope, encrypted.parts);
  return { body: await collect(multipart.body), contentType: multipart.contentType };
}

/** POSTs `body` to hub A's AS4 path, with a Content-Length that says its length unless `chunked`; the answer as it came. */
function postBytes(body: Buffer, contentType: string, chunked = false): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hubA.agencyPort}/as4`, { method: 'POST', ca: caPem, headers: { 'content-type': contentType, ...(chunked ? {} : { 'content-length': String(body.length) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (!chunked) return req.end(body);
    // In 1 MiB pieces, as a sender that does not know the length ahead writes it.
    Readable.from((function* () { for (let at = 0; at < body.length; at += 1024 * 1024) yield body.subarray(at, at + 1024 * 1024); })()).pipe(req);
  });
}

/** POSTs to hub A's AS4 path and reads the answer as a signal, its signature checked. */
async function post(body: Buffer, contentType: string, chunked = false): Promise<{ status: number; signal: SignalMessage; text: string }> {
  const answer = await postBytes(body, contentType, chunked);
  const message = readAs4Message(answer.body);
  if (message.message.kind !== 'signal') throw new Error(`not a signal: ${answer.body.toString('utf8').slice(0, 300)}`);
  await checkWsSecurity(message.envelope);
  return { status: answer.status, signal: message.message, text: answer.body.toString('utf8') };
}

const kib = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const errorCodeOf = (signal: SignalMessage) => signal.errors.map((e) => e.errorCode).join(',');

test('160 MiB signed and encrypted to the hub over AS4 reaches the REST agency with its SHA-256, the hub\'s memory growing by far less than the payload', async () => {
  const messageId = 'large-1@biggw.example';
  // Large enough that holding it would show past the garbage V8 lets build up between collections (tens of MiB of
  // Buffers whatever the size of the message).
  const payload = randomBytes(160 * 1024 * 1024);
  const message = await largeMessage(messageId, payload);
  const pid = hubA.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // VmHWM from here holds this message's peak alone
  const answer = await post(message.body, message.contentType);
  const grown = kib(pid, 'VmHWM') - before;
  console.log(`${payload.length / 1024 / 1024} MiB over AS4 in: hub A's peak RSS grew ${Math.round(grown / 1024 / 1024)} MiB`);
  assert.is(answer.status, 200, JSON.stringify(answer.signal.errors));
  assert.ok(answer.signal.receipt, 'a Receipt');
  // Held whole, the ciphertext and its plaintext alone would be twice the payload.
  assert.ok(grown < payload.length, `hub A grew by ${Math.round(grown / 1024 / 1024)} MiB taking a ${payload.length / 1024 / 1024} MiB payload`);
  await waitFor('the payload in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 120_000);
  assert.is(sha256(readFileSync(join(customs.inboxDir, `${messageId}.bin`))), sha256(payload), 'decrypted to the bytes the gateway signed');
});

/**
 * BOFT sends `payload` over REST to hub B, which delivers it AS4 to hub A, which delivers it to CUSTOMS: checks that
 * CUSTOMS got those bytes and hub B delivered once; resolves with how far each hub's peak RSS grew meanwhile.
 */
async function acrossHubs(messageId: string, payload: Buffer, contentType: string): Promise<number[]> {
  const pids = [hubA.proc.pid!, hubB.proc.pid!];
  const before = pids.map((pid) => kib(pid, 'VmRSS'));
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const sent = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', contentType, body: payload, messageId });
  assert.is(sent.status, 202, sent.text);
  await waitFor(`${messageId} in CUSTOMS's inbox`, () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 180_000);
  const grown = pids.map((pid, index) => kib(pid, 'VmHWM') - before[index]!);
  console.log(`${Math.round(payload.length / 1024 / 1024)} MiB of ${contentType} REST in, AS4 across, REST out: peak RSS grew ${grown.map((bytes) => `${Math.round(bytes / 1024 / 1024)} MiB`).join(' (hub A), ')} (hub B)`);
  assert.is(sha256(readFileSync(join(customs.inboxDir, `${messageId}.bin`))), sha256(payload), 'the bytes BOFT sent');
  // Hub B records its delivery once hub A's receipt has come back, which may be after CUSTOMS has the payload.
  let stages: Record<string, unknown> = {};
  await waitFor(`hub B's delivered evidence of ${messageId}`, async () => Number((stages = (await stagesOf(hubB, [messageId]))[messageId] ?? {}).delivered) >= 1, 60_000);
  assert.is(Number(stages.delivered), 1, `hub B delivered it once, on hub A's signed receipt: ${JSON.stringify(stages)}`);
  return grown;
}

test('160 MiB REST in at hub B goes AS4 signed and encrypted to hub A, streamed from hub B\'s Object Store and into hub A\'s, and reaches CUSTOMS with its SHA-256; neither hub grows by the payload', async () => {
  const payload = randomBytes(160 * 1024 * 1024);
  const grown = await acrossHubs('LARGE-REPLY-1', payload, 'application/zip');
  // Held whole, the payload alone would be 160 MiB in each hub, and its ciphertext as much again.
  assert.ok(grown.every((bytes) => bytes < payload.length), `hub A grew by ${Math.round(grown[0]! / 1024 / 1024)} MiB, hub B by ${Math.round(grown[1]! / 1024 / 1024)} MiB`);
});

test('64 MiB of CSV text (bare LF line ends, uncompressed) REST in at hub B goes AS4 to hub A and on to CUSTOMS streamed both ways, signed over its CR LF form; neither hub grows by the payload', async () => {
  const line = (i: number) => `${String(i).padStart(9, '0')};AA/BE/13/${i};widget;1.00;${'x'.repeat(40)}\n`;
  const rows: string[] = [];
  for (let i = 0, size = 0; size < payloadBytes; i++) { rows.push(line(i)); size += rows[i]!.length; }
  const grown = await acrossHubs('LARGE-CSV-1', Buffer.from(rows.join(''), 'utf8'), 'text/csv; charset=utf-8');
  assert.ok(grown.every((bytes) => bytes < payloadBytes), `hub A grew by ${Math.round(grown[0]! / 1024 / 1024)} MiB, hub B by ${Math.round(grown[1]! / 1024 / 1024)} MiB`);
});

test('160 MiB sent chunked (no Content-Length) streams into the Object Store as a declared one does, and reaches CUSTOMS; the hub grows by far less than the payload', async () => {
  const messageId = 'large-chunked@biggw.example';
  const payload = randomBytes(160 * 1024 * 1024);
  const message = await largeMessage(messageId, payload);
  const pid = hubA.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const answer = await post(message.body, message.contentType, true);
  const grown = kib(pid, 'VmHWM') - before;
  assert.is(answer.status, 200, JSON.stringify(answer.signal.errors));
  assert.ok(answer.signal.receipt, 'a Receipt');
  assert.ok(grown < payload.length, `hub A grew by ${Math.round(grown / 1024 / 1024)} MiB taking a 160 MiB chunked body`);
  await waitFor('the chunked one in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 120_000);
  assert.is(sha256(readFileSync(join(customs.inboxDir, `${messageId}.bin`))), sha256(payload));
  // A small chunked one is read whole, as ever.
  const small = await largeMessage('small-chunked@biggw.example', randomBytes(4096));
  const smallAnswer = await post(small.body, small.contentType, true);
  assert.is(smallAnswer.status, 200, JSON.stringify(smallAnswer.signal.errors));
});

test('a 160 MiB message waiting for a partner that pulls answers its PullRequest streamed from the Object Store, signed with the stored SHA-256; hub A grows by far less than the payload', async () => {
  const mpc = 'urn:example:mpc:pull-gw';
  const puller = await issueAgency(join(hubA.dataDir, 'pki'), 'PULLGW');
  const put = await hubA.admin('PUT', '/api/partners/PULLGW', {
    name: 'gateway that pulls large payloads', certificates: [puller.certPem], receive: 'pull',
    endpoints: { as4: {
      partyIds: [{ id: 'pull-gw', type: 'urn:example:party' }], mep: { binding: 'pull', mpc },
      services: [{ service: 'scan.pull', actions: ['deliver'] }], security: { sign: true, encrypt: false },
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'scan.pull', ['CUSTOMS'], ['PULLGW']);
  const payload = randomBytes(160 * 1024 * 1024);
  const sent = await customs.client.send({ to: 'PULLGW', service: 'scan.pull', contentType: 'application/zip', body: payload, messageId: 'PULL-LARGE-1' });
  assert.is(sent.status, 202, sent.text);
  const pullRequest = async () => postBytes(Buffer.from(await signAs4(pullRequestEnvelope(mpc), { keyPem: puller.keyPem, certPem: puller.certPem })), 'application/soap+xml; charset=UTF-8');
  const pid = hubA.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  let pulled = await pullRequest();
  // Routed a moment after the 202: until then the MPC is empty (EBMS:0006).
  await waitFor('the message handed out', async () => pulled.contentType.startsWith('multipart/related') || ((pulled = await pullRequest()), false), 60_000);
  const grown = kib(pid, 'VmHWM') - before;
  assert.is(pulled.status, 200);
  assert.ok(grown < payload.length, `hub A grew by ${Math.round(grown / 1024 / 1024)} MiB handing out a 160 MiB payload`);
  const body = await readAs4Body((async function* () { yield pulled.body; })(), pulled.contentType, 256 * 1024 * 1024);
  const message = readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) });
  assert.is(message.message.kind === 'user' && message.message.messageInfo.messageId, 'PULL-LARGE-1');
  const security = await checkAs4Security(message, { profile: 'eDelivery-AS4-1.15', encrypted: false, attachments: body.attachments });
  assert.is(security.certificatePem.replace(/\s/g, ''), hubASign.replace(/\s/g, ''), 'signed by hub A over the streamed part');
  assert.is(sha256(body.attachments[0]!.body), sha256(payload));
});

/** An XML document of about `bytes`, not in canonical form: a declaration, CR LF, attributes out of order, unused namespaces, references, CDATA. */
function xmlDocument(bytes: number): Buffer {
  const rows: string[] = [];
  for (let i = 0, size = 0; size < bytes; i++) {
    rows.push(`<g:item xmlns:u="urn:unused" seq="${i}" code='AA/BE/${i}'>widget &amp; part ${i}<![CDATA[<${i}>]]></g:item>\r\n`);
    size += rows[i]!.length;
  }
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\r\n<g:goods xmlns:g="urn:example:goods" xmlns="urn:example:default">\r\n${rows.join('')}</g:goods>\r\n`, 'utf8');
}

test('three large parts (XML uncompressed, binary, gzipped text), encrypted, their MIME parts out of PartInfo order, stream into one package: CUSTOMS gets each part as signed, the hub grows by far less than the parts', async () => {
  const messageId = 'large-three@biggw.example';
  const xml = xmlDocument(8 * 1024 * 1024);
  // Large enough that holding the parts would show past the garbage V8 lets build up between collections (tens of MiB
  // of Buffers, whatever the size of the message).
  const binary = randomBytes(120 * 1024 * 1024);
  const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `${i};${randomBytes(24).toString('hex')}\n`).join(''));
  // PartInfo order XML, binary, text; on the wire binary first: it comes before its turn, and is spooled.
  const message = await largeMessage(messageId, [
    { payload: xml, mimeType: 'application/xml' }, { payload: binary, mimeType: 'application/octet-stream' }, { payload: text, mimeType: 'text/plain', gzip: true },
  ], { wireOrder: [1, 0, 2] });
  const pid = hubA.proc.pid!;
  const before = kib(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const answer = await post(message.body, message.contentType);
  const grown = kib(pid, 'VmHWM') - before;
  assert.is(answer.status, 200, JSON.stringify(answer.signal.errors));
  assert.ok(answer.signal.receipt, 'a Receipt');
  const total = xml.length + binary.length + text.length;
  console.log(`three parts, ${Math.round(total / 1024 / 1024)} MiB over AS4 in: hub A's peak RSS grew ${Math.round(grown / 1024 / 1024)} MiB`);
  assert.ok(grown < total, `hub A grew by ${Math.round(grown / 1024 / 1024)} MiB taking ${Math.round(total / 1024 / 1024)} MiB in three parts`);
  await waitFor('the package in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 120_000);
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, `${messageId}.json`), 'utf8'));
  const parts = readPackage(entry.contentType, readFileSync(join(customs.inboxDir, `${messageId}.bin`)), { ...defaultMimeLimits, maxBytes: 2 * total });
  assert.equal(parts.map((part) => [part.contentId, part.contentType]), [[`scan-0-${messageId}`, 'application/xml'], [`scan-1-${messageId}`, 'application/octet-stream'], [`scan-2-${messageId}`, 'text/plain']]);
  assert.equal(parts.map((part) => sha256(part.body)), [xml, binary, text].map(sha256), 'each part as signed, the text inflated');

  // An XML part altered after signing is refused on its canonical digest; nothing of the message is kept.
  const altered = await largeMessage('large-three-altered@biggw.example', [
    { payload: binary, mimeType: 'application/octet-stream' }, { payload: xml, mimeType: 'application/xml' },
  ], { alter: (body) => Buffer.from(body.toString('utf8').replace('widget &amp; part 7<', 'widget &amp; part 8<'), 'utf8') });
  const alteredAnswer = await post(altered.body, altered.contentType);
  assert.is(errorCodeOf(alteredAnswer.signal), 'EBMS:0101', JSON.stringify(alteredAnswer.signal.errors));
  assert.not.ok(existsSync(join(customs.inboxDir, 'large-three-altered@biggw.example.bin')));
});

test('48 MiB of XML (not in canonical form) REST in at hub B goes AS4 to hub A, signed over its exclusive c14n made as it streams from hub B\'s Object Store, and on to CUSTOMS; hub A takes it streamed, growing by far less than the payload', async () => {
  // Hub B reads it whole at REST intake (an XML payload may carry a signature of its own, checked over the document).
  const grown = await acrossHubs('LARGE-XML-1', xmlDocument(48 * 1024 * 1024), 'application/xml');
  assert.ok(grown[0]! < payloadBytes, `hub A grew by ${Math.round(grown[0]! / 1024 / 1024)} MiB`);
});

test('a 140 MiB payload package (XML, binary, text) REST in at hub B goes AS4 to hub A part by part, streamed from hub B\'s Object Store and into hub A\'s, and reaches CUSTOMS with each part as sent; neither hub grows by the package', async () => {
  const parts: PackagedPart[] = [
    { contentId: 'goods@boft.example', contentType: 'application/xml', properties: [{ name: 'originalFileName', value: 'goods list.xml' }], body: xmlDocument(8 * 1024 * 1024) },
    { contentId: 'scan@boft.example', contentType: 'application/octet-stream', properties: [], body: randomBytes(128 * 1024 * 1024) },
    { contentId: 'log@boft.example', contentType: 'text/plain; charset=utf-8', properties: [], body: Buffer.from(Array.from({ length: 60_000 }, (_, i) => `${i};${randomBytes(24).toString('hex')}\n`).join('')) },
  ];
  const packaged = await writePackage(parts);
  const pids = [hubA.proc.pid!, hubB.proc.pid!];
  const before = pids.map((pid) => kib(pid, 'VmRSS'));
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const sent = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', contentType: packaged.contentType, body: packaged.body, messageId: 'LARGE-PACKAGE-1' });
  assert.is(sent.status, 202, sent.text);
  await waitFor('the package in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, 'LARGE-PACKAGE-1.json')), 180_000);
  const grown = pids.map((pid, index) => kib(pid, 'VmHWM') - before[index]!);
  console.log(`${Math.round(packaged.body.length / 1024 / 1024)} MiB package REST in, AS4 across, REST out: peak RSS grew ${Math.round(grown[0]! / 1024 / 1024)} MiB (hub A), ${Math.round(grown[1]! / 1024 / 1024)} MiB (hub B)`);
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, 'LARGE-PACKAGE-1.json'), 'utf8'));
  const delivered = readPackage(entry.contentType, readFileSync(join(customs.inboxDir, 'LARGE-PACKAGE-1.bin')), { ...defaultMimeLimits, maxBytes: 2 * packaged.body.length });
  assert.equal(delivered.map((part) => [part.contentId, part.contentType, part.properties]), parts.map((part) => [part.contentId, part.contentType, part.properties]));
  assert.equal(delivered.map((part) => sha256(part.body)), parts.map((part) => sha256(part.body)), 'each part as BOFT sent it');
  assert.ok(grown.every((bytes) => bytes < packaged.body.length), `hub A grew by ${Math.round(grown[0]! / 1024 / 1024)} MiB, hub B by ${Math.round(grown[1]! / 1024 / 1024)} MiB`);
});

test('a large body cut short, a large payload altered after signing or a gzip bomb is refused with a signed 4xx Error signal and never delivered; a large gzipped payload is inflated as it streams', async () => {
  const payload = randomBytes(4 * 1024 * 1024);
  const cut = await largeMessage('large-cut@biggw.example', payload);
  // The multipart ends mid-part: no closing delimiter, the ciphertext's tag never comes.
  const truncated = cut.body.subarray(0, Math.floor(cut.body.length * 0.6));
  const cutAnswer = await post(truncated, cut.contentType);
  assert.ok(cutAnswer.status >= 400 && cutAnswer.status < 500, `cut short: answered ${cutAnswer.status} ${JSON.stringify(cutAnswer.signal.errors)}`);
  assert.is(errorCodeOf(cutAnswer.signal), 'EBMS:0007', JSON.stringify(cutAnswer.signal.errors));

  const altered = await largeMessage('large-altered@biggw.example', payload, { alter: true });
  const alteredAnswer = await post(altered.body, altered.contentType);
  assert.ok(alteredAnswer.status >= 400 && alteredAnswer.status < 500, `altered: answered ${alteredAnswer.status}`);
  assert.is(errorCodeOf(alteredAnswer.signal), 'EBMS:0101', JSON.stringify(alteredAnswer.signal.errors));
  assert.match(alteredAnswer.signal.errors[0]!.detail ?? '', /digest/i);

  // 300 MiB of zeros gzip to 300 KiB, over the inline limit: it streams, and inflating stops at the 200:1 cap.
  const bomb = await largeMessage('large-bomb@biggw.example', Buffer.alloc(300 * 1024 * 1024), { gzip: true });
  const bombAnswer = await post(bomb.body, bomb.contentType);
  assert.ok(bombAnswer.status >= 400 && bombAnswer.status < 500, `bomb: answered ${bombAnswer.status}`);
  assert.is(errorCodeOf(bombAnswer.signal), 'EBMS:0303', JSON.stringify(bombAnswer.signal.errors));

  // A gzipped payload streams too: inflated on its way into the store, the signature over what was sent.
  const zipped = await largeMessage('large-gzip@biggw.example', payload, { gzip: true });
  const zippedAnswer = await post(zipped.body, zipped.contentType);
  assert.is(zippedAnswer.status, 200, JSON.stringify(zippedAnswer.signal.errors));
  await waitFor('the inflated one in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, 'large-gzip@biggw.example.json')), 60_000);
  assert.is(sha256(readFileSync(join(customs.inboxDir, 'large-gzip@biggw.example.bin'))), sha256(payload), 'inflated to the bytes signed before compression');

  // The hub serves on, and none of the refused reached CUSTOMS.
  const after = await largeMessage('large-after@biggw.example', payload);
  const afterAnswer = await post(after.body, after.contentType);
  assert.is(afterAnswer.status, 200, JSON.stringify(afterAnswer.signal.errors));
  await waitFor('the good one in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, 'large-after@biggw.example.json')), 60_000);
  const refused = ['large-cut@biggw.example', 'large-altered@biggw.example', 'large-bomb@biggw.example'];
  const stages = await stagesOf(hubA, refused);
  for (const id of refused) {
    assert.not.ok(existsSync(join(customs.inboxDir, `${id}.bin`)), `${id} not delivered`);
    assert.not.ok(stages[id]?.delivered, `${id} has no delivered evidence: ${JSON.stringify(stages[id])}`);
  }
});

test.run();
