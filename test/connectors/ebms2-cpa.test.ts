// The CPA reader over real agreements (../shared/conformance/cpa: the ebXML interoperability CPAs of CECID Hermes and
// a national health network's ebMS 2.0 test CPAs), each checked against facts read from the file by hand, and over
// hostile or broken documents, each refused with SWX_BAD_REQUEST and a detail that names the fault.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCpa, type Cpa, type CpaParty } from '../../connectors/ebms2/index.ts';
import { SwxError } from '../../engine/errors.ts';

const folder = fileURLToPath(new URL('../../../shared/conformance/cpa/', import.meta.url));
const read = (name: string) => readFileSync(join(folder, name));
const cpa = (name: string) => parseCpa(read(name));

const header = ({ cpaid, version, status, start, end }: Cpa) => ({ cpaid, version, status, start, end });
const party = (agreement: Cpa, name: string): CpaParty => agreement.parties.find((p) => p.partyName === name)!;

function binding(p: CpaParty, service: string, direction: 'canSend' | 'canReceive', action: string) {
  return p.roles.flatMap((role) => role.services).filter((s) => s.service === service).flatMap((s) => s[direction]).find((b) => b.action === action);
}

function refusal(input: string | Buffer): SwxError {
  try {
    parseCpa(input);
  } catch (error) {
    assert.instance(error, SwxError);
    assert.is((error as SwxError).code, 'SWX_BAD_REQUEST');
    return error as SwxError;
  }
  throw new Error('the document was accepted');
}

test('every agreement in the conformance folder is read', () => {
  const names = readdirSync(folder).filter((name) => name.endsWith('.xml'));
  assert.ok(names.length >= 5, `found ${names.join(', ')}`);
  for (const name of names) assert.is(cpa(name).parties.length, 2, name);
});

