// AS4 payload encryption (WS-Security SwA 1.1, XML Encryption 1.1) as partners meet it: a message signed over its
// plaintext parts, then encrypted for the hub under eDelivery AS4 1.x (RSA-OAEP) or 2.0 (X25519, HKDF, AES key wrap),
// both with AES-128-GCM. What swx encrypts decrypts in an independent Python decrypter (lxml and python3-cryptography,
// nothing of swx's) and, for the algorithms it knows, in xmlsec1; a 64 MiB part streams through with the process
// holding none of it; every wrong key, altered or cut ciphertext, other profile or unknown algorithm is refused with
// its code before any plaintext is trusted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SwxError } from '../../engine/errors.ts';
import { readMultipart, writeMultipart, defaultMimeLimits } from '../../engine/mime/index.ts';
import {
  checkWsSecurity,
  decryptAttachments,
  decryptSoapAttachments,
  encryptedParts,
  encryptSoapAttachments,
  encryptToDocument,
  openEncryption,
  signSoap,
  verifyXml,
  type EncryptionProfile,
  type PartDecryption,
  type SwaPart,
  type XmlAttachment,
} from '../../engine/trust/index.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import { parseXml } from '../../engine/xml/parse.ts';
import type { SoapEnvelope } from '../../engine/xml/soap.ts';
import { trustFixture, type TestCredential } from '../helpers/trust-fixture.ts';
import { decrypterPath } from '../helpers/xmlenc-judges.ts';

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'swx-xmlenc-'));
const decrypter = decrypterPath;
const fixture = await trustFixture();
// The hub's encryption credentials for each suite, a stranger's of each kind, and the senders' signing keys.
const [hubRsa, hubX25519, otherRsa, otherX25519] = await Promise.all([
  fixture.issue({ key: 'rsa', commonName: 'hub encryption (RSA)', usages: ['keyEncipherment'] }),
  fixture.issue({ key: 'x25519', commonName: 'hub encryption (X25519)', usages: ['keyAgreement'] }),
  fixture.issue({ key: 'rsa', commonName: 'another recipient (RSA)', usages: ['keyEncipherment'] }),
  fixture.issue({ key: 'x25519', commonName: 'another recipient (X25519)', usages: ['keyAgreement'] }),
]);
const suites: { profile: EncryptionProfile; hub: TestCredential; other: TestCredential; signer: TestCredential }[] = [
  { profile: 'eDelivery-AS4-1.15', hub: hubRsa, other: otherRsa, signer: fixture.rsa },
  { profile: 'eDelivery-AS4-2.0', hub: hubX25519, other: otherX25519, signer: fixture.ed25519 },
];

const ns = {
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
  eb3: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
};
const envelope = `<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:eb="${ns.eb3}" xmlns:wsu="${ns.wsu}">`
  + '<S:Header><eb:Messaging wsu:Id="messaging"><eb:UserMessage><eb:MessageInfo><eb:MessageId>m-1@swx</eb:MessageId></eb:MessageInfo>'
  + '<eb:PayloadInfo><eb:PartInfo href="cid:declaration@swx"/><eb:PartInfo href="cid:invoice@swx"/><eb:PartInfo href="cid:scan@swx"/></eb:PayloadInfo>'
  + '</eb:UserMessage></eb:Messaging></S:Header><S:Body wsu:Id="body"/></S:Envelope>';

const plainParts: SwaPart[] = [
  { contentId: 'declaration@swx', contentType: 'application/xml', body: Buffer.from('<declaration><hs>0901.21</hs><value>1250.00</value></declaration>') },
  { contentId: 'invoice@swx', contentType: 'text/plain; charset=utf-8', body: Buffer.from('Invoice 42\r\n商業發票 1 x coffee\r\n') },
  { contentId: 'scan@swx', contentType: 'application/pdf', body: randomBytes(70_001) },
];
const attachmentOf = (part: SwaPart): XmlAttachment => ({ contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body as Buffer });

