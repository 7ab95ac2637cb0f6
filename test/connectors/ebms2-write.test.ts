// What swx writes as an ebMS 2.0 MSH, judged from outside: its signatures (ebMS 2.0 profile, with an attachment) verify
// with xmlsec1 and --url-map as INDEX.md checks the conformance messages; its signals have the element order and the
// required attributes of the spec's msg-header-2_0 schema (no copy of it is at hand, so the order is written out here
// from the spec) inside envelopes valid under the SOAP 1.1 schema (xmllint); and everything it writes reads back through its own reader to the values it was given.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  acknowledgmentXml, ackRequestedXml, EbmsRefusal, ebmsMultipart, envelopeXml, manifestXml, messageErrorXml, messageHeaderXml,
  endpointFromCpa, mshService, parseCpa, partyOf, pongXml, readEbmsMessage, signatureFor, signEbms, statusResponseXml, type EbmsMessage,
} from '../../connectors/ebms2/index.ts';
import { messageParts, parseEntity } from '../../engine/mime/index.ts';
import { signXml, verifyXml } from '../../engine/trust/index.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import { parseXml, type XmlElement } from '../../engine/xml/parse.ts';
import { trustFixture } from '../helpers/trust-fixture.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'swx-ebms2-write-'));
let files = 0;
function file(content: string | Buffer, suffix: string): string {
  const path = join(work, `f${++files}${suffix}`);
  writeFileSync(path, content);
  return path;
}

/** INDEX.md's form: xmlsec1 --verify --pubkey-cert-pem CERT [--url-map:cid:ID PART]... ENVELOPE; every reference must check. */
function xmlsec(xml: string, certPem: string, parts: { contentId: string; body: Buffer }[] = []): { ok: boolean; out: string } {
  const args = ['--verify', '--pubkey-cert-pem', file(certPem, '.pem')];
  for (const part of parts) args.push(`--url-map:cid:${part.contentId}`, file(part.body, '.bin'));
  const result = spawnSync('xmlsec1', [...args, file(xml, '.xml')], { encoding: 'utf8' });
  const out = `${result.stdout}${result.stderr}`;
  const refs = /SignedInfo References \(ok\/all\): (\d+)\/(\d+)/.exec(out);
  return { ok: result.status === 0 && /^OK$/m.test(out) && !!refs && refs[1] === refs[2] && refs[1] !== '0', out };
}

/** The SOAP 1.1 envelope schema (../shared/schemas, offline): what swx writes is a valid envelope around its blocks. */
function soapValid(xml: string): void {
  const result = spawnSync('xmllint', ['--nonet', '--noout', '--schema', fileURLToPath(new URL('../../../shared/schemas/soap11.xsd', import.meta.url)), file(xml, '.xml')], { encoding: 'utf8' });
  assert.is(result.status, 0, result.stderr);
}

const eb = 'http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd';
const soap = 'http://schemas.xmlsoap.org/soap/envelope/';
const names = (element: XmlElement) => elementChildren(element).map((child) => child.localName);
const child = (element: XmlElement, name: string) => elementChildren(element).find((c) => c.localName === name)!;
const attribute = (element: XmlElement, namespace: string, name: string) => element.attributes.find((a) => a.namespace === namespace && a.localName === name)?.value;
const headerOf = (xml: string) => child(parseXml(xml).root, 'Header');

/** The spec's MessageHeader content model (3.1), in order. */
function assertMessageHeader(element: XmlElement, action: string, refTo?: string, timeToLive = false) {
  assert.equal(names(element).filter((name) => name !== 'DuplicateElimination'), ['From', 'To', 'CPAId', 'ConversationId', 'Service', 'Action', 'MessageData']);
  assert.is(attribute(element, soap, 'mustUnderstand'), '1');
  assert.is(attribute(element, eb, 'version'), '2.0');
  assert.is(child(element, 'Action').children[0]!.type === 'text' && (child(element, 'Action').children[0] as { value: string }).value, action);
  assert.equal(names(child(element, 'MessageData')), ['MessageId', 'Timestamp', ...(refTo ? ['RefToMessageId'] : []), ...(timeToLive ? ['TimeToLive'] : [])]);
}

const received = () => {
  const parts = messageParts(parseEntity(readFileSync(`${conformance}navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg`)));
  return readEbmsMessage(parts.root.body, { attachments: parts.attachments, at: false });
};
const us = { partyIds: [{ id: '79768', type: 'HER' }], role: 'KontrollUtbetaler' };

