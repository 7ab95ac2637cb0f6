// signSoap without the DOM (signSoapFast, engine/trust/wssecurity.ts) held to the DOM path it replaces for the hub's own
// envelopes: AS4 UserMessages, Receipts and Error signals, and envelopes with awkward text, signed with RSA, ECDSA and
// Ed25519. The digests of every signed part are those xml-crypto computes (the canonical bytes are the same), the
// reference verifier and the WS-Security check accept it, xmlsec1 too (RSA, ECDSA), and tampered copies are refused.
// Envelopes outside what it recognises are declined and signed through the DOM as before.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorEnvelope, readAs4Message, receiptEnvelope, signedAttachment, userMessageEnvelope } from '../../connectors/as4/index.ts';
import { EbmsError } from '../../connectors/as4/errors.ts';
import { checkWsSecurity, signSoap, verifyXmlReference, type SignSoapOptions } from '../../engine/trust/index.ts';
import { signSoapFast, signSoapReference } from '../../engine/trust/wssecurity.ts';
import { trustFixture, type TestCredential } from '../helpers/trust-fixture.ts';

const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
const soap11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const wsu = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const dir = mkdtempSync(join(tmpdir(), 'swx-fastsign-'));

const userMessage = (text: string) => userMessageEnvelope({
  messageId: `m-${text.length}@gateway.example`,
  from: { partyIds: [{ id: 'gateway', type: 'urn:example:party' }], role },
  to: { partyIds: [{ id: 'swx-hub' }], role },
  collaboration: { service: { value: 'urn:example:bench', type: 'urn:example' }, action: 'Submit', conversationId: text },
  properties: [{ name: 'originalSender', value: text }, { name: 'finalRecipient', value: 'BOFT' }],
  payloads: [{ contentId: 'payload@gateway.example', mimeType: 'application/octet-stream' }],
});

// What c14n escapes and normalises: markup characters, quotes, line ends, tabs, CJK and astral characters.
const awkward = 'a & b < c > d " e \' f\r\ng\rh\ti 海關 😀 ]]>';

/** The hub's envelopes: a UserMessage, its Receipt, an Error signal with a SOAP Fault, and a SOAP 1.1 one written by hand. */
async function envelopes(credential: TestCredential, createdAt: Date): Promise<{ name: string; xml: string; ids: string[] }[]> {
  const user = userMessage(awkward);
  const signedUser = await signSoap(user.xml, { keyPem: credential.keyPem, certPem: credential.certPem, ids: [user.messagingId], attachments: [signedAttachment({ contentId: 'payload@gateway.example', contentType: 'application/octet-stream', body: Buffer.from('payload') })], createdAt });
  const receipt = receiptEnvelope(readAs4Message(Buffer.from(signedUser), { attachments: ['payload@gateway.example'] }));
  const error = errorEnvelope([new EbmsError('EBMS:0004', `cannot: ${awkward}`, { refToMessageInError: 'm-1@x' })]);
  const handWritten = `<?xml version="1.0" encoding="utf-8"?>\n<!-- before -->\n<s:Envelope xmlns:s="${soap11}" xmlns:x="urn:x"><s:Header>\n  <x:Route xmlns:wsu="${wsu}" wsu:Id="route-1" x:hop="1">r&amp;d<!-- dropped --></x:Route>\n</s:Header>`
    + `<s:Body xmlns:wsu="${wsu}" wsu:Id="body-1"><x:Item a="&quot;q&quot;" b="&#9;&#xD;&#xA;">&lt;&#xD;&gt;<x:Empty/><![CDATA[<raw & >]]></x:Item></s:Body></s:Envelope>`;
  return [
    { name: 'UserMessage', xml: user.xml, ids: [user.messagingId] },
    { name: 'Receipt', xml: receipt.xml, ids: [receipt.messagingId] },
    { name: 'Error signal', xml: error.xml, ids: [error.messagingId] },
    { name: 'SOAP 1.1 by hand', xml: handWritten, ids: ['route-1'] },
  ];
}

/** The DigestValue of each Reference by URI, the Timestamp's left out (each signing makes its own). */
function digests(xml: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const match of xml.matchAll(/<ds:Reference URI="([^"]+)">[\s\S]*?<ds:DigestValue>([^<]+)<\/ds:DigestValue>/g)) {
    if (!match[1]!.startsWith('#TS-')) found[match[1]!] = match[2]!;
  }
  return found;
}

