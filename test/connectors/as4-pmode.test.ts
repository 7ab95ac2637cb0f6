// The as4 P-Mode: a partner's endpoint as the registry checks it (defaults filled in, inconsistent ones refused with the
// field named), and the profile check that answers EBMS:0103 naming the algorithm a profile expects.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { algorithmsOf, as4Endpoint, checkProfile, readAs4Message, signAs4, userMessageEnvelope, type As4Endpoint } from '../../connectors/as4/index.ts';
import { trustFixture } from '../helpers/trust-fixture.ts';

const fixture = await trustFixture();
const base = {
  url: 'https://boft.example:8443/as4',
  partyIds: [{ id: '0088:4711', type: 'urn:oasis:names:tc:ebcore:partyid-type:iso6523:0088' }],
  services: [{ service: 'customs.declaration', type: 'swx', actions: ['deliver'] }],
};

function refusal(input: unknown): string {
  const parsed = as4Endpoint.safeParse(input);
  assert.is(parsed.success, false);
  const issue = parsed.error!.issues[0]!;
  return `${issue.path.join('.')}: ${issue.message}`;
}

test('a push P-Mode with its defaults: eDelivery AS4 1.15, signed and encrypted, signed sync receipts, compression', () => {
  const endpoint: As4Endpoint = as4Endpoint.parse(base);
  assert.equal(endpoint.mep, { binding: 'push' });
  assert.is(endpoint.profile, 'eDelivery-AS4-1.15');
  assert.equal(endpoint.security, { sign: true, encrypt: true, keyTransport: 'rsa-oaep' });
  assert.equal(endpoint.receipt, { required: true, signed: true, reply: 'sync' });
  assert.equal(endpoint.receptionAwareness, { retrySeconds: [60, 300, 900, 3600], duplicateWindowSeconds: 604800 });
  assert.is(endpoint.compression, true);
  assert.is(endpoint.role, 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole');
});

test('a pull P-Mode names its MPC and no url; inconsistent P-Modes are refused naming the field', () => {
  const { url: _url, ...pull } = base;
  const parsed = as4Endpoint.parse({ ...pull, profile: 'eDelivery-AS4-2.0', mep: { binding: 'pull', mpc: 'urn:swx:mpc:boft' }, security: { encrypt: false } });
  assert.equal(parsed.mep, { binding: 'pull', mpc: 'urn:swx:mpc:boft' });
  assert.match(refusal({ ...base, mep: { binding: 'pull', mpc: 'urn:x' } }), /^url: a pull P-Mode has no url/);
  assert.match(refusal(pull), /^url: a push P-Mode needs the url/);
  assert.match(refusal({ ...base, url: 'http://boft.example/as4' }), /^url:/);
  assert.match(refusal({ ...base, partyIds: [] }), /^partyIds:/);
  assert.match(refusal({ ...base, profile: 'eDelivery-AS4-3' }), /^profile:/);
  assert.match(refusal({ ...base, mep: { binding: 'pull' } }), /^mep\.mpc:/);
  assert.match(refusal({ ...base, services: [...base.services, ...base.services] }), /^services: a service is listed twice/);
  assert.match(refusal({ ...base, receipt: { reply: 'later' } }), /^receipt\.reply:/);
  assert.match(refusal({ ...pull, mep: { binding: 'pull', mpc: 'urn:x' }, receipt: { reply: 'async' } }), /^receipt\.reply: asynchronous replies go to the partner's url/);
  assert.is(as4Endpoint.parse({ ...base, receipt: { reply: 'async' } }).receipt.reply, 'async');
  assert.match(refusal({ ...base, extra: 1 }), /extra/);
});

test('encryption in a P-Mode: the certificate the hub encrypts to fits the profile (RSA for 1.15, X25519 for 2.0, which must name one); rsa-oaep-mgf1p only under 1.15', async () => {
  const x25519 = await fixture.issue({ key: 'x25519', commonName: 'partner encryption', usages: ['keyAgreement'] });
  const v2 = { ...base, profile: 'eDelivery-AS4-2.0' };
  assert.is(as4Endpoint.parse({ ...v2, security: { encryptionCertificate: x25519.certPem } }).security.encryptionCertificate, x25519.certPem);
  assert.is(as4Endpoint.parse({ ...base, security: { encryptionCertificate: fixture.rsa.certPem, keyTransport: 'rsa-oaep-mgf1p' } }).security.keyTransport, 'rsa-oaep-mgf1p');
  assert.is(as4Endpoint.parse(base).security.encryptionCertificate, undefined, '1.15 may fall back to the partner\'s registered RSA certificate');
  assert.match(refusal(v2), /^security\.encryptionCertificate: eDelivery-AS4-2\.0 encrypts to an X25519 key/);
  assert.match(refusal({ ...v2, security: { encryptionCertificate: fixture.rsa.certPem } }), /^security\.encryptionCertificate: .*this certificate's is rsa/);
  assert.match(refusal({ ...base, security: { encryptionCertificate: x25519.certPem } }), /^security\.encryptionCertificate: eDelivery-AS4-1\.15 encrypts to an RSA key; this certificate's is x25519/);
  assert.match(refusal({ ...base, security: { encryptionCertificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' } }), /^security\.encryptionCertificate: not a readable certificate/);
  assert.match(refusal({ ...v2, security: { encryptionCertificate: x25519.certPem, keyTransport: 'rsa-oaep-mgf1p' } }), /^security\.keyTransport: eDelivery-AS4-2\.0 transports no key by RSA/);
});

async function signedWith(key: 'rsa' | 'ed25519' | 'ecdsa') {
  const party = (id: string) => ({ partyIds: [{ id }], role: 'urn:r' });
  const written = userMessageEnvelope({ from: party('A'), to: party('B'), collaboration: { service: { value: 's' }, action: 'a', conversationId: 'c' }, payloads: [] });
  const xml = await signAs4(written, { keyPem: fixture[key].keyPem, certPem: fixture[key].certPem });
  return readAs4Message(Buffer.from(xml));
}

test('each profile accepts its own suite and answers EBMS:0103 naming the algorithm it expects for another', async () => {
  const rsa = await signedWith('rsa');
  const ed25519 = await signedWith('ed25519');
  assert.is(checkProfile(algorithmsOf(rsa), 'eDelivery-AS4-1.15'), undefined);
  assert.is(checkProfile(algorithmsOf(ed25519), 'eDelivery-AS4-2.0'), undefined);
  const wrong = checkProfile(algorithmsOf(rsa), 'eDelivery-AS4-2.0', 'm@x')!;
  assert.equal([wrong.code, wrong.shortDescription, wrong.refToMessageInError, wrong.origin], ['EBMS:0103', 'PolicyNoncompliance', 'm@x', 'security']);
  assert.is(wrong.detail, 'eDelivery-AS4-2.0 requires the signature algorithm http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519; the message uses http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
  assert.match(checkProfile(algorithmsOf(await signedWith('ecdsa')), 'eDelivery-AS4-1.15')!.detail, /requires the signature algorithm .*rsa-sha256; the message uses .*ecdsa-sha256/);
});

const encrypted = (keyInfo: string, data: string) => Buffer.from(`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>
<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:dsig-more="http://www.w3.org/2009/xmldsig11#">${keyInfo}
<xenc:EncryptedData><xenc:EncryptionMethod Algorithm="${data}"/></xenc:EncryptedData></wsse:Security>
<eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"><eb:SignalMessage><eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>e@x</eb:MessageId></eb:MessageInfo><eb:PullRequest/></eb:SignalMessage></eb:Messaging>
</env:Header><env:Body/></env:Envelope>`);
const oaep = (mgf: string) => `<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><xenc11:MGF Algorithm="${mgf}"/></xenc:EncryptionMethod></xenc:EncryptedKey>`;
const agreed = (wrap: string) => `<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="${wrap}"/><ds:KeyInfo><xenc:AgreementMethod Algorithm="http://www.w3.org/2021/04/xmldsig-more#x25519"><xenc11:KeyDerivationMethod Algorithm="http://www.w3.org/2021/04/xmldsig-more#hkdf"/></xenc:AgreementMethod></ds:KeyInfo></xenc:EncryptedKey>`;

test('encryption algorithms are held to the profile too: key transport, mask generation, key agreement and wrap, data', () => {
  const gcm = 'http://www.w3.org/2009/xmlenc11#aes128-gcm';
  const v1 = readAs4Message(encrypted(oaep('http://www.w3.org/2009/xmlenc11#mgf1sha256'), gcm));
  assert.equal(algorithmsOf(v1).keyTransport, ['http://www.w3.org/2009/xmlenc11#rsa-oaep']);
  assert.is(checkProfile(algorithmsOf(v1), 'eDelivery-AS4-1.15'), undefined);
  const sha1Mask = checkProfile(algorithmsOf(readAs4Message(encrypted(oaep('http://www.w3.org/2009/xmlenc11#mgf1sha1'), gcm))), 'eDelivery-AS4-1.15')!;
  assert.is(sha1Mask.detail, 'eDelivery-AS4-1.15 requires the OAEP mask generation http://www.w3.org/2009/xmlenc11#mgf1sha256; the message uses http://www.w3.org/2009/xmlenc11#mgf1sha1');
  const cbc = checkProfile(algorithmsOf(readAs4Message(encrypted(oaep('http://www.w3.org/2009/xmlenc11#mgf1sha256'), 'http://www.w3.org/2001/04/xmlenc#aes128-cbc'))), 'eDelivery-AS4-1.15')!;
  assert.match(cbc.detail, /requires the payload encryption .*aes128-gcm; the message uses .*aes128-cbc/);
  const v2 = readAs4Message(encrypted(agreed('http://www.w3.org/2001/04/xmlenc#kw-aes128'), gcm));
  assert.equal(algorithmsOf(v2).keyAgreement, ['http://www.w3.org/2021/04/xmldsig-more#x25519']);
  assert.is(checkProfile(algorithmsOf(v2), 'eDelivery-AS4-2.0'), undefined);
  assert.match(checkProfile(algorithmsOf(v2), 'eDelivery-AS4-1.15')!.detail, /requires the key agreement \(none in this profile\); the message uses .*x25519/);
  assert.match(checkProfile(algorithmsOf(readAs4Message(encrypted(agreed('http://www.w3.org/2001/04/xmlenc#kw-aes256'), gcm))), 'eDelivery-AS4-2.0')!.detail, /requires the key wrap .*kw-aes128; the message uses .*kw-aes256/);
  // rsa-oaep-mgf1p (no MGF element: MGF1 with SHA-1) where the P-Mode names it, and only there.
  const mgf1p = readAs4Message(encrypted('<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/></xenc:EncryptedKey>', gcm));
  assert.is(checkProfile(algorithmsOf(mgf1p), 'eDelivery-AS4-1.15', undefined, 'rsa-oaep-mgf1p'), undefined);
  assert.match(checkProfile(algorithmsOf(mgf1p), 'eDelivery-AS4-1.15')!.detail, /requires the key transport .*xmlenc11#rsa-oaep; the message uses .*rsa-oaep-mgf1p/);
  assert.match(checkProfile(algorithmsOf(v1), 'eDelivery-AS4-1.15', undefined, 'rsa-oaep-mgf1p')!.detail, /requires the key transport .*rsa-oaep-mgf1p; the message uses .*xmlenc11#rsa-oaep/);
});

test.run();
