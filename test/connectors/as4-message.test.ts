// Reading AS4 messages: every AS4 file of the phase4 conformance set (../shared/conformance/INDEX.md) read as the
// index describes it — receipts with their non-repudiation references, user messages, error signals with and without
// a SOAP Fault, the tampered receipt and the WrongSigning* messages judged as errors with their EBMS codes — and
// broken messages each refused with the code the ebMS 3.0 specification gives.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { algorithmsOf, checkProfile, contentIdOfHref, EbmsError, ebmsErrorOf, readAs4Message, swxToEbms, userMessageEnvelope, type As4Message, type SignalMessage, type UserMessage } from '../../connectors/as4/index.ts';
import { SwxError } from '../../engine/errors.ts';
import { parseHttpMessage } from '../../engine/mime/index.ts';
import { verifyXml } from '../../engine/trust/index.ts';

const folder = fileURLToPath(new URL('../../../shared/conformance/phase4/', import.meta.url));
const read = (name: string) => readFileSync(join(folder, name));
const pem = (name: string) => readFileSync(join(folder, '_derived', name), 'utf8');

const signal = (message: As4Message) => message.message as SignalMessage;
const user = (message: As4Message) => message.message as UserMessage;

function refusal(xml: string | Buffer, attachments?: string[]): EbmsError {
  try {
    readAs4Message(Buffer.from(xml), attachments ? { attachments } : {});
  } catch (error) {
    assert.instance(error, EbmsError);
    return error as EbmsError;
  }
  throw new Error('the message was accepted');
}

/**
 * The signature check as the inbound side runs it: swx's verifier pinned to the file's signer, a refusal mapped to its
 * EBMS code. Certificates are judged when the message was signed (its eb:Timestamp), as INDEX.md says: several have
 * expired since.
 */
async function judged(xml: Buffer, signerPem: string, at = readAs4Message(xml).message.messageInfo.at): Promise<EbmsError | undefined> {
  const verdict = await verifyXml(xml, { pinnedCertsPem: signerPem, policy: 'archive', at });
  return verdict.valid ? undefined : ebmsErrorOf(new SwxError(verdict.code === 'SWX_OK' ? 'SWX_SIG_INVALID' : verdict.code, verdict.detail));
}

/** Every AS4 message file of the set, and what it is (INDEX.md); a file added to the set without a line here fails. */
const expected: Record<string, string> = {
  'verify/dataport1-mustunderstand.as4in': 'receipt', 'verify/dataport1.as4in': 'receipt',
  '_derived/dataport1-mustunderstand.as4in.envelope.xml': 'receipt', '_derived/dataport1.as4in.envelope.xml': 'receipt',
  'testfiles/TestReceipt12.xml': 'receipt', 'testfiles/TestReceipt11.xml': 'receipt',
  'testfiles/WrongSigningAlgorithm.xml': 'user', 'testfiles/WrongSigningDigestAlgorithm.xml': 'user', 'unused/TestMessage11.xml': 'user',
  'testfiles/ErrorMessage.xml': 'error', 'testfiles/ErrorMessageWithFault.xml': 'error',
};

test('every AS4 message file of the phase4 set reads, as the kind INDEX.md says it is', () => {
  const files = readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((name) => /\.(xml|as4in)$/.test(name)).sort();
  assert.equal(files, Object.keys(expected).sort());
  for (const name of files) {
    const bytes = read(name);
    const message = readAs4Message(name.endsWith('.as4in') ? parseHttpMessage(bytes).entity.body : bytes).message;
    const kind = message.kind === 'user' ? 'user' : message.receipt ? 'receipt' : message.errors.length ? 'error' : 'pull';
    assert.is(kind, expected[name], name);
  }
});

