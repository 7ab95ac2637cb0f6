// The fast XMLDSig path against the reference verifier: on every conformance XML file (keys and times from INDEX.md),
// on documents signed across algorithm, digest, canonicalisation and placement choices, and on mutations of them at
// every kind of byte position, verifyXmlFast either declines (undefined) or gives the reference's verdict: the same
// valid, code and signed elements. It must also actually cover the common profiles, or it would be no fast path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignedXml } from 'xml-crypto';
import { createHash } from 'node:crypto';
import { signSoap, signXml, verifyXmlReference, type SignXmlOptions, type VerifyXmlOptions, type XmlAttachment, type XmlVerdict } from '../../engine/trust/index.ts';
import { verifyXmlFast } from '../../engine/trust/xmldsig-fast.ts';
import { trustFixture, type TestCredential } from '../helpers/trust-fixture.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const vector = (path: string) => readFileSync(join(conformance, path));
const vectorText = (path: string) => readFileSync(join(conformance, path), 'utf8');
// The conformance vectors' certificates are fixed, so they are judged on a fixed day as well as at their own time;
// what this file signs with the run-time fixture is judged at the fixture's own time.
const vectorDay = new Date('2026-11-27T12:00:00Z');

interface Outcome { covered: boolean; reference: XmlVerdict; fast?: XmlVerdict }

/** Both verifiers on the same input; whenever the fast one answers, it answers as the reference. */
async function compare(label: string, xml: Buffer | string, options: VerifyXmlOptions): Promise<Outcome> {
  const reference = await verifyXmlReference(xml, options);
  const fast = verifyXmlFast(xml, options);
  if (fast) {
    const shape = (v: XmlVerdict) => ({ valid: v.valid, code: v.code, signedElements: v.signedElements, signedAttachments: v.signedAttachments });
    assert.equal(shape(fast), shape(reference), `${label}\n reference: ${reference.code} ${reference.detail}\n fast:      ${fast.code} ${fast.detail}`);
    // Beyond the three that must agree: what a valid verdict reports about the signer and its certificate.
    if (reference.valid) {
      assert.equal([fast.signer, fast.certificate?.status, fast.certificate?.trust, fast.signedAt, fast.algorithms],
        [reference.signer, reference.certificate?.status, reference.certificate?.trust, reference.signedAt, reference.algorithms], label);
    }
  }
  return { covered: fast !== undefined, reference, ...(fast ? { fast } : {}) };
}

// ---- conformance: INDEX.md's vectors with the signer keys and the times it gives ----

