// XML signatures as agencies exchange them: every XML interop vector gets the verdict INDEX.md gives it, what swx signs
// verifies with xmlsec1 (or, where xmlsec1 lacks the algorithm, with openssl over xmlsec1's own canonical SignedInfo),
// what xmlsec1 signs verifies in swx, and every attack or bad certificate is refused with its own code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { thumbprint } from '../../engine/pki/store.ts';
import { SwxError } from '../../engine/errors.ts';
import { attachmentDigester, checkWsSecurity, signedElement, signSoap, signXml, verifyXml, type VerifyXmlOptions, type XmlAttachment, type XmlVerdict } from '../../engine/trust/index.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import { parseXml } from '../../engine/xml/parse.ts';
import type { SoapEnvelope } from '../../engine/xml/soap.ts';
import { trustFixture, type TestCredential } from '../helpers/trust-fixture.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const vector = (path: string) => readFileSync(join(conformance, path));
const vectorText = (path: string) => readFileSync(join(conformance, path), 'utf8');
const derAsPem = (path: string) => `-----BEGIN CERTIFICATE-----\n${vector(path).toString('base64')}\n-----END CERTIFICATE-----\n`;
const work = mkdtempSync(join(tmpdir(), 'swx-xmldsig-'));
// The conformance vectors' certificates are fixed, so they are judged on a fixed day; what this file signs with the
// run-time fixture is judged at the fixture's own time.
const vectorDay = new Date('2026-11-27T12:00:00Z');

const ns = {
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  soap12: 'http://www.w3.org/2003/05/soap-envelope',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  eb3: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/',
};

function refused(verdict: XmlVerdict, code: string): void {
  assert.is(verdict.valid, false, `expected ${code}, got a valid verdict`);
  assert.is(verdict.code, code, verdict.detail);
  assert.ok(verdict.detail.length > 0, 'a refusal says what failed');
  assert.equal(verdict.signedElements, [], 'a refused verdict vouches for no element');
}

function accepted(verdict: XmlVerdict): void {
  assert.is(verdict.code, 'SWX_OK', verdict.detail);
  assert.ok(verdict.valid);
  assert.ok(verdict.references?.every((ref) => ref.valid), JSON.stringify(verdict.references));
}

let fileCount = 0;
function file(content: string | Buffer, suffix = '.xml'): string {
  const path = join(work, `f${++fileCount}${suffix}`);
  writeFileSync(path, content);
  return path;
}

function run(command: string, args: string[], input?: Buffer): { status: number | null; out: string } {
  const result = spawnSync(command, args, { cwd: work, ...(input ? { input } : {}) });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

/** xmlsec1 --verify; ok when it says so and every reference checks out. */
function xmlsecVerifies(xml: string, args: string[]): { ok: boolean; out: string } {
  const result = run('xmlsec1', ['--verify', ...args, file(xml)]);
  const refs = /SignedInfo References \(ok\/all\): (\d+)\/(\d+)/.exec(result.out);
  return { ok: result.status === 0 && /^OK$/m.test(result.out) && !!refs && refs[1] === refs[2], out: result.out };
}

function anchors(fixture: { root: TestCredential; intermediate: TestCredential }): string[] {
  return ['--trusted-pem', file(fixture.root.certPem, '.pem'), '--untrusted-pem', file(fixture.intermediate.certPem, '.pem')];
}

// ---- INDEX.md: every XML vector, its verdict as INDEX gives it ----

interface IndexCheck { key: string; verdict: string; ok?: number; all?: number }

/** The xmlsec1 checks INDEX.md lists, with their verdict words and reference counts. */
function indexChecks(): IndexCheck[] {
  const checks: IndexCheck[] = [];
  for (const entry of vectorText('INDEX.md').split(/\n- \*\*`/).slice(1)) {
    const verdict = /- verdict: \*\*([^*]+)\*\*/.exec(entry)?.[1] ?? '';
    for (const match of entry.matchAll(/check `(\w+)`: `xmlsec1 [^`]*` → rc=\d+, \*\*\w+ SignedInfo References \(ok\/all\): (\d+)\/(\d+)/g)) {
      checks.push({ key: match[1]!, verdict, ok: Number(match[2]), all: Number(match[3]) });
    }
  }
  return checks;
}

/** The code each INDEX verdict stands for. */
function expectedCode(verdict: string): string {
  if (/^VERIFIED/.test(verdict)) return 'SWX_OK';
  if (/^EXPECTED FAIL \((digest mismatch|0\/\d+ refs)\)/.test(verdict)) return 'SWX_DIGEST_MISMATCH';
  if (/^EXPECTED ERROR \(signature failed\)/.test(verdict)) return 'SWX_SIG_INVALID';
  if (/^EXPECTED ERROR \(unknown (SignatureMethod|DigestMethod)\)/.test(verdict)) return 'SWX_SIG_ALG_UNSUPPORTED';
  throw new Error(`INDEX verdict ${verdict} has no code here yet`);
}

const navAttachment: XmlAttachment = {
  contentId: '3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no',
  headers: { 'content-type': 'application/pkcs7-mime; smime-type=enveloped-data' },
  body: vector('navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part2.attachment.bin'),
};
const phaosAnchor = derAsPem('xmlsec/phaos-xmldsig-three/certs/rsa-ca-cert.der');

interface Vector {
  file: string;
  options: VerifyXmlOptions;
  /** A time inside the signer certificate's validity: the message's own time where it has a credible one. */
  at: Date;
  /** The certificate has expired by 2026-11-27. */
  expiredToday?: boolean;
  /** RSA-SHA1 or DSA-SHA1: judged under the archive policy. */
  legacy?: boolean;
}

const vectors: Record<string, Vector> = {
  P4_DP_MU: { file: 'phase4/_derived/dataport1-mustunderstand.as4in.envelope.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/dataport1-mustunderstand.as4in.signer.pem') }, at: new Date('2022-03-07T12:00:00Z'), expiredToday: true },
  P4_DP: { file: 'phase4/_derived/dataport1.as4in.envelope.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/dataport1.as4in.signer.pem') }, at: new Date('2022-03-07T12:00:00Z') },
  P4_R12: { file: 'phase4/testfiles/TestReceipt12.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/TestReceipt12.xml.signer.pem') }, at: new Date('2025-12-05T14:03:40Z') },
  P4_R11: { file: 'phase4/testfiles/TestReceipt11.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/dummy-pw-test.jks.ph-as4.cert.pem') }, at: new Date('2017-06-13T13:36:35Z') },
  P4_WSA: { file: 'phase4/testfiles/WrongSigningAlgorithm.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/WrongSigningAlgorithm.xml.signer.pem') }, at: new Date('2016-06-01T00:00:00Z') },
  P4_WSDA: { file: 'phase4/testfiles/WrongSigningDigestAlgorithm.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/WrongSigningDigestAlgorithm.xml.signer.pem') }, at: new Date('2016-06-01T00:00:00Z') },
  // The message says 2006, before its certificate existed (a test file); judged inside the certificate's validity.
  P4_TM11: { file: 'phase4/unused/TestMessage11.xml', options: { pinnedCertsPem: vectorText('phase4/_derived/TestMessage11.xml.signer.pem') }, at: new Date('2016-06-01T00:00:00Z'), expiredToday: true },
  NAV_OPPG: {
    file: 'navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part1.soap.xml',
    options: { pinnedCertsPem: vectorText('navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer'), attachments: [navAttachment] },
    at: new Date('2023-08-29T10:56:50Z'),
    expiredToday: true,
  },
  NAV_UNGZ: { file: 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.p7m.deenveloped.ungz', options: { pinnedCertsPem: vectorText('navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer') }, at: new Date('2023-08-29T10:56:50Z'), expiredToday: true },
  NAV_ACK: { file: 'navikt-ebxml-processor/_derived/acknowledgment.eml.part1.soap.xml', options: { pinnedCertsPem: vectorText('navikt-ebxml-processor/_derived/acknowledgment.eml.signer.pem') }, at: new Date('2023-11-21T14:45:47Z'), expiredToday: true },
  XS_ENVLPG_RSA: { file: 'xmlsec/aleksey-xmldsig-01/enveloping-sha256-rsa-sha256.xml', options: { trustedCertsPem: vectorText('xmlsec/keys/cacert.pem') }, at: vectorDay },
  XS_ENVLPD_EC: { file: 'xmlsec/aleksey-xmldsig-01/enveloped-sha256-ecdsa-sha256.xml', options: { publicKeysPem: { 'TestKeyName-ec-prime256v1': vectorText('xmlsec/keys/ec/ec-prime256v1-pubkey.pem') } }, at: vectorDay },
  XS_EXC: { file: 'xmlsec/merlin-exc-c14n-one/exc-signature.xml', options: {}, at: vectorDay, legacy: true },
  PH_OK: { file: 'xmlsec/phaos-xmldsig-three/signature-rsa-enveloped.xml', options: { trustedCertsPem: phaosAnchor }, at: new Date('2009-01-01T10:00:00Z'), expiredToday: true, legacy: true },
  PH_BADDIG: { file: 'xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-digest-val.xml', options: { trustedCertsPem: phaosAnchor }, at: new Date('2009-01-01T10:00:00Z'), legacy: true },
  PH_BADSIG: { file: 'xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-sig.xml', options: { trustedCertsPem: phaosAnchor }, at: new Date('2009-01-01T10:00:00Z'), legacy: true },
};

