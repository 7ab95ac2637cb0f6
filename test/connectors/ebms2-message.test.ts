// The ebMS 2.0 reader over every ebMS 2.0 file of the conformance folder (a signed payload message and a signed
// Acknowledgment from a national health network, a MessageError, a Hermes capture), each read from the form it was
// captured in and checked against the fields read from the file by hand; then the spec's refusals, each built by
// changing one thing in a real message, with the errorCode, severity and location the spec gives them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { messageParts, parseEntity, parseHttpMessage, type MessageParts } from '../../engine/mime/index.ts';
import { ebmsError, ebmsErrorFor, EbmsRefusal, mshService, swxCodeOf, readEbmsMessage, readEbmsParts, type EbmsError, type EbmsMessage } from '../../connectors/ebms2/index.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const bytes = (path: string) => readFileSync(conformance + path);
const mail = (path: string) => messageParts(parseEntity(bytes(path)));
const read = (parts: MessageParts, at?: Date | false) => readEbmsParts(parts, at === undefined ? {} : { at });

const oppgjor = () => mail('navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg');
const oppgjorXml = () => oppgjor().root.body.toString('utf8');
const ackrequestedAt = new Date('2023-08-29T10:56:51Z');

function refusal(xml: string, options: Parameters<typeof readEbmsMessage>[1] = {}): EbmsRefusal {
  try {
    readEbmsMessage(xml, options);
  } catch (error) {
    assert.instance(error, EbmsRefusal);
    return error as EbmsRefusal;
  }
  throw new Error('the message was accepted');
}

function hasError(refused: EbmsRefusal, errorCode: EbmsError['errorCode'], location?: RegExp): EbmsError {
  const found = refused.errors.find((error) => error.errorCode === errorCode && (!location || location.test(error.location ?? '')));
  assert.ok(found, `expected ${errorCode}${location ? ` at ${location}` : ''}, got ${refused.message}`);
  assert.is(found!.severity, 'Error');
  return found!;
}

