// What swx writes, judged by outside tools: receipts and error signals validate against the OASIS and W3C schemas with
// xmllint; their WS-Security signatures over eb:Messaging, Body and Timestamp verify with xmlsec1 (RSA and ECDSA);
// user messages with compressed and plain attachments, and Ed25519 signatures, which Debian's xmlsec1 cannot check,
// verify with the independent Python verifier (as4_verify.py, cryptography + lxml) on the multipart body as sent.
// The non-repudiation receipt holds a copy of every reference of the user message's signature, attachments included.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import {
  EbmsError, errorEnvelope, gzipType, pullRequestEnvelope, readAs4Message, receiptEnvelope, signAs4, signatureReferences, userMessageEnvelope, type SignalMessage,
} from '../../connectors/as4/index.ts';
import { checkWsSecurity, verifyXml } from '../../engine/trust/index.ts';
import { invoice, party, received, sendUserMessage, type Sent } from '../helpers/as4.ts';
import { trustFixture, type TestCredential } from '../helpers/trust-fixture.ts';

const run = promisify(execFile);
const schemas = fileURLToPath(new URL('../../../shared/schemas/', import.meta.url));
const verifier = fileURLToPath(new URL('./as4_verify.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'swx-as4-'));
const fixture = await trustFixture();
const at = fixture.issuedAt;

// The ebMS header schema imports SOAP 1.1 and 1.2, but not the ebBP signals schema whose NonRepudiationInformation a
// Receipt holds (eb:Receipt takes any element of another namespace, laxly). One small schema imports all four, so that
// the whole envelope is validated: the SOAP 1.2 Envelope strictly, eb:Messaging as the Header's lax content (declared,
// so validated), ebbp:NonRepudiationInformation and its ds:Reference copies as the Receipt's (declared, so validated).
// wsse:Security has no schema here and is skipped, as lax content is; the mutated envelopes below show that what is
// declared is really checked.
const wrapper = join(dir, 'as4-envelope.xsd');
writeFileSync(wrapper, `<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:swx:test:as4">
  <xs:import namespace="http://www.w3.org/2003/05/soap-envelope" schemaLocation="${schemas}soap12.xsd"/>
  <xs:import namespace="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/" schemaLocation="${schemas}ebms-header-3_0-200704.xsd"/>
  <xs:import namespace="http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0" schemaLocation="${schemas}ebbp-signals-2.0.4.xsd"/>
  <xs:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="${schemas}xmldsig-core-schema.xsd"/>
</xs:schema>
`);

let files = 0;
function file(content: string | Buffer, name = 'message.xml'): string {
  const path = join(dir, `${files++}-${name}`);
  writeFileSync(path, content);
  return path;
}

async function outcome(command: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, out: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

const xmllint = (xml: string) => outcome('xmllint', ['--nonet', '--noout', '--schema', wrapper, file(xml)]);

/** xmlsec1 over the elements swx signs by wsu:Id: eb:Messaging, the SOAP 1.2 Body and the WS-Security Timestamp. */
const xmlsec1 = (xml: string, signer: TestCredential) => outcome('xmlsec1', [
  '--verify', '--pubkey-cert-pem', file(signer.certPem, 'signer.pem'),
  '--id-attr:Id', 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/:Messaging',
  '--id-attr:Id', 'http://www.w3.org/2003/05/soap-envelope:Body',
  '--id-attr:Id', 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd:Timestamp',
  file(xml),
]);

const python = async (body: Buffer, contentType: string, signer: TestCredential) => {
  const result = await outcome('/usr/bin/python3', [verifier, file(body, 'body.bin'), contentType, file(signer.certPem, 'signer.pem')]);
  return { ...result, verdict: JSON.parse(result.out.trim().split('\n').at(-1) ?? '{}') as { valid: boolean; references: { uri: string; valid: boolean }[] } };
};

test('the Python verifier agrees with xmlsec1 on the phase4 receipts: two verified, the tampered one refused', async () => {
  const phase4 = fileURLToPath(new URL('../../../shared/conformance/phase4/', import.meta.url));
  const judge = (envelope: string, signer: string) => outcome('/usr/bin/python3', [verifier, join(phase4, envelope), 'application/soap+xml', join(phase4, '_derived', signer)]);
  assert.is((await judge('testfiles/TestReceipt12.xml', 'TestReceipt12.xml.signer.pem')).code, 0);
  assert.is((await judge('_derived/dataport1-mustunderstand.as4in.envelope.xml', 'dataport1-mustunderstand.as4in.signer.pem')).code, 0);
  const tampered = await judge('_derived/dataport1.as4in.envelope.xml', 'dataport1.as4in.signer.pem');
  assert.is(tampered.code, 1);
  assert.match(tampered.out, /"uri": "#id-4b28412d2948bca-f4a2-48fe-8503-d3693f501057", "valid": false/);
});

test('a signed UserMessage as sent: multipart/related SOAP 1.2, read back typed, compressed part restored', async () => {
  const sent = await sendUserMessage(fixture.rsa, { at });
  assert.match(sent.contentType, /^multipart\/related; boundary="[^"]+"; type="application\/soap\+xml"; start="<soap-[^>]+>"$/);
  const { message, attachments } = await received(sent);
  assert.is(message.soapVersion, '1.2');
  const user = message.message;
  assert.is(user.kind, 'user');
  if (user.kind !== 'user') return;
  assert.equal(user.parts.map((p) => [p.href, p.mimeType, p.compressionType]), [
    ['cid:invoice@customs.example', 'application/xml', gzipType], ['cid:note%2F1@customs.example', 'application/xml', undefined], ['cid:text@customs.example', 'text/plain', undefined],
  ]);
  assert.equal(attachments.map((a) => a.headers['content-type']), [gzipType, 'application/xml', 'text/plain; charset=utf-8']);
  assert.ok(gunzipSync(attachments[0]!.body).equals(invoice));
  assert.ok(attachments[0]!.body.length < invoice.length / 5, `${attachments[0]!.body.length} compressed bytes`);
  // swx's own WS-Security check agrees: signature, Body, Timestamp, and Messaging among the signed headers.
  const checked = await checkWsSecurity({ raw: message.envelope.raw, header: message.envelope.header, body: message.envelope.body }, {
    now: () => at.getTime(), verifyXml: (xml, options) => verifyXml(xml, { ...options, attachments, at }),
  });
  assert.equal(checked.signedHeaders, ['/Envelope/Header/Messaging']);
  // The envelope as sent validates too (the UserMessage against the ebMS header schema).
  const valid = await xmllint(sent.xml);
  assert.is(valid.code, 0, valid.out);
  assert.equal(checked.verdict.signedAttachments, ['invoice@customs.example', 'note/1@customs.example', 'text@customs.example']);
});

for (const key of ['rsa', 'ed25519'] as const) {
  test(`the Python verifier checks a ${key} UserMessage as sent, every attachment reference included, and refuses a changed part`, async () => {
    const signer = fixture[key];
    const sent = await sendUserMessage(signer, { at });
    const good = await python(sent.body, sent.contentType, signer);
    assert.is(good.code, 0, good.out);
    assert.equal(good.verdict.references.map((r) => r.uri.split('-')[0]), ['#TS', '#body', '#eb', 'cid:invoice@customs.example', 'cid:note%2F1@customs.example', 'cid:text@customs.example']);
    const tampered = Buffer.from(sent.body.toString('latin1').replace('line two', 'line 2!!'), 'latin1');
    const bad = await python(tampered, sent.contentType, signer);
    assert.is(bad.code, 1, bad.out);
    assert.equal(bad.verdict.references.filter((r) => !r.valid).map((r) => r.uri), ['cid:text@customs.example']);
  });
}

async function receiptFor(sent: Sent, signer: TestCredential): Promise<{ xml: string; written: ReturnType<typeof receiptEnvelope> }> {
  const { message } = await received(sent);
  const written = receiptEnvelope(message, { messageId: 'receipt-1@boft.example', timestamp: at });
  return { xml: await signAs4(written, { keyPem: signer.keyPem, certPem: signer.certPem, createdAt: at }), written };
}

test('the NRR receipt copies every reference of the user message\'s signature, attachments included, digests unchanged', async () => {
  const sent = await sendUserMessage(fixture.rsa, { at });
  const { message } = await received(sent);
  const { xml } = await receiptFor(sent, fixture.ecdsa);
  const receipt = readAs4Message(Buffer.from(xml));
  const signal = receipt.message as SignalMessage;
  assert.is(signal.messageInfo.refToMessageId, 'msg-1@customs.example');
  const original = signatureReferences(message).map((reference) => reference.attributes.find((a) => a.localName === 'URI')!.value);
  assert.equal(signal.receipt!.nonRepudiation.map((r) => r.uri), original);
  assert.is(original.length, 6);
  const sentDigests = [...sent.xml.matchAll(/<ds:DigestValue>([^<]+)</g)].map((m) => m[1]).slice(0, 6);
  assert.equal(signal.receipt!.nonRepudiation.map((r) => r.digestValue), sentDigests);
});

for (const key of ['rsa', 'ecdsa'] as const) {
  test(`a ${key}-signed receipt validates against the schemas and verifies with xmlsec1`, async () => {
    const { xml } = await receiptFor(await sendUserMessage(fixture.rsa, { at }), fixture[key]);
    const valid = await xmllint(xml);
    assert.is(valid.code, 0, valid.out);
    const verified = await xmlsec1(xml, fixture[key]);
    assert.is(verified.code, 0, verified.out);
    assert.match(verified.out, /OK/);
    const python3 = await python(Buffer.from(xml), 'application/soap+xml', fixture[key]);
    assert.is(python3.code, 0, python3.out);
  });
}

test('a receipt for another MSH\'s signed message (phase4 TestMessage11, SOAP 1.1) copies its reference with its own prefixes, and validates', async () => {
  const phase4 = readAs4Message(readFileSync(fileURLToPath(new URL('../../../shared/conformance/phase4/unused/TestMessage11.xml', import.meta.url))));
  const receipt = await signAs4(receiptEnvelope(phase4, { timestamp: at }), { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, createdAt: at });
  assert.match(receipt, /<ds:Reference xmlns:ds="http:\/\/www.w3.org\/2000\/09\/xmldsig#" URI="#id-4ff7820d-254f-437c-878c-1cc740158317">/);
  assert.match(receipt, /<ds:DigestValue>[^<]+<\/ds:DigestValue><\/ds:Reference><\/ebbp:MessagePartNRInformation>/);
  const signal = readAs4Message(Buffer.from(receipt)).message as SignalMessage;
  assert.equal([signal.messageInfo.refToMessageId, signal.receipt!.nonRepudiation.map((r) => r.uri)], ['UUID-1@requester.example.com', ['#id-4ff7820d-254f-437c-878c-1cc740158317']]);
  const valid = await xmllint(receipt);
  assert.is(valid.code, 0, valid.out);
  assert.is((await xmlsec1(receipt, fixture.rsa)).code, 0);
});

test('an Ed25519-signed receipt verifies with the Python verifier; a changed receipt does not', async () => {
  const { xml } = await receiptFor(await sendUserMessage(fixture.ed25519, { at }), fixture.ed25519);
  assert.is((await xmllint(xml)).code, 0);
  assert.is((await python(Buffer.from(xml), 'application/soap+xml', fixture.ed25519)).code, 0);
  const changed = xml.replace('receipt-1@boft.example', 'receipt-2@boft.example');
  assert.is((await python(Buffer.from(changed), 'application/soap+xml', fixture.ed25519)).code, 1);
});

test('a receipt for an unsigned UserMessage names its parts by PartInfo href (reception awareness), and validates', async () => {
  const written = userMessageEnvelope({
    messageId: 'plain@customs.example', from: party('CUSTOMS'), to: party('BOFT'),
    collaboration: { service: { value: 'customs.declaration' }, action: 'deliver', conversationId: 'c' }, payloads: [{ contentId: 'p/1@x', mimeType: 'text/plain' }],
  });
  const receipt = receiptEnvelope(readAs4Message(Buffer.from(written.xml), { attachments: ['p/1@x'] }), { timestamp: at });
  const signal = readAs4Message(Buffer.from(receipt.xml)).message as SignalMessage;
  assert.equal(signal.receipt, { nonRepudiation: [], partIdentifiers: ['cid:p%2F1@x'], content: ['{http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0}NonRepudiationInformation'] });
  const valid = await xmllint(receipt.xml);
  assert.is(valid.code, 0, valid.out);
  const empty = userMessageEnvelope({ messageId: 'empty@customs.example', from: party('A'), to: party('B'), collaboration: { service: { value: 's' }, action: 'a', conversationId: 'c' }, payloads: [] });
  const named = readAs4Message(Buffer.from(receiptEnvelope(readAs4Message(Buffer.from(empty.xml))).xml)).message as SignalMessage;
  assert.equal(named.receipt!.partIdentifiers, ['empty@customs.example']);
});

test('error signals: a failure with its SOAP Fault, a warning without; both validate and verify with xmlsec1', async () => {
  const failure = new EbmsError('EBMS:0101', 'SWX_CERT_REVOKED: the signing certificate O=swx test, CN=x is revoked', { refToMessageInError: 'msg-1@customs.example', origin: 'security' });
  const written = errorEnvelope([failure], { messageId: 'err-1@swx', timestamp: at });
  assert.is(written.httpStatus, 400);
  const xml = await signAs4(written, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, createdAt: at });
  assert.is((await xmllint(xml)).code, 0, (await xmllint(xml)).out);
  const verified = await xmlsec1(xml, fixture.rsa);
  assert.is(verified.code, 0, verified.out);
  const back = readAs4Message(Buffer.from(xml));
  const signal = back.message as SignalMessage;
  assert.equal(signal.errors, [{
    errorCode: 'EBMS:0101', severity: 'failure', category: 'Processing', origin: 'security', refToMessageInError: 'msg-1@customs.example',
    shortDescription: 'FailedAuthentication', description: { text: 'FailedAuthentication', lang: 'en' }, detail: 'SWX_CERT_REVOKED: the signing certificate O=swx test, CN=x is revoked',
  }]);
  assert.is(signal.messageInfo.refToMessageId, 'msg-1@customs.example');
  assert.equal(back.fault, { code: 'env:Sender', reason: 'EBMS:0101 FailedAuthentication: SWX_CERT_REVOKED: the signing certificate O=swx test, CN=x is revoked' });

  const warning = errorEnvelope([new EbmsError('EBMS:0006', 'no message waits on this MPC')], { timestamp: at });
  assert.is(warning.httpStatus, 200);
  const signedWarning = await signAs4(warning, { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, createdAt: at });
  assert.is((await xmllint(signedWarning)).code, 0);
  assert.is((await xmlsec1(signedWarning, fixture.ecdsa)).code, 0);
  assert.is(readAs4Message(Buffer.from(signedWarning)).fault, undefined);
  const receiver = errorEnvelope([new EbmsError('EBMS:0202', 'the receiver is down')]);
  assert.is(receiver.httpStatus, 500);
  assert.match(receiver.xml, /<env:Value>env:Receiver<\/env:Value>/);
});

test('a signed PullRequest validates, verifies with xmlsec1 and reads back with its MPC', async () => {
  const xml = await signAs4(pullRequestEnvelope('urn:swx:mpc:boft', { timestamp: at }), { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, createdAt: at });
  assert.is((await xmllint(xml)).code, 0);
  assert.is((await xmlsec1(xml, fixture.ecdsa)).code, 0);
  assert.equal((readAs4Message(Buffer.from(xml)).message as SignalMessage).pullRequest, { mpc: 'urn:swx:mpc:boft' });
});

test('the schema check is real: a receipt or error written wrong is refused by xmllint', async () => {
  const { xml } = await receiptFor(await sendUserMessage(fixture.rsa, { at }), fixture.rsa);
  const noDigest = xml.replace(/<ds:DigestValue>[^<]*<\/ds:DigestValue><\/ds:Reference><\/ebbp:MessagePartNRInformation>/, '</ds:Reference></ebbp:MessagePartNRInformation>');
  assert.is.not(noDigest, xml);
  assert.is((await xmllint(noDigest)).code, 3);
  const error = errorEnvelope([new EbmsError('EBMS:0004', 'x')], { timestamp: at }).xml;
  assert.is((await xmllint(error.replace(/ errorCode="[^"]*"/, ''))).code, 3);
  assert.is((await xmllint(error.replace('<eb:MessageId>', '<eb:Unexpected/><eb:MessageId>'))).code, 3);
});

test('an xmlsec1 check of a receipt changed after signing fails', async () => {
  const { xml } = await receiptFor(await sendUserMessage(fixture.rsa, { at }), fixture.rsa);
  const changed = xml.replace('receipt-1@boft.example', 'receipt-9@boft.example');
  assert.is.not((await xmlsec1(changed, fixture.rsa)).code, 0);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();