const index = indexChecks();

test('INDEX.md: every XML check it lists has a vector here', () => {
  assert.ok(index.length >= 16, `INDEX.md lists ${index.length} xmlsec1 checks`);
  assert.equal(index.map((check) => check.key).filter((key) => !vectors[key]), []);
});

const judge = (key: string, at: Date) => {
  const { file: path, options, legacy } = vectors[key]!;
  return verifyXml(vector(path), { ...options, at, ...(legacy ? { policy: 'archive' as const } : {}) });
};

for (const check of index) {
  test(`INDEX ${check.key}: ${check.verdict}`, async () => {
    const vectorCase = vectors[check.key]!;
    const verdict = await judge(check.key, vectorCase.at);
    const code = expectedCode(check.verdict);
    assert.is(verdict.code, code, verdict.detail);
    assert.is(verdict.valid, code === 'SWX_OK');
    if (code === 'SWX_OK') {
      accepted(verdict);
      assert.is(verdict.references!.length, check.all, 'as many references as xmlsec1 counts');
      assert.is(verdict.certificate?.at, vectorCase.at.toISOString());
      const pinned = vectorCase.options.pinnedCertsPem;
      if (pinned) {
        assert.is(verdict.signer?.thumbprint, thumbprint(pinned));
        assert.is(verdict.certificate?.trust, 'pinned');
      }
      if (vectorCase.options.trustedCertsPem) assert.is(verdict.certificate?.trust, 'chain');
    } else if (code === 'SWX_DIGEST_MISMATCH' || (code === 'SWX_SIG_INVALID' && check.all! > 0)) {
      const ok = verdict.references!.filter((ref) => ref.valid).length;
      assert.ok(ok < verdict.references!.length, 'a failing reference is visible');
      assert.ok(ok >= check.ok!, `xmlsec1 found ${check.ok} good references, swx ${ok}`);
    }
  });
}

test('INDEX: the expired signer certificates fail with SWX_CERT_EXPIRED on 2026-11-27', async () => {
  const expired = Object.entries(vectors).filter(([, vectorCase]) => vectorCase.expiredToday).map(([key]) => key);
  assert.equal(expired.sort(), ['NAV_ACK', 'NAV_OPPG', 'NAV_UNGZ', 'P4_DP_MU', 'P4_TM11', 'PH_OK']);
  for (const key of expired) {
    const verdict = await judge(key, vectorDay);
    refused(verdict, 'SWX_CERT_EXPIRED');
    assert.is(verdict.certificate?.status, 'expired', key);
    assert.ok(verdict.references!.every((ref) => ref.valid), `${key}: the signature itself still holds`);
  }
  for (const key of ['P4_R12', 'P4_R11', 'XS_ENVLPG_RSA']) accepted(await judge(key, vectorDay));
});

test('INDEX: RSA-SHA1 and DSA-SHA1 verify for the archive, flagged weak, and are refused on live traffic', async () => {
  const exc = await judge('XS_EXC', vectorDay);
  accepted(exc);
  assert.equal(exc.weak, ['DSA-SHA1', 'SHA-1']);
  assert.is(exc.certificate?.status, 'unchecked', 'a key from the message alone proves integrity, not identity');
  assert.is(exc.certificate?.trust, 'none');
  assert.match(exc.detail, /neither a pin nor a trust anchor/);
  const phaos = await judge('PH_OK', new Date('2009-01-01T10:00:00Z'));
  assert.equal(phaos.weak, ['RSA-SHA1', 'SHA-1']);
  for (const key of ['XS_EXC', 'PH_OK']) {
    const { file: path, options, at } = vectors[key]!;
    refused(await verifyXml(vector(path), { ...options, at }), 'SWX_SIG_WEAK_ALG');
    refused(await verifyXml(vector(path), { ...options, at, policy: 'live' }), 'SWX_SIG_WEAK_ALG');
  }
});

test('INDEX: the unsigned messages are refused as unsigned', async () => {
  for (const path of ['phase4/testfiles/ErrorMessage.xml', 'phase4/testfiles/ErrorMessageWithFault.xml', 'navikt-ebxml-processor/signaltest/messageerror.xml', 'hermes/_derived/test1.msg.part1.soap.xml']) {
    refused(await verifyXml(vector(path)), 'SWX_SIG_MISSING');
  }
});