test('the Holodeck receipt (HTTP capture) is a signed NRR receipt whose signature verifies', async () => {
  const http = parseHttpMessage(read('verify/dataport1-mustunderstand.as4in'));
  const message = readAs4Message(http.entity.body);
  assert.is(message.soapVersion, '1.2');
  assert.is(message.messagingId, 'id-4b28412d2948bca-f4a2-48fe-8503-d3693f501057');
  const receipt = signal(message);
  assert.is(receipt.messageInfo.messageId, '18acfd2d-1fb6-44dd-a196-a077132cf999@lppapqa002.dpaorinp.de');
  assert.is(receipt.messageInfo.refToMessageId, '669beff6-bf89-4776-9a27-eddece68083d@phase4');
  assert.is(receipt.messageInfo.at.toISOString(), '2022-03-07T16:36:50.994Z');
  assert.equal(receipt.receipt!.nonRepudiation.map((r) => r.uri), [
    '#phase4-msg-e87d1f6e-705d-49bf-a6de-524d66c9e394', '#id-4599d632-a960-4d4d-b395-84feaec90c1a', 'cid:phase4-att-558f9b48-17d0-43f9-bfb6-e0c9574c26b0@cid',
  ]);
  assert.is(receipt.receipt!.nonRepudiation[2]!.transforms[0], 'http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform');
  assert.is(receipt.receipt!.nonRepudiation[0]!.digestValue, 't/JlJ1h8YnmMKWVApPrbKq/8tnTDBdYinTVQ2ccQM74=');
  assert.is(await judged(http.entity.body, pem('dataport1-mustunderstand.as4in.signer.pem')), undefined);
  // Today its certificate (valid to 2022-10-03) has expired: refused as authentication failing, with the reason.
  const now = await judged(http.entity.body, pem('dataport1-mustunderstand.as4in.signer.pem'), new Date());
  assert.equal([now?.code, now?.swxCode], ['EBMS:0101', 'SWX_CERT_EXPIRED']);
  assert.is(checkProfile(algorithmsOf(message), 'eDelivery-AS4-1.15'), undefined);
});

test('the tampered Holodeck receipt reads, and its signature is refused as EBMS:0101 FailedAuthentication', async () => {
  const body = parseHttpMessage(read('verify/dataport1.as4in')).entity.body;
  assert.is(signal(readAs4Message(body)).receipt!.nonRepudiation.length, 3);
  const error = await judged(body, pem('dataport1.as4in.signer.pem'));
  assert.is(error?.code, 'EBMS:0101');
  assert.is(error?.swxCode, 'SWX_DIGEST_MISMATCH');
  assert.is(error?.category, 'Processing');
});

test('TestReceipt12: an NRR receipt of three references, the attachment one included, signature verified', async () => {
  const xml = read('testfiles/TestReceipt12.xml');
  const receipt = signal(readAs4Message(xml));
  assert.is(receipt.messageInfo.refToMessageId, '035e0a83-6dc5-427b-bcee-483475c65153@phase4');
  assert.equal(receipt.receipt!.nonRepudiation.map((r) => r.uri.slice(0, 10)), ['#phase4-ms', '#id-ed836b', 'cid:phase4']);
  assert.equal(receipt.receipt!.content, ['{http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0}NonRepudiationInformation', '{urn:fdc:com.helger.phase4:ns:info}phase4']);
  assert.is(await judged(xml, pem('TestReceipt12.xml.signer.pem')), undefined);
});

test('TestReceipt11: a SOAP 1.1 receipt holding the original envelope instead of NRI, signature over the Body verified', async () => {
  const xml = read('testfiles/TestReceipt11.xml');
  const message = readAs4Message(xml);
  assert.is(message.soapVersion, '1.1');
  const receipt = signal(message);
  assert.is(receipt.messageInfo.refToMessageId, 'ph-as4@2babaddd-282e-461e-b645-730c5abebcce');
  assert.equal(receipt.receipt!.nonRepudiation, []);
  assert.equal(receipt.receipt!.content, ['{http://schemas.xmlsoap.org/soap/envelope/}Envelope']);
  assert.is(await judged(xml, pem('dummy-pw-test.jks.ph-as4.cert.pem')), undefined);
});