const phaosAnchor = `-----BEGIN CERTIFICATE-----\n${vector('xmlsec/phaos-xmldsig-three/certs/rsa-ca-cert.der').toString('base64')}\n-----END CERTIFICATE-----\n`;
const conformanceVectors: [path: string, options: VerifyXmlOptions][] = [
  ['phase4/_derived/dataport1-mustunderstand.as4in.envelope.xml', { pinnedCertsPem: vectorText('phase4/_derived/dataport1-mustunderstand.as4in.signer.pem'), at: new Date('2022-03-07T12:00:00Z') }],
  ['phase4/_derived/dataport1.as4in.envelope.xml', { pinnedCertsPem: vectorText('phase4/_derived/dataport1.as4in.signer.pem'), at: new Date('2022-03-07T12:00:00Z') }],
  ['phase4/testfiles/TestReceipt12.xml', { pinnedCertsPem: vectorText('phase4/_derived/TestReceipt12.xml.signer.pem'), at: new Date('2025-12-05T14:03:40Z') }],
  ['phase4/testfiles/TestReceipt11.xml', { pinnedCertsPem: vectorText('phase4/_derived/dummy-pw-test.jks.ph-as4.cert.pem'), at: new Date('2017-06-13T13:36:35Z') }],
  ['phase4/testfiles/WrongSigningAlgorithm.xml', { pinnedCertsPem: vectorText('phase4/_derived/WrongSigningAlgorithm.xml.signer.pem'), at: new Date('2016-06-01T00:00:00Z') }],
  ['phase4/testfiles/WrongSigningDigestAlgorithm.xml', { pinnedCertsPem: vectorText('phase4/_derived/WrongSigningDigestAlgorithm.xml.signer.pem'), at: new Date('2016-06-01T00:00:00Z') }],
  ['phase4/unused/TestMessage11.xml', { pinnedCertsPem: vectorText('phase4/_derived/TestMessage11.xml.signer.pem'), at: new Date('2016-06-01T00:00:00Z') }],
  ['navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part1.soap.xml', { pinnedCertsPem: vectorText('navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer'), at: new Date('2023-08-29T10:56:50Z') }],
  ['navikt-ebxml-processor/_derived/acknowledgment.eml.part1.soap.xml', { pinnedCertsPem: vectorText('navikt-ebxml-processor/_derived/acknowledgment.eml.signer.pem'), at: new Date('2023-11-21T14:45:47Z') }],
  ['xmlsec/aleksey-xmldsig-01/enveloping-sha256-rsa-sha256.xml', { trustedCertsPem: vectorText('xmlsec/keys/cacert.pem'), at: vectorDay }],
  ['xmlsec/aleksey-xmldsig-01/enveloped-sha256-ecdsa-sha256.xml', { publicKeysPem: { 'TestKeyName-ec-prime256v1': vectorText('xmlsec/keys/ec/ec-prime256v1-pubkey.pem') }, at: vectorDay }],
  ['xmlsec/merlin-exc-c14n-one/exc-signature.xml', { at: vectorDay, policy: 'archive' }],
  ['xmlsec/phaos-xmldsig-three/signature-rsa-enveloped.xml', { trustedCertsPem: phaosAnchor, at: new Date('2009-01-01T10:00:00Z'), policy: 'archive' }],
  ['xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-digest-val.xml', { trustedCertsPem: phaosAnchor, at: new Date('2009-01-01T10:00:00Z'), policy: 'archive' }],
  ['xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-sig.xml', { trustedCertsPem: phaosAnchor, at: new Date('2009-01-01T10:00:00Z'), policy: 'archive' }],
  ['phase4/testfiles/ErrorMessage.xml', {}],
  ['hermes/_derived/test1.msg.part1.soap.xml', {}],
];

test('conformance: every XML vector, at its own time and on 2026-11-27; the AS4 profiles are covered', async () => {
  const covered: string[] = [];
  for (const [path, options] of conformanceVectors) {
    for (const at of [options.at, vectorDay]) {
      const outcome = await compare(`${path} at ${at?.toISOString()}`, vector(path), { ...options, ...(at ? { at } : {}) });
      if (outcome.covered && at === options.at) covered.push(path);
    }
  }
  for (const path of ['phase4/_derived/dataport1-mustunderstand.as4in.envelope.xml', 'phase4/_derived/dataport1.as4in.envelope.xml', 'phase4/testfiles/TestReceipt12.xml', 'phase4/testfiles/TestReceipt11.xml']) {
    assert.ok(covered.includes(path), `the fast path declined ${path}`);
  }
});

// ---- generated: what swx (and xml-crypto) sign, across the choices a signer has ----

const invoice = '<?xml version="1.0" encoding="UTF-8"?>\n<!-- issued by the seller -->\n'
  + '<inv:Invoice xmlns:inv="urn:example:invoice" xmlns="urn:example:default" xmlns:x="urn:example:x" Id="inv-1" x:flag="yes">\n'
  + '  <!-- a comment with & and <markup> -->\n'
  + '  <Party role="seller" x:country="FR">Ateliers &amp; Co — “quoted” &lt;tag&gt; cr&#xD;tab&#9;</Party>\n'
  + '  <Lines Id="lines-1"><Line n="1" x:unit="kg">10</Line><Line n="2" b="&quot;a&#10;b&quot;">20</Line></Lines>\n'
  + '  <Empty/><Note xmlns="">no namespace, <![CDATA[raw < & >]]></Note>\n'
  + '  <x:Ext xmlns:y="urn:unused" xmlns:x="urn:example:x">ext</x:Ext>\n'
  + '</inv:Invoice>\n';