test('the signed payload message (mail, multipart/related): header, AckRequested, Manifest, signature references', () => {
  const parts = oppgjor();
  const message = read(parts, ackrequestedAt);
  assert.equal(message.header, {
    from: { partyIds: [{ id: '8141253', type: 'HER' }], role: 'Behandler' },
    to: { partyIds: [{ id: '79768', type: 'HER' }], role: 'KontrollUtbetaler' },
    cpaId: 'nav:qass:35065',
    conversationId: 'be192d3a-34b5-448a-a374-5eab0524c74d',
    service: { value: 'BehandlerKrav', type: 'string' },
    action: 'OppgjorsMelding',
    messageId: '7104acf8-21e9-4ee7-b894-d413a00a8881',
    timestamp: '2023-08-29T10:56:50.3069479Z',
    duplicateElimination: false,
    descriptions: [],
  });
  assert.is(message.signal, undefined);
  assert.equal(message.ackRequested, [{ actor: 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH', signed: true }]);
  assert.is(message.syncReply, false);
  assert.equal(message.manifest.map((reference) => reference.contentId), ['3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no']);
  assert.equal(message.signatureReferences.map((reference) => [reference.uri, reference.digestValue]), [
    ['', 'Mw8YxTebu2r+7Q2xcmzX1CxetA2bAdQCUqHetehHMaI='],
    ['cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no', 'ihNHQl8a44GwTy72Bq7m0jyn8/Ap7nbSOtNix4sycTs='],
  ]);
  assert.equal(message.signatureReferences[0]!.transforms.map((transform) => transform.algorithm), [
    'http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/TR/1999/REC-xpath-19991116', 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  ]);
  assert.match(message.signatureReferences[0]!.transforms[1]!.xpath!.expression, /^not\(ancestor-or-self::node\(\)\[@SOAP-ENV:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"\]/);
});

test('the signed Acknowledgment (mail, one text/xml part): the MSH signal, what it acknowledges and the NRR reference', () => {
  const message = read(mail('navikt-ebxml-processor/INBOX/acknowledgment.eml'));
  assert.is(message.signal, 'Acknowledgment');
  assert.equal(message.header.service, { value: mshService });
  assert.is(message.header.cpaId, 'nav:qass:30500');
  assert.is(message.header.messageId, 'faa9f042-cf34-40fa-bc53-610c0f6bbf26');
  assert.is(message.header.refToMessageId, '20231121-154526-99398@qa.ebxml.nav.no');
  assert.equal(message.header.from, { partyIds: [{ id: '92239', type: 'HER' }], role: 'Utleverer' });
  const ack = message.acknowledgment!;
  assert.is(ack.timestamp, '2023-11-21T14:45:26Z');
  assert.is(ack.refToMessageId, '20231121-154526-99398@qa.ebxml.nav.no');
  assert.is(ack.actor, 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH');
  assert.equal(ack.references.map((reference) => [reference.uri, reference.digestValue]), [['', 'mvuvZiqld9ULe9dvYyKMi9r7wVMr3gn+OIcy+iw0COA=']]);
  assert.equal(message.signatureReferences.map((reference) => reference.digestValue), ['Jf4f0DuId8zfWEaHBZKXKTMXp/SkL9ITZ8vFbzGKwJw=']);
});

test('the MessageError (bare XML): ErrorList with the error as sent, SyncReply, the Description of the header', () => {
  const message = readEbmsMessage(bytes('navikt-ebxml-processor/signaltest/messageerror.xml'));
  assert.is(message.signal, 'MessageError');
  assert.is(message.header.refToMessageId, 'autotest_tc_2_2_15');
  assert.is(message.syncReply, true);
  assert.equal(message.errorList, {
    highestSeverity: 'Error',
    errors: [{ errorCode: 'ValueNotRecognized', severity: 'Error', description: 'Message [autotest_tc_2_2_15] has an invalid CpaId [unknown]', location: 'xpointer(//MessageHeader/CpaId)' }],
  });
  assert.is(message.header.descriptions[0]!.lang, 'NO');
});

test('the Hermes capture (HTTP POST, multipart/related): read at its time; today its TimeToLive has passed', () => {
  const parts = messageParts(parseHttpMessage(bytes('hermes/test1.msg')).entity);
  const sentAt = new Date('2008-07-21T15:26:52.075+08:00');
  const message: EbmsMessage = read(parts, sentAt);
  assert.equal(message.header.from, { partyIds: [{ id: 'fromPartyId', type: 'fromPartyType' }] });
  assert.equal(message.header.service, { value: 'http://localhost:8080/corvus/httpd/ebms/inbound' });
  assert.is(message.header.messageId, '20080721-152652-07404@192.168.0.51');
  assert.is(message.header.timeToLive, '2008-07-21T15:26:52.075+08:00');
  assert.equal(message.manifest, [{ id: 'Payload-0', href: 'cid:Payload-0', contentId: 'Payload-0', descriptions: [] }]);
  const expired = (() => { try { read(parts); } catch (error) { return error as EbmsRefusal; } throw new Error('accepted'); })();
  const error = hasError(expired, 'TimeToLiveExpired', /eb:MessageData\/eb:TimeToLive\)$/);
  assert.is(error.location, 'xpointer(/SOAP-ENV:Envelope/SOAP-ENV:Header/eb:MessageHeader/eb:MessageData/eb:TimeToLive)');
  assert.is(expired.refused.messageId, '20080721-152652-07404@192.168.0.51', 'what the MessageError refers to');
  assert.ok(read(parts, false), 'an archived message is read without judging its TimeToLive');
});

const attachments = () => oppgjor().attachments;
const options = () => ({ attachments: attachments(), at: ackrequestedAt });

test('a second MessageHeader is OtherXml at the second one', () => {
  const xml = oppgjorXml();
  const header = /<eb:MessageHeader[\s\S]*?<\/eb:MessageHeader>/.exec(xml)![0];
  const refused = refusal(xml.replace(header, header + header), options());
  hasError(refused, 'OtherXml', /eb:MessageHeader\[2\]\)$/);
});

test('a missing MessageId is OtherXml at MessageData, and the refusal still knows the parties to answer', () => {
  const refused = refusal(oppgjorXml().replace(/<eb:MessageId>[^<]*<\/eb:MessageId>/, ''), options());
  hasError(refused, 'OtherXml', /eb:MessageHeader\/eb:MessageData\)$/);
  assert.is(refused.refused.cpaId, 'nav:qass:35065');
  assert.is(refused.refused.messageId, undefined);
});

test('an unknown version is ValueNotRecognized; none at all is OtherXml', () => {
  const xml = oppgjorXml();
  hasError(refusal(xml.replace('eb:MessageHeader SOAP:mustUnderstand="1" eb:version="2.0"', 'eb:MessageHeader SOAP:mustUnderstand="1" eb:version="3.0"'), options()), 'ValueNotRecognized', /eb:MessageHeader\)$/);
  hasError(refusal(xml.replace('eb:signed="true" eb:version="2.0"', 'eb:signed="true" eb:version="1.0"'), options()), 'ValueNotRecognized', /eb:AckRequested\)$/);
  hasError(refusal(xml.replace('eb:MessageHeader SOAP:mustUnderstand="1" eb:version="2.0"', 'eb:MessageHeader SOAP:mustUnderstand="1"'), options()), 'OtherXml', /eb:MessageHeader\)$/);
});

test('an expired TimeToLive is TimeToLiveExpired; one still ahead is accepted', () => {
  const withTtl = (ttl: string) => oppgjorXml().replace('</eb:Timestamp>', `</eb:Timestamp><eb:TimeToLive>${ttl}</eb:TimeToLive>`);
  hasError(refusal(withTtl('2023-08-29T10:56:50Z'), options()), 'TimeToLiveExpired', /eb:TimeToLive\)$/);
  assert.is(readEbmsMessage(withTtl('2023-08-29T11:56:50Z'), options()).header.timeToLive, '2023-08-29T11:56:50Z');
  hasError(refusal(withTtl('tomorrow'), options()), 'ValueNotRecognized', /eb:TimeToLive\)$/);
});