function xmlsec(xml: string, certPem: string): { ok: boolean; detail: string } {
  const file = join(dir, `signed-${Math.random().toString(36).slice(2)}.xml`);
  const certFile = `${file}.pem`;
  writeFileSync(file, xml);
  writeFileSync(certFile, certPem);
  const ids = ['http://www.w3.org/2003/05/soap-envelope:Body', `${soap11}:Body`, `${wsu}:Timestamp`, 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/:Messaging', 'urn:x:Route']
    .flatMap((id) => ['--id-attr:Id', id]);
  const run = spawnSync('xmlsec1', ['--verify', '--pubkey-cert-pem', certFile, ...ids, file], { encoding: 'utf8' });
  return { ok: run.status === 0, detail: `${run.stdout}${run.stderr}`.slice(-400) };
}

test('the hub\'s envelopes: signed without the DOM, with the DOM path\'s digests, accepted by every verifier; tampered refused', async () => {
  const fixture = await trustFixture();
  for (const key of ['rsa', 'ecdsa', 'ed25519'] as const) {
    const credential = fixture[key];
    for (const { name, xml, ids } of await envelopes(credential, fixture.issuedAt)) {
      const label = `${name}, ${key}`;
      const options: SignSoapOptions = { keyPem: credential.keyPem, certPem: credential.certPem, ids, createdAt: fixture.issuedAt };
      const fast = signSoapFast(xml, options);
      assert.ok(fast, `declined: ${label}`);
      const dom = signSoapReference(xml, options);
      assert.equal(digests(fast), digests(dom), `${label}: digests of the signed parts`);
      assert.is(Object.keys(digests(fast)).length, ids.length + 1, label);

      const pinned = { pinnedCertsPem: credential.certPem, at: fixture.issuedAt };
      const [fastVerdict, domVerdict] = [await verifyXmlReference(fast, pinned), await verifyXmlReference(dom, pinned)];
      assert.is(fastVerdict.code, 'SWX_OK', `${label}: ${fastVerdict.detail}`);
      assert.equal(fastVerdict.signedElements.map((e) => e.path).sort(), domVerdict.signedElements.map((e) => e.path).sort(), label);
      if (name !== 'SOAP 1.1 by hand') {
        const message = readAs4Message(Buffer.from(fast), { attachments: name === 'UserMessage' ? ['payload@gateway.example'] : [] });
        const checked = await checkWsSecurity(message.envelope, { now: () => fixture.issuedAt.getTime() });
        assert.is(checked.thumbprint, fastVerdict.signer?.thumbprint, label);
      }
      if (key !== 'ed25519') assert.ok(xmlsec(fast, credential.certPem).ok, `xmlsec1 refused ${label}: ${xmlsec(fast, credential.certPem).detail}`);

      const tampered = fast.replace(/(<\/eb:MessageId>|<\/x:Route>|<\/x:Item>)/, ' $1');
      assert.is.not(tampered, fast, label);
      assert.is((await verifyXmlReference(tampered, pinned)).code, 'SWX_DIGEST_MISMATCH', `${label} tampered`);
      if (key !== 'ed25519') assert.not.ok(xmlsec(tampered, credential.certPem).ok, `xmlsec1 accepted ${label} tampered`);
    }
  }
});

test('declined: what the DOM path signs otherwise, or what xml-crypto canonicalises otherwise; signSoap still signs it', async () => {
  const fixture = await trustFixture();
  const credential = fixture.ecdsa;
  const user = userMessage('plain');
  const base: SignSoapOptions = { keyPem: credential.keyPem, certPem: credential.certPem, ids: [user.messagingId], createdAt: fixture.issuedAt };
  const bodyOpen = /<env:Body [^>]*>/.exec(user.xml)![0];
  const cases: [string, string, SignSoapOptions][] = [
    ['attachments', user.xml, { ...base, attachments: [signedAttachment({ contentId: 'p@x', contentType: 'text/plain', body: Buffer.from('p') })] }],
    ['a key identifier instead of a token', user.xml, { ...base, keyReference: 'ski' }],
    ['the Body alone', user.xml, { ...base, parts: ['Body'] }],
    ['no Header', user.xml.replace(/<env:Header>[\s\S]*<\/env:Header>/, ''), { ...base, ids: [] }],
    ['an empty-element Header', user.xml.replace(/<env:Header>[\s\S]*<\/env:Header>/, '<env:Header/>'), { ...base, ids: [] }],
    ['a Security header already', user.xml.replace('</env:Header>', '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"/></env:Header>'), base],
    ['a Body without wsu:Id', user.xml.replace(bodyOpen, '<env:Body>'), base],
    ['an id carried twice', user.xml.replace('<env:Header>', `<env:Header><x:Copy xmlns:x="urn:x" Id="${user.messagingId}"/>`), base],
    ['the Header signed by its Id', user.xml.replace('<env:Header>', '<env:Header Id="h-1">'), { ...base, ids: ['h-1'] }],
    ['a processing instruction', user.xml.replace('<eb:MessageInfo>', '<?audit?><eb:MessageInfo>'), base],
    ['an xmlns:xml declaration', user.xml.replace('<eb:MessageInfo>', '<eb:MessageInfo xmlns:xml="http://www.w3.org/XML/1998/namespace">'), base],
    ['another declared encoding', user.xml.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"'), base],
  ];
  for (const [label, xml, options] of cases) {
    assert.is(signSoapFast(xml, options), undefined, `answered: ${label}`);
    const signed = await signSoap(xml, options).catch((error: Error) => error);
    if (signed instanceof Error) continue;
    const verdict = await verifyXmlReference(signed, { pinnedCertsPem: credential.certPem, at: fixture.issuedAt, ...(options.attachments ? { attachments: options.attachments } : {}) });
    assert.ok(['SWX_OK', 'SWX_SIG_WRAPPED', 'SWX_CERT_UNTRUSTED', 'SWX_BAD_REQUEST'].includes(verdict.code), `${label}: ${verdict.code} ${verdict.detail}`);
  }
  // What signSoap refuses, it refuses whichever path it tries first.
  await signSoap(user.xml, { ...base, certPem: 'not a certificate' }).then(() => assert.unreachable('signed without a certificate'), (error: Error & { code?: string }) => assert.is(error.code, 'SWX_BAD_REQUEST'));
  await signSoap(user.xml, { ...base, timestampTtlSeconds: 0 }).then(() => assert.unreachable('signed with no time to live'), (error: Error & { code?: string }) => assert.is(error.code, 'SWX_BAD_REQUEST'));
});

test.run();