const envelope = (soap: string) => `<S:Envelope xmlns:S="${soap}"><S:Header>`
  + '<eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="msg-1">'
  + '<eb:MessageId>m-1@swx</eb:MessageId></eb:Messaging></S:Header>'
  + `<S:Body><d:Declaration xmlns:d="urn:swx:declaration" d:no="AA/BE/13/101/0001">${'<d:Item qty="2">cotton</d:Item>'.repeat(20)}</d:Declaration></S:Body></S:Envelope>`;
const soap11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const soap12 = 'http://www.w3.org/2003/05/soap-envelope';

type Key = 'rsa' | 'ecdsa' | 'ecdsaP384' | 'ed25519';
const algorithmsByKey: [Key, NonNullable<SignXmlOptions['signatureAlgorithm']>][] = [
  ['rsa', 'rsa-sha256'], ['rsa', 'rsa-sha384'], ['rsa', 'rsa-sha512'], ['rsa', 'rsa-pss-sha256'], ['rsa', 'rsa-pss-sha384'], ['rsa', 'rsa-pss-sha512'],
  ['ecdsa', 'ecdsa-sha256'], ['ecdsaP384', 'ecdsa-sha384'], ['ecdsa', 'ecdsa-sha512'], ['ed25519', 'ed25519'],
];
const digests = ['sha256', 'sha384', 'sha512'] as const;
const canonicalizations = ['exc-c14n', 'c14n', 'exc-c14n#WithComments', 'c14n#WithComments'] as const;

interface Sample { label: string; xml: string; options: VerifyXmlOptions }