test('a mustUnderstand header block not understood is NotSupported; one for another actor, or optional, is ignored', () => {
  const xml = oppgjorXml();
  const block = (attributes: string) => xml.replace('<SOAP:Header>', `<SOAP:Header><x:Routing xmlns:x="urn:example:routing"${attributes}/>`);
  hasError(refusal(block(' SOAP:mustUnderstand="1"'), options()), 'NotSupported', /x:Routing\)$/);
  hasError(refusal(xml.replace('<SOAP:Header>', '<SOAP:Header><eb:MessageOrder SOAP:mustUnderstand="1" eb:version="2.0"><eb:SequenceNumber>0</eb:SequenceNumber></eb:MessageOrder>'), options()), 'NotSupported', /eb:MessageOrder\)$/);
  assert.ok(readEbmsMessage(block(' SOAP:mustUnderstand="1" SOAP:actor="urn:example:elsewhere"'), options()));
  assert.ok(readEbmsMessage(block(' SOAP:mustUnderstand="0"'), options()));
});

test('a Manifest reference to a part the message does not have, or to an outside URI, is MimeProblem', () => {
  const missing = refusal(oppgjorXml(), { attachments: [], at: ackrequestedAt });
  const error = hasError(missing, 'MimeProblem');
  assert.is(error.location, 'cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no', 'a MIME problem is located by the cid: URL');
  hasError(refusal(oppgjorXml().replace('xlink:href="cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no"', 'xlink:href="https://example.org/payload"'), options()), 'MimeProblem', /eb:Manifest\/eb:Reference\)$/);
});