async function bytesOf(readable: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

interface Sealed { envelope: string; parts: SwaPart[] }

/** Signed over the plaintext parts (Messaging, Body, Timestamp and every part), then encrypted for `recipient`. */
async function signThenEncrypt(profile: EncryptionProfile, recipient: TestCredential, options: Parameters<typeof encryptSoapAttachments>[4] = {}, reference?: 'ski' | 'issuer-serial'): Promise<Sealed> {
  const suite = suites.find((s) => s.profile === profile)!;
  const signed = await signSoap(envelope, { keyPem: suite.signer.keyPem, certPem: suite.signer.certPem, ids: ['messaging'], attachments: plainParts.map(attachmentOf) });
  const encrypted = await encryptSoapAttachments(signed, plainParts, { certPem: recipient.certPem, ...(reference ? { reference } : {}) }, profile, options);
  const parts = await Promise.all(encrypted.parts.map(async (part) => ({ contentId: part.contentId, contentType: part.contentType, body: await bytesOf(part.body) })));
  return { envelope: encrypted.envelope, parts };
}

async function refusedWith(promise: Promise<unknown>, code: string, detail?: RegExp): Promise<SwxError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, SwxError, String(error));
    assert.is((error as SwxError).code, code, (error as Error).message);
    if (detail) assert.ok(detail.test((error as Error).message), `${(error as Error).message} does not match ${detail}`);
    return error as SwxError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

/** Decrypts every part, reading each stream to its end (where the tag is judged). */
async function openAll(sealed: Sealed, profile: EncryptionProfile, key: { keyPem: string; certPem?: string }): Promise<{ contentId: string; contentType: string; body: Buffer }[]> {
  const parts = await decryptSoapAttachments(sealed.envelope, sealed.parts, key, { profile });
  assert.ok(parts, 'the message is encrypted');
  return Promise.all(parts.map(async (part) => ({ contentId: part.contentId, contentType: part.contentType, body: await bytesOf(part.body) })));
}

// ---------------------------------------------------------------- memory (first, before other tests leave garbage behind)

const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