test('INDEX NAV_OPPG: the cid: attachment is part of the signature', async () => {
  const { file: path, options, at } = vectors.NAV_OPPG!;
  const verdict = await verifyXml(vector(path), { ...options, at });
  assert.equal(verdict.signedAttachments, [navAttachment.contentId]);
  assert.equal(verdict.algorithms?.canonicalization, ['c14n']);
  // URI="" covers the Body; the Signature itself is what the enveloped transform leaves out.
  assert.is(signedElement(verdict, '/Envelope/Body')?.path, '/Envelope');
  assert.is(signedElement(verdict, '/Envelope/Header/Signature'), undefined);
  refused(await verifyXml(vector(path), { ...options, at, attachments: [] }), 'SWX_SIG_REF_UNRESOLVED');
  const altered = { ...navAttachment, body: Buffer.concat([navAttachment.body, Buffer.from([0])]) };
  refused(await verifyXml(vector(path), { ...options, at, attachments: [altered] }), 'SWX_DIGEST_MISMATCH');
  refused(await verifyXml(vector(path), { ...options, at, attachments: [navAttachment, navAttachment] }), 'SWX_SIG_WRAPPED');
});

test('INDEX P4_R12: a WS-Security receipt names its signed parts by place', async () => {
  const verdict = await judge('P4_R12', vectors.P4_R12!.at);
  assert.is(verdict.kind, 'soap-wss');
  assert.equal(verdict.signedElements.map((element) => element.path), ['/Envelope/Header/Messaging', '/Envelope/Body']);
  assert.is(signedElement(verdict, '/Envelope/Body')?.namespace, ns.soap12);
  assert.is(signedElement(verdict, '/Envelope/Header/Messaging')?.namespace, ns.eb3);
  assert.is(signedElement(verdict, '/Envelope/Header/Security'), undefined);
});

// ---- what swx signs, checked by xmlsec1 and openssl ----

const declaration = '<?xml version="1.0" encoding="UTF-8"?>\n<decl:Declaration xmlns:decl="urn:swx:declaration" Id="decl-1">'
  + '<decl:No>AA/BE/13/101/0001</decl:No><!-- a comment --><decl:Item n="1">cotton &amp; silk</decl:Item>\n</decl:Declaration>';

for (const [name, signer, extra] of [
  ['enveloped ECDSA P-256, exc-c14n', 'ecdsa', {}],
  ['enveloped RSA-SHA384, inclusive c14n', 'rsa', { canonicalization: 'c14n', signatureAlgorithm: 'rsa-sha384' }],
  ['enveloped ECDSA P-384, SHA-384', 'ecdsaP384', { digestAlgorithm: 'sha384' }],
  ['by Id (detached), RSA-SHA512', 'rsa', { mode: 'detached', ids: ['decl-1'], signatureAlgorithm: 'rsa-sha512', digestAlgorithm: 'sha512' }],
  ['enveloping, ECDSA', 'ecdsa', { mode: 'enveloping' }],
] as const) {
  test(`swx signs ${name}: xmlsec1 and swx verify it`, async () => {
    const fixture = await trustFixture();
    const credential = fixture[signer];
    const signed = await signXml(declaration, { keyPem: credential.keyPem, certPem: credential.chainPem, ...extra });
    const idAttr = 'ids' in extra ? ['--id-attr:Id', 'urn:swx:declaration:Declaration'] : [];
    const checked = xmlsecVerifies(signed, [...anchors(fixture), ...idAttr]);
    assert.ok(checked.ok, checked.out);
    const verdict = await verifyXml(signed, { trustedCertsPem: fixture.root.certPem });
    accepted(verdict);
    assert.is(verdict.certificate?.trust, 'chain');
    assert.is(verdict.signer?.subject, credential.subject);
    refused(await verifyXml(signed.replace('cotton', 'rayon'), { trustedCertsPem: fixture.root.certPem }), 'SWX_DIGEST_MISMATCH');
  });
}

/** The SignatureValue and xmlsec1's canonical SignedInfo of a document whose SignatureMethod xmlsec1 1.2.37 lacks. */
function canonicalSignedInfoByXmlsec(signed: string, stand: string, certPem: string, args: string[] = []): { data: Buffer; signature: Buffer; refs: string } {
  const method = /SignatureMethod Algorithm="([^"]+)"/.exec(signed)![1]!;
  // xmlsec1 canonicalises SignedInfo and prints it before it fails on the algorithm swapped in; swapped back after.
  const result = run('xmlsec1', ['--verify', '--store-signatures', '--pubkey-cert-pem', file(certPem, '.pem'), ...args, file(signed.replace(method, stand))]);
  const printed = /== PreSigned data - start buffer:\n([\s\S]*?)\n== PreSigned data - end buffer/.exec(result.out);
  assert.ok(printed, result.out);
  return {
    data: Buffer.from(printed[1]!.replace(stand, method), 'utf8'),
    signature: Buffer.from(/<ds:SignatureValue>([^<]+)</.exec(signed)![1]!, 'base64'),
    refs: /SignedInfo References \(ok\/all\): (\d+\/\d+)/.exec(result.out)?.[1] ?? '',
  };
}

test('swx signs RSA-PSS (SHA-256, MGF1): openssl verifies it over xmlsec1\'s canonical SignedInfo', async () => {
  const fixture = await trustFixture();
  const signed = await signXml(declaration, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.chainPem, signatureAlgorithm: 'rsa-pss-sha256' });
  accepted(await verifyXml(signed, { trustedCertsPem: fixture.root.certPem }));
  const { data, signature, refs } = canonicalSignedInfoByXmlsec(signed, 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', fixture.rsa.certPem);
  assert.is(refs, '1/1', 'xmlsec1 finds the reference good');
  const publicKey = run('openssl', ['x509', '-pubkey', '-noout', '-in', file(fixture.rsa.certPem, '.pem')]).out;
  const checked = run('openssl', ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-sigopt', 'rsa_mgf1_md:sha256',
    '-verify', file(publicKey, '.pem'), '-signature', file(signature, '.sig'), file(data, '.bin')]);
  assert.ok(checked.status === 0 && checked.out.includes('Verified OK'), checked.out);
});