async function samples(): Promise<Sample[]> {
  const fixture = await trustFixture();
  const chain = { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem, at: fixture.issuedAt };
  const pinned = (credential: TestCredential) => ({ pinnedCertsPem: credential.certPem, at: fixture.issuedAt });
  const made: Sample[] = [];
  for (const [i, [key, signatureAlgorithm]] of algorithmsByKey.entries()) {
    const credential = fixture[key];
    const options: SignXmlOptions = {
      keyPem: credential.keyPem, certPem: credential.certPem, signatureAlgorithm,
      digestAlgorithm: digests[i % 3]!, canonicalization: canonicalizations[i % 4]!,
      ...(i % 5 === 0 ? { inclusiveNamespaces: ['x', 'inv'] } : {}),
    };
    made.push({ label: `enveloped ${signatureAlgorithm} ${options.digestAlgorithm} ${options.canonicalization}`, xml: await signXml(invoice, options), options: i % 2 ? chain : pinned(credential) });
  }
  for (const canonicalization of canonicalizations) {
    const options = { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, canonicalization };
    made.push({ label: `detached by Id, ${canonicalization}`, xml: await signXml(invoice, { ...options, mode: 'detached', ids: ['lines-1', 'inv-1'] }), options: chain });
    made.push({ label: `enveloping, ${canonicalization}`, xml: await signXml(invoice, { ...options, mode: 'enveloping' }), options: pinned(fixture.ecdsa) });
  }
  for (const [soap, credential] of [[soap11, fixture.rsa], [soap12, fixture.ecdsa], [soap12, fixture.ed25519]] as const) {
    const xml = await signSoap(envelope(soap), { keyPem: credential.keyPem, certPem: credential.certPem, ids: ['msg-1'], createdAt: fixture.issuedAt });
    made.push({ label: `WS-Security ${soap} ${credential.subject}`, xml, options: chain });
  }
  // xml-crypto's own output: an unprefixed ds namespace and its Id attributes.
  for (const canonicalizationAlgorithm of ['http://www.w3.org/2001/10/xml-exc-c14n#', 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315']) {
    const signer = new SignedXml({
      privateKey: fixture.rsa.keyPem, publicCert: fixture.rsa.certPem, canonicalizationAlgorithm,
      signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      getKeyInfoContent: () => `<X509Data><X509Certificate>${fixture.rsa.certPem.replace(/-----[A-Z ]+-----|\s/g, '')}</X509Certificate></X509Data>`,
    });
    signer.addReference({ xpath: "//*[local-name(.)='Lines']", transforms: [canonicalizationAlgorithm], digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
    signer.addReference({ xpath: '/*', transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', canonicalizationAlgorithm], digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha512' });
    signer.computeSignature(invoice);
    made.push({ label: `xml-crypto ${canonicalizationAlgorithm}`, xml: signer.getSignedXml(), options: pinned(fixture.rsa) });
  }
  return made;
}

test('generated: every algorithm, digest, canonicalisation and placement verifies the same, and fast covers them all', async () => {
  for (const sample of await samples()) {
    const outcome = await compare(sample.label, sample.xml, sample.options);
    assert.ok(outcome.covered, `the fast path declined ${sample.label}`);
    assert.is(outcome.reference.code, 'SWX_OK', `${sample.label}: ${outcome.reference.detail}`);
  }
});

test('generated: certificate outcomes (expired, untrusted, pinned elsewhere, wrong usage) agree', async () => {
  const fixture = await trustFixture();
  const chain = { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem };
  const sign = (credential: TestCredential) => signXml(invoice, { keyPem: credential.keyPem, certPem: credential.certPem });
  const cases: [string, string, VerifyXmlOptions, string][] = [
    ['expired', await sign(fixture.expired), { ...chain, at: fixture.issuedAt }, 'SWX_CERT_EXPIRED'],
    ['expired, judged in its time', await sign(fixture.expired), { ...chain, at: new Date('2020-06-01T00:00:00Z') }, 'SWX_OK'],
    ['expired, no anchor', await sign(fixture.expired), { at: fixture.issuedAt }, 'SWX_CERT_EXPIRED'],
    ['another root', await sign(fixture.stranger), chain, 'SWX_CERT_UNTRUSTED'],
    ['wrong usage', await sign(fixture.wrongUsage), chain, 'SWX_CERT_USAGE'],
    ['pinned to another certificate', await sign(fixture.ecdsa), { pinnedCertsPem: fixture.rsa.certPem }, 'SWX_SIG_KEY_MISMATCH'],
    ['pinned to another key', await sign(fixture.ecdsa), { publicKeysPem: fixture.rsa.certPem }, 'SWX_SIG_KEY_MISMATCH'],
    ['pinned key', await sign(fixture.ecdsa), { publicKeysPem: fixture.ecdsa.certPem }, 'SWX_OK'],
    ['nothing given: integrity only', await sign(fixture.ecdsa), {}, 'SWX_OK'],
  ];
  for (const [label, xml, options, code] of cases) {
    const outcome = await compare(label, xml, options);
    assert.ok(outcome.covered, `the fast path declined ${label}`);
    assert.is(outcome.reference.code, code, `${label}: ${outcome.reference.detail}`);
  }
});

test('declined: where the reference canonicalises unlike the specifications (and xmlsec1), the fast path leaves it the verdict', async () => {
  const fixture = await trustFixture();
  const key = { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem };
  const options = { pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt };
  const withComments = await signXml(invoice, { ...key, canonicalization: 'c14n#WithComments' });
  const cases: [string, string, string][] = [
    ['a processing instruction in signed content', await signXml(invoice.replace('<Empty/>', '<?audit step="2"?><Empty/>'), key), 'SWX_OK'],
    ['inclusive c14n below an ancestor\'s xml:lang', await signXml(invoice.replace('Id="inv-1"', 'Id="inv-1" xml:lang="fr"'), { ...key, mode: 'detached', ids: ['lines-1'], canonicalization: 'c14n' }), 'SWX_OK'],
    ['an xmlns:xml declaration', await signXml(invoice.replace('<Lines ', '<Lines xmlns:xml="http://www.w3.org/XML/1998/namespace" '), { ...key, canonicalization: 'c14n' }), 'SWX_OK'],
    ['#default in the PrefixList', await signXml(invoice, { ...key, inclusiveNamespaces: ['#default', 'x'] }), 'SWX_OK'],
    ['a PrefixList naming an attribute\'s local name', await signXml(invoice, { ...key, inclusiveNamespaces: ['flag'] }), 'SWX_OK'],
    ['a comment with markup characters in a SignedInfo canonicalised with comments', withComments.replace('<ds:SignatureMethod', '<!-- a & b --><ds:SignatureMethod'), 'SWX_SIG_INVALID'],
  ];
  for (const [label, xml, code] of cases) {
    const outcome = await compare(label, xml, options);
    assert.not.ok(outcome.covered, `the fast path answered ${label}`);
    assert.is(outcome.reference.code, code, `${label}: ${outcome.reference.detail}`);
  }
});

// ---- mutated: every kind of byte position, and the attacks ----

/** A deterministic choice of positions (so a failure can be reproduced), spread over the whole document. */
function positions(length: number, count: number): number[] {
  const step = Math.max(1, Math.floor(length / count));
  return Array.from({ length: Math.min(count, length) }, (_, i) => Math.min(length - 1, i * step + (i % step)));
}

function flipAt(xml: string, position: number): string {
  const c = xml[position]!;
  const flipped = /[A-Za-z0-9]/.test(c) ? (c === 'A' ? 'B' : c === '0' ? '1' : String.fromCharCode(c.charCodeAt(0) ^ 1)) : c === ' ' ? '\t' : 'x';
  return xml.slice(0, position) + flipped + xml.slice(position + 1);
}

/** The position of each kind of content in a signed document: text, attribute values, names, digests, signature. */
function classified(xml: string): Record<string, number[]> {
  const classes: Record<string, number[]> = { text: [], attribute: [], name: [], digest: [], signatureValue: [], whitespace: [] };
  const inside = (open: string, close: string, into: number[]) => {
    for (let at = xml.indexOf(open); at >= 0; at = xml.indexOf(open, at + 1)) {
      const start = at + open.length;
      const end = xml.indexOf(close, start);
      for (let i = start; i < end; i += Math.max(1, Math.floor((end - start) / 4))) into.push(i);
    }
  };
  inside('DigestValue>', '<', classes.digest!);
  inside('SignatureValue>', '<', classes.signatureValue!);
  for (const match of xml.matchAll(/="([^"]+)"/g)) classes.attribute!.push(match.index + 2 + Math.floor(match[1]!.length / 2));
  for (const match of xml.matchAll(/<([A-Za-z][\w:.-]*)/g)) classes.name!.push(match.index + 1 + Math.floor(match[1]!.length / 2));
  for (const match of xml.matchAll(/>([^<\s][^<]*)</g)) classes.text!.push(match.index + 1 + Math.floor(match[1]!.length / 2));
  for (const match of xml.matchAll(/>(\s+)</g)) classes.whitespace!.push(match.index + 1);
  return classes;
}

test('mutated: a flipped character in every kind of position gives the same verdict', async () => {
  const fixture = await trustFixture();
  const chain = { trustedCertsPem: fixture.root.certPem, untrustedCertsPem: fixture.intermediate.certPem, at: fixture.issuedAt };
  const documents = [
    await signSoap(envelope(soap12), { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, ids: ['msg-1'], createdAt: fixture.issuedAt }),
    await signXml(invoice, { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem, canonicalization: 'c14n' }),
    await signXml(invoice, { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.certPem, mode: 'detached', ids: ['lines-1'], inclusiveNamespaces: ['x'] }),
  ];
  const codes = new Set<string>();
  let covered = 0;
  let total = 0;
  for (const [d, xml] of documents.entries()) {
    for (const [kind, at] of Object.entries(classified(xml))) {
      for (const position of at) {
        const outcome = await compare(`document ${d}, ${kind} at ${position}`, flipAt(xml, position), chain);
        codes.add(outcome.reference.code);
        total++;
        if (outcome.covered) covered++;
      }
    }
    for (const position of positions(xml.length, 60)) {
      const outcome = await compare(`document ${d}, byte ${position}`, flipAt(xml, position), chain);
      codes.add(outcome.reference.code);
      total++;
      if (outcome.covered) covered++;
    }
  }
  for (const code of ['SWX_OK', 'SWX_DIGEST_MISMATCH', 'SWX_SIG_INVALID', 'SWX_XML_MALFORMED']) assert.ok(codes.has(code), `no mutation gave ${code}: ${[...codes].join(', ')}`);
  assert.ok(covered > total / 2, `the fast path answered ${covered} of ${total}`);
});

test('mutated: duplicated Ids, moved elements, inserted whitespace and comments, renamed prefixes', async () => {
  const fixture = await trustFixture();
  const options = { pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt };
  const signed = await signSoap(envelope(soap11), { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, ids: ['msg-1'], createdAt: fixture.issuedAt });
  const bodyId = /<S:Body[^>]*wsu:Id="([^"]+)"/.exec(signed)![1]!;
  const body = /<S:Body[\s\S]*<\/S:Body>/.exec(signed)![0];
  const enveloped = await signXml(invoice, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem });
  const detached = await signXml(invoice, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem, mode: 'detached', ids: ['lines-1'] });
  const cases: [string, string, string][] = [
    ['the signed Body moved into the Header, a forged Body in its place', signed.replace(body, '<S:Body><d:Declaration xmlns:d="urn:swx:declaration">forged</d:Declaration></S:Body>').replace('</S:Header>', `${body.replace('<S:Body', '<S:Body')}</S:Header>`), 'SWX_SIG_WRAPPED'],
    ['a second element with the Body\'s Id', signed.replace('<S:Header>', `<S:Header><x:Copy xmlns:x="urn:x" Id="${bodyId}"/>`), 'SWX_SIG_WRAPPED'],
    ['a duplicated Id in detached content', detached.replace('<Empty/>', '<Empty Id="lines-1"/>'), 'SWX_SIG_WRAPPED'],
    ['the signed Id again as a namespace declaration xmlns:Id (an Id attribute to a DOM)', detached.replace('<Empty/>', '<Empty xmlns:Id="lines-1"/>'), 'SWX_SIG_WRAPPED'],
    ['the referenced Id removed', detached.replace('Id="lines-1"', 'Id="lines-2"'), 'SWX_SIG_REF_UNRESOLVED'],
    ['whitespace inserted in signed content', signed.replace('<d:Item qty="2">', '<d:Item qty="2"> '), 'SWX_DIGEST_MISMATCH'],
    ['whitespace inserted inside a tag', signed.replace('<d:Item qty="2">', '<d:Item  qty="2" >'), 'SWX_OK'],
    ['a comment inserted in signed content (same-document references drop comments)', signed.replace('<d:Item qty="2">', '<d:Item qty="2"><!-- note -->'), 'SWX_OK'],
    ['a comment inserted in SignedInfo', signed.replace('<ds:SignatureMethod', '<!-- c --><ds:SignatureMethod'), 'SWX_OK'],
    ['the Body prefix renamed consistently', signed.replace(/S:Body/g, 'T:Body').replace('<T:Body', `<T:Body xmlns:T="${soap11}"`), 'SWX_DIGEST_MISMATCH'],
    ['a namespace prefix renamed in the signed content', signed.replace(/d:/g, 'e:').replace('xmlns:d=', 'xmlns:e='), 'SWX_DIGEST_MISMATCH'],
    ['the enveloped signature moved out of the root', enveloped.replace(/(<ds:Signature[\s\S]*<\/ds:Signature>)([\s\S]*)<\/inv:Invoice>/, '$2<Wrapper>$1</Wrapper></inv:Invoice>'), 'SWX_DIGEST_MISMATCH'],
    ['a second signature beside the first', signed.replace('</wsse:Security>', `${/<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0]}</wsse:Security>`), 'SWX_BAD_REQUEST'],
    ['no signature', signed.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, ''), 'SWX_SIG_MISSING'],
    ['a DOCTYPE in front', `<!DOCTYPE x [<!ENTITY e "e">]>${signed}`, 'SWX_XML_FORBIDDEN'],
  ];
  for (const [label, xml, code] of cases) {
    const outcome = await compare(label, xml, options);
    assert.is(outcome.reference.code, code, `${label}: ${outcome.reference.detail}`);
  }
});