// The bound is a quarter of the part: each stage allocates its output chunk by chunk, and V8 collects that garbage only
// once some tens of MiB of it have built up (external memory), whatever the size, so a part four times that slack shows
// that what grows is the collector's lag and not the part.
/** Encrypts `size` bytes, frames them in a multipart body, reads it back and decrypts, hashing at both ends. */
async function streamThrough(profile: EncryptionProfile, hub: TestCredential, size: number): Promise<{ grown: number; wire: number; length: number; same: boolean }> {
  const blocks = Array.from({ length: 5 }, () => randomBytes(256 * 1024));
  const sent = createHash('sha256');
  async function* bulk(): AsyncGenerator<Buffer> {
    for (let at = 0, index = 0; at < size; index += 1) {
      const chunk = blocks[index % blocks.length]!.subarray(0, Math.min(256 * 1024, size - at));
      sent.update(chunk);
      at += chunk.length;
      yield chunk;
    }
  }
  const before = kib('VmRSS');
  writeFileSync('/proc/self/clear_refs', '5'); // VmHWM from here holds this run's peak alone
  const encrypted = await encryptSoapAttachments(envelope, [{ contentId: 'bulk@swx', contentType: 'application/octet-stream', body: bulk() }], { certPem: hub.certPem }, profile);
  const body = writeMultipart({ contentId: 'root@swx', contentType: 'application/soap+xml', body: Buffer.from(encrypted.envelope) }, encrypted.parts);
  const received = createHash('sha256');
  let length = 0;
  let wire = 0;
  let decryption: PartDecryption | undefined;
  for await (const part of readMultipart(body.body, body.contentType, { ...defaultMimeLimits, maxBytes: 2 * size })) {
    // The root first: its Security header gives the content key, unwrapped once for the parts that follow.
    if (part.root) {
      decryption = await openEncryption(await bytesOf(part.body), { keyPem: hub.keyPem, certPem: hub.certPem }, { profile });
      continue;
    }
    const counted = (async function* () { for await (const chunk of part.body) { wire += (chunk as Buffer).length; yield chunk as Buffer; } })();
    const plain = decryption!.open({ contentId: part.contentId!, contentType: 'application/octet-stream', body: counted });
    assert.is(plain.contentType, 'application/octet-stream');
    for await (const chunk of plain.body) {
      received.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
  }
  return { grown: kib('VmHWM') - before, wire, length, same: received.digest('hex') === sent.digest('hex') };
}

// The bound is a quarter of the part: each stage allocates its output chunk by chunk, and V8 collects that garbage only
// once some tens of MiB of it have built up (external memory), whatever the size, so a part four times that slack shows
// that what grows is the collector's lag and not the part. A small run first, so that what the first use of the
// ciphers and streams allocates once is not counted.
test('a 256 MiB part streams through encryption, a multipart body and decryption under both suites without the process holding it', async () => {
  const size = 256 * MiB + 12_345;
  for (const { profile, hub } of suites) await streamThrough(profile, hub, 4 * MiB);
  for (const { profile, hub } of suites) {
    const { grown, wire, length, same } = await streamThrough(profile, hub, size);
    console.log(`${profile}: a ${(size / MiB).toFixed(1)} MiB part encrypted, framed, read and decrypted: peak RSS grew ${(grown / MiB).toFixed(1)} MiB`);
    assert.is(wire, size + 12 + 16, 'IV, ciphertext and tag on the wire');
    assert.is(length, size);
    assert.ok(same, 'the bytes decrypted are the bytes sent');
    assert.ok(grown < size / 4, `peak RSS grew ${(grown / MiB).toFixed(1)} MiB`);
  }
});

// ---------------------------------------------------------------- round trips

for (const { profile, hub, signer } of suites) {
  test(`${profile}: signed over the plaintext, then encrypted; three parts decrypt to their bytes and MimeTypes and the signature holds over them`, async () => {
    const sealed = await signThenEncrypt(profile, hub);
    for (const [index, part] of sealed.parts.entries()) {
      assert.is(part.contentType, 'application/octet-stream');
      assert.is((part.body as Buffer).length, (plainParts[index]!.body as Buffer).length + 28);
      assert.not.ok((part.body as Buffer).includes((plainParts[index]!.body as Buffer).subarray(0, 16)), 'no plaintext on the wire');
    }
    assert.equal(encryptedParts(sealed.envelope).map((part) => [part.contentId, part.mimeType]), plainParts.map((part) => [part.contentId, part.contentType]));
    const opened = await openAll(sealed, profile, { keyPem: hub.keyPem, certPem: hub.certPem });
    assert.equal(opened.map((part) => [part.contentId, part.contentType]), plainParts.map((part) => [part.contentId, part.contentType]));
    opened.forEach((part, index) => assert.ok(part.body.equals(plainParts[index]!.body as Buffer), part.contentId));
    const attachments = opened.map((part) => ({ contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body }));
    const verdict = await verifyXml(sealed.envelope, { pinnedCertsPem: signer.certPem, attachments });
    assert.is(verdict.code, 'SWX_OK', verdict.detail);
    assert.equal(verdict.signedAttachments.sort(), plainParts.map((part) => part.contentId).sort());
    // Over the ciphertext the attachment references would fail: the signature is the plaintext's.
    const overCiphertext = await verifyXml(sealed.envelope, { pinnedCertsPem: signer.certPem, attachments: sealed.parts.map(attachmentOf) });
    assert.is(overCiphertext.code, 'SWX_DIGEST_MISMATCH');
  });
}

test('a part cut into chunks of any size, down to single bytes, decrypts to the same bytes (the IV and the held-back tag straddle every edge)', async () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const { profile, hub } of suites) {
    for (let round = 0; round < 40; round += 1) {
      const plain = randomBytes(Math.floor(random() * 300));
      const encrypted = await encryptSoapAttachments(envelope, [{ contentId: 'p@swx', contentType: 'application/octet-stream', body: plain }], { certPem: hub.certPem }, profile);
      const sealed = await bytesOf(encrypted.parts[0]!.body);
      async function* cut(): AsyncGenerator<Buffer> {
        for (let at = 0; at < sealed.length;) {
          const length = round % 4 === 0 ? 1 : 1 + Math.floor(random() * 40);
          yield sealed.subarray(at, at + length);
          at += length;
        }
      }
      const [part] = (await decryptSoapAttachments(encrypted.envelope, [{ contentId: 'p@swx', contentType: 'application/octet-stream', body: cut() }], { keyPem: hub.keyPem }, { profile }))!;
      assert.ok((await bytesOf(part!.body)).equals(plain), `${profile} round ${round}: ${plain.length} bytes`);
    }
  }
});