test('swx signs Ed25519: openssl verifies it over xmlsec1\'s canonical SignedInfo', async () => {
  const fixture = await trustFixture();
  const signed = await signXml(declaration, { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.chainPem });
  const verdict = await verifyXml(signed, { trustedCertsPem: fixture.root.certPem });
  accepted(verdict);
  assert.is(verdict.algorithms?.signature, 'Ed25519');
  const { data, signature, refs } = canonicalSignedInfoByXmlsec(signed, 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256', fixture.ecdsa.certPem);
  assert.is(refs, '1/1');
  const checked = run('openssl', ['pkeyutl', '-verify', '-certin', '-inkey', file(fixture.ed25519.certPem, '.pem'), '-rawin', '-in', file(data, '.bin'), '-sigfile', file(signature, '.sig')]);
  assert.ok(checked.status === 0 && checked.out.includes('Signature Verified Successfully'), checked.out);
});

for (const [version, soap] of [['1.1', ns.soap11], ['1.2', ns.soap12]] as const) {
  test(`WS-Security, SOAP ${version}: swx signs Body and Timestamp, xmlsec1 and swx verify it`, async () => {
    const fixture = await trustFixture();
    const envelope = `<S:Envelope xmlns:S="${soap}"><S:Header><eb:Messaging xmlns:eb="${ns.eb3}" xmlns:wsu="${ns.wsu}" wsu:Id="msg-1"><eb:MessageId>m-1@swx</eb:MessageId></eb:Messaging></S:Header>`
      + '<S:Body><d:Declaration xmlns:d="urn:swx:declaration">42</d:Declaration></S:Body></S:Envelope>';
    const createdAt = fixture.issuedAt;
    const signed = await signSoap(envelope, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, ids: ['msg-1'], createdAt });
    const checked = xmlsecVerifies(signed, ['--pubkey-cert-pem', file(fixture.rsa.certPem, '.pem'), '--id-attr:Id', `${soap}:Body`, '--id-attr:Id', `${ns.wsu}:Timestamp`, '--id-attr:Id', `${ns.eb3}:Messaging`]);
    assert.ok(checked.ok, checked.out);
    assert.match(checked.out, /References \(ok\/all\): 3\/3/);
    const verdict = await verifyXml(signed, { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem, at: createdAt });
    accepted(verdict);
    assert.is(verdict.kind, 'soap-wss');
    assert.is(verdict.signedAt, createdAt.toISOString());
    assert.equal(verdict.signedElements.map((element) => element.path).sort(), ['/Envelope/Body', '/Envelope/Header/Messaging', '/Envelope/Header/Security/Timestamp']);
    assert.ok(signedElement(verdict, '/Envelope/Body/Declaration'), 'what is inside the signed Body is signed');
    refused(await verifyXml(signed.replace('>42<', '>43<'), { pinnedCertsPem: fixture.rsa.certPem, at: createdAt }), 'SWX_DIGEST_MISMATCH');
  });
}

/** The envelope as a SOAP connector hands it to checkWsSecurity. */
function soapEnvelopeOf(xml: string): SoapEnvelope {
  const raw = Buffer.from(xml);
  const blocks = elementChildren(parseXml(raw).root);
  return { raw, header: blocks.find((el) => el.localName === 'Header'), body: blocks.find((el) => el.localName === 'Body')! };
}

test('WS-Security with the signer named by SubjectKeyIdentifier or by issuer and serial, no BinarySecurityToken: xmlsec1 verifies it given the certificate, swx and checkWsSecurity resolve it among the certificates given', async () => {
  const fixture = await trustFixture();
  const envelope = `<S:Envelope xmlns:S="${ns.soap12}"><S:Header><eb:Messaging xmlns:eb="${ns.eb3}" xmlns:wsu="${ns.wsu}" wsu:Id="msg-1"><eb:MessageId>m-1@swx</eb:MessageId></eb:Messaging></S:Header>`
    + '<S:Body><d:Declaration xmlns:d="urn:swx:declaration">42</d:Declaration></S:Body></S:Envelope>';
  const idAttrs = ['--id-attr:Id', `${ns.soap12}:Body`, '--id-attr:Id', `${ns.wsu}:Timestamp`, '--id-attr:Id', `${ns.eb3}:Messaging`];
  for (const keyReference of ['ski', 'issuer-serial'] as const) {
    const signed = await signSoap(envelope, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, ids: ['msg-1'], keyReference, createdAt: fixture.issuedAt });
    assert.not.match(signed, /BinarySecurityToken/);
    assert.match(signed, keyReference === 'ski' ? /<wsse:KeyIdentifier [^>]*ValueType="[^"]*#X509SubjectKeyIdentifier"/ : /<ds:X509IssuerSerial><ds:X509IssuerName>CN=Test Issuing CA,O=swx test<\/ds:X509IssuerName><ds:X509SerialNumber>\d+</);
    const checked = xmlsecVerifies(signed, ['--pubkey-cert-pem', file(fixture.rsa.certPem, '.pem'), ...idAttrs]);
    assert.ok(checked.ok, checked.out);
    const verdict = await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt });
    accepted(verdict);
    assert.is(verdict.signer?.subject, fixture.rsa.subject);
    const among = await verifyXml(signed, { untrustedCertsPem: fixture.ecdsa.certPem + fixture.rsa.certPem + fixture.intermediate.certPem, trustedCertsPem: fixture.root.certPem, at: fixture.issuedAt });
    accepted(among);
    refused(await verifyXml(signed, { pinnedCertsPem: fixture.ecdsa.certPem, at: fixture.issuedAt }), 'SWX_CERT_UNTRUSTED');
    // The inbound WS-Security check finds the signer among the certificates the receiver holds for the sender.
    const message = soapEnvelopeOf(signed);
    const now = () => fixture.issuedAt.getTime();
    const inbound = await checkWsSecurity(message, { certificatesPem: fixture.ecdsa.certPem + fixture.rsa.certPem, now });
    assert.is(inbound.certificatePem, fixture.rsa.certPem);
    assert.ok(inbound.signedHeaders.includes('/Envelope/Header/Messaging'));
    const without = await checkWsSecurity(message, { now }).catch((error: SwxError) => error);
    assert.is((without as SwxError).code, 'SWX_CERT_UNTRUSTED');
    const others = await checkWsSecurity(message, { certificatesPem: fixture.ecdsa.certPem, now }).catch((error: SwxError) => error);
    assert.is((others as SwxError).code, 'SWX_CERT_UNTRUSTED', String(others));
  }
  const unknown = await signSoap(envelope, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, keyReference: 'thumbprint' as never }).catch((error: Error) => error);
  assert.match(String(unknown), /keyReference "thumbprint" is not token, ski or issuer-serial/);
});

test('an attachment too large to hold, signed and judged by the SHA-256 taken as it streamed: xmlsec1 checks the signature against the whole part; a held part\'s Attachment-Content and -Complete references match the streamed digests; another part or another digest is refused', async () => {
  const fixture = await trustFixture();
  const headers = { 'content-type': 'application/octet-stream', 'content-id': '<big@swx>' };
  const body = randomBytes(300_000);
  const streamedOf = (content: Buffer): XmlAttachment => {
    const digester = attachmentDigester(headers);
    for (let at = 0; at < content.length; at += 64 * 1024) digester.update(content.subarray(at, at + 64 * 1024));
    return { contentId: 'big@swx', headers, body: Buffer.alloc(0), digests: digester.digests() };
  };
  const held: XmlAttachment = { contentId: 'big@swx', headers, body };
  const document = '<d:Declaration xmlns:d="urn:swx:declaration">42</d:Declaration>';
  const keys = { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem };

  const signedStreamed = await signXml(document, { ...keys, attachments: [streamedOf(body)], attachmentTransform: 'none' });
  const checked = xmlsecVerifies(signedStreamed, ['--pubkey-cert-pem', file(fixture.rsa.certPem, '.pem'), '--url-map:cid:big@swx', file(body, '.bin')]);
  assert.ok(checked.ok, checked.out);
  assert.match(checked.out, /References \(ok\/all\): 2\/2/);
  accepted(await verifyXml(signedStreamed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [held] }));

  const altered = Buffer.from(body);
  altered[altered.length - 1]! ^= 1;
  for (const attachmentTransform of ['content', 'complete'] as const) {
    const signed = await signXml(document, { ...keys, attachments: [held], attachmentTransform });
    const verdict = await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(body)] });
    accepted(verdict);
    assert.equal(verdict.signedAttachments, ['big@swx'], attachmentTransform);
    refused(await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(altered)] }), 'SWX_DIGEST_MISMATCH');
  }
  const sha512 = await signXml(document, { ...keys, attachments: [held], digestAlgorithm: 'sha512' });
  refused(await verifyXml(sha512, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(body)] }), 'SWX_SIG_ALG_UNSUPPORTED');
  // SHA-1 over the octets (an old ebMS 2.0 agreement's) is taken only when asked for, and judged under the archive policy.
  const sha1 = await signXml(document, { ...keys, attachments: [held], attachmentTransform: 'none', digestAlgorithm: 'sha1', allowWeak: true });
  const withSha1 = attachmentDigester(headers, { sha1: true });
  withSha1.update(body);
  accepted(await verifyXml(sha1, { pinnedCertsPem: fixture.rsa.certPem, policy: 'archive', attachments: [{ contentId: 'big@swx', headers, body: Buffer.alloc(0), digests: withSha1.digests() }] }));
  refused(await verifyXml(sha1, { pinnedCertsPem: fixture.rsa.certPem, policy: 'archive', attachments: [streamedOf(body)] }), 'SWX_SIG_ALG_UNSUPPORTED');
});