test('TestMessage11: a SOAP 1.1 UserMessage with its payload in the Body, every header field typed', async () => {
  const message = readAs4Message(read('unused/TestMessage11.xml'));
  const m = user(message);
  assert.is(m.messageInfo.messageId, 'UUID-1@requester.example.com');
  assert.equal(m.from, { partyIds: [{ id: 'APP_1000000101' }], role: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/sender' });
  assert.is(m.to.role, 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder');
  assert.equal(m.collaboration, {
    agreementRef: { value: 'http://agreements.holodeckb2b.org/examples/agreement0', pmode: 'pm-esens-generic-resp' },
    service: { value: 'QuoteToCollect', type: 'MyServiceTypes' },
    action: 'NewPurchaseOrder',
    conversationId: '4321',
  });
  assert.equal(m.properties, [{ name: 'ProcessInst', value: 'PurchaseOrder:123456' }, { name: 'ContextID', value: ' 987654321' }]);
  assert.equal(m.parts, [{ location: { kind: 'body' }, properties: [] }]);
  // Its eb:Timestamp (2006) is the specification's example value and it carries no wsu:Timestamp: judged within its
  // certificate's validity (2015-03-06 to 2017-03-05).
  assert.is(await judged(read('unused/TestMessage11.xml'), pem('TestMessage11.xml.signer.pem'), new Date('2016-06-01T00:00:00Z')), undefined);
});

for (const [file, bogus, what] of [
  ['WrongSigningAlgorithm.xml', 'http://www.randomcrypt.com/random', 'the signature algorithm'],
  ['WrongSigningDigestAlgorithm.xml', 'http://www.randomdigest.com/randomdigest', 'the digest algorithm'],
] as const) {
  test(`${file}: the UserMessage reads, and is judged EBMS:0103 PolicyNoncompliance naming the algorithm expected`, async () => {
    const xml = read(`testfiles/${file}`);
    const message = readAs4Message(xml);
    assert.is(user(message).messageInfo.messageId, '0c5307dc-5f80-49f5-94ac-2422a8e0d595@ph-as4');
    assert.is(user(message).collaboration.agreementRef?.pmode, 'mock-pmode-soap12');
    const policy = checkProfile(algorithmsOf(message), 'eDelivery-AS4-1.15', user(message).messageInfo.messageId)!;
    assert.is(policy.code, 'EBMS:0103');
    assert.ok(policy.detail.includes(what) && policy.detail.includes(bogus), policy.detail);
    assert.ok(policy.detail.includes(what === 'the digest algorithm' ? 'http://www.w3.org/2001/04/xmlenc#sha256' : 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'), policy.detail);
    assert.is(policy.refToMessageInError, '0c5307dc-5f80-49f5-94ac-2422a8e0d595@ph-as4');
    const signature = await judged(xml, pem(`${file}.signer.pem`));
    assert.is(signature?.code, 'EBMS:0103');
    assert.is(signature?.swxCode, 'SWX_SIG_ALG_UNSUPPORTED');
  });
}

test('ErrorMessage: an unsigned Error signal, EBMS:0001 with its refToMessageInError and ErrorDetail', () => {
  const message = readAs4Message(read('testfiles/ErrorMessage.xml'));
  const m = signal(message);
  assert.is(m.errors.length, 1);
  const error = m.errors[0]!;
  assert.is(error.errorCode, 'EBMS:0001');
  assert.is(error.severity, 'failure');
  assert.is(error.category, 'Content');
  assert.is(error.shortDescription, 'ValueNotRecognized');
  assert.is(error.refToMessageInError, 'ph-as4@42ec020f-9553-4b6d-ba8e-265cf1f6fd34');
  assert.ok(error.detail?.startsWith('Although the message document is well formed'));
  assert.is(message.fault, undefined);
  // A zone-less Timestamp is UTC.
  assert.is(m.messageInfo.at.toISOString(), '2017-06-13T11:39:52.967Z');
});

test('ErrorMessageWithFault: EBMS:0103 with Description, severity read case-blind, and the SOAP Fault beside it', () => {
  const message = readAs4Message(read('testfiles/ErrorMessageWithFault.xml'));
  const m = signal(message);
  assert.is(m.messageInfo.refToMessageId, '1234');
  assert.is(m.messageInfo.at.toISOString(), '2025-09-25T07:54:32.971Z');
  const error = m.errors[0]!;
  assert.equal([error.errorCode, error.severity, error.origin, error.shortDescription], ['EBMS:0103', 'failure', 'ebMS', 'PolicyNoncompliance']);
  assert.is(error.refToMessageInError, undefined);
  assert.equal(error.description, { text: 'Certificate revoked CN=POP000000,OU=PEPPOL TEST AP,O=OpenPEPPOL AISBL,C=BE', lang: '' });
  assert.equal(message.fault, { code: 'env:Receiver', reason: 'Certificate revoked CN=POP000000,OU=PEPPOL TEST AP,O=OpenPEPPOL AISBL,C=BE' });
  assert.is(message.messagingId, 'eb-28a699c5-c7ae-4731-b0b8-ebf3b4bc8477');
});

// ---- broken messages, each with its EBMS code ----

const party = (id: string) => ({ partyIds: [{ id, type: 'urn:oasis:names:tc:ebcore:partyid-type:unregistered' }], role: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole' });
const good = userMessageEnvelope({
  messageId: 'm1@test',
  from: party('CUSTOMS'),
  to: party('BOFT'),
  collaboration: { service: { value: 'customs.declaration', type: 'swx' }, action: 'deliver', conversationId: 'c1' },
  payloads: [{ contentId: 'part 1@test', mimeType: 'application/xml' }],
}).xml;

test('a written UserMessage reads back, its cid: href percent-encoded and matched to the part', () => {
  assert.ok(good.includes('href="cid:part%201@test"'), good);
  const m = user(readAs4Message(Buffer.from(good), { attachments: ['part 1@test'] }));
  assert.equal(m.parts[0]!.location, { kind: 'attachment', contentId: 'part 1@test' });
  assert.is(m.parts[0]!.mimeType, 'application/xml');
  assert.is(m.to.partyIds[0]!.id, 'BOFT');
});

test('PartInfo hrefs are decoded leniently: cid: in any case, percent-encoded or not, angle brackets or not', () => {
  for (const href of ['cid:a@b', 'CID:a@b', 'Cid:a%40b', 'cid:%3Ca@b%3E', '<cid:a@b>', 'cid:<a@b>', ' cid:a@b ']) assert.is(contentIdOfHref(href), 'a@b', href);
  assert.is(contentIdOfHref('cid:50%'), '50%');
  assert.is(contentIdOfHref('http://example.org/a'), undefined);
  const xml = good.replace('href="cid:part%201@test"', 'href="CID:%3Cpart%201%40test%3E"');
  assert.is(user(readAs4Message(Buffer.from(xml), { attachments: ['part 1@test'] })).parts.length, 1);
});

test('refusals: envelope and Messaging', () => {
  assert.is(refusal('<a/>').code, 'EBMS:0009');
  assert.is(refusal('<a/>').faultCode, 'VersionMismatch');
  assert.is(refusal('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header/><env:Body/></env:Envelope>').code, 'EBMS:0009');
  const twice = good.replace(/(<eb:Messaging[\s\S]*<\/eb:Messaging>)/, '$1$1');
  const error = refusal(twice, ['part 1@test']);
  assert.is(error.code, 'EBMS:0009');
  assert.match(error.detail, /2 eb:Messaging/);
  assert.is(refusal('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body/>').code, 'EBMS:0009');
  const dtd = refusal(`<!DOCTYPE x [<!ENTITY a "b">]>${good.replace(/^<\?xml[^>]*>/, '')}`);
  assert.equal([dtd.code, dtd.swxCode], ['EBMS:0009', 'SWX_XML_FORBIDDEN']);
});

test('refusals: a header for this node that must be understood and is not; one for another role, or that need not be, passes', () => {
  const must = good.replace('<env:Header>', '<env:Header><x:Routing xmlns:x="urn:x" env:mustUnderstand="true"/>');
  const error = refusal(must, ['part 1@test']);
  assert.equal([error.code, error.faultCode], ['EBMS:0008', 'MustUnderstand']);
  assert.match(error.detail, /\{urn:x\}Routing/);
  const elsewhere = good.replace('<env:Header>', '<env:Header><x:Routing xmlns:x="urn:x" env:mustUnderstand="true" env:role="urn:x:gateway"/>');
  assert.is(readAs4Message(Buffer.from(elsewhere), { attachments: ['part 1@test'] }).message.kind, 'user', 'a block for another role is not ours to understand');
  const ours = good.replace('<env:Header>', '<env:Header><x:Routing xmlns:x="urn:x" env:mustUnderstand=" 1 " env:role="http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"/>');
  assert.is(refusal(ours, ['part 1@test']).code, 'EBMS:0008');
  const optional = good.replace('<env:Header>', '<env:Header><x:Routing xmlns:x="urn:x" env:mustUnderstand="false"/>');
  assert.is(readAs4Message(Buffer.from(optional), { attachments: ['part 1@test'] }).message.kind, 'user');
});

test('refusals: missing required elements, named, with the MessageId once it is known', () => {
  const noAction = refusal(good.replace('<eb:Action>deliver</eb:Action>', ''), ['part 1@test']);
  assert.equal([noAction.code, noAction.refToMessageInError], ['EBMS:0009', 'm1@test']);
  assert.match(noAction.detail, /CollaborationInfo lacks the required eb:Action/);
  const noId = refusal(good.replace('<eb:MessageId>m1@test</eb:MessageId>', ''), ['part 1@test']);
  assert.equal([noId.code, noId.refToMessageInError], ['EBMS:0009', undefined]);
  assert.is(refusal(good.replace(/<eb:PartyId[^>]*>BOFT<\/eb:PartyId>/, ''), ['part 1@test']).code, 'EBMS:0009');
  assert.is(refusal(good.replace(/<eb:Timestamp>[^<]*</, '<eb:Timestamp>yesterday<'), ['part 1@test']).code, 'EBMS:0009');
});

test('refusals: payloads absent, external, named twice, or a part named by none', () => {
  const absent = refusal(good, []);
  assert.equal([absent.code, absent.refToMessageInError], ['EBMS:0011', 'm1@test']);
  assert.match(absent.detail, /no MIME part with Content-ID <part 1@test>/);
  assert.is(refusal(good.replace('cid:part%201@test', 'https://example.org/p'), []).code, 'EBMS:0011');
  assert.is(refusal(good.replace(/href="[^"]*"/, 'href="#nowhere"'), []).code, 'EBMS:0011');
  const twice = good.replace(/(<eb:PartInfo[\s\S]*<\/eb:PartInfo>)/, '$1$1');
  assert.is(refusal(twice, ['part 1@test']).code, 'EBMS:0003');
  assert.is(refusal(good, ['part 1@test', 'stray@test']).code, 'EBMS:0007');
});

test('refusals: an Id carried twice, a bundle of two messages, a Receipt that names no message', () => {
  const dup = good.replace('<eb:UserMessage>', '<eb:UserMessage xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="x">')
    .replace('<env:Body ', '<env:Body ><p wsu:Id="x" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"/></env:Body><env:Foo ');
  const duplicated = refusal(dup.replace('</env:Foo>', '').replace(/<env:Foo [^>]*>/, '').replace('</env:Body></env:Body>', '</env:Body>'), ['part 1@test']);
  assert.is(duplicated.code, 'EBMS:0009');
  assert.match(duplicated.detail, /two elements carry Id "x"/);
  const signalXml = '<eb:SignalMessage><eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>s@t</eb:MessageId></eb:MessageInfo><eb:Receipt><x xmlns="urn:x"/></eb:Receipt></eb:SignalMessage>';
  const bundle = good.replace('<eb:UserMessage>', `${signalXml}<eb:UserMessage>`);
  assert.is(refusal(bundle, ['part 1@test']).code, 'EBMS:0008');
  const receipt = good.replace(/<eb:UserMessage>[\s\S]*<\/eb:UserMessage>/, signalXml);
  const unanswered = refusal(receipt);
  assert.equal([unanswered.code, unanswered.refToMessageInError], ['EBMS:0009', 's@t']);
  assert.is(refusal(receipt.replace('<eb:Receipt><x xmlns="urn:x"/></eb:Receipt>', '')).code, 'EBMS:0009');
});

test('the hub\'s refusals map onto EBMS codes in one table', () => {
  const cases: [ConstructorParameters<typeof SwxError>[0], string][] = [
    ['SWX_SIG_INVALID', 'EBMS:0101'], ['SWX_CERT_EXPIRED', 'EBMS:0101'], ['SWX_CERT_REVOKED', 'EBMS:0101'], ['SWX_CERT_UNTRUSTED', 'EBMS:0101'],
    ['SWX_SIG_ALG_UNSUPPORTED', 'EBMS:0103'], ['SWX_SIG_WEAK_ALG', 'EBMS:0103'], ['SWX_ACL_DENIED', 'EBMS:0010'], ['SWX_TOO_LARGE', 'EBMS:0004'],
    ['SWX_UNKNOWN_RECEIVER', 'EBMS:0001'], ['SWX_XML_MALFORMED', 'EBMS:0009'], ['SWX_RECEIPT_INVALID', 'EBMS:0302'], ['SWX_INTERNAL', 'EBMS:0004'],
  ];
  for (const [swx, ebms] of cases) {
    const error = ebmsErrorOf(new SwxError(swx, 'why'), 'm@x');
    assert.equal([error.code, error.refToMessageInError, error.swxCode], [ebms, 'm@x', swx], swx);
    assert.ok(error.detail.startsWith(`${swx}: why`));
  }
  assert.is(swxToEbms.SWX_CERT_REVOKED, 'EBMS:0101');
  const revoked = ebmsErrorOf(new SwxError('SWX_CERT_REVOKED', 'x'));
  assert.equal([revoked.shortDescription, revoked.severity, revoked.category, revoked.origin, revoked.faultCode], ['FailedAuthentication', 'failure', 'Processing', 'security', 'Sender']);
  assert.is(ebmsErrorOf(new Error('boom')).code, 'EBMS:0004');
});

test.run();