test('the EncryptedKey names the recipient by SubjectKeyIdentifier or by issuer and serial; both decrypt, and the header carries the suites\' algorithms', async () => {
  for (const reference of ['ski', 'issuer-serial'] as const) {
    const rsa = await signThenEncrypt('eDelivery-AS4-1.15', hubRsa, {}, reference);
    assert.match(rsa.envelope, reference === 'ski' ? /#X509SubjectKeyIdentifier">/ : /<ds:X509SerialNumber>\d+<\/ds:X509SerialNumber>/);
    assert.match(rsa.envelope, /Algorithm="http:\/\/www.w3.org\/2009\/xmlenc11#rsa-oaep"/);
    assert.match(rsa.envelope, /xenc11:MGF Algorithm="http:\/\/www.w3.org\/2009\/xmlenc11#mgf1sha256"/);
    assert.match(rsa.envelope, /Type="http:\/\/docs.oasis-open.org\/wss\/oasis-wss-SwAProfile-1.1#Attachment-Content-Only"/);
    assert.match(rsa.envelope, /Transform Algorithm="http:\/\/docs.oasis-open.org\/wss\/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform"/);
    assert.is((await openAll(rsa, 'eDelivery-AS4-1.15', { keyPem: hubRsa.keyPem, certPem: hubRsa.certPem })).length, 3);
    const x = await signThenEncrypt('eDelivery-AS4-2.0', hubX25519, {}, reference);
    for (const uri of ['2021/04/xmldsig-more#x25519', '2021/04/xmldsig-more#hkdf', '2001/04/xmlenc#kw-aes128', '2009/xmlenc11#aes128-gcm', '2001/04/xmldsig-more#hmac-sha256']) {
      assert.ok(x.envelope.includes(`Algorithm="http://www.w3.org/${uri}"`), uri);
    }
    assert.match(x.envelope, /<xenc:OriginatorKeyInfo><dsig11:DEREncodedKeyValue/);
    assert.is((await openAll(x, 'eDelivery-AS4-2.0', { keyPem: hubX25519.keyPem, certPem: hubX25519.certPem })).length, 3);
  }
});

/** The envelope as a SOAP connector hands it to checkWsSecurity. */
function soapEnvelope(raw: Buffer): SoapEnvelope {
  const blocks = elementChildren(parseXml(raw).root);
  return { raw, header: blocks.find((el) => el.localName === 'Header'), body: blocks.find((el) => el.localName === 'Body')! };
}

test('eDelivery AS4 2.0 read as other implementations write it: the originator key as dsig11:ECKeyValue (urn:oid:1.3.101.110) or inside ds:KeyValue, the recipient inside ds:KeyValue', async () => {
  const sealed = await signThenEncrypt('eDelivery-AS4-2.0', hubX25519);
  const originator = /<xenc:OriginatorKeyInfo><dsig11:DEREncodedKeyValue xmlns:dsig11="([^"]+)">([^<]+)<\/dsig11:DEREncodedKeyValue><\/xenc:OriginatorKeyInfo>/.exec(sealed.envelope)!;
  assert.ok(originator, 'the originator key as swx writes it');
  const raw = Buffer.from(originator[2]!, 'base64').subarray(-32).toString('base64');
  const forms = [
    `<xenc:OriginatorKeyInfo><ds:KeyValue><dsig11:ECKeyValue xmlns:dsig11="${originator[1]}"><dsig11:NamedCurve URI="urn:oid:1.3.101.110"/><dsig11:PublicKey>${raw}</dsig11:PublicKey></dsig11:ECKeyValue></ds:KeyValue></xenc:OriginatorKeyInfo>`,
    `<xenc:OriginatorKeyInfo><ds:KeyValue><dsig11:DEREncodedKeyValue xmlns:dsig11="${originator[1]}">${originator[2]}</dsig11:DEREncodedKeyValue></ds:KeyValue></xenc:OriginatorKeyInfo>`,
  ];
  for (const form of forms) {
    const envelope = sealed.envelope.replace(originator[0], form)
      .replace(/<xenc:RecipientKeyInfo>([\s\S]*?)<\/xenc:RecipientKeyInfo>/, '<xenc:RecipientKeyInfo><ds:KeyValue>$1</ds:KeyValue></xenc:RecipientKeyInfo>');
    assert.is.not(envelope, sealed.envelope);
    const opened = await openAll({ ...sealed, envelope }, 'eDelivery-AS4-2.0', { keyPem: hubX25519.keyPem, certPem: hubX25519.certPem });
    opened.forEach((part, index) => assert.ok(part.body.equals(plainParts[index]!.body as Buffer), part.contentId));
    await refusedWith(openAll({ ...sealed, envelope }, 'eDelivery-AS4-2.0', { keyPem: otherX25519.keyPem, certPem: otherX25519.certPem }), 'SWX_DECRYPT_FAILED', /another recipient/);
  }
  const p256 = sealed.envelope.replace(originator[0], forms[0]!.replace('urn:oid:1.3.101.110', 'urn:oid:1.2.840.10045.3.1.7'));
  await refusedWith(openAll({ ...sealed, envelope: p256 }, 'eDelivery-AS4-2.0', { keyPem: hubX25519.keyPem }), 'SWX_ENC_ALG_UNSUPPORTED', /not X25519/);
});

