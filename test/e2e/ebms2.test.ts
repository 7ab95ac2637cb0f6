// ebMS 2.0 through the hub as agencies' MSHs and another swx hub see it: two hubs under one root exchange ebMS 2.0 over
// HTTPS both ways (REST in at one, ebMS 2.0 between them, REST out at the other), each Acknowledgment signed and
// checked; a partner's MSH sends to a REST agency and its resend gets the stored Acknowledgment, delivered once; the
// Hermes conformance message, unsigned, is refused where the agreement asks for signing; and every kind of bad input
// gets its MessageError and evidence while the hub serves on.
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ackRequestedXml, ebmsMultipart, envelopeXml, manifestXml, messageHeaderXml, readEbmsParts, received, sent, signEbms, swxPartyIdType, swxServiceType, syncReplyXml,
  type EbmsMessage,
} from '../../connectors/ebms2/index.ts';
import { whole } from '../../engine/http.ts';
import { entityOf, messageParts } from '../../engine/mime/index.ts';
import { issueAgency, type Credential } from '../../engine/pki/index.ts';
import { verifyXml } from '../../engine/trust/index.ts';
import { exportCheckedBundle } from '../helpers/bundle.ts';
import { channel, hubAgreement, hubType, registerTfdaGateway, writeEbms2Settings } from '../helpers/ebms2.ts';
import { deadLetteredUnanswered, stagesOf } from '../helpers/delivery.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';
import { addService, evidenceOf, freePort, swxCommand, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

const hermesCapture = fileURLToPath(new URL('../../../shared/conformance/hermes/test1.msg', import.meta.url));

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let gateway: Credential;
let rogue: Credential;
let caPem: string;
let hubASign: string;
const arrivedAtCustoms: string[] = [];

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('ebms2', {
    // Hub A also answers to the Hermes capture's To party, so that the capture is judged on its signature.
    settings: (dir, party) => writeEbms2Settings(dir, [{ id: party, type: hubType }, ...(party === 'hub-a' ? [{ id: 'toPartyId', type: 'toPartyType' }] : [])]),
    endpoints: (port, party) => ({ ebms2: hubAgreement(port, party) }),
    onCustomsMessage: (entry) => arrivedAtCustoms.push(entry.id),
  });
  ({ hubA, hubB, customs, boft } = hubs);
  const dirA = hubs.dirA;
  caPem = hubs.pkiA.ca.certPem;
  hubASign = hubs.pkiA.hubSign.certPem;
  // TFDA's own ebMS 2.0 gateway, registered at hub A with its certificate and agreement; it only sends.
  gateway = await issueAgency(join(dirA, 'pki'), 'TFDA');
  rogue = await issueAgency(join(dirA, 'pki'), 'ROGUE');
  await registerTfdaGateway(hubA, gateway.certPem);
  // The Hermes capture's sending party, whose agreement asks for signed messages.
  const hermes = await issueAgency(join(dirA, 'pki'), 'HERMES');
  const put = await hubA.admin('PUT', '/api/partners/HERMES', {
    name: 'Hermes test MSH', certificates: [hermes.certPem],
    endpoints: { ebms2: {
      cpaId: 'cpaid', partyIds: [{ id: 'fromPartyId', type: 'fromPartyType' }], roles: ['sender'], defaultChannel: 'c1',
      channels: { c1: channel('https://localhost:9/corvus') },
      services: [{ service: 'http://localhost:8080/corvus/httpd/ebms/inbound', role: 'sender', canSend: [{ action: 'action', channels: ['c1'] }], canReceive: [] }],
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
});

test.after(async () => {
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

const notice = Buffer.from('<Notice xmlns="urn:example:health"><Product>frozen shrimp</Product><Finding>residue over limit</Finding></Notice>');

interface GatewayOptions {
  messageId: string;
  signer?: Credential;
  cpaId?: string;
  /** The attachment changed after signing. */
  tamper?: boolean;
  /** A header block the hub does not process, marked mustUnderstand. */
  extraHeader?: boolean;
  /** No MessageHeader, or two of them. */
  header?: 'missing' | 'twice';
  /** A TimeToLive already past. */
  expired?: boolean;
  /** This many more MIME parts after the payload. */
  extraParts?: number;
  /** Another sending MSH's PartyId (of type urn:example:party). */
  fromParty?: string;
  /** Signed with RSA-SHA1 and SHA-1 digests. */
  sha1?: boolean;
}

/** A message as TFDA's MSH sends it to hub A: To hub A's PartyId and CUSTOMS by its swx PartyId, signed, Acknowledgment asked for on the connection. */
async function gatewayMessage(options: GatewayOptions): Promise<{ body: Buffer; contentType: string; sent: EbmsMessage }> {
  const signer = options.signer ?? gateway;
  const part = { contentId: `notice-${options.messageId}`, contentType: 'application/xml', body: notice };
  const header = messageHeaderXml({
    from: { partyIds: [{ id: options.fromParty ?? 'tfda-gw', type: 'urn:example:party' }] },
    to: { partyIds: [{ id: 'hub-a', type: hubType }, { id: 'CUSTOMS', type: swxPartyIdType }] },
    cpaId: options.cpaId ?? 'tfda-hub-a', conversationId: `conv-${options.messageId}`,
    service: { value: 'health.notice', type: swxServiceType }, action: 'Submit',
    messageId: options.messageId, timestamp: new Date(), duplicateElimination: true,
    ...(options.expired ? { timeToLive: new Date(Date.now() - 60_000) } : {}),
  });
  const blocks = [
    ...(options.header === 'missing' ? [] : options.header === 'twice' ? [header, header] : [header]),
    ackRequestedXml(true), syncReplyXml(),
    ...(options.extraHeader ? ['<x:Routing xmlns:x="urn:example:routing" SOAP:mustUnderstand="1">r1</x:Routing>'] : []),
  ];
  const signed = await signEbms(envelopeXml(blocks, [manifestXml([{ contentId: part.contentId }])]), [
    { contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body },
  ], { keyPem: signer.keyPem, certPem: signer.certPem, ...(options.sha1 ? { signatureAlgorithm: 'rsa-sha1' as const } : {}) });
  const sentBody = options.tamper ? Buffer.from(notice.toString('utf8').replace('residue', 'RESIDUE')) : part.body;
  const extra = Array.from({ length: options.extraParts ?? 0 }, (_, index) => ({ contentId: `extra-${index}`, contentType: 'text/plain', body: Buffer.from('x') }));
  const multipart = ebmsMultipart(signed.xml, [{ ...part, body: sentBody }, ...extra]);
  const message = options.header || options.extraHeader || options.expired || options.extraParts
    ? (undefined as unknown as EbmsMessage)
    : readEbmsParts({ root: { headers: {}, contentType: { type: 'text', subtype: 'xml', parameters: {} }, body: Buffer.from(signed.xml) }, attachments: [{ contentId: part.contentId, headers: {}, body: part.body }] }, { at: false });
  return { body: await whole(multipart.body), contentType: multipart.contentType, sent: message };
}

function postBytes(body: Buffer, contentType: string, client?: Credential): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const tls = client ? { cert: client.certPem, key: client.keyPem } : {};
    const req = request(`https://localhost:${hubA.agencyPort}/ebms2`, { method: 'POST', ca: caPem, ...tls, headers: { soapaction: '"ebXML"', 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Posts to hub A and reads its answer: an ebMS signal, signed by hub A. */
async function post(body: Buffer, contentType: string): Promise<{ status: number; signal: EbmsMessage; text: string; envelope: string; weak: string[] }> {
  const answer = await postBytes(body, contentType);
  const text = answer.body.toString('utf8');
  assert.match(answer.contentType, /^multipart\/related/, `an ebMS message answers (${answer.status}): ${text.slice(0, 400)}`);
  const parts = messageParts(entityOf({ 'content-type': answer.contentType }, answer.body));
  const signal = readEbmsParts(parts, { at: false });
  // Archive policy: SHA-1 verifies too, listed in `weak` (hub A signs with it only towards an agreement that names it).
  const verdict = await verifyXml(parts.root.body, { pinnedCertsPem: hubASign, policy: 'archive' });
  assert.ok(verdict.valid, `hub A's signal verifies with hub A's signing certificate: ${verdict.detail}`);
  return { status: answer.status, signal, text, envelope: parts.root.body.toString('utf8'), weak: verdict.weak ?? [] };
}

const errorCodeOf = (signal: EbmsMessage) => (signal.errorList?.errors ?? []).map((e) => e.errorCode).join(',');

test('REST in at hub A, ebMS 2.0 to hub B, REST out to BOFT; and the reply back the other way, each Acknowledgment signed and checked', async () => {
  const declaration = JSON.stringify({ declarationNo: 'AA/BE/13/101/00042', value: 98000 });
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from(declaration) });
  assert.is(answer.status, 202, answer.text);
  const id = String(answer.body.id);
  await waitFor('the declaration in BOFT\'s inbox behind hub B', () => existsSync(join(boft.inboxDir, `${id}.json`)), 90_000);
  assert.is(readFileSync(join(boft.inboxDir, `${id}.bin`), 'utf8'), declaration);
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assert.is(entry.from, 'CUSTOMS');
  assert.is(entry.contentType, 'application/json');

  // Hub A kept hub B's signed Acknowledgment as the delivery's receipt; hub B kept the signed ebMS envelope it received.
  const atA = await evidenceOf(hubA, id, ['received', 'delivered'], 30_000);
  const delivered = atA.filter((row) => row.stage === 'delivered');
  assert.is(delivered.length, 1, `hub A evidenced the delivery once: ${atA.map((row) => row.stage)}`);
  assert.match(Buffer.from(delivered[0].raw, 'base64').toString('utf8'), /<eb:Acknowledgment[^>]*>.*<eb:RefToMessageId>/s);
  const ackSignature = JSON.parse(delivered[0].signature);
  assert.is(ackSignature.scheme, 'xmldsig');
  assert.is(ackSignature.algorithm, 'RSA-SHA256');
  const atB = await evidenceOf(hubB, id, ['received', 'delivered'], 30_000);
  const arrived = atB.filter((row) => row.stage === 'received');
  assert.is(arrived.length, 1);
  assert.is(arrived[0].protocol, 'ebms2');
  assert.is(arrived[0].from_partner, 'CUSTOMS');
  const signature = JSON.parse(arrived[0].signature);
  assert.match(signature.base, /<eb:MessageHeader[^>]*>.*<eb:MessageId>/s, 'the signed ebMS envelope is kept as evidence');
  assert.is(signature.weak, undefined, 'RSA-SHA256: nothing weak');
  assert.is(atB.filter((row) => row.stage === 'delivered').length, 1, 'hub B evidenced the REST delivery to BOFT');

  const reply = await boft.client.send({ to: 'CUSTOMS', service: 'trade.reply', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"accepted":true}'), refTo: id });
  assert.is(reply.status, 202, reply.text);
  const replyId = String(reply.body.id);
  await waitFor('the reply in CUSTOMS\'s inbox behind hub A', () => existsSync(join(customs.inboxDir, `${replyId}.json`)), 90_000);
  const replyEntry = JSON.parse(readFileSync(join(customs.inboxDir, `${replyId}.json`), 'utf8'));
  assert.is(replyEntry.from, 'BOFT');
  assert.is(replyEntry.refToMessageId, id);
  const replyAtB = await evidenceOf(hubB, replyId, ['delivered'], 30_000);
  assert.is(replyAtB.filter((row) => row.stage === 'delivered').length, 1, 'hub B evidenced hub A\'s Acknowledgment for the reply');

  // The evidence bundles verify with swx and with the commands VERIFY.md gives: xmlsec1 --url-map for the message as
  // hub B received it (its attachment is message.bin), xmlsec1 for hub B's Acknowledgment as hub A kept it.
  const atHubB = await exportCheckedBundle(hubB, id, ['received', 'delivered']);
  assert.ok(atHubB.checks.some((check) => check.check === 'received XML signature' && check.ok), JSON.stringify(atHubB.checks));
  assert.ok(atHubB.commands.some((command) => /^xmlsec1 --verify .*--url-map:cid:\S+ message\.bin signatures\/received-signed\.xml$/.test(command)), atHubB.commands.join('\n'));
  assert.is(readFileSync(join(atHubB.folder, 'message.bin'), 'utf8'), declaration);
  const atHubA = await exportCheckedBundle(hubA, id, ['received', 'delivered']);
  assert.ok(atHubA.checks.some((check) => check.check === 'delivered XML signature' && check.ok), JSON.stringify(atHubA.checks));
  assert.ok(atHubA.commands.some((command) => command.startsWith('xmlsec1 --verify') && command.endsWith('signatures/delivered-BOFT-signed.xml')), atHubA.commands.join('\n'));
  assert.match(readFileSync(join(atHubA.folder, 'signatures/delivered-BOFT-signed.xml'), 'utf8'), /<eb:Acknowledgment/);
});

test('a MessageError from the partner\'s MSH fails the delivery for good: dead-lettered with its errorCode, sent once', async () => {
  // Hub A holds an agreement for NTA behind hub B that hub B does not: hub B answers ValueNotRecognized.
  const put = await hubA.admin('PUT', '/api/partners/NTA', {
    // One certificate identifies one partner: hub B's is BOFT's here, so NTA's own stands in (hub B never signs for NTA).
    name: 'NTA behind hub-b', certificates: [(await issueAgency(join(hubA.dataDir, 'pki'), 'NTA')).certPem],
    endpoints: { ebms2: hubAgreement(hubB.agencyPort, 'hub-b', 'unknown-at-hub-b', ['tax.notice']) },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'tax.notice', ['CUSTOMS'], ['NTA']);
  const answer = await customs.client.send({ to: 'NTA', service: 'tax.notice', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"taxId":"12345678"}') });
  assert.is(answer.status, 202, answer.text);
  const id = String(answer.body.id);
  const rows = await evidenceOf(hubA, id, ['dead_lettered'], 60_000);
  const dead = rows.filter((row) => row.stage === 'dead_lettered');
  assert.is(dead.length, 1, `dead-lettered once: ${rows.map((row) => row.stage)}`);
  assert.is(dead[0].code, 'SWX_DELIVERY_REJECTED');
  assert.match(dead[0].detail, /ValueNotRecognized: CPAId "unknown-at-hub-b"/);
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 0);
});

test('a partner whose MSH is down: resent on the agreement\'s RetryInterval, Retries times, then DeliveryFailure, evidenced and dead-lettered', async () => {
  // Nothing listens on this port: each send finds the partner's MSH stopped.
  const url = `https://localhost:${await freePort()}/ebms2`;
  const down = { ...hubAgreement(0, 'down-msh', 'hub-a-down-msh', ['customs.down']), url, channels: { messages: channel(url, { reliability: { retries: 2, retryIntervalMs: 1000 } }) } };
  const put = await hubA.admin('PUT', '/api/partners/DOWN', {
    name: 'An MSH that is stopped', certificates: [(await issueAgency(join(hubA.dataDir, 'pki'), 'DOWN')).certPem], endpoints: { ebms2: down },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'customs.down', ['CUSTOMS'], ['DOWN']);
  const { id, detail, unanswered } = await deadLetteredUnanswered(hubA, customs.client, { to: 'DOWN', service: 'customs.down', action: 'deliver', contentType: 'application/json', body: Buffer.from('{"down":true}') }, 3);
  assert.ok(detail.startsWith(`ebMS DeliveryFailure: message ${id}: no Acknowledgment after 3 attempts, 1000 ms apart`), detail);
  assert.ok(unanswered.every((text) => /ECONNREFUSED/.test(text)), JSON.stringify(unanswered));
});

test('a partner\'s MSH sends ebMS 2.0 to a REST agency: signed Acknowledgment repeating its references; a resend gets the stored one and is delivered once', async () => {
  const messageId = 'notice-1@tfda.example';
  const message = await gatewayMessage({ messageId });
  const first = await post(message.body, message.contentType);
  assert.is(first.status, 200, first.text);
  assert.is(first.signal.signal, 'Acknowledgment', first.text.slice(0, 600));
  assert.equal(first.weak, [], 'RSA-SHA256 towards an agreement that names it');
  const outcome = received(sent({ messageId, signatureReferences: message.sent.signatureReferences }, true, Date.now()), first.signal, true);
  assert.is(outcome.refused, undefined);
  assert.is(outcome.outstanding.state, 'acknowledged', 'the Acknowledgment repeats every reference the gateway signed');
  await waitFor('the notice in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 60_000);
  assert.is(readFileSync(join(customs.inboxDir, `${messageId}.bin`), 'utf8'), notice.toString('utf8'));
  const entry = JSON.parse(readFileSync(join(customs.inboxDir, `${messageId}.json`), 'utf8'));
  assert.is(entry.from, 'TFDA');
  assert.is(entry.service, 'health.notice');
  assert.is(entry.action, 'Submit');
  assert.is(entry.conversationId, `conv-${messageId}`);
  assert.match(entry.contentType, /^application\/xml/);

  const again = await post(message.body, message.contentType);
  assert.is(again.envelope, first.envelope, 'the stored Acknowledgment, byte for byte');
  const resent = await gatewayMessage({ messageId });
  const third = await post(resent.body, resent.contentType);
  assert.is(third.envelope, first.envelope, 'a freshly signed resend of the MessageId gets the stored Acknowledgment too');
  let stages: Record<string, Record<string, number>> = {};
  await waitFor('two duplicate records', async () => Number((stages = await stagesOf(hubA, [messageId]))[messageId]?.duplicate ?? 0) >= 2, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  stages = await stagesOf(hubA, [messageId]);
  assert.is(Number(stages[messageId]?.delivered), 1, `delivered once: ${JSON.stringify(stages)}`);
  assert.is(Number(stages[messageId]?.duplicate), 2, `both repeats evidenced: ${JSON.stringify(stages)}`);
  assert.is(arrivedAtCustoms.filter((id) => id === messageId).length, 1, 'CUSTOMS stored it once');
});

test('the Hermes conformance message, unsigned, is refused with SecurityFailure where its agreement asks for signing', async () => {
  const capture = readFileSync(hermesCapture);
  const end = capture.indexOf('\r\n\r\n') >= 0 ? capture.indexOf('\r\n\r\n') + 4 : capture.indexOf('\n\n') + 2;
  const contentType = /^content-type:\s*(.+?)\r?$/im.exec(capture.subarray(0, end).toString('latin1'))![1]!;
  // Its TimeToLive (2008) moved to tomorrow, so that it is judged on its signature rather than refused as expired.
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
  const body = Buffer.from(capture.subarray(end).toString('latin1').replace(/<eb:TimeToLive>[^<]*</, `<eb:TimeToLive>${tomorrow}<`), 'latin1');
  const before = await unauthenticatedCount();
  const answer = await post(body, contentType);
  assert.is(errorCodeOf(answer.signal), 'SecurityFailure', answer.text.slice(0, 800));
  assert.is(answer.signal.header.refToMessageId, '20080721-152652-07404@192.168.0.51');
  assert.equal(answer.signal.header.to.partyIds, [{ id: 'fromPartyId', type: 'fromPartyType' }], 'addressed back to the sending party');
  // Not authenticated (no signature): counted as a refusal of its source, not recorded under the id it claims.
  await waitFor('the refusal counted in evidence', async () => await unauthenticatedCount() >= before + 1, 120_000);
});

test('bad input gets its MessageError (or SOAP Fault where nothing can address one), signed, and evidence; the hub serves on', async () => {
  const refusedBefore = await unauthenticatedCount();
  const cases: [string, () => Promise<{ body: Buffer; contentType: string }>, string][] = [
    ['a duplicated MessageHeader', () => gatewayMessage({ messageId: 'bad-twice@tfda.example', header: 'twice' }), 'OtherXml'],
    ['an unknown CPAId', () => gatewayMessage({ messageId: 'bad-cpa@tfda.example', cpaId: 'no-such-agreement' }), 'ValueNotRecognized'],
    ['a tampered attachment', () => gatewayMessage({ messageId: 'bad-tamper@tfda.example', tamper: true }), 'SecurityFailure'],
    ['a certificate registered to no partner', () => gatewayMessage({ messageId: 'bad-cert@tfda.example', signer: rogue }), 'SecurityFailure'],
    ['an expired TimeToLive', () => gatewayMessage({ messageId: 'bad-ttl@tfda.example', expired: true }), 'TimeToLiveExpired'],
    ['a mustUnderstand header not understood', () => gatewayMessage({ messageId: 'bad-mu@tfda.example', extraHeader: true }), 'NotSupported'],
    ['truncated MIME', async () => { const m = await gatewayMessage({ messageId: 'bad-cut@tfda.example' }); return { ...m, body: m.body.subarray(0, m.body.length - 60) }; }, 'MimeProblem'],
  ];
  for (const [what, build, code] of cases) {
    const { body, contentType } = await build();
    const answer = await post(body, contentType);
    assert.is(answer.signal.signal, 'MessageError', `${what}: ${answer.text.slice(0, 600)}`);
    assert.is(errorCodeOf(answer.signal), code, `${what}: ${answer.text.slice(0, 600)}`);
    assert.ok(answer.status < 500, `${what}: answered ${answer.status}`);
  }
  // No MessageHeader at all: nothing to address a MessageError to, so the SOAP Fault of the HTTP binding, a 4xx.
  const headless = await gatewayMessage({ messageId: 'bad-none@tfda.example', header: 'missing' });
  const fault = await postBytes(headless.body, headless.contentType);
  assert.is(fault.status, 400);
  assert.match(fault.body.toString('utf8'), /<faultcode>SOAP:Client<\/faultcode><faultstring>OtherXml: the SOAP Header has no MessageHeader/);
  // More MIME parts than the hub reads: its MessageError with a 4xx, never a 500.
  const crowded = await gatewayMessage({ messageId: 'bad-parts@tfda.example', extraParts: 1100 });
  const capped = await post(crowded.body, crowded.contentType);
  assert.is(capped.status, 413, capped.text.slice(0, 300));
  assert.is(errorCodeOf(capped.signal), 'MimeProblem');

  // The hub serves on: a good message after all that gets its Acknowledgment.
  const after = await gatewayMessage({ messageId: 'after-bad@tfda.example' });
  const good = await post(after.body, after.contentType);
  assert.is(good.signal.signal, 'Acknowledgment', good.text.slice(0, 600));

  // Refusals before the sender is authenticated are counted per source, code and minute, each one of them.
  const expected = cases.length + 2; // and the headless message and the crowded one
  let counted = 0;
  await waitFor(`the ${expected} refusals before authentication counted in evidence`, async () => (counted = await unauthenticatedCount() - refusedBefore) >= expected, 120_000);
  assert.is(counted, expected);
});

test('Ping gets a signed Pong, StatusRequest a StatusResponse; an unsigned or unauthorised action is refused after authentication with evidence', async () => {
  const signal = async (action: 'Ping' | 'StatusRequest', messageId: string, body: string[] = []) => {
    const header = messageHeaderXml({
      from: { partyIds: [{ id: 'tfda-gw', type: 'urn:example:party' }] }, to: { partyIds: [{ id: 'hub-a', type: hubType }] },
      cpaId: 'tfda-hub-a', conversationId: `conv-${messageId}`, service: { value: 'urn:oasis:names:tc:ebxml-msg:service' }, action,
      messageId, timestamp: new Date(),
    });
    const signed = await signEbms(envelopeXml([header, syncReplyXml()], body), [], { keyPem: gateway.keyPem, certPem: gateway.certPem });
    const multipart = ebmsMultipart(signed.xml, []);
    return post(await whole(multipart.body), multipart.contentType);
  };
  const pong = await signal('Ping', 'ping-1@tfda.example');
  assert.is(pong.signal.signal, 'Pong', pong.text.slice(0, 600));
  assert.is(pong.signal.header.refToMessageId, 'ping-1@tfda.example');
  const status = await signal('StatusRequest', 'status-1@tfda.example', ['<eb:StatusRequest eb:version="2.0"><eb:RefToMessageId>notice-1@tfda.example</eb:RefToMessageId></eb:StatusRequest>']);
  assert.is(status.signal.signal, 'StatusResponse', status.text.slice(0, 600));
  assert.ok(['Received', 'Processed', 'Forwarded'].includes(status.signal.statusResponse!.messageStatus), JSON.stringify(status.signal.statusResponse));
  const unknown = await signal('StatusRequest', 'status-2@tfda.example', ['<eb:StatusRequest eb:version="2.0"><eb:RefToMessageId>never-sent@tfda.example</eb:RefToMessageId></eb:StatusRequest>']);
  assert.is(unknown.signal.statusResponse!.messageStatus, 'NotRecognized');
});

test('RSA-SHA1 passes only from a partner whose agreement names it, and its evidence says weak', async () => {
  const old = await issueAgency(join(hubA.dataDir, 'pki'), 'OLDGW');
  const put = await hubA.admin('PUT', '/api/partners/OLDGW', {
    name: 'A gateway on an old agreement', certificates: [old.certPem],
    endpoints: { ebms2: {
      cpaId: 'oldgw-hub-a', partyIds: [{ id: 'old-gw', type: 'urn:example:party' }], roles: ['notifier'], defaultChannel: 'c1',
      channels: { c1: channel('https://localhost:9/msh', { signature: { algorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', weak: true } }) },
      services: [{ service: 'health.notice', role: 'notifier', canSend: [{ action: 'Submit', channels: ['c1'] }], canReceive: [] }],
    } },
  });
  assert.is(put.status, 200, JSON.stringify(put.body));
  await addService(hubA, 'health.notice', ['TFDA', 'OLDGW'], ['CUSTOMS']);
  const messageId = 'weak-1@old.example';
  const weak = await gatewayMessage({ messageId, fromParty: 'old-gw', cpaId: 'oldgw-hub-a', signer: old, sha1: true });
  const acknowledged = await post(weak.body, weak.contentType);
  assert.is(acknowledged.signal.signal, 'Acknowledgment', acknowledged.text.slice(0, 600));
  assert.match(acknowledged.envelope, /xmldsig#rsa-sha1/, 'acknowledged with the algorithm of the agreement');
  assert.ok(acknowledged.weak.length > 0);
  const rows = await evidenceOf(hubA, messageId, ['received'], 30_000);
  const arrived = rows.filter((row) => row.stage === 'received');
  assert.is(arrived.length, 1);
  assert.ok(JSON.parse(arrived[0].signature).weak?.length > 0, `weak in evidence: ${arrived[0].signature.slice(0, 300)}`);

  // The same algorithm from TFDA, whose agreement names RSA-SHA256: SecurityFailure.
  const refused = await gatewayMessage({ messageId: 'weak-2@tfda.example', sha1: true });
  const answer = await post(refused.body, refused.contentType);
  assert.is(errorCodeOf(answer.signal), 'SecurityFailure', answer.text.slice(0, 600));
});

test('an unsigned message passes over the partner\'s own TLS connection where its agreement asks for no signature; the Acknowledgment follows to its URL', async () => {
  const plain = await issueAgency(join(hubA.dataDir, 'pki'), 'PLAINGW');
  const acknowledgments: { contentType: string; body: Buffer }[] = [];
  const msh = createServer({ key: plain.keyPem, cert: plain.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => { acknowledgments.push({ contentType: String(req.headers['content-type']), body: Buffer.concat(chunks) }); res.writeHead(200, { 'content-length': '0' }); res.end(); });
  });
  await new Promise<void>((resolve) => msh.listen(0, 'localhost', resolve));
  try {
    const url = `https://localhost:${(msh.address() as AddressInfo).port}/msh`;
    const { signature: _, ...unsignedChannel } = channel(url, { syncReplyMode: 'none' });
    const put = await hubA.admin('PUT', '/api/partners/PLAINGW', {
      name: 'A gateway that does not sign', certificates: [plain.certPem],
      endpoints: { ebms2: {
        cpaId: 'plain-hub-a', partyIds: [{ id: 'plain-gw', type: 'urn:example:party' }], roles: ['notifier'], url, defaultChannel: 'c1',
        channels: { c1: unsignedChannel },
        services: [{ service: 'health.notice', role: 'notifier', canSend: [{ action: 'Submit', channels: ['c1'] }], canReceive: [] }],
      } },
    });
    assert.is(put.status, 200, JSON.stringify(put.body));
    await addService(hubA, 'health.notice', ['TFDA', 'OLDGW', 'PLAINGW'], ['CUSTOMS']);
    const messageId = 'plain-1@plain.example';
    const xml = envelopeXml([messageHeaderXml({
      from: { partyIds: [{ id: 'plain-gw', type: 'urn:example:party' }] },
      to: { partyIds: [{ id: 'hub-a', type: hubType }, { id: 'CUSTOMS', type: swxPartyIdType }] },
      cpaId: 'plain-hub-a', conversationId: `conv-${messageId}`, service: { value: 'health.notice', type: swxServiceType }, action: 'Submit',
      messageId, timestamp: new Date(), duplicateElimination: true,
    }), ackRequestedXml(true)], [manifestXml([{ contentId: 'notice' }])]);
    const multipart = ebmsMultipart(xml, [{ contentId: 'notice', contentType: 'application/xml', body: notice }]);
    const body = await whole(multipart.body);

    // Without the partner's TLS client certificate, nothing says who sent it.
    const stranger = await post(body, multipart.contentType);
    assert.is(errorCodeOf(stranger.signal), 'SecurityFailure', stranger.text.slice(0, 600));
    const taken = await postBytes(body, multipart.contentType, plain);
    assert.is(taken.status, 200, taken.body.toString('utf8').slice(0, 600));
    assert.is(taken.body.length, 0, 'no SyncReply: nothing on the connection');
    await waitFor('the Acknowledgment at the gateway\'s URL', () => acknowledgments.length > 0, 30_000);
    const parts = messageParts(entityOf({ 'content-type': acknowledgments[0]!.contentType }, acknowledgments[0]!.body));
    const ack = readEbmsParts(parts, { at: false });
    assert.is(ack.acknowledgment?.refToMessageId, messageId);
    assert.ok((await verifyXml(parts.root.body, { pinnedCertsPem: hubASign })).valid, 'signed by hub A');
    await waitFor('the notice in CUSTOMS\'s inbox', () => existsSync(join(customs.inboxDir, `${messageId}.json`)), 60_000);
  } finally {
    msh.close();
  }
});

test('swx connectors lists ebms2 with its settings and endpoint schema', async () => {
  const listed = await swxCommand(['connectors']);
  assert.is(listed.code, 0, listed.stderr);
  const ebms2 = (JSON.parse(listed.stdout) as { protocol: string; settings: unknown; endpoint: unknown }[]).filter((connector) => connector.protocol === 'ebms2');
  assert.is(ebms2.length, 1);
  assert.match(JSON.stringify(ebms2[0]!.settings), /partyIds/);
  assert.match(JSON.stringify(ebms2[0]!.endpoint), /cpaId/);
});

async function unauthenticatedCount(): Promise<number> {
  const answer = await hubA.admin('GET', '/api/evidence?raw=true&stage=refused_unauthenticated&limit=1000');
  const rows = Array.isArray(answer.body) ? answer.body : [];
  return rows.filter((row: any) => row.protocol === 'ebms2').reduce((sum: number, row: any) => sum + Number(JSON.parse(row.detail).count), 0);
}

test.run();