// ---- MIME parts by cid: (AS4, ebMS 2.0): the same digests, the same refusals ----

const part = (contentId: string, contentType: string, body: string | Buffer, extra: Record<string, string> = {}): XmlAttachment =>
  ({ contentId, headers: { 'content-type': contentType, 'content-id': `<${contentId}>`, ...extra }, body: Buffer.from(body) });
const parts = [
  part('payload-1@swx', 'application/octet-stream', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256))),
  part('text-2@swx', 'text/plain; charset=UTF-8', 'line one\nline two\r\nline three\r'),
  part('xml-3@swx', 'application/xml', '<?xml version="1.0"?><d:Doc xmlns:d="urn:d" b="2" a="1"><d:x/><!-- c --></d:Doc>', { 'content-disposition': 'attachment; filename="d.xml"' }),
  part('name with space%@swx', 'application/json', '{"n":1}'),
];

test('attachments: signed by cid: with every transform, tampered, missing, doubled, streamed; fast and reference agree', async () => {
  const fixture = await trustFixture();
  const options = { pinnedCertsPem: fixture.ed25519.certPem, at: fixture.issuedAt };
  const as4 = await signSoap(envelope(soap12), { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.certPem, ids: ['msg-1'], attachments: parts, createdAt: fixture.issuedAt });
  const key = { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.certPem };
  const complete = await signXml(envelope(soap12), { ...key, ids: ['msg-1'], attachments: parts, attachmentTransform: 'complete' });
  const plain = await signXml(envelope(soap11), { ...key, attachments: parts, attachmentTransform: 'none', digestAlgorithm: 'sha512' });
  const tampered = (index: number, body: Buffer | string) => parts.map((p, i) => (i === index ? { ...p, body: Buffer.from(body) } : p));
  const streamed = (digest: 'sha256' | 'sha512') => parts.map((p, i) => (i === 0 ? { ...p, body: Buffer.alloc(0), digests: { content: createHash(digest).update(p.body).digest() } } : p));
  const cases: [string, string, readonly XmlAttachment[], string][] = [
    ['AS4: Attachment-Content transform', as4, parts, 'SWX_OK'],
    ['Attachment-Complete transform', complete, parts, 'SWX_OK'],
    ['no transform (ebMS 2.0), SHA-512', plain, parts, 'SWX_OK'],
    ['parts in another order', as4, [...parts].reverse(), 'SWX_OK'],
    ['a binary payload changed', as4, tampered(0, 'x'), 'SWX_DIGEST_MISMATCH'],
    ['text with its line ends changed (canonical the same)', as4, tampered(1, 'line one\r\nline two\nline three\n'), 'SWX_OK'],
    ['text changed', as4, tampered(1, 'line one\nline 2\r\nline three\r'), 'SWX_DIGEST_MISMATCH'],
    ['XML re-serialised (canonical the same)', as4, tampered(2, '<d:Doc xmlns:d="urn:d" a="1" b="2"><d:x></d:x></d:Doc>'), 'SWX_OK'],
    ['XML that does not parse', as4, tampered(2, '<d:Doc xmlns:d="urn:d">'), 'SWX_XML_MALFORMED'],
    ['XML with a DOCTYPE', as4, tampered(2, '<!DOCTYPE d [<!ENTITY e "e">]><d>&e;</d>'), 'SWX_XML_FORBIDDEN'],
    ['a MIME header changed under the complete transform', complete, parts.map((p, i) => (i === 2 ? { ...p, headers: { ...p.headers, 'content-disposition': 'inline' } } : p)), 'SWX_DIGEST_MISMATCH'],
    ['a part missing', as4, parts.slice(1), 'SWX_SIG_REF_UNRESOLVED'],
    ['no parts given', as4, [], 'SWX_SIG_REF_UNRESOLVED'],
    ['a Content-ID carried twice', as4, [...parts, parts[0]!], 'SWX_SIG_WRAPPED'],
    ['a streamed part with its SHA-256', as4, streamed('sha256'), 'SWX_OK'],
    ['a streamed part whose digest is another\'s', as4, streamed('sha512'), 'SWX_DIGEST_MISMATCH'],
    ['a streamed part under a SHA-512 reference', plain, streamed('sha512'), 'SWX_SIG_ALG_UNSUPPORTED'],
    ['a cid: URL that does not decode', as4.replace('cid:text-2@swx', 'cid:text-2%ZZ@swx'), parts, 'SWX_SIG_REF_UNRESOLVED'],
    ['a reference renamed to another part', as4.replace('cid:text-2@swx', 'cid:payload-1@swx'), parts, 'SWX_DIGEST_MISMATCH'],
    ['a BinarySecurityToken without its optional EncodingType', as4.replace(/ EncodingType="[^"]*"/, ''), parts, 'SWX_OK'],
    ['a second transform on an attachment', as4.replace(/(<ds:Reference URI="cid:payload-1@swx"><ds:Transforms>)/, '$1<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'), parts, 'SWX_SIG_ALG_UNSUPPORTED'],
    ['a document transform on an attachment', as4.replace(/(<ds:Reference URI="cid:payload-1@swx"><ds:Transforms><ds:Transform Algorithm=")[^"]+/, '$1http://www.w3.org/2001/10/xml-exc-c14n#'), parts, 'SWX_SIG_ALG_UNSUPPORTED'],
  ];
  let covered = 0;
  for (const [label, xml, attachments, code] of cases) {
    const outcome = await compare(label, xml, { ...options, attachments });
    assert.is(outcome.reference.code, code, `${label}: ${outcome.reference.detail}`);
    if (outcome.covered) covered++;
  }
  for (const [label, xml, attachments] of cases.slice(0, 4)) assert.ok((await compare(label, xml, { ...options, attachments })).covered, `the fast path declined ${label}`);
  assert.ok(covered >= cases.length - 2, `the fast path answered ${covered} of ${cases.length}`);
});

test('attachments: a flipped character anywhere in an AS4 envelope signed over parts gives the same verdict', async () => {
  const fixture = await trustFixture();
  const options = { pinnedCertsPem: fixture.ed25519.certPem, at: fixture.issuedAt, attachments: parts };
  const xml = await signSoap(envelope(soap12), { keyPem: fixture.ed25519.keyPem, certPem: fixture.ed25519.certPem, ids: ['msg-1'], attachments: parts, createdAt: fixture.issuedAt });
  const codes = new Set<string>();
  for (const at of [...Object.values(classified(xml)).flat(), ...positions(xml.length, 80)]) codes.add((await compare(`byte ${at}`, flipAt(xml, at), options)).reference.code);
  for (const code of ['SWX_OK', 'SWX_DIGEST_MISMATCH', 'SWX_SIG_INVALID', 'SWX_SIG_REF_UNRESOLVED']) assert.ok(codes.has(code), `no mutation gave ${code}: ${[...codes].join(', ')}`);
});

test.run();