test('checkWsSecurity decrypts an encrypted message with the hub\'s key before judging its signature, and refuses it without one', async () => {
  for (const { profile, hub } of suites) {
    const sealed = await signThenEncrypt(profile, hub);
    const message = soapEnvelope(Buffer.from(sealed.envelope));
    const attachments = sealed.parts.map(attachmentOf);
    const checked = await checkWsSecurity(message, { attachments, decryption: { key: { keyPem: hub.keyPem, certPem: hub.certPem }, profile } });
    assert.equal(checked.verdict.signedAttachments.sort(), plainParts.map((part) => part.contentId).sort());
    assert.ok(checked.attachments[2]!.body.equals(plainParts[2]!.body as Buffer));
    assert.is(checked.attachments[1]!.headers['content-type'], 'text/plain; charset=utf-8');
    await refusedWith(checkWsSecurity(message, { attachments }), 'SWX_DECRYPT_KEY_MISSING');
  }
});

// ---------------------------------------------------------------- outside judges

function python(args: string[]): { status: number | null; out: string; err: string } {
  const result = spawnSync('/usr/bin/python3', [decrypter, ...args], { cwd: work });
  return { status: result.status, out: result.stdout.toString(), err: result.stderr.toString() };
}

let fileCount = 0;
function file(content: string | Buffer, suffix: string): string {
  const path = join(work, `f${++fileCount}${suffix}`);
  writeFileSync(path, content);
  return path;
}

const outsideCases: { name: string; profile: EncryptionProfile; hub: TestCredential; options: { keyTransport?: 'rsa-oaep' | 'rsa-oaep-mgf1p' }; algorithms: string[] }[] = [
  { name: 'RSA-OAEP, MGF1-SHA-256, SHA-256', profile: 'eDelivery-AS4-1.15', hub: hubRsa, options: {}, algorithms: ['http://www.w3.org/2009/xmlenc11#rsa-oaep', 'OAEP sha256 MGF1-sha256'] },
  { name: 'rsa-oaep-mgf1p (SHA-1)', profile: 'eDelivery-AS4-1.15', hub: hubRsa, options: { keyTransport: 'rsa-oaep-mgf1p' }, algorithms: ['http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p', 'OAEP sha1 MGF1-sha1'] },
  { name: 'X25519, HKDF-SHA256, AES-128 key wrap', profile: 'eDelivery-AS4-2.0', hub: hubX25519, options: {}, algorithms: ['http://www.w3.org/2001/04/xmlenc#kw-aes128', 'http://www.w3.org/2021/04/xmldsig-more#x25519', 'http://www.w3.org/2021/04/xmldsig-more#hkdf'] },
];