test('an outgoing message with a payload: signed with the ebMS 2.0 profile, xmlsec1 verifies it with --url-map, it reads back', async () => {
  const fixture = await trustFixture();
  const payload = { contentId: 'payload-1@swx.example', contentType: 'application/xml', body: Buffer.from('<Declaration xmlns="urn:example">\r\n  <Amount>42</Amount>\n</Declaration>') };
  const sentAt = new Date('2026-12-07T01:00:00Z');
  const header = messageHeaderXml({
    from: { partyIds: [{ id: 'SWX', type: 'urn:swx:hub' }, { id: 'urn:duns:123456789' }], role: 'Hub' },
    to: { partyIds: [{ id: '8141253', type: 'HER' }], role: 'Behandler' },
    cpaId: 'nav:qass:35065', conversationId: 'conv-1', service: { value: 'BehandlerKrav', type: 'string' }, action: 'OppgjorsMelding',
    messageId: 'm-1@swx.invalid', timestamp: sentAt, timeToLive: new Date('2026-12-08T01:00:00Z'), duplicateElimination: true,
  });
  const envelope = envelopeXml([header, ackRequestedXml(true)], [manifestXml([{ contentId: payload.contentId, id: 'payload-1' }])]);
  const signed = await signEbms(envelope, [{ contentId: payload.contentId, headers: { 'content-type': payload.contentType }, body: payload.body }], { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem });
  assert.is(signed.weak, false);
  const checked = xmlsec(signed.xml, fixture.rsa.certPem, [payload]);
  assert.ok(checked.ok, checked.out);
  assert.match(checked.out, /References \(ok\/all\): 2\/2/);
  assert.match(signed.xml, /<ds:SignatureMethod Algorithm="http:\/\/www.w3.org\/2001\/04\/xmldsig-more#rsa-sha256"/);
  assert.match(signed.xml, /<ds:CanonicalizationMethod Algorithm="http:\/\/www.w3.org\/TR\/2001\/REC-xml-c14n-20010315"/);
  assertMessageHeader(child(headerOf(signed.xml), 'MessageHeader'), 'OppgjorsMelding', undefined, true);
  assert.equal(names(child(headerOf(signed.xml), 'MessageHeader')).at(-1), 'DuplicateElimination');
  assert.equal(names(headerOf(signed.xml)), ['MessageHeader', 'AckRequested', 'Signature']);
  soapValid(signed.xml);

  // On the wire: multipart/related, read back as a receiver reads it.
  const wire = ebmsMultipart(signed.xml, [payload]);
  const chunks: Buffer[] = [];
  for await (const chunk of wire.body) chunks.push(chunk as Buffer);
  const parts = messageParts(parseEntity(Buffer.concat([Buffer.from(`Content-Type: ${wire.contentType}\r\n\r\n`), ...chunks])));
  assert.equal(parts.attachments.map((part) => [part.contentId, part.body.equals(payload.body)]), [[payload.contentId, true]]);
  const message = readEbmsMessage(parts.root.body, { attachments: parts.attachments, at: sentAt });
  assert.equal(message.header.from.partyIds, [{ id: 'SWX', type: 'urn:swx:hub' }, { id: 'urn:duns:123456789' }]);
  assert.is(message.header.timeToLive, '2026-12-08T01:00:00.000Z');
  assert.is(message.header.duplicateElimination, true);
  assert.equal(message.ackRequested, [{ actor: 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH', signed: true }]);
  assert.equal(message.manifest.map((reference) => [reference.id, reference.contentId]), [['payload-1', payload.contentId]]);
  const verdict = await verifyXml(parts.root.body, { attachments: parts.attachments, pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt });
  assert.ok(verdict.valid, verdict.detail);
  assert.equal(verdict.signedAttachments, [payload.contentId]);
  const tampered = { ...parts.attachments[0]!, body: Buffer.from(payload.body.toString().replace('42', '43')) };
  assert.is((await verifyXml(parts.root.body, { attachments: [tampered], pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt })).code, 'SWX_DIGEST_MISMATCH');
});

test('a signed Acknowledgment of the conformance message: the spec\'s structure, its signature references repeated, xmlsec1 verifies it', async () => {
  const fixture = await trustFixture();
  const acked = received();
  const receivedAt = new Date('2023-08-29T10:56:55Z');
  const xml = acknowledgmentXml(acked, { from: us, receivedAt, messageId: 'ack-1@swx.invalid', timestamp: new Date('2023-08-29T10:56:56Z') });
  const signed = await signEbms(xml, [], { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem });
  const checked = xmlsec(signed.xml, fixture.rsa.certPem);
  assert.ok(checked.ok, checked.out);

  soapValid(signed.xml);
  const header = headerOf(signed.xml);
  assert.equal(names(header), ['MessageHeader', 'Acknowledgment', 'Signature']);
  assertMessageHeader(child(header, 'MessageHeader'), 'Acknowledgment', acked.header.messageId);
  // 6.3.2: Timestamp, RefToMessageId, From?, ds:Reference*; version, mustUnderstand and the actor the sender asked.
  const ack = child(header, 'Acknowledgment');
  assert.equal(names(ack), ['Timestamp', 'RefToMessageId', 'From', 'Reference', 'Reference']);
  assert.is(attribute(ack, eb, 'version'), '2.0');
  assert.is(attribute(ack, soap, 'mustUnderstand'), '1');
  assert.is(attribute(ack, soap, 'actor'), 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH');

  const read = readEbmsMessage(signed.xml, { at: false });
  assert.is(read.signal, 'Acknowledgment');
  assert.equal(read.header.service, { value: mshService });
  assert.equal(read.header.to.partyIds, acked.header.from.partyIds, 'the acknowledgment goes back to the sender');
  assert.equal(read.header.from, us);
  assert.is(read.header.cpaId, acked.header.cpaId);
  assert.is(read.header.conversationId, acked.header.conversationId);
  assert.is(read.acknowledgment!.refToMessageId, acked.header.messageId);
  assert.is(read.acknowledgment!.timestamp, '2023-08-29T10:56:55.000Z');
  assert.equal(read.acknowledgment!.references.map(({ uri, digestMethod, digestValue, transforms }) => ({ uri, digestMethod, digestValue, transforms: transforms.map((t) => [t.algorithm, t.xpath?.expression]) })),
    acked.signatureReferences.map(({ uri, digestMethod, digestValue, transforms }) => ({ uri, digestMethod, digestValue, transforms: transforms.map((t) => [t.algorithm, t.xpath?.expression]) })),
    'the NRR references are the acknowledged signature\'s, digests and transforms alike');
  // The same shape as the real signed Acknowledgment in the conformance folder.
  const real = readEbmsMessage(messageParts(parseEntity(readFileSync(`${conformance}navikt-ebxml-processor/INBOX/acknowledgment.eml`))).root.body, { at: false });
  assert.equal(Object.keys(read.acknowledgment!).sort(), [...Object.keys(real.acknowledgment!), 'from'].sort());
});

test('a signed MessageError for a refused message: ErrorList per the spec, addressed back from what could be read', async () => {
  const fixture = await trustFixture();
  const parts = messageParts(parseEntity(readFileSync(`${conformance}navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg`)));
  const expired = parts.root.body.toString('utf8').replace('</eb:Timestamp>', '</eb:Timestamp><eb:TimeToLive>2023-08-29T10:57:00Z</eb:TimeToLive>');
  let refusal: EbmsRefusal | undefined;
  try { readEbmsMessage(expired, { attachments: [], at: new Date('2023-08-29T11:00:00Z') }); } catch (error) { refusal = error as EbmsRefusal; }
  assert.equal(refusal!.errors.map((error) => error.errorCode).sort(), ['MimeProblem', 'TimeToLiveExpired']);
  const xml = messageErrorXml(refusal!.refused, refusal!.errors, { from: us });
  const signed = await signEbms(xml, [], { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem });
  const checked = xmlsec(signed.xml, fixture.rsa.certPem);
  assert.ok(checked.ok, checked.out);

  soapValid(signed.xml);
  const header = headerOf(signed.xml);
  assert.equal(names(header), ['MessageHeader', 'ErrorList', 'Signature']);
  assertMessageHeader(child(header, 'MessageHeader'), 'MessageError', '7104acf8-21e9-4ee7-b894-d413a00a8881');
  // 4.2.3: ErrorList (version, mustUnderstand, highestSeverity) of Error (errorCode, severity, location; Description).
  const list = child(header, 'ErrorList');
  assert.is(attribute(list, eb, 'highestSeverity'), 'Error');
  assert.is(attribute(list, soap, 'mustUnderstand'), '1');
  assert.is(attribute(list, eb, 'version'), '2.0');
  assert.equal(names(list), ['Error', 'Error']);
  for (const error of elementChildren(list)) {
    assert.ok(attribute(error, eb, 'errorCode') && attribute(error, eb, 'severity') && attribute(error, eb, 'location'));
    assert.is(attribute(error, eb, 'codeContext'), 'urn:oasis:names:tc:ebxml-msg:service:errors');
    assert.equal(names(error), ['Description']);
  }
  const read = readEbmsMessage(signed.xml, { at: false });
  assert.is(read.signal, 'MessageError');
  assert.is(read.header.refToMessageId, '7104acf8-21e9-4ee7-b894-d413a00a8881');
  assert.equal(read.header.to.partyIds, [{ id: '8141253', type: 'HER' }]);
  assert.equal(read.errorList!.errors, refusal!.errors);
  assert.throws(() => messageErrorXml({}, refusal!.errors), /no readable From/);
});

test('StatusResponse and Pong answer their requests in the spec\'s shape', () => {
  const request: EbmsMessage = { ...received(), signal: 'StatusRequest', statusRequest: { refToMessageId: 'asked-1@x' } };
  const response = statusResponseXml(request, 'Received', new Date('2023-08-29T10:56:55Z'), { from: us });
  soapValid(response);
  const body = child(parseXml(response).root, 'Body');
  const status = child(body, 'StatusResponse');
  assert.equal(names(status), ['RefToMessageId', 'Timestamp']);
  assert.is(attribute(status, eb, 'messageStatus'), 'Received');
  assert.is(attribute(status, eb, 'version'), '2.0');
  const read = readEbmsMessage(response, { at: false });
  assert.equal(read.statusResponse, { refToMessageId: 'asked-1@x', timestamp: '2023-08-29T10:56:55.000Z', messageStatus: 'Received' });
  assert.equal(names(child(parseXml(statusResponseXml(request, 'NotRecognized')).root, 'Body').children[0] as XmlElement), ['RefToMessageId'], 'no Timestamp for a message not received');

  const ping: EbmsMessage = { ...received(), signal: 'Ping' };
  soapValid(pongXml(ping));
  const pong = readEbmsMessage(pongXml(ping), { at: false });
  assert.is(pong.signal, 'Pong');
  assert.is(pong.header.refToMessageId, ping.header.messageId);
  assert.throws(() => pongXml(received()), /a Pong answers a Ping/);
});

test('RSA-SHA1 only when the agreement asks for it, and flagged weak', async () => {
  const fixture = await trustFixture();
  // The national health network's agreement as an older partner would write it: RSA-SHA1 over SHA-1.
  const cpaText = readFileSync(`${conformance}cpa/nav-qass-35065.xml`, 'utf8')
    .replaceAll('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2000/09/xmldsig#rsa-sha1')
    .replaceAll('http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2000/09/xmldsig#sha1');
  const cpa = parseCpa(cpaText);
  const channel = endpointFromCpa(cpa, partyOf(cpa, '8141253')).channels.Partner_channelSMTP0_partner!;
  assert.equal(channel.signature, { algorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', hashFunction: 'http://www.w3.org/2000/09/xmldsig#sha1', weak: true });
  assert.is(signatureFor(channel), 'rsa-sha1');
  const original = parseCpa(readFileSync(`${conformance}cpa/nav-qass-35065.xml`));
  assert.is(signatureFor(endpointFromCpa(original, partyOf(original, '8141253')).channels.Partner_channelSMTP0_partner!), 'rsa-sha256');
  const envelope = acknowledgmentXml(received(), { from: us, receivedAt: new Date() });
  const signed = await signEbms(envelope, [], { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, signatureAlgorithm: signatureFor(channel) });
  assert.is(signed.weak, true);
  assert.match(signed.xml, /Algorithm="http:\/\/www.w3.org\/2000\/09\/xmldsig#rsa-sha1"/);
  assert.match(signed.xml, /Algorithm="http:\/\/www.w3.org\/2000\/09\/xmldsig#sha1"/);
  const checked = xmlsec(signed.xml, fixture.rsa.certPem);
  assert.ok(checked.ok, checked.out);
  assert.is((await verifyXml(signed.xml, { pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt })).code, 'SWX_SIG_WEAK_ALG', 'refused on live traffic');
  const archived = await verifyXml(signed.xml, { pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt, policy: 'archive' });
  assert.ok(archived.valid);
  assert.equal(archived.weak, ['RSA-SHA1', 'SHA-1']);
  await signXml(envelope, { keyPem: fixture.rsa.keyPem, signatureAlgorithm: 'rsa-sha1' }).then(
    () => assert.unreachable('signed with RSA-SHA1 unasked'),
    (error) => assert.is(error.code, 'SWX_SIG_WEAK_ALG'),
  );
});

test.run();