test('ebIOT CPAT1 (one way, best effort): ids, the Order action on each side\'s channel, endpoints, no reliable messaging', () => {
  const agreement = cpa('ebIOT-CPAT1.CECID.I3T.xml');
  assert.equal(header(agreement), { cpaid: 'ebIOT-CPAT1.CECID.I3T', version: '2_0', status: 'agreed', start: '2002-01-01T00:00:00Z', end: '2010-01-01T00:00:00Z' });
  const buyer = party(agreement, 'CECID');
  const seller = party(agreement, 'I3T');
  assert.equal(buyer.partyIds, [{ id: 'CECID', type: 'ebIOT' }]);
  assert.equal(seller.partyIds, [{ id: 'I3T', type: 'ebIOT' }]);
  assert.is(buyer.roles[0]!.role, 'Buyer');
  assert.is(buyer.roles[0]!.services[0]!.type, 'anyURI');
  assert.equal(binding(buyer, 'urn:ebIOT-TestService:order', 'canSend', 'Order'), {
    id: 'BuyerActionBinding', action: 'Order', packageId: 'Party-Buyer-pack001', channelIds: ['Party-Buyer-chan001'],
    nonRepudiationRequired: false, nonRepudiationReceiptRequired: undefined, otherPartyActionBinding: 'SellerActionBinding',
  });
  assert.equal(binding(seller, 'urn:ebIOT-TestService:order', 'canReceive', 'Order')!.channelIds, ['Party-Seller-chan001']);
  const channel = buyer.deliveryChannels['Party-Buyer-chan001']!;
  assert.equal(channel, {
    transportId: 'Party-Buyer-port001', docExchangeId: 'Party-Buyer-doc001',
    messaging: { syncReplyMode: 'none', ackRequested: 'never', ackSignatureRequested: 'never', duplicateElimination: 'never', actor: 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH' },
  });
  assert.equal(buyer.transports['Party-Buyer-port001']!.receiver!.endpoints, [{ uri: 'http://147.8.178.159:8080/msh/', type: 'allPurpose' }]);
  assert.equal(buyer.transports['Party-Buyer-port001']!.receiver!.protocol, { name: 'HTTP', version: '1.1' });
  assert.equal(seller.transports['Party-Seller-port001']!.receiver!.endpoints, [{ uri: 'http://147.8.177.35:8080/msh', type: 'allPurpose' }]);
  const exchange = buyer.docExchanges['Party-Buyer-doc001']!;
  assert.is(exchange.sender!.version, '2.0');
  assert.is(exchange.sender!.reliableMessaging, undefined, 'best effort: no retries');
  assert.is(exchange.sender!.nonRepudiation, undefined);
  assert.equal(buyer.certificates['Cert-Buyer'], { keyName: 'Cert-Buyer-Key' }, 'a placeholder certificate: a key name, no X.509');
});

test('ebIOT CPAT1 the other way round and CPAT3-2 (HTTPS): parties swapped, TLS endpoints', () => {
  const swapped = cpa('ebIOT-CPAT1.I3T.CECID.xml');
  assert.is(swapped.cpaid, 'ebIOT-CPAT1.I3T.CECID');
  assert.equal(swapped.parties.map((p) => p.partyIds[0]!.id), ['I3T', 'CECID']);
  assert.equal(party(swapped, 'I3T').transports['Party-Buyer-port001']!.receiver!.endpoints[0]!.uri, 'http://147.8.177.35:8080/msh');
  const https = cpa('ebIOT-CPAT3-2.CECID.I3T.xml');
  assert.is(https.cpaid, 'ebIOT-CPAT3-2.CECID.I3T');
  const receiver = party(https, 'CECID').transports['Party-Buyer-port001']!.receiver!;
  assert.equal(receiver.protocol, { name: 'HTTP', version: undefined });
  assert.equal(receiver.endpoints, [{ uri: 'https://147.8.178.159:8443/msh/', type: 'allPurpose' }]);
  assert.is(party(https, 'I3T').transports['Party-Seller-port001']!.receiver!.endpoints[0]!.uri, 'https://147.8.177.35:8443/msh');
});

test('NAV, several channels and endpoints: every channel, transport and endpoint, reliability, signing and TLS certificates', () => {
  const agreement = cpa('nav-multiple-channels-and-endpoints.xml');
  assert.equal(header(agreement), {
    cpaid: 'multiple_channels_and_multiple_endpoints', version: '2_0b', status: 'proposed', start: '2025-09-03T12:09:25.178Z', end: '2026-08-28T21:59:00Z',
  });
  const partner = party(agreement, 'TEST A1 Haugerud');
  const nav = party(agreement, 'NAV');
  assert.equal(partner.partyIds, [{ id: '8090595', type: 'HER' }, { id: '984886136', type: 'orgnummer' }, { id: '984886136', type: 'ENH' }]);
  assert.equal(nav.partyIds, [{ id: '79768', type: 'HER' }, { id: '889640782', type: 'ENH' }, { id: '889640782', type: 'orgnummer' }]);
  assert.equal(nav.roles.map((role) => role.role), ['KontrollUtbetaler', 'Frikortregister']);

  assert.equal(binding(partner, 'OppgjorsKontroll', 'canSend', 'Oppgjorskrav')!.channelIds, ['Partner_channelSMTP0_partner']);
  assert.is(binding(partner, 'OppgjorsKontroll', 'canSend', 'Oppgjorskrav')!.otherPartyActionBinding, 'NAV_Oppgjorskrav6');
  assert.equal(binding(nav, 'OppgjorsKontroll', 'canReceive', 'Oppgjorskrav')!.channelIds, ['NAV_SyncHttpChannelB1', 'NAV_asyncSMTPChannelA2', 'NAV_asyncSMTPChannelA3']);
  assert.equal(binding(partner, 'HarBorgerEgenandelFritak', 'canSend', 'EgenandelForesporsel')!.channelIds, ['Partner_channelHTTP1_partner']);

  assert.equal(Object.keys(partner.deliveryChannels), ['Partner_channelSMTP0_partner', 'Partner_channelHTTP1_partner']);
  assert.equal(Object.keys(nav.deliveryChannels), ['NAV_asyncSMTPChannelA2', 'NAV_asyncSMTPChannelA3', 'NAV_SyncHttpChannelB1']);
  assert.equal(nav.deliveryChannels['NAV_SyncHttpChannelB1']!.messaging,
    { syncReplyMode: 'signalsAndResponse', ackRequested: 'never', ackSignatureRequested: 'never', duplicateElimination: 'never', actor: undefined });
  assert.equal(nav.deliveryChannels['NAV_asyncSMTPChannelA3']!.transportId, 'NAV_transportSMTP_eresept_A3');

  const endpoints = Object.fromEntries(Object.entries(nav.transports).map(([id, transport]) => [id, transport.receiver!.endpoints]));
  assert.equal(endpoints, {
    NAV_transportSMTP_eresept: [
      { uri: 'mailto://request@test-es.nav.no', type: 'request' }, { uri: 'mailto://response@test-es.nav.no', type: 'response' },
      { uri: 'mailto://error@test-es.nav.no', type: 'error' }, { uri: 'mailto://login@test-es.nav.no', type: 'login' },
    ],
    NAV_transportSMTP_eresept_A3: [{ uri: 'mailto://mottak-qass@test-es.nav.no', type: 'allPurpose' }, { uri: 'mailto://error@test-es.nav.no', type: 'error' }],
    NAV_transportHttp: [{ uri: 'https://nhn-gw-q.nav.no:9443/ebxml/msh', type: 'allPurpose' }],
  });
  assert.equal(partner.transports['Partner_transportSMTP0_partner']!.receiver!.endpoints.map((e) => e.uri), ['mailto://allPurpose@edi.nhn.no', 'mailto://error@edi.nhn.no']);
  const http = nav.transports['NAV_transportHttp']!;
  assert.equal(http.sender!.tls, { protocol: { name: 'SSL', version: '3.0' }, clientCertificateRef: undefined, serverCertificateRef: undefined });
  assert.equal(http.receiver!.tls, { protocol: { name: 'SSL', version: '3.0' }, clientCertificateRef: undefined, serverCertificateRef: 'NAV_default_crypt_cert' });

  const smtp = nav.docExchanges['NAV_docexchange_smtp_eresept']!.sender!;
  assert.equal(smtp.reliableMessaging, { retries: 4, retryInterval: { iso: 'PT240M', ms: 4 * 3_600_000 }, messageOrderSemantics: 'NotGuaranteed' });
  assert.equal(smtp.persistDuration, { iso: 'P2D', ms: 2 * 86_400_000 });
  assert.is(smtp.nonRepudiation!.signingCertificateRef, 'NAV_default_sign_cert');
  assert.equal(smtp.nonRepudiation!.hashFunction, { uri: 'http://www.w3.org/2001/04/xmlenc#sha256', weak: false });
  assert.equal(smtp.nonRepudiation!.signatureAlgorithms, [{
    value: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', oid: '1.2.840.113549.1.1.5', w3c: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', weak: false,
  }]);
  assert.is(smtp.nonRepudiation!.weak, false);
  const httpSigning = nav.docExchanges['NAV_docexchange_http']!;
  assert.equal(httpSigning.sender!.nonRepudiation!.protocol, { name: 'http://www.w3.org/2000/09/xmldsig#', version: undefined }, 'text around the URI is trimmed');
  assert.is(httpSigning.sender!.reliableMessaging, undefined);

  const certificate = (p: CpaParty, id: string) => new X509Certificate(p.certificates[id]!.pem!);
  assert.match(certificate(nav, 'NAV_default_sign_cert').subject, 'CN=ARBEIDS- OG VELFERDSETATEN TEST');
  assert.match(certificate(nav, 'NAV_default_crypt_cert').subject, 'organizationIdentifier=NTRNO-889640782');
  assert.match(certificate(partner, 'Partner_cert_sign_partner').subject, 'CN=TEST A1 Haugerud');
  assert.match(certificate(partner, 'Partner_cert_crypt_partner').subject, 'O=APOTEK 1 GRUPPEN AS');
  assert.is(partner.roles[0]!.applicationCertificateRef, 'Partner_cert_crypt_partner');
});

test('NAV qass 35065 (other prefixes): ids, Sykmelding on the SMTP channel, endpoints, 12 h retry interval, certificates', () => {
  const agreement = cpa('nav-qass-35065.xml');
  assert.equal(header(agreement), { cpaid: 'nav:qass:35065', version: '2_0b', status: 'proposed', start: '2025-09-29T13:33:28Z', end: '2028-01-02T22:59:00Z' });
  const partner = party(agreement, 'SPEARE AS, flytitnhndevelop');
  const nav = party(agreement, 'NAV');
  assert.equal(partner.partyIds, [{ id: '8141253', type: 'HER' }, { id: '123456789', type: 'orgnummer' }, { id: '123456789', type: 'ENH' }]);
  assert.is(nav.partyIds[0]!.id, '79768');
  assert.is(partner.roles.length, 10);
  assert.equal(binding(partner, 'Legemelding', 'canSend', 'Sykmelding'), {
    id: 'Partner_SM_Sending20', action: 'Sykmelding', packageId: 'Partner_package_sm_v1p0', channelIds: ['Partner_channelSMTP0_partner'],
    nonRepudiationRequired: true, nonRepudiationReceiptRequired: true, otherPartyActionBinding: 'NAV_SM_Sending2',
  });
  assert.equal(partner.transports['Partner_transportSMTP0_partner']!.receiver!.endpoints, [{ uri: 'mailto://example@example.com', type: 'allPurpose' }]);
  assert.equal(nav.transports['NAV_transportSMTP']!.receiver!.endpoints, [{ uri: 'mailto://example2@example.com', type: 'allPurpose' }]);
  assert.equal(nav.transports['NAV_transportHttp']!.receiver!.endpoints, [{ uri: 'https://nhn-gw-q.nav.no:9443/ebxml/msh', type: 'allPurpose' }]);
  const exchange = Object.values(partner.docExchanges).find((e) => e.sender?.reliableMessaging)!;
  assert.equal(exchange.sender!.reliableMessaging, { retries: 4, retryInterval: { iso: 'PT720M', ms: 12 * 3_600_000 }, messageOrderSemantics: 'NotGuaranteed' });
  assert.equal(exchange.sender!.persistDuration, { iso: 'P4D', ms: 4 * 86_400_000 });
  assert.is(exchange.sender!.nonRepudiation!.signatureAlgorithms[0]!.value, 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'the algorithm on its own lines is trimmed');
  assert.is(exchange.sender!.nonRepudiation!.signingCertificateRef, 'Partner_cert_sign_partner');
  assert.match(new X509Certificate(partner.certificates['Partner_cert_sign_partner']!.pem!).subject, 'CN=NORSK HELSENETT SF');
  assert.match(new X509Certificate(nav.certificates['NAV_default_sign_cert']!.pem!).subject, 'CN=ARBEIDS- OG VELFERDSETATEN TEST');
});

// Edits of a real agreement, so that each refusal is for the one fault put in.
const nav = read('nav-multiple-channels-and-endpoints.xml').toString('utf8');
const ebiot = read('ebIOT-CPAT1.CECID.I3T.xml').toString('utf8');

test('SHA-1 signing is flagged weak, by URI and by plain name', () => {
  const sha1 = nav.replaceAll('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256<', 'http://www.w3.org/2000/09/xmldsig#rsa-sha1<')
    .replaceAll('<cppa:HashFunction>http://www.w3.org/2001/04/xmlenc#sha256<', '<cppa:HashFunction>SHA1<');
  const signing = party(parseCpa(sha1), 'NAV').docExchanges['NAV_docexchange_http']!.sender!.nonRepudiation!;
  assert.equal(signing.hashFunction, { uri: 'SHA1', weak: true });
  assert.is(signing.signatureAlgorithms[0]!.weak, true);
  assert.is(signing.weak, true);
});

test('a DOCTYPE with an entity is refused before any entity is read', () => {
  const hostile = ebiot.replace('<?xml version="1.0"?>', '<?xml version="1.0"?>\n<!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>')
    .replace('ebIOT-CPAT1.CECID.I3T"', '&lol2;"');
  const error = refusal(hostile);
  assert.match(error.message, /DOCTYPE/);
  assert.is((error.cause as SwxError).code, 'SWX_XML_FORBIDDEN');
});

test('a CPA without PartyInfo, with one, or with a PartyInfo missing its channel is refused, naming what is missing', () => {
  const start = ebiot.indexOf('<tp:PartyInfo');
  const end = ebiot.lastIndexOf('</tp:PartyInfo>') + '</tp:PartyInfo>'.length;
  assert.match(refusal(ebiot.slice(0, start) + ebiot.slice(end)).message, 'two <PartyInfo> elements, this one 0');
  assert.match(refusal(ebiot.slice(0, ebiot.indexOf('<tp:PartyInfo', start + 1)) + ebiot.slice(end)).message, 'this one 1');
  const noChannel = ebiot.replace(/<tp:DeliveryChannel[\s\S]*?<\/tp:DeliveryChannel>/, '');
  assert.match(refusal(noChannel).message, 'names DeliveryChannel "Party-Buyer-chan001", which it does not define');
});

test('a truncated document, another root and bad values are refused with the fault named', () => {
  assert.match(refusal(nav.slice(0, nav.length / 2)).message, /not closed|not acceptable XML/);
  assert.match(refusal(Buffer.alloc(0)).message, 'not acceptable XML');
  assert.match(refusal('<CollaborationProtocolAgreement/>').message, 'not a CPA 2.0 CollaborationProtocolAgreement');
  assert.match(refusal(ebiot.replace('tp:cpaid="ebIOT-CPAT1.CECID.I3T"', '')).message, 'attribute cpaid is missing on /CollaborationProtocolAgreement');
  assert.match(refusal(nav.replace('cppa:syncReplyMode="none"', 'cppa:syncReplyMode="sometimes"')).message, 'parties.0.deliveryChannels.Partner_channelSMTP0_partner.messaging.syncReplyMode');
  assert.match(refusal(nav.replace('<cppa:RetryInterval>PT240M<', '<cppa:RetryInterval>P1M<')).message, '"P1M" is not an ISO 8601 duration in weeks, days');
  assert.match(refusal(nav.replace('<cppa:Retries>4<', '<cppa:Retries>-1<')).message, 'expected a whole number');
  assert.match(refusal(nav.replace('<ds:X509Certificate>MIIG', '<ds:X509Certificate>MIIH')).message, 'is not an X.509 certificate');
  assert.match(refusal(nav.replace('cppa:certId="NAV_default_sign_cert"/>', 'cppa:certId="elsewhere"/>')).message, 'names Certificate "elsewhere"');
  assert.match(refusal(nav.replace('<cppa:OtherPartyActionBinding>NAV_A076<', '<cppa:OtherPartyActionBinding>nowhere<')).message, 'the other party does not define');
  assert.match(refusal(nav.replace('</cppa:DeliveryChannel>', '</cppa:DeliveryChannel><cppa:DeliveryChannel cppa:channelId="Partner_channelSMTP0_partner" cppa:transportId="x" cppa:docExchangeId="y"><cppa:MessagingCharacteristics/></cppa:DeliveryChannel>')).message, 'is used twice');
});

test('names are resolved by namespace: the CPA namespace under another prefix is read, another namespace under tp: is not', () => {
  const renamed = ebiot.replace(/(<\/?|\s)tp:/g, '$1cpa2:').replace('xmlns:tp=', 'xmlns:cpa2=');
  assert.is(parseCpa(renamed).cpaid, 'ebIOT-CPAT1.CECID.I3T');
  const foreign = ebiot.replace('xmlns:tp="http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd"', 'xmlns:tp="urn:example:not-cppa"');
  assert.match(refusal(foreign).message, '{urn:example:not-cppa}CollaborationProtocolAgreement');
});

test.run();