for (const item of outsideCases) {
  test(`an independent Python decrypter (lxml, python3-cryptography) opens every part swx encrypted with ${item.name} and AES-128-GCM`, async () => {
    const sealed = await signThenEncrypt(item.profile, item.hub, item.options);
    const args = [file(sealed.envelope, '.xml'), file(item.hub.keyPem, '.pem'), ...sealed.parts.map((part) => `${part.contentId}=${file(part.body as Buffer, '.bin')}`)];
    const { status, out, err } = python(args);
    assert.is(status, 0, err);
    const report = JSON.parse(out);
    assert.equal(report.algorithms, item.algorithms);
    for (const [index, part] of plainParts.entries()) {
      const path = args[2 + index]!.split('=')[1]!;
      assert.ok(readFileSync(`${path}.plain`).equals(part.body as Buffer), part.contentId);
      assert.is(report.parts[part.contentId].mimeType, part.contentType);
    }
    // And with another recipient's key it cannot.
    const other = python([args[0]!, file(suites.find((s) => s.profile === item.profile)!.other.keyPem, '.pem'), ...args.slice(2)]);
    assert.is(other.status, 1, other.out);
  });
}

test('xmlsec1 decrypts what swx encrypts with rsa-oaep-mgf1p and AES-128-GCM, in the self-contained CipherValue form (it resolves no cid:, so this judges the primitives, not the SwA layout)', () => {
  const payload = Buffer.concat([Buffer.from('<declaration>binary after this: '), randomBytes(3000), Buffer.from('</declaration>')]);
  const document = encryptToDocument(payload, 'application/octet-stream', { certPem: hubRsa.certPem }, 'eDelivery-AS4-1.15', { keyTransport: 'rsa-oaep-mgf1p' });
  const result = spawnSync('xmlsec1', ['--decrypt', '--privkey-pem', file(hubRsa.keyPem, '.pem'), file(document, '.xml')], { cwd: work });
  assert.is(result.status, 0, result.stderr.toString());
  assert.ok(result.stdout.equals(payload), 'xmlsec1 gives back the plaintext byte for byte');
  // The same document opens in the Python decrypter, and xmlsec1 refuses it under another key.
  const py = spawnSync('/usr/bin/python3', [decrypter, file(document, '.xml'), file(hubRsa.keyPem, '.pem')]);
  assert.ok(py.stdout.equals(payload), py.stderr.toString());
  const wrong = spawnSync('xmlsec1', ['--decrypt', '--privkey-pem', file(otherRsa.keyPem, '.pem'), file(document, '.xml')], { cwd: work });
  assert.is.not(wrong.status, 0);
});

// ---------------------------------------------------------------- refusals

