// AS4 with asynchronous receipts (a P-Mode's receipt.reply "async"), both ways: two hubs under one root exchange with
// each answering 200 and sending its signed Receipt as a message of its own; a partner's MSH (an HTTPS listener here)
// gets hub A's signed Receipt, and a refusal's signed Error signal, on its own endpoint, which the independent Python
// verifier checks; and a delivery to that MSH stays pending until its Receipt is POSTed to hub A, which refuses a
// Receipt signed by another, one that answers nothing sent, and stops resending once a late one comes.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  as4Multipart, checkReceipt, errorEnvelope, EbmsError, readAs4Body, readAs4Message, receiptEnvelope, signAs4, signedAttachment, signedReferences,
  soapContentType, swxPartyIdType, userMessageEnvelope, type As4Message, type SignalMessage,
} from '../../connectors/as4/index.ts';
import { issueAgency, issueCertificate, type Credential } from '../../engine/pki/index.ts';
import { collect, hubPmode, writeAs4Settings } from '../helpers/as4.ts';
import { stagesOf } from '../helpers/delivery.ts';
import { addService, evidenceOf, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';

const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
const verifier = fileURLToPath(new URL('../connectors/as4_verify.py', import.meta.url));
const asynchronous = { required: true, signed: true, reply: 'async' };

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let caPem: string;
let hubASign: string;
let gateway: Credential;
let rogue: Credential;
let msh: Server;
/** What hub A POSTed to the gateway's MSH, in order, and what the MSH answered. */
const atGateway: { contentType: string; body: Buffer; status: number }[] = [];
/** How many signals the MSH still answers 503, as an MSH that is down for a moment. */
let signalsRefused = 0;
const work = mkdtempSync(join(tmpdir(), 'swx-as4-async-'));

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('as4-async', {
    settings: (dir, partyId) => writeAs4Settings(dir, partyId),
    endpoints: (port, party) => ({ as4: { ...hubPmode(port, party), receipt: asynchronous } }),
    onCustomsMessage: () => undefined,
  });
  ({ hubA, hubB, customs, boft } = hubs);
  caPem = hubs.pkiA.ca.certPem;
  hubASign = hubs.pkiA.hubSign.certPem;
  const pkiDir = join(hubs.dirA, 'pki');
  gateway = await issueAgency(pkiDir, 'ASYNCGW');
  rogue = await issueAgency(pkiDir, 'ROGUE');
  // The gateway's MSH: takes every POST with an empty 200, as an MSH whose receipts come on their own does.
  const tls = await issueCertificate(pkiDir, 'ASYNC-MSH', { profile: 'tls-server', hosts: ['localhost'] });
  msh = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const contentType = String(req.headers['content-type']);
      const refuse = contentType.startsWith('application/soap+xml') && signalsRefused > 0;
      if (refuse) signalsRefused -= 1;
      const status = refuse ? 503 : 200;
      atGateway.push({ contentType, body: Buffer.concat(chunks), status });
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((resolve) => msh.listen(0, '127.0.0.1', resolve));
  const put = await hubA.admin('PUT', '/api/partners/ASYNCGW', {
    name: 'An MSH with asynchronous receipts', certificates: [gateway.certPem],
    endpoints: { as4: {
      url: `https://localhost:${(msh.address() as { port: number }).port}/as4`, partyIds: [{ id: 'async-gw', type: 'urn:example:party' }],
      services: [{ service: 'urn:example:notice', type: 'urn:example', actions: ['Submit'], swx: 'async.notice' }, { service: 'customs.async', actions: ['deliver'] }],
      security: { sign: true, encrypt: false }, receipt: asynchronous, receptionAwareness: { retrySeconds: [2, 30] },
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'async.notice', ['ASYNCGW'], ['CUSTOMS']);
  await addService(hubA, 'customs.async', ['CUSTOMS'], ['ASYNCGW']);
});

test.after(async () => {
  msh?.close();
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

/** A UserMessage as the gateway's MSH sends it to hub A, for CUSTOMS; `service` another than its P-Mode allows makes it a refusal. */
async function gatewayMessage(messageId: string, service = 'urn:example:notice'): Promise<{ body: Buffer; contentType: string; sent: As4Message }> {
  const part = { contentId: `notice-${messageId}`, contentType: 'application/xml', body: Buffer.from(`<Notice xmlns="urn:example">${messageId}</Notice>`) };
  const written = userMessageEnvelope({
    messageId,
    from: { partyIds: [{ id: 'async-gw', type: 'urn:example:party' }], role },
    to: { partyIds: [{ id: 'hub-a', type: swxPartyIdType }], role },
    collaboration: { service: { value: service, type: 'urn:example' }, action: 'Submit', conversationId: `conv-${messageId}` },
    properties: [{ name: 'originalSender', value: 'ASYNCGW' }, { name: 'finalRecipient', value: 'CUSTOMS' }],
    payloads: [{ contentId: part.contentId, mimeType: 'application/xml' }],
  });
  const xml = await signAs4(written, { keyPem: gateway.keyPem, certPem: gateway.certPem, attachments: [signedAttachment(part)] });
  const multipart = as4Multipart(xml, [{ ...part, body: (async function* () { yield part.body; })() }]);
  return { body: await collect(multipart.body), contentType: multipart.contentType, sent: readAs4Message(Buffer.from(xml), { attachments: [part.contentId] }) };
}

/** POSTs to hub A's AS4 path as an MSH does; the answer as bytes. */
function postToHubA(body: Buffer, contentType: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hubA.agencyPort}/as4`, { method: 'POST', ca: caPem, headers: { 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The signals hub A sent to the gateway's MSH that answer `messageId`. */
const signalsFor = (messageId: string) => atGateway
  .filter((posted) => posted.contentType.startsWith('application/soap+xml'))
  .map((posted) => ({ ...posted, signal: readAs4Message(posted.body).message as SignalMessage }))
  .filter(({ signal }) => signal.messageInfo.refToMessageId === messageId);

/** The UserMessages hub A sent to the gateway's MSH with this MessageId, read as the MSH reads them. */
async function userMessagesFor(messageId: string): Promise<As4Message[]> {
  const messages: As4Message[] = [];
  for (const posted of atGateway.filter((p) => p.contentType.startsWith('multipart/related'))) {
    const body = await readAs4Body((async function* () { yield posted.body; })(), posted.contentType, 16 * 1024 * 1024);
    const message = readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) });
    if (message.message.messageInfo.messageId === messageId) messages.push(message);
  }
  return messages;
}

/** The independent Python verifier's verdict on a signal as hub A sent it, against hub A's signing certificate. */
async function pythonVerdict(body: Buffer): Promise<{ code: number; report: { valid: boolean } }> {
  const file = (content: string | Buffer, name: string) => { const path = join(work, name); writeFileSync(path, content); return path; };
  const args = [verifier, file(body, 'signal.xml'), soapContentType, file(hubASign, 'hub-a.pem')];
  const { stdout, code } = await promisify(execFile)('/usr/bin/python3', args).then((r) => ({ stdout: r.stdout, code: 0 }), (e: { stdout: string; code: number }) => ({ stdout: e.stdout, code: e.code }));
  return { code, report: JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') };
}

const signedBy = (signer: Credential, xml: ReturnType<typeof receiptEnvelope>) => signAs4(xml, { keyPem: signer.keyPem, certPem: signer.certPem });
const codesOf = (body: Buffer) => (readAs4Message(body).message as SignalMessage).errors.map((e) => e.errorCode).join(',');

test('two hubs whose P-Modes make receipts asynchronous: each answers 200, then sends its signed Receipt on its own, which settles the delivery both ways', async () => {
  const sent = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"declarationNo":"A-1"}') });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  await waitFor('the declaration at BOFT behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 60_000);
  const atA = await evidenceOf(hubA, id, ['delivered'], 60_000);
  const delivered = atA.find((row) => row.stage === 'delivered');
  const receipt = readAs4Message(Buffer.from(delivered.raw, 'base64')).message as SignalMessage;
  assert.ok(receipt.receipt, 'hub B\'s Receipt, POSTed to hub A on its own, is the delivery\'s receipt');
  assert.is(receipt.messageInfo.refToMessageId, id);
  assert.ok(receipt.receipt.nonRepudiation.length > 0, 'with the non-repudiation information of what hub A signed');
  assert.is(JSON.parse(delivered.signature).scheme, 'xmldsig');

  const reply = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"ok":true}'), refTo: id });
  assert.is(reply.status, 202, reply.text);
  const atB = await evidenceOf(hubB, String(reply.body.id), ['delivered'], 60_000);
  assert.ok((readAs4Message(Buffer.from(atB.find((row) => row.stage === 'delivered').raw, 'base64')).message as SignalMessage).receipt, 'hub A\'s Receipt settled hub B\'s delivery');
});

test('a partner\'s message under an async P-Mode: 200 with no body, then hub A\'s signed Receipt at the partner\'s MSH, which the Python verifier checks; a resend gets the stored Receipt again, sent the same way, and is not processed again', async () => {
  const messageId = 'async-in-1@gw.example';
  const message = await gatewayMessage(messageId);
  const answer = await postToHubA(message.body, message.contentType);
  assert.is(answer.status, 200);
  assert.is(answer.body.length, 0, 'no signal on the HTTP answer');
  await waitFor('hub A\'s Receipt at the gateway\'s MSH', () => signalsFor(messageId).length === 1, 30_000);
  const [first] = signalsFor(messageId);
  assert.ok(first!.signal.receipt, 'a Receipt');
  assert.is(checkReceipt(first!.signal, { messageId, references: signedReferences(message.sent) }, true), undefined, 'copying every reference the gateway signed');
  const verdict = await pythonVerdict(first!.body);
  assert.is(verdict.code, 0, JSON.stringify(verdict.report));
  assert.ok(verdict.report.valid);
  const tampered = await pythonVerdict(Buffer.from(first!.body.toString('utf8').replace(messageId, 'async-in-X@gw.example')));
  assert.is.not(tampered.code, 0, 'and not once changed');
  await waitFor('the notice in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 60_000);

  const again = await postToHubA(message.body, message.contentType);
  assert.is(again.status, 200);
  assert.is(again.body.length, 0);
  await waitFor('the stored Receipt sent again', () => signalsFor(messageId).length === 2, 30_000);
  assert.equal(signalsFor(messageId)[1]!.body, first!.body, 'the stored Receipt, byte for byte');
  await waitFor('the repeat evidenced', async () => Number((await stagesOf(hubA, [messageId]))[messageId]?.duplicate ?? 0) === 1, 30_000);
  const rows = await evidenceOf(hubA, messageId, ['received', 'delivered', 'duplicate'], 30_000);
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 1, 'delivered to CUSTOMS once');
});

test('an MSH that cannot take the Receipt at first (503) gets it again on the delivery backoff', async () => {
  const messageId = 'async-in-retried@gw.example';
  const message = await gatewayMessage(messageId);
  signalsRefused = 1;
  assert.is((await postToHubA(message.body, message.contentType)).status, 200);
  await waitFor('the Receipt sent again after the 503', () => signalsFor(messageId).length === 2, 30_000);
  const [refused, taken] = signalsFor(messageId);
  assert.equal([refused!.status, taken!.status], [503, 200]);
  assert.equal(taken!.body, refused!.body, 'the same signed Receipt');
  assert.ok(taken!.signal.receipt);
});

test('a refusal under an async P-Mode: 200 with no body, then hub A\'s signed Error signal at the partner\'s MSH, and the refusal evidenced', async () => {
  const messageId = 'async-refused@gw.example';
  const message = await gatewayMessage(messageId, 'urn:example:not-agreed');
  const answer = await postToHubA(message.body, message.contentType);
  assert.is(answer.status, 200);
  assert.is(answer.body.length, 0);
  await waitFor('hub A\'s Error signal at the gateway\'s MSH', () => signalsFor(messageId).length === 1, 30_000);
  const [error] = signalsFor(messageId);
  assert.is(error!.signal.errors.map((e) => e.errorCode).join(','), 'EBMS:0010');
  assert.is((await pythonVerdict(error!.body)).code, 0, 'signed by hub A');
  const rows = await evidenceOf(hubA, messageId, ['rejected'], 30_000);
  const rejected = rows.find((row) => row.stage === 'rejected');
  assert.is(rejected.from_partner, 'ASYNCGW');
  assert.match(rejected.detail, /EBMS:0010/);
});

test('a delivery to an MSH with asynchronous receipts stays pending until its Receipt comes; one signed by another or for a message never sent is refused and evidenced; the good one settles it', async () => {
  const sent = await customs.client.send({ to: 'ASYNCGW', service: 'customs.async', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"n":1}') });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  let message: As4Message | undefined;
  await waitFor('the message at the gateway\'s MSH', async () => (message = (await userMessagesFor(id))[0]) !== undefined, 30_000);
  const stages = (await stagesOf(hubA, [id]))[id] ?? {};
  assert.is(Number(stages.delivered ?? 0), 0, `not delivered before its Receipt: ${JSON.stringify(stages)}`);

  const forged = await postToHubA(Buffer.from(await signedBy(rogue, receiptEnvelope(message!))), soapContentType);
  assert.ok(forged.status >= 400 && forged.status < 500, `a Receipt signed by another: ${forged.status}`);
  assert.is(codesOf(forged.body), 'EBMS:0101');

  const unknownId = 'never-sent@swx';
  const stray = receiptEnvelope(message!);
  const strayXml = await signAs4({ ...stray, xml: stray.xml.replace(`<eb:RefToMessageId>${id}</eb:RefToMessageId>`, `<eb:RefToMessageId>${unknownId}</eb:RefToMessageId>`) }, { keyPem: gateway.keyPem, certPem: gateway.certPem });
  const strayAnswer = await postToHubA(Buffer.from(strayXml), soapContentType);
  assert.ok(strayAnswer.status >= 400 && strayAnswer.status < 500, `a Receipt for a message never sent: ${strayAnswer.status}`);
  assert.is(codesOf(strayAnswer.body), 'EBMS:0302');
  const strayId = (readAs4Message(Buffer.from(strayXml)).message as SignalMessage).messageInfo.messageId;
  const refused = (await evidenceOf(hubA, strayId, ['rejected'], 30_000)).find((row) => row.stage === 'rejected');
  assert.is(refused.from_partner, 'ASYNCGW');
  assert.match(refused.detail, new RegExp(`EBMS:0302.*${unknownId}`));
  assert.is(Number((await stagesOf(hubA, [id]))[id]?.delivered ?? 0), 0, 'still pending');

  const receipt = await signedBy(gateway, receiptEnvelope(message!));
  const taken = await postToHubA(Buffer.from(receipt), soapContentType);
  assert.is(taken.status, 200, taken.body.toString('utf8').slice(0, 600));
  assert.is(taken.body.length, 0);
  const rows = await evidenceOf(hubA, id, ['delivered'], 60_000);
  const delivered = rows.filter((row) => row.stage === 'delivered');
  assert.is(delivered.length, 1);
  assert.is(Buffer.from(delivered[0].raw, 'base64').toString('utf8'), receipt, 'the gateway\'s signed Receipt is the evidence');
  assert.is(JSON.parse(delivered[0].signature).certificate.replace(/\s/g, ''), gateway.certPem.replace(/\s/g, ''));
});

test('a Receipt that comes after resends began stops them: two sends, the second byte for byte, then delivered; an Error signal of its own fails the delivery', async () => {
  const sent = await customs.client.send({ to: 'ASYNCGW', service: 'customs.async', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"n":2}') });
  assert.is(sent.status, 202, sent.text);
  const id = String(sent.body.id);
  let sends: As4Message[] = [];
  // The P-Mode resends after 2 s, then waits 30 s: the Receipt goes once the second send is in.
  await waitFor('the resend at the gateway\'s MSH', async () => (sends = await userMessagesFor(id)).length >= 2, 30_000);
  const receipt = await signedBy(gateway, receiptEnvelope(sends[1]!));
  assert.is((await postToHubA(Buffer.from(receipt), soapContentType)).status, 200);
  const rows = await evidenceOf(hubA, id, ['delivered'], 60_000);
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 1);
  const unanswered = rows.filter((row) => row.stage === 'delivery_failed');
  assert.is(unanswered.length, 1, JSON.stringify(unanswered.map((row) => row.detail)));
  assert.match(unanswered[0].detail, /^send 1 without a receipt/);
  const bodies = atGateway.filter((p) => p.contentType.startsWith('multipart/related') && p.body.includes(`<eb:MessageId>${id}</eb:MessageId>`));
  assert.is(bodies.length, 2, 'no send after the Receipt');
  assert.equal(bodies[1]!.body, bodies[0]!.body, 'the resend is the first send byte for byte');

  const refusedId = String((await customs.client.send({ to: 'ASYNCGW', service: 'customs.async', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"n":3}') })).body.id);
  let refusedMessage: As4Message | undefined;
  await waitFor('the third message at the gateway\'s MSH', async () => (refusedMessage = (await userMessagesFor(refusedId))[0]) !== undefined, 30_000);
  const signal = errorEnvelope([new EbmsError('EBMS:0004', 'the gateway cannot take it', { refToMessageInError: refusedId })], { refToMessageId: refusedId });
  assert.is((await postToHubA(Buffer.from(await signedBy(gateway, signal)), soapContentType)).status, 200);
  let failed: any;
  await waitFor('the partner\'s Error signal failing the delivery', async () => {
    failed = (await evidenceOf(hubA, refusedId, ['delivery_failed'], 30_000)).find((row) => row.stage === 'delivery_failed' && row.code === 'SWX_DELIVERY_REJECTED');
    return failed !== undefined;
  }, 60_000);
  assert.match(failed.detail, /EBMS:0004.*the gateway cannot take it/);
  assert.ok(refusedMessage);
});

test.run();