test('an XML part digested as it streams, canonicalized (exclusive c14n) on the way, matches what the held part is signed over, for each transform; XML that does not parse is refused', async () => {
  const fixture = await trustFixture();
  const keys = { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem };
  const document = '<d:Declaration xmlns:d="urn:swx:declaration">42</d:Declaration>';
  // Not canonical as written: a declaration, CR LF, attribute order, an unused namespace, references, CDATA, a comment.
  const rows = Array.from({ length: 3000 }, (_, i) => `<g:row n="${i}" xmlns:u="urn:unused" a="&#x41;">v&amp;${i}<![CDATA[<${i}>]]><!-- c --></g:row>\r\n`).join('');
  const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\r\n<?pi x?><g:rows xmlns:g="urn:swx:goods" xmlns="urn:swx:default">\r\n${rows}</g:rows>\n`, 'utf8');
  for (const type of ['application/xml', 'text/xml; charset=utf-8', 'application/vnd.swx+xml']) {
    const headers = { 'content-type': type, 'content-id': '<rows@swx>' };
    const streamedOf = (content: Buffer, step: number): XmlAttachment => {
      const digester = attachmentDigester(headers);
      for (let at = 0; at < content.length; at += step) digester.update(content.subarray(at, at + step));
      return { contentId: 'rows@swx', headers, body: Buffer.alloc(0), digests: digester.digests() };
    };
    const held: XmlAttachment = { contentId: 'rows@swx', headers, body };
    for (const attachmentTransform of ['content', 'complete', 'none'] as const) {
      const signed = await signXml(document, { ...keys, attachments: [held], attachmentTransform });
      for (const step of [5, 4096, body.length]) accepted(await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(body, step)] }));
      const altered = Buffer.from(body.toString('utf8').replace('v&amp;7<', 'v&amp;8<'), 'utf8');
      refused(await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(altered, 4096)] }), 'SWX_DIGEST_MISMATCH');
    }
    const streamed = streamedOf(body, 4096).digests!;
    assert.not.ok(streamed.content.equals(streamed.octets!), type);
    assert.throws(() => streamedOf(Buffer.from('<g:rows xmlns:g="urn:g"><a></b></g:rows>'), 3), (error: Error) => (error as SwxError).code === 'SWX_XML_MALFORMED');
    assert.throws(() => streamedOf(Buffer.from('<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'), 3), (error: Error) => (error as SwxError).code === 'SWX_XML_FORBIDDEN');
  }
});

test('a text part digested as it streams, its line ends made CR LF across chunk boundaries, matches what the held part is signed over, for each transform', async () => {
  const fixture = await trustFixture();
  const headers = { 'content-type': 'text/csv; charset=utf-8', 'content-id': '<rows@swx>' };
  // LF, CR LF, a lone CR, and runs of them: cut into 7-byte chunks, a CR and its LF fall into different chunks.
  const rows = Array.from({ length: 5000 }, (_, i) => `${i};név ${i};${['\n', '\r\n', '\r', '\r\r\n', '\n\r'][i % 5]}`).join('');
  const body = Buffer.from(rows, 'utf8');
  const streamedOf = (content: Buffer, step: number): XmlAttachment => {
    const digester = attachmentDigester(headers);
    for (let at = 0; at < content.length; at += step) digester.update(content.subarray(at, at + step));
    return { contentId: 'rows@swx', headers, body: Buffer.alloc(0), digests: digester.digests() };
  };
  const held: XmlAttachment = { contentId: 'rows@swx', headers, body };
  const document = '<d:Declaration xmlns:d="urn:swx:declaration">42</d:Declaration>';
  const keys = { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem };
  const altered = Buffer.from(body);
  altered[100] = 0x0a;
  for (const attachmentTransform of ['content', 'complete', 'none'] as const) {
    const signed = await signXml(document, { ...keys, attachments: [held], attachmentTransform });
    for (const step of [7, 4096, body.length]) accepted(await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(body, step)] }));
    refused(await verifyXml(signed, { pinnedCertsPem: fixture.rsa.certPem, attachments: [streamedOf(altered, 7)] }), 'SWX_DIGEST_MISMATCH');
  }
  // The content transform's digest is not the octets': the part has bare LFs and CRs.
  const streamed = streamedOf(body, 7).digests!;
  assert.not.ok(streamed.content.equals(streamed.octets!));
});

test('WS-Security with Ed25519 (eDelivery AS4 2.0): swx signs through signSoap, openssl verifies over xmlsec1\'s canonical SignedInfo, swx verifies', async () => {
  const fixture = await trustFixture();
  const envelope = `<S:Envelope xmlns:S="${ns.soap12}"><S:Header><eb:Messaging xmlns:eb="${ns.eb3}" xmlns:wsu="${ns.wsu}" wsu:Id="msg-1"><eb:MessageId>m-1@swx</eb:MessageId></eb:Messaging></S:Header>`
    + '<S:Body><d:Declaration xmlns:d="urn:swx:declaration">42</d:Declaration></S:Body></S:Envelope>';
  const attachment: XmlAttachment = { contentId: 'payload@swx', headers: { 'content-type': 'application/xml' }, body: Buffer.from('<p>1</p>') };
  const signed = await signSoap(envelope, { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.certPem, ids: ['msg-1'], attachments: [attachment], createdAt: fixture.issuedAt });
  assert.match(signed, /SignatureMethod Algorithm="http:\/\/www\.w3\.org\/2021\/04\/xmldsig-more#eddsa-ed25519"/);
  const verdict = await verifyXml(signed, { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem, attachments: [attachment], at: fixture.issuedAt });
  accepted(verdict);
  assert.is(verdict.algorithms?.signature, 'Ed25519');
  assert.equal(verdict.signedAttachments, ['payload@swx']);
  // xmlsec1 1.2 knows no EdDSA and no SwA transform: it judges the same signing without the attachment.
  const bare = await signSoap(envelope, { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.certPem, ids: ['msg-1'], createdAt: fixture.issuedAt });
  const { data, signature, refs } = canonicalSignedInfoByXmlsec(bare, 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256', fixture.ecdsa.certPem,
    ['--id-attr:Id', `${ns.soap12}:Body`, '--id-attr:Id', `${ns.wsu}:Timestamp`, '--id-attr:Id', `${ns.eb3}:Messaging`]);
  assert.is(refs, '3/3', 'xmlsec1 finds Messaging, Body and Timestamp good');
  const checked = run('openssl', ['pkeyutl', '-verify', '-certin', '-inkey', file(fixture.ed25519.certPem, '.pem'), '-rawin', '-in', file(data, '.bin'), '-sigfile', file(signature, '.sig')]);
  assert.ok(checked.status === 0 && checked.out.includes('Signature Verified Successfully'), checked.out);
});

test('ebMS 2.0: swx signs URI="" with the actor XPath filter and an attachment; xmlsec1 verifies it with --url-map', async () => {
  const fixture = await trustFixture();
  const envelope = `<SOAP:Envelope xmlns:SOAP="${ns.soap11}" xmlns:eb="http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"><SOAP:Header>`
    + '<eb:MessageHeader SOAP:mustUnderstand="1" eb:version="2.0"><eb:CPAId>cpa-1</eb:CPAId></eb:MessageHeader>'
    + '<eb:SyncReply SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next" eb:version="2.0"/></SOAP:Header>'
    + '<SOAP:Body><eb:Manifest eb:version="2.0"/></SOAP:Body></SOAP:Envelope>';
  const attachment: XmlAttachment = { contentId: 'payload-1@swx.example', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 1, 2, 250, 13, 10]) };
  const filter = {
    expression: 'not(ancestor-or-self::node()[@SOAP-ENV:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"] | ancestor-or-self::node()[@SOAP-ENV:actor="http://schemas.xmlsoap.org/soap/actor/next"])',
    namespaces: { 'SOAP-ENV': ns.soap11 },
  };
  const signed = await signXml(envelope, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, canonicalization: 'c14n', xpathFilter: filter, attachments: [attachment], attachmentTransform: 'none' });
  const checked = xmlsecVerifies(signed, ['--pubkey-cert-pem', file(fixture.rsa.certPem, '.pem'), `--url-map:cid:${attachment.contentId}`, file(attachment.body, '.bin')]);
  assert.ok(checked.ok, checked.out);
  assert.match(checked.out, /References \(ok\/all\): 2\/2/);
  const options = { pinnedCertsPem: fixture.rsa.certPem, attachments: [attachment] };
  const verdict = await verifyXml(signed, options);
  accepted(verdict);
  assert.equal(verdict.signedElements[0]?.excludes.sort(), ['/Envelope/Header/Signature', '/Envelope/Header/SyncReply']);
  assert.ok(signedElement(verdict, '/Envelope/Header/MessageHeader'));
  assert.is(signedElement(verdict, '/Envelope/Header/SyncReply'), undefined, 'the next MSH may change what the filter leaves out');
  accepted(await verifyXml(signed.replace('eb:version="2.0"/>', 'eb:version="2.1"/>'), options));
  refused(await verifyXml(signed.replace('cpa-1', 'cpa-2'), options), 'SWX_DIGEST_MISMATCH');
});

test('AS4 attachments: the SwA content and complete transforms digest the canonical part', async () => {
  const fixture = await trustFixture();
  const text: XmlAttachment = { contentId: 'text@swx', headers: { 'content-type': 'text/plain; Charset=UTF-8 (comment)', 'content-id': '<text@swx>' }, body: Buffer.from('line 1\nline 2\r\nend') };
  const xml: XmlAttachment = { contentId: 'xml@swx', headers: { 'content-type': 'application/xml' }, body: Buffer.from('<a:r xmlns:a="urn:a" xmlns:b="urn:b"   z="1" a="2"><a:x/></a:r>') };
  const sha256 = (octets: string) => createHash('sha256').update(octets).digest('base64');
  const expected = {
    content: [sha256('line 1\r\nline 2\r\nend'), sha256('<a:r xmlns:a="urn:a" a="2" z="1"><a:x></a:x></a:r>')],
    complete: [
      sha256('Content-ID:<text@swx>\r\nContent-Type:text/plain;charset="utf-8"\r\nline 1\r\nline 2\r\nend'),
      sha256('Content-Type:application/xml\r\n<a:r xmlns:a="urn:a" a="2" z="1"><a:x></a:x></a:r>'),
    ],
  };
  for (const transform of ['content', 'complete'] as const) {
    const signed = await signXml(declaration, { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, attachments: [text, xml], attachmentTransform: transform });
    const digests = [...signed.matchAll(/<ds:Reference URI="cid:[^"]+">[\s\S]*?<ds:DigestValue>([^<]+)</g)].map((match) => match[1]);
    assert.equal(digests, expected[transform], `${transform}: digests of the parts as SwA 1.1 canonicalises them`);
    const verdict = await verifyXml(signed, { pinnedCertsPem: fixture.ecdsa.certPem, attachments: [text, xml] });
    accepted(verdict);
    assert.equal(verdict.signedAttachments, ['text@swx', 'xml@swx']);
    // Line ends and XML formatting are what the canonical forms forgive; a changed byte is not.
    const relaxed = [{ ...text, body: Buffer.from('line 1\r\nline 2\nend') }, { ...xml, body: Buffer.from('<a:r xmlns:a="urn:a" a="2" z="1"><a:x></a:x></a:r>') }];
    accepted(await verifyXml(signed, { pinnedCertsPem: fixture.ecdsa.certPem, attachments: relaxed }));
    refused(await verifyXml(signed, { pinnedCertsPem: fixture.ecdsa.certPem, attachments: [{ ...text, body: Buffer.from('line 1\nline 3\r\nend') }, xml] }), 'SWX_DIGEST_MISMATCH');
  }
});

// ---- what xmlsec1 signs, checked by swx ----

const template = (method: string, uriAndTransforms: string, body: string) => `<?xml version="1.0"?>
<doc:Order xmlns:doc="urn:swx:order" Id="order-1">${body}<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="${method}"/>
<ds:Reference ${uriAndTransforms}<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></doc:Order>`;

for (const [name, signer, method, reference] of [
  ['enveloped RSA-SHA256', 'rsa', 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'],
  ['by Id, ECDSA-SHA256', 'ecdsa', 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
    'URI="#item-1"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'],
  ['enveloped ECDSA-SHA384 with the XPath filter', 'ecdsaP384', 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
    'URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform></ds:Transforms>'],
] as const) {
  test(`xmlsec1 signs ${name}: swx verifies it`, async () => {
    const fixture = await trustFixture();
    const credential = fixture[signer];
    const body = '<doc:Item Id="item-1" qty="2">cotton</doc:Item>';
    const signedFile = join(work, `xmlsec-${signer}-${fileCount++}.xml`);
    const made = run('xmlsec1', ['--sign', '--privkey-pem', `${file(credential.keyPem, '.pem')},${file(credential.certPem, '.pem')}`,
      '--id-attr:Id', 'urn:swx:order:Item', '--output', signedFile, file(template(method, reference, body))]);
    assert.is(made.status, 0, made.out);
    const signed = readFileSync(signedFile);
    const verdict = await verifyXml(signed, { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem });
    accepted(verdict);
    assert.is(verdict.signer?.thumbprint, thumbprint(credential.certPem));
    refused(await verifyXml(signed.toString('utf8').replace('cotton', 'linen'), { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem }), 'SWX_DIGEST_MISMATCH');
  });
}

// ---- attacks and bad certificates ----

async function signedEnvelope(): Promise<{ signed: string; pin: VerifyXmlOptions }> {
  const fixture = await trustFixture();
  const envelope = `<soap:Envelope xmlns:soap="${ns.soap11}"><soap:Header/><soap:Body><t:Transfer xmlns:t="urn:bank"><t:To>ACME</t:To><t:Amount>100</t:Amount></t:Transfer></soap:Body></soap:Envelope>`;
  const signed = await signSoap(envelope, { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem });
  return { signed, pin: { pinnedCertsPem: fixture.ecdsa.certPem } };
}

const evilBody = '<soap:Body><t:Transfer xmlns:t="urn:bank"><t:To>MALLORY</t:To><t:Amount>1000000</t:Amount></t:Transfer></soap:Body>';

test('wrapping: the signed Body moved under a Header element, a new Body with the same wsu:Id', async () => {
  const { signed, pin } = await signedEnvelope();
  accepted(await verifyXml(signed, pin));
  const body = /<soap:Body[\s\S]*<\/soap:Body>/.exec(signed)![0];
  const id = /wsu:Id="([^"]+)"/.exec(body)![1]!;
  const forged = signed.replace(body, evilBody.replace('<soap:Body>', `<soap:Body xmlns:wsu="${ns.wsu}" wsu:Id="${id}">`))
    .replace('</wsse:Security>', `</wsse:Security><w:Wrapper xmlns:w="urn:w">${body}</w:Wrapper>`);
  refused(await verifyXml(forged, pin), 'SWX_SIG_WRAPPED');
});

test('wrapping: the signed Body moved under a Header element, a new Body without Id', async () => {
  const { signed, pin } = await signedEnvelope();
  const body = /<soap:Body[\s\S]*<\/soap:Body>/.exec(signed)![0];
  const forged = signed.replace(body, evilBody).replace('</wsse:Security>', `</wsse:Security><w:Wrapper xmlns:w="urn:w">${body}</w:Wrapper>`);
  const verdict = await verifyXml(forged, pin);
  refused(verdict, 'SWX_SIG_WRAPPED');
  assert.match(verdict.detail, /\/Envelope\/Header\/Wrapper\/Body/);
});

test('wrapping: a second element anywhere with the signed element\'s Id', async () => {
  const { signed, pin } = await signedEnvelope();
  const id = /<soap:Body[^>]*wsu:Id="([^"]+)"/.exec(signed)![1]!;
  refused(await verifyXml(signed.replace('<soap:Header>', `<soap:Header><x:Note xmlns:x="urn:x" Id="${id}"/>`), pin), 'SWX_SIG_WRAPPED');
});

test('wrapping: a reference to an element outside the position the connector acts on', async () => {
  const fixture = await trustFixture();
  const order = '<o:Orders xmlns:o="urn:o"><o:Order Id="o-1"><o:Qty>1</o:Qty></o:Order></o:Orders>';
  const signed = await signXml(order, { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, mode: 'detached', ids: ['o-1'] });
  const genuine = await verifyXml(signed, { pinnedCertsPem: fixture.ecdsa.certPem });
  assert.is(signedElement(genuine, '/Orders/Order')?.uri, '#o-1');
  // The signed Order goes into an extension element; an unsigned Order takes its place.
  const moved = signed.replace(/<o:Order Id="o-1">[\s\S]*?<\/o:Order>/, (original) => `<o:Order><o:Qty>9999</o:Qty></o:Order><o:Archive>${original}</o:Archive>`);
  const verdict = await verifyXml(moved, { pinnedCertsPem: fixture.ecdsa.certPem });
  accepted(verdict);
  assert.equal(verdict.signedElements.map((element) => element.path), ['/Orders/Archive/Order']);
  assert.is(signedElement(verdict, '/Orders/Order'), undefined, 'the Order acted on is not the one signed');
  // Two Orders side by side: neither is "/Orders/Order" any more.
  const doubled = signed.replace(/<o:Order Id="o-1">/, '<o:Order><o:Qty>5</o:Qty></o:Order><o:Order Id="o-1">');
  assert.is(signedElement(await verifyXml(doubled, { pinnedCertsPem: fixture.ecdsa.certPem }), '/Orders/Order'), undefined);
});

test('hostile XML: DTDs, external and parameter entities, entity bombs, size and depth', async () => {
  const { signed, pin } = await signedEnvelope();
  const body = signed.replace(/^<\?xml[^>]*\?>/, '');
  const cases: [string, string][] = [
    [`<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>${body.replace('>100<', '>&x;<')}`, 'SWX_XML_FORBIDDEN'],
    [`<!DOCTYPE e [<!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p;]>${body}`, 'SWX_XML_FORBIDDEN'],
    [`<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>${body.replace('>100<', '>&lol2;<')}`, 'SWX_XML_FORBIDDEN'],
    [body.replace('>100<', '>&lol2;<'), 'SWX_XML_MALFORMED'],
    [body.replace('</soap:Envelope>', ''), 'SWX_XML_MALFORMED'],
    ['not xml at all', 'SWX_XML_MALFORMED'],
  ];
  for (const [xml, code] of cases) refused(await verifyXml(xml, pin), code);
  refused(await verifyXml(body, { ...pin, limits: { maxBytes: 1024 } }), 'SWX_XML_LIMIT');
  const deep = `<a>${'<b>'.repeat(200)}${'</b>'.repeat(200)}</a>`;
  refused(await verifyXml(deep, pin), 'SWX_XML_LIMIT');
});

test('tampering: digests, DigestValues and SignatureValues', async () => {
  const { signed, pin } = await signedEnvelope();
  refused(await verifyXml(signed.replace('>100<', '>1000000<'), pin), 'SWX_DIGEST_MISMATCH');
  const digestValue = /<ds:DigestValue>([^<]+)</.exec(signed)![1]!;
  const flipped = Buffer.from(digestValue, 'base64');
  flipped[0]! ^= 1;
  const badDigest = await verifyXml(signed.replace(digestValue, flipped.toString('base64')), pin);
  refused(badDigest, 'SWX_DIGEST_MISMATCH');
  assert.equal(badDigest.references?.map((ref) => ref.valid), [false, true], 'each reference has its own verdict');
  const signatureValue = /<ds:SignatureValue>([^<]+)</.exec(signed)![1]!;
  const wrong = Buffer.from(signatureValue, 'base64');
  wrong[10]! ^= 1;
  refused(await verifyXml(signed.replace(signatureValue, wrong.toString('base64')), pin), 'SWX_SIG_INVALID');
  refused(await verifyXml(signed.replace(signatureValue, ''), pin), 'SWX_SIG_INVALID');
});

test('unknown algorithms and transforms are refused before anything is computed', async () => {
  const { signed, pin } = await signedEnvelope();
  const method = /SignatureMethod Algorithm="([^"]+)"/.exec(signed)![1]!;
  refused(await verifyXml(signed.replace(method, 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256'), pin), 'SWX_SIG_ALG_UNSUPPORTED');
  refused(await verifyXml(signed.replace('<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2"/>'), pin), 'SWX_SIG_ALG_UNSUPPORTED');
  refused(await verifyXml(signed.replace('<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>'), pin), 'SWX_SIG_ALG_UNSUPPORTED');
});

test('an XPath filter that would search the document at every node is refused', async () => {
  const fixture = await trustFixture();
  for (const expression of ['count(//*) > 0', 'not(descendant::x)', 'id("a")', 'not(/a)']) {
    const signed = await signXml('<a><b/></a>', { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, xpathFilter: { expression: 'true()', namespaces: {} } });
    const verdict = await verifyXml(signed.replace('>true()<', `>${expression.replace(/</g, '&lt;').replace(/>/g, '&gt;')}<`), { pinnedCertsPem: fixture.ecdsa.certPem });
    refused(verdict, 'SWX_SIG_ALG_UNSUPPORTED');
    assert.match(verdict.detail, /XPath filter refused/);
  }
});

test('references that point nowhere', async () => {
  const { signed, pin } = await signedEnvelope();
  const id = /<soap:Body[^>]*wsu:Id="([^"]+)"/.exec(signed)![1]!;
  refused(await verifyXml(signed.replace(`URI="#${id}"`, 'URI="#nowhere"'), pin), 'SWX_SIG_REF_UNRESOLVED');
  refused(await verifyXml(signed.replace(`URI="#${id}"`, 'URI="http://127.0.0.1:1/body.xml"'), pin), 'SWX_SIG_REF_UNRESOLVED');
  const bodyReference = new RegExp(`URI="#${id}"><ds:Transforms>.*?</ds:Transforms>`);
  refused(await verifyXml(signed.replace(bodyReference, 'URI="cid:missing@swx">'), pin), 'SWX_SIG_REF_UNRESOLVED');
});

test('certificates: expired, untrusted, wrong usage, not the pinned one', async () => {
  const fixture = await trustFixture();
  const sign = (credential: TestCredential) => signXml(declaration, { keyPem: credential.keyPem, certPem: credential.chainPem });
  const trusted = { trustedCertsPem: fixture.root.certPem };

  const expired = await sign(fixture.expired);
  const old = await verifyXml(expired, trusted);
  refused(old, 'SWX_CERT_EXPIRED');
  assert.is(old.certificate?.status, 'expired');
  accepted(await verifyXml(expired, { ...trusted, at: new Date('2020-06-01T00:00:00Z') }));
  refused(await verifyXml(expired), 'SWX_CERT_EXPIRED');

  const stranger = await verifyXml(await sign(fixture.stranger), trusted);
  refused(stranger, 'SWX_CERT_UNTRUSTED');
  assert.is(stranger.certificate?.status, 'untrusted');

  const usage = await verifyXml(await sign(fixture.wrongUsage), trusted);
  refused(usage, 'SWX_CERT_USAGE');
  assert.is(usage.certificate?.status, 'wrong-usage');

  const ecdsa = await sign(fixture.ecdsa);
  refused(await verifyXml(ecdsa, { pinnedCertsPem: fixture.rsa.certPem }), 'SWX_SIG_KEY_MISMATCH');
  refused(await verifyXml(ecdsa, { publicKeysPem: fixture.rsa.certPem }), 'SWX_SIG_KEY_MISMATCH');
  const pinnedKey = await verifyXml(ecdsa, { publicKeysPem: fixture.ecdsa.certPem });
  accepted(pinnedKey);
  assert.is(pinnedKey.certificate?.trust, 'pinned');

  // No KeyInfo at all: the pin supplies the key.
  const bare = await signXml(declaration, { keyPem: fixture.ecdsa.keyPem });
  accepted(await verifyXml(bare, { pinnedCertsPem: fixture.ecdsa.certPem }));
  refused(await verifyXml(bare), 'SWX_CERT_UNTRUSTED');
  refused(await verifyXml(bare, { trustedCertsPem: fixture.root.certPem, publicKeysPem: fixture.ecdsa.certPem }), 'SWX_CERT_UNTRUSTED');
});

test('verifyXml never throws: bad options and inputs become verdicts', async () => {
  const { signed } = await signedEnvelope();
  refused(await verifyXml(signed, { pinnedCertsPem: 'not a certificate' }), 'SWX_BAD_REQUEST');
  refused(await verifyXml(signed, { publicKeysPem: 'not a key' }), 'SWX_BAD_REQUEST');
  refused(await verifyXml(signed, { at: new Date('garbage') }), 'SWX_BAD_REQUEST');
  refused(await verifyXml(42 as never), 'SWX_BAD_REQUEST');
  refused(await verifyXml(signed.replace(/<wsse:BinarySecurityToken[^>]*>[^<]+</, (token) => token.replace(/>[^<]+</, '>AAAA<')), {}), 'SWX_BAD_REQUEST');
  const two = `<r>${'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>'.repeat(2)}</r>`;
  refused(await verifyXml(two), 'SWX_BAD_REQUEST');
});

test('the test PKI: openssl agrees on its chains, expiry, usage and revocation', async () => {
  const fixture = await trustFixture();
  const chain = file(fixture.root.certPem + fixture.intermediate.certPem, '.pem');
  const verify = (credential: TestCredential, ...extra: string[]) => run('openssl', ['verify', '-CAfile', chain, ...extra, file(credential.certPem, '.pem')]);
  for (const credential of [fixture.rsa, fixture.ecdsa, fixture.ecdsaP384, fixture.ed25519, fixture.wrongUsage]) assert.is(verify(credential).status, 0, credential.subject);
  assert.match(verify(fixture.expired).out, /certificate has expired/);
  assert.is(verify(fixture.expired, '-attime', String(Date.parse('2020-06-01T00:00:00Z') / 1000)).status, 0);
  assert.match(verify(fixture.stranger).out, /unable to get local issuer certificate/);
  assert.match(verify(fixture.wrongUsage, '-purpose', 'smimesign').out, /unsuitable certificate purpose/);
  const crl = ['-crl_check', '-CRLfile', file(fixture.crlPem, '.pem')];
  assert.match(verify(fixture.revoked, ...crl).out, /certificate revoked/);
  assert.is(verify(fixture.ecdsa, ...crl).status, 0);
});

test.run();