for (const { profile, hub, other } of suites) {
  test(`${profile}: another recipient's key, a KeyInfo naming another certificate, altered or cut ciphertext and a missing part are SWX_DECRYPT_FAILED`, async () => {
    const sealed = await signThenEncrypt(profile, hub);
    // The key alone: the unwrap itself fails.
    await refusedWith(openAll(sealed, profile, { keyPem: other.keyPem }), 'SWX_DECRYPT_FAILED', /another key/);
    // The key with its certificate: the EncryptedKey names someone else, refused before any unwrapping.
    await refusedWith(openAll(sealed, profile, { keyPem: other.keyPem, certPem: other.certPem }), 'SWX_DECRYPT_FAILED', /another recipient's certificate/);

    // A flipped byte in the middle: the stream gives what it decrypted, then fails at its end, before which nothing is authentic.
    const altered = Buffer.from(sealed.parts[2]!.body as Buffer);
    altered[35_000] = altered[35_000]! ^ 0x01;
    const tampered = { ...sealed, parts: sealed.parts.map((part, index) => (index === 2 ? { ...part, body: altered } : part)) };
    const parts = (await decryptSoapAttachments(tampered.envelope, tampered.parts, { keyPem: hub.keyPem, certPem: hub.certPem }, { profile }))!;
    let given = 0;
    const error = await refusedWith((async () => { for await (const chunk of parts[2]!.body) given += (chunk as Buffer).length; })(), 'SWX_DECRYPT_FAILED', /tag does not match.*discard/);
    assert.ok(given > 0 && given <= 70_001, `${given} bytes were given before the tag was judged`);
    assert.ok(error);
    await refusedWith(decryptAttachments(tampered.envelope, tampered.parts.map(attachmentOf), { keyPem: hub.keyPem }, { profile }), 'SWX_DECRYPT_FAILED');

    for (const cut of [10, 16, 17, 70_001]) {
      const body = (sealed.parts[2]!.body as Buffer).subarray(0, (sealed.parts[2]!.body as Buffer).length - cut);
      const truncated = sealed.parts.map((part, index) => (index === 2 ? { ...part, body } : part));
      await refusedWith(openAll({ ...sealed, parts: truncated }, profile, { keyPem: hub.keyPem }), 'SWX_DECRYPT_FAILED', /tag does not match|shorter/);
    }
    const tiny = sealed.parts.map((part, index) => (index === 2 ? { ...part, body: Buffer.alloc(20) } : part));
    await refusedWith(openAll({ ...sealed, parts: tiny }, profile, { keyPem: hub.keyPem }), 'SWX_DECRYPT_FAILED', /shorter than its IV and tag/);

    await refusedWith(decryptSoapAttachments(sealed.envelope, sealed.parts.slice(0, 2), { keyPem: hub.keyPem }, { profile }), 'SWX_DECRYPT_FAILED', /<scan@swx>, which the message does not carry/);
  });
}

test('a message under the other profile is refused naming the algorithm expected and the one found', async () => {
  const rsa = await signThenEncrypt('eDelivery-AS4-1.15', hubRsa);
  await refusedWith(openAll(rsa, 'eDelivery-AS4-2.0', { keyPem: hubX25519.keyPem }), 'SWX_ENC_ALG_UNSUPPORTED',
    /eDelivery-AS4-2\.0 expects key wrap http:\/\/www\.w3\.org\/2001\/04\/xmlenc#kw-aes128; the message has http:\/\/www\.w3\.org\/2009\/xmlenc11#rsa-oaep/);
  const x = await signThenEncrypt('eDelivery-AS4-2.0', hubX25519);
  await refusedWith(openAll(x, 'eDelivery-AS4-1.15', { keyPem: hubRsa.keyPem }), 'SWX_ENC_ALG_UNSUPPORTED',
    /eDelivery-AS4-1\.15 expects key transport http:\/\/www\.w3\.org\/2009\/xmlenc11#rsa-oaep or http:\/\/www\.w3\.org\/2001\/04\/xmlenc#rsa-oaep-mgf1p; the message has http:\/\/www\.w3\.org\/2001\/04\/xmlenc#kw-aes128/);
  // Within a profile, a weaker choice of a known algorithm: RSA-OAEP with MGF1-SHA-1.
  const sha1Mgf = { ...rsa, envelope: rsa.envelope.replace('xmlenc11#mgf1sha256', 'xmlenc11#mgf1sha1') };
  await refusedWith(openAll(sha1Mgf, 'eDelivery-AS4-1.15', { keyPem: hubRsa.keyPem }), 'SWX_ENC_ALG_UNSUPPORTED', /expects RSA-OAEP with MGF http:\/\/www\.w3\.org\/2009\/xmlenc11#mgf1sha256; the message has .*mgf1sha1/);
});

test('unknown algorithm URIs and an EncryptedData naming a part the message lacks are refused before any part is read', async () => {
  const sealed = await signThenEncrypt('eDelivery-AS4-1.15', hubRsa);
  const key = { keyPem: hubRsa.keyPem, certPem: hubRsa.certPem };
  const cbc = { ...sealed, envelope: sealed.envelope.replaceAll('http://www.w3.org/2009/xmlenc11#aes128-gcm', 'http://www.w3.org/2001/04/xmlenc#aes128-cbc') };
  await refusedWith(openAll(cbc, 'eDelivery-AS4-1.15', key), 'SWX_ENC_ALG_UNSUPPORTED', /expects content encryption http:\/\/www\.w3\.org\/2009\/xmlenc11#aes128-gcm; the message has http:\/\/www\.w3\.org\/2001\/04\/xmlenc#aes128-cbc/);
  const unknownKey = { ...sealed, envelope: sealed.envelope.replace('http://www.w3.org/2009/xmlenc11#rsa-oaep"', 'urn:example:unknown-transport"') };
  await refusedWith(openAll(unknownKey, 'eDelivery-AS4-1.15', key), 'SWX_ENC_ALG_UNSUPPORTED', /urn:example:unknown-transport is not supported; eDelivery-AS4-1\.15 expects/);
  const otherTransform = { ...sealed, envelope: sealed.envelope.replaceAll('#Attachment-Ciphertext-Transform', '#Attachment-Something-Else') };
  await refusedWith(openAll(otherTransform, 'eDelivery-AS4-1.15', key), 'SWX_ENC_ALG_UNSUPPORTED', /Attachment-Something-Else is not supported/);
  const complete = { ...sealed, envelope: sealed.envelope.replaceAll('#Attachment-Content-Only', '#Attachment-Complete') };
  await refusedWith(openAll(complete, 'eDelivery-AS4-1.15', key), 'SWX_ENC_ALG_UNSUPPORTED', /Attachment-Complete/);
  const elsewhere = { ...sealed, envelope: sealed.envelope.replace('URI="cid:scan@swx"', 'URI="cid:not-here@swx"') };
  await refusedWith(openAll(elsewhere, 'eDelivery-AS4-1.15', key), 'SWX_DECRYPT_FAILED', /<not-here@swx>, which the message does not carry/);
  const dangling = { ...sealed, envelope: sealed.envelope.replace(/<xenc:DataReference URI="#[^"]+"\/>/, '<xenc:DataReference URI="#nowhere"/>') };
  await refusedWith(openAll(dangling, 'eDelivery-AS4-1.15', key), 'SWX_DECRYPT_FAILED', /#nowhere: 0 EncryptedData/);
  await refusedWith(decryptSoapAttachments(sealed.envelope, sealed.parts, key, { profile: 'eDelivery-AS4-9' as EncryptionProfile }), 'SWX_BAD_REQUEST', /encryption profile/);
  // Nothing encrypted: nothing to do.
  assert.is(await decryptSoapAttachments(envelope, plainParts, key, { profile: 'eDelivery-AS4-1.15' }), undefined);
});

test('encrypting for a key of the wrong kind for the profile, or with nothing to encrypt, is refused', async () => {
  await refusedWith(encryptSoapAttachments(envelope, plainParts, { certPem: hubX25519.certPem }, 'eDelivery-AS4-1.15'), 'SWX_BAD_REQUEST', /RSA key/);
  await refusedWith(encryptSoapAttachments(envelope, plainParts, { certPem: hubRsa.certPem }, 'eDelivery-AS4-2.0'), 'SWX_BAD_REQUEST', /X25519 key/);
  await refusedWith(encryptSoapAttachments(envelope, [], { certPem: hubRsa.certPem }, 'eDelivery-AS4-1.15'), 'SWX_BAD_REQUEST');
  await refusedWith(encryptSoapAttachments(envelope, plainParts, { certPem: hubX25519.certPem }, 'eDelivery-AS4-2.0', { keyTransport: 'rsa-oaep-mgf1p' }), 'SWX_BAD_REQUEST');
});

test.run();