test('other faults the spec names: MessageHeader without mustUnderstand, untyped PartyId or Service that is no URI, signals without their element', () => {
  const xml = oppgjorXml();
  hasError(refusal(xml.replace('eb:MessageHeader SOAP:mustUnderstand="1"', 'eb:MessageHeader'), options()), 'Inconsistent', /eb:MessageHeader\)$/);
  hasError(refusal(xml.replace('<eb:PartyId eb:type="HER">8141253', '<eb:PartyId>8141253'), options()), 'Inconsistent', /eb:From\/eb:PartyId\)$/);
  hasError(refusal(xml.replace('<eb:Service eb:type="string">BehandlerKrav', '<eb:Service>BehandlerKrav'), options()), 'Inconsistent', /eb:Service\)$/);
  const ping = xml.replace('<eb:Service eb:type="string">BehandlerKrav</eb:Service><eb:Action>OppgjorsMelding', `<eb:Service>${mshService}</eb:Service><eb:Action>Ping`);
  assert.is(readEbmsMessage(ping, options()).signal, 'Ping');
  hasError(refusal(ping.replace('<eb:Action>Ping', '<eb:Action>Acknowledgment'), options()), 'Inconsistent', /eb:MessageHeader\)$/);
  hasError(refusal(ping.replace('<eb:Action>Ping', '<eb:Action>Jump'), options()), 'ValueNotRecognized', /eb:Service\)$/);
  hasError(refusal('<a/>'), 'OtherXml');
  hasError(refusal('<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>'), 'OtherXml');
});

test('a package whose SOAP part is not text/xml is MimeProblem at that part', () => {
  const parts = oppgjor();
  const root = { ...parts.root, contentType: { type: 'application', subtype: 'soap+xml', parameters: {} } };
  try {
    readEbmsParts({ ...parts, root }, { at: ackrequestedAt });
    assert.unreachable('accepted');
  } catch (error) {
    const refused = error as EbmsRefusal;
    hasError(refused, 'MimeProblem');
    assert.is(refused.errors[0]!.location, 'cid:ZTTPT8UKUKU4.U2O3MHW7UL03@speare.no');
  }
});

test('a hostile message of many faults is refused with a bounded list of errors', () => {
  const xml = oppgjorXml();
  const manyIds = xml.replace('<eb:PartyId eb:type="HER">8141253</eb:PartyId>', '<eb:PartyId>x</eb:PartyId>'.repeat(100_000));
  const refused = refusal(manyIds, options());
  assert.is(refused.errors.length, 50, 'a hundred thousand faults, fifty of them reported');
  const manyRefs = xml.replace(/<eb:Reference [^>]*?\/?>(<\/eb:Reference>)?/, '<eb:Reference xlink:href="cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no"/>'.repeat(100_000));
  assert.is(readEbmsMessage(manyRefs, options()).manifest.length, 100_000);
});

test('ebMS errors and the hub\'s codes map both ways, so a MessageError says what the evidence says', () => {
  assert.is(swxCodeOf([ebmsError('NotSupported', 'x', undefined, 'Warning'), ebmsError('TimeToLiveExpired', 'y')]), 'SWX_TTL_EXPIRED');
  assert.is(swxCodeOf([ebmsError('SecurityFailure', 'x')]), 'SWX_SIG_INVALID');
  assert.is(swxCodeOf([ebmsError('OtherXml', 'x')]), 'SWX_BAD_REQUEST');
  assert.is(ebmsErrorFor('SWX_CERT_EXPIRED', 'expired 2025-09-22').errorCode, 'SecurityFailure');
  assert.is(ebmsErrorFor('SWX_DIGEST_MISMATCH', 'cid:a').errorCode, 'SecurityFailure');
  assert.is(ebmsErrorFor('SWX_ACL_DENIED', 'not allowed').errorCode, 'DeliveryFailure');
  assert.is(ebmsErrorFor('SWX_INTERNAL', 'oops').errorCode, 'Unknown');
  assert.match(ebmsErrorFor('SWX_CERT_EXPIRED', 'expired').description, /^SWX_CERT_EXPIRED: expired/);
});

test.run();
