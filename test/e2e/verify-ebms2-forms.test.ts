// `swx verify` over every form an ebMS 2.0 message is found logged in, each made here from the conformance messages
// (never written into the conformance folder): a full HTTP request, a header block without a request line, a MIME body
// that begins at its boundary with no headers (LF and CRLF), header names without a space after the colon, folded
// headers, and certificates in KeyInfo broken into lines with &#xD;. Each is judged as INDEX.md judges the original:
// verified at signing time, expired today.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { swxCommand, tempDir } from '../helpers/hub.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const scratch = tempDir('verify-forms');
const today = '2026-11-27T12:00:00Z';

const oppgjor = readFileSync(`${conformance}navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg`);
const oppgjorCert = `${conformance}navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer`;
const oppgjorSignedAt = '2023-08-29T10:56:51Z';

/** The mail's body (from its first boundary on) and its Content-Type field, unfolded. */
function mailParts(mail: Buffer): { contentType: string; body: Buffer } {
  const text = mail.toString('latin1');
  const blank = text.search(/\r?\n\r?\n/);
  const head = text.slice(0, blank).replace(/\r?\n[ \t]+/g, ' ');
  const contentType = /^Content-Type:\s*(.+)$/im.exec(head)![1]!.trim();
  const body = mail.subarray(Buffer.byteLength(text.slice(0, blank), 'latin1')).toString('latin1').replace(/^\r?\n\r?\n/, '');
  return { contentType, body: Buffer.from(body, 'latin1') };
}

const crlf = (bytes: Buffer) => Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
const form = (name: string, content: Buffer | string) => {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
};

async function judged(path: string, detected: string, args: string[], signedAt: string, signer: string, references: number) {
  for (const [at, valid] of [[signedAt, true], [today, false]] as const) {
    const { code, stdout, stderr } = await swxCommand(['verify', path, ...args, '--at', at]);
    const verdict = JSON.parse(stdout || '{}');
    const where = `${path} at ${at}: ${stdout.slice(0, 600)} ${stderr.slice(0, 300)}`;
    assert.is(verdict.detected, detected, where);
    assert.is(verdict.kind, 'ebms2', where);
    assert.ok(String(verdict.signer?.subject).includes(signer), where);
    if (valid) {
      assert.is(code, 0, where);
      assert.is(verdict.code, 'SWX_OK', where);
      assert.is(verdict.references.length, references, where);
      assert.ok(verdict.references.every((reference: { valid: boolean }) => reference.valid), where);
      assert.is(verdict.certificate.status, 'valid', where);
    } else {
      assert.is(code, 1, where);
      assert.is(verdict.code, 'SWX_CERT_EXPIRED', where);
      assert.is(verdict.certificate.status, 'expired', where);
    }
  }
}

const { contentType, body } = mailParts(oppgjor);
const pinned = ['--cert', oppgjorCert];

test('a full HTTP request (request line, Host, Content-Length over CRLF)', async () => {
  const payload = crlf(body);
  const request = Buffer.concat([Buffer.from(`POST /ebms HTTP/1.1\r\nHost: msh.example\r\nSOAPAction: "ebXML"\r\nContent-Type: ${contentType}\r\nContent-Length: ${payload.length}\r\n\r\n`), payload]);
  await judged(form('request.http', request), 'http-capture', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
});

test('a header block with no request line', async () => {
  const block = Buffer.concat([Buffer.from(`Content-Type: ${contentType}\nSOAPAction: "ebXML"\n\n`), body]);
  await judged(form('headers-only.msg', block), 'http-capture', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
});

test('a MIME body that begins at its boundary, with no headers at all (as logged, and with CRLF line ends)', async () => {
  assert.ok(body.toString('latin1').startsWith('------=_Part_19178_'), 'the form begins with the delimiter line');
  await judged(form('body-only.msg', body), 'mime', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
  await judged(form('body-only-crlf.msg', Buffer.concat([Buffer.from('\r\n'), crlf(body)])), 'mime', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
  // The unsigned Hermes capture's body: read as MIME, its two parts found, and no signature in it.
  const hermes = readFileSync(`${conformance}hermes/test1.msg`, 'latin1');
  const { stdout } = await swxCommand(['verify', form('hermes-body.msg', hermes.slice(hermes.indexOf('------=_Part_10')))]);
  const verdict = JSON.parse(stdout);
  assert.is(verdict.detected, 'mime');
  assert.is(verdict.code, 'SWX_SIG_MISSING');
  assert.equal(verdict.parts.map((part: { contentId: string }) => part.contentId), ['soappart', 'Payload-0']);
});

test('header names with no space after the colon, and folded header fields', async () => {
  const tight = Buffer.concat([Buffer.from(`Content-Type:${contentType}\r\nMIME-Version:1.0\r\nSOAPAction:"ebXML"\r\n\r\n`), crlf(body)]);
  await judged(form('no-space.msg', tight), 'http-capture', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
  const folded = contentType.replace(/;\s*/g, ';\r\n\t');
  assert.ok(folded.split('\r\n').length >= 3, folded);
  const foldedMessage = Buffer.concat([Buffer.from(`MIME-Version: 1.0\r\nContent-Type: ${folded}\r\n\r\n`), crlf(body)]);
  await judged(form('folded.msg', foldedMessage), 'mime', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
});

test('base64 certificates with &#xD; line breaks in KeyInfo: the signer is read from them', async () => {
  const withCr = (xml: string) => xml.replace(/(<(?:ds:)?X509Certificate>)([^<]+)(<\/(?:ds:)?X509Certificate>)/g,
    (_all, open: string, base64: string, close: string) => `${open}${base64.replace(/\s+/g, '').replace(/.{76}/g, '$&&#xD;\n')}${close}`);
  const soap = readFileSync(`${conformance}navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part1.soap.xml`, 'utf8');
  const attachment = readFileSync(`${conformance}navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part2.attachment.bin`);
  const broken = withCr(soap);
  assert.match(broken, /&#xD;\n/);
  const boundary = 'swx-form-boundary';
  const related = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: text/xml\r\nContent-ID: <root@swx>\r\n\r\n${broken}\r\n--${boundary}\r\nContent-Type: application/pkcs7-mime\r\nContent-ID: <3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no>\r\n\r\n`),
    attachment, Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  // Pinned, the certificate decoded from KeyInfo must be the pinned one (else SWX_SIG_KEY_MISMATCH).
  await judged(form('keyinfo-cr.msg', related), 'mime', pinned, oppgjorSignedAt, 'SPEARE AS', 2);
  const ack = readFileSync(`${conformance}navikt-ebxml-processor/_derived/acknowledgment.eml.part1.soap.xml`, 'utf8');
  const ackSigner = `${conformance}navikt-ebxml-processor/_derived/acknowledgment.eml.signer.pem`;
  await judged(form('ack-keyinfo-cr.xml', withCr(ack)), 'xml', ['--cert', ackSigner], '2023-11-21T14:45:47Z', 'SYKEHUSAPOTEK NORD', 1);
  // Unpinned, the signer named is the KeyInfo certificate itself.
  const { stdout } = await swxCommand(['verify', join(scratch, 'keyinfo-cr.msg'), '--at', oppgjorSignedAt]);
  const expected = new X509Certificate(readFileSync(oppgjorCert)).fingerprint256.replace(/:/g, '').toLowerCase();
  assert.is(Buffer.from(JSON.parse(stdout).signer.thumbprint, 'base64url').toString('hex'), expected);
});

test.run();
