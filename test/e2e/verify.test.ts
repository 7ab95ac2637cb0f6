// `swx verify` over every conformance file INDEX.md gives a verdict for, run as its users run it (the real command, a
// child process, from the conformance folder with the key and trust arguments INDEX.md names). The expectations are
// transcribed by hand from INDEX.md (and the times from the messages and certificates), never computed by our code.
// Plus the command's refusals of hostile input and of wrong command lines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeMultipart } from '../../engine/mime/index.ts';
import { encryptSoapAttachments, signSoap, type EncryptionProfile, type SwaPart } from '../../engine/trust/index.ts';
import { swxBin, tempDir } from '../helpers/hub.ts';
import { trustFixture, type TestCredential } from '../helpers/trust-fixture.ts';

const run = promisify(execFile);
const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const scratch = tempDir('verify');

interface Outcome { exit: number; verdict: Record<string, any>; stderr: string }

async function swxVerify(args: string[]): Promise<Outcome> {
  let exit = 0;
  let stdout: string;
  let stderr: string;
  try {
    ({ stdout, stderr } = await run(process.execPath, [swxBin, 'verify', ...args], { cwd: conformance, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 }));
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    ({ stdout, stderr } = failed);
    exit = failed.code;
  }
  return { exit, verdict: stdout.trim() ? JSON.parse(stdout) : {}, stderr };
}

/** "Now" in INDEX.md; several signer certificates have expired by then. */
const today = '2026-11-27T12:00:00Z';

interface Expectation {
  valid: boolean;
  code: string;
  /** Signer subject must contain this (INDEX.md names it). */
  signer?: string;
  /** INDEX.md's "References (ok/all)". */
  references?: number;
  certificate?: string;
}

interface Case {
  /** INDEX.md's check id, or the file's verdict line for unsigned files. */
  check: string;
  file: string;
  args: string[];
  detected: string;
  kind?: string;
  /** The message's own time: signing time or genTime, from the message or, when it has none, its certificate. */
  signedAt?: { at: string; expect: Expectation };
  /** At INDEX.md's "now". */
  today: Expectation;
}

const expired = { valid: false, code: 'SWX_CERT_EXPIRED', certificate: 'expired' } as const;
const notSigned = { valid: false, code: 'SWX_SIG_MISSING' } as const;

const cases: Case[] = [
  {
    check: 'P4_DP_MU', file: 'phase4/verify/dataport1-mustunderstand.as4in', detected: 'http-capture', kind: 'as4',
    args: ['--cert', 'phase4/_derived/dataport1-mustunderstand.as4in.signer.pem'],
    // eb3:Timestamp 2022-03-07T16:36:50.994Z; certificate 2020-10-13 .. 2022-10-03
    signedAt: { at: '2022-03-07T16:36:51Z', expect: { valid: true, code: 'SWX_OK', signer: 'PDE000357', references: 2, certificate: 'valid' } },
    today: expired,
  },
  {
    check: 'P4_DP', file: 'phase4/verify/dataport1.as4in', detected: 'http-capture', kind: 'as4',
    args: ['--cert', 'phase4/_derived/dataport1.as4in.signer.pem'],
    signedAt: { at: '2022-03-07T16:36:51Z', expect: { valid: false, code: 'SWX_DIGEST_MISMATCH' } },
    today: { valid: false, code: 'SWX_DIGEST_MISMATCH' },
  },
  {
    check: 'P4_R12', file: 'phase4/testfiles/TestReceipt12.xml', detected: 'xml', kind: 'as4',
    args: ['--cert', 'phase4/_derived/TestReceipt12.xml.signer.pem'],
    // eb:Timestamp 2025-12-05T14:03:40.878Z; certificate 2025-11-07 .. 2027-10-27, so still valid today
    signedAt: { at: '2025-12-05T14:03:41Z', expect: { valid: true, code: 'SWX_OK', signer: 'PDE000576', references: 2, certificate: 'valid' } },
    today: { valid: true, code: 'SWX_OK', signer: 'PDE000576', references: 2, certificate: 'valid' },
  },
  {
    check: 'P4_R11', file: 'phase4/testfiles/TestReceipt11.xml', detected: 'xml', kind: 'as4',
    args: ['--cert', 'phase4/_derived/dummy-pw-test.jks.ph-as4.cert.pem'],
    // eb:Timestamp 2017-06-13T13:36:35.320; certificate 2017-01-18 .. 2044-06-04
    signedAt: { at: '2017-06-13T13:36:35Z', expect: { valid: true, code: 'SWX_OK', signer: 'ph-as4', references: 1, certificate: 'valid' } },
    today: { valid: true, code: 'SWX_OK', signer: 'ph-as4', references: 1, certificate: 'valid' },
  },
  {
    check: 'P4_WSA', file: 'phase4/testfiles/WrongSigningAlgorithm.xml', detected: 'xml', kind: 'as4',
    args: ['--cert', 'phase4/_derived/WrongSigningAlgorithm.xml.signer.pem'],
    // eb:Timestamp 2016-12-21T11:34:22.462+01:00
    signedAt: { at: '2016-12-21T10:34:22Z', expect: { valid: false, code: 'SWX_SIG_ALG_UNSUPPORTED' } },
    today: { valid: false, code: 'SWX_SIG_ALG_UNSUPPORTED' },
  },
  {
    check: 'P4_WSDA', file: 'phase4/testfiles/WrongSigningDigestAlgorithm.xml', detected: 'xml', kind: 'as4',
    args: ['--cert', 'phase4/_derived/WrongSigningDigestAlgorithm.xml.signer.pem'],
    signedAt: { at: '2016-12-21T10:34:22Z', expect: { valid: false, code: 'SWX_SIG_ALG_UNSUPPORTED' } },
    today: { valid: false, code: 'SWX_SIG_ALG_UNSUPPORTED' },
  },
  {
    check: 'P4_TM11', file: 'phase4/unused/TestMessage11.xml', detected: 'xml', kind: 'as4',
    args: ['--cert', 'phase4/_derived/TestMessage11.xml.signer.pem'],
    // Its eb:Timestamp (2006-07-25) is a fixed test value that predates the certificate (2015-03-06 .. 2017-03-05):
    // the signing time comes from the certificate's validity instead.
    signedAt: { at: '2016-01-01T00:00:00Z', expect: { valid: true, code: 'SWX_OK', signer: 'APP_1000000101', references: 1, certificate: 'valid' } },
    today: expired,
  },
  { check: 'ErrorMessage.xml n/a (unsigned)', file: 'phase4/testfiles/ErrorMessage.xml', detected: 'xml', args: [], today: notSigned },
  { check: 'ErrorMessageWithFault.xml n/a (unsigned)', file: 'phase4/testfiles/ErrorMessageWithFault.xml', detected: 'xml', args: [], today: notSigned },
  {
    check: 'NAV_OPPG', file: 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg', detected: 'smtp-mail', kind: 'ebms2',
    args: ['--cert', 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer'],
    // eb:Timestamp 2023-08-29T10:56:50.3069479Z; certificate 2022-09-22 .. 2025-09-22
    signedAt: { at: '2023-08-29T10:56:51Z', expect: { valid: true, code: 'SWX_OK', signer: 'SPEARE AS', references: 2, certificate: 'valid' } },
    today: expired,
  },
  {
    check: 'NAV_UNGZ', file: 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.p7m.deenveloped.ungz', detected: 'xml', kind: 'xmldsig',
    args: ['--cert', 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer'],
    // MsgHead GenDate 2023-08-29T10:56:50
    signedAt: { at: '2023-08-29T10:56:50Z', expect: { valid: true, code: 'SWX_OK', signer: 'SPEARE AS', references: 1, certificate: 'valid' } },
    today: expired,
  },
  {
    check: 'NAV_ACK', file: 'navikt-ebxml-processor/INBOX/acknowledgment.eml', detected: 'smtp-mail', kind: 'ebms2',
    args: ['--cert', 'navikt-ebxml-processor/_derived/acknowledgment.eml.signer.pem'],
    // eb:Timestamp 2023-11-21T14:45:47.2040971Z; certificate 2022-04-28 .. 2025-04-28
    signedAt: { at: '2023-11-21T14:45:47Z', expect: { valid: true, code: 'SWX_OK', signer: 'SYKEHUSAPOTEK NORD', references: 1, certificate: 'valid' } },
    today: expired,
  },
  { check: 'messageerror.xml n/a (unsigned)', file: 'navikt-ebxml-processor/signaltest/messageerror.xml', detected: 'xml', args: [], today: notSigned },
  { check: 'test1.msg n/a (unsigned)', file: 'hermes/test1.msg', detected: 'http-capture', args: [], today: notSigned },
  {
    check: 'XS_ENVLPG_RSA', file: 'xmlsec/aleksey-xmldsig-01/enveloping-sha256-rsa-sha256.xml', detected: 'xml', kind: 'xmldsig',
    args: ['--trusted', 'xmlsec/keys/cacert.pem'],
    // No signing time in the message; its certificates are valid 2026-03-08 .. 2126
    today: { valid: true, code: 'SWX_OK', references: 1, certificate: 'valid' },
  },
  {
    check: 'XS_ENVLPD_EC', file: 'xmlsec/aleksey-xmldsig-01/enveloped-sha256-ecdsa-sha256.xml', detected: 'xml', kind: 'xmldsig',
    args: ['--cert', 'xmlsec/keys/ec/ec-prime256v1-pubkey.pem'],
    today: { valid: true, code: 'SWX_OK', references: 1 },
  },
  {
    check: 'XS_EXC', file: 'xmlsec/merlin-exc-c14n-one/exc-signature.xml', detected: 'xml', kind: 'xmldsig',
    args: [],
    today: { valid: true, code: 'SWX_OK', references: 4 },
  },
  {
    check: 'PH_OK', file: 'xmlsec/phaos-xmldsig-three/signature-rsa-enveloped.xml', detected: 'xml', kind: 'xmldsig',
    args: ['--trusted', 'xmlsec/phaos-xmldsig-three/certs/rsa-ca-cert.der'],
    signedAt: { at: '2009-01-01T10:00:00Z', expect: { valid: true, code: 'SWX_OK', references: 1, certificate: 'valid' } },
    today: expired,
  },
  {
    check: 'PH_BADDIG', file: 'xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-digest-val.xml', detected: 'xml', kind: 'xmldsig',
    args: ['--trusted', 'xmlsec/phaos-xmldsig-three/certs/rsa-ca-cert.der'],
    signedAt: { at: '2009-01-01T10:00:00Z', expect: { valid: false, code: 'SWX_DIGEST_MISMATCH' } },
    today: { valid: false, code: 'SWX_DIGEST_MISMATCH' },
  },
  {
    check: 'PH_BADSIG', file: 'xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-sig.xml', detected: 'xml', kind: 'xmldsig',
    args: ['--trusted', 'xmlsec/phaos-xmldsig-three/certs/rsa-ca-cert.der'],
    signedAt: { at: '2009-01-01T10:00:00Z', expect: { valid: false, code: 'SWX_SIG_INVALID' } },
    today: { valid: false, code: 'SWX_SIG_INVALID' },
  },
  {
    check: 'TS_TT', file: 'rfc3161-client/test_tsa/response.tsr', detected: 'timestamp-response', kind: 'timestamp',
    args: ['--data', 'rfc3161-client/_derived/hello.txt', '--trusted', 'rfc3161-client/_derived/test_tsa.root.pem', '--untrusted', 'rfc3161-client/test_tsa/ts_chain.pem'],
    // genTime 2024-10-08T15:40:32Z; chain valid to 2033+
    signedAt: { at: '2024-10-08T15:40:32Z', expect: { valid: true, code: 'SWX_OK', signer: 'Test TSA Timestamping', certificate: 'valid' } },
    today: { valid: true, code: 'SWX_OK', signer: 'Test TSA Timestamping', certificate: 'valid' },
  },
  {
    check: 'TS_TT_CMS', file: 'rfc3161-client/_derived/test_tsa.response.token.der', detected: 'timestamp-token', kind: 'timestamp',
    args: ['--data', 'rfc3161-client/_derived/hello.txt', '--trusted', 'rfc3161-client/test_tsa/ts_chain.pem'],
    signedAt: { at: '2024-10-08T15:40:32Z', expect: { valid: true, code: 'SWX_OK', signer: 'Test TSA Timestamping', certificate: 'valid' } },
    today: { valid: true, code: 'SWX_OK', signer: 'Test TSA Timestamping', certificate: 'valid' },
  },
  {
    check: 'TS_TT_INJ', file: 'rfc3161-client/test_tsa/response-injected-certs.tsr', detected: 'timestamp-response', kind: 'timestamp',
    args: ['--data', 'rfc3161-client/_derived/hello.txt', '--trusted', 'rfc3161-client/_derived/test_tsa.root.pem', '--untrusted', 'rfc3161-client/test_tsa/ts_chain.pem'],
    signedAt: { at: '2024-10-08T15:40:32Z', expect: { valid: true, code: 'SWX_OK', signer: 'Test TSA Timestamping', certificate: 'valid' } },
    today: { valid: true, code: 'SWX_OK', signer: 'Test TSA Timestamping', certificate: 'valid' },
  },
  {
    check: 'TS_SM_EXP / TS_SM_ATTIME', file: 'rfc3161-client/sigstore.mock/response-expired.tsr', detected: 'timestamp-response', kind: 'timestamp',
    args: ['--data', 'rfc3161-client/sigstore.mock/payload', '--trusted', 'rfc3161-client/_derived/sigstore.mock.root.pem', '--untrusted', 'rfc3161-client/sigstore.mock/ts_chain.pem'],
    // INDEX.md: -attime 1675209601 (genTime 2023-02-01); the TSA certificate expired 2024-01-01
    signedAt: { at: '1675209601', expect: { valid: true, code: 'SWX_OK', signer: 'tsa signing', certificate: 'valid' } },
    today: expired,
  },
  {
    check: 'CMS_A / CMS_A_ATTIME', file: 'asn1crypto/cms-signed.der', detected: 'cms', kind: 'cms',
    args: ['--trusted', 'asn1crypto/keys/test.crt'],
    // INDEX.md: -attime 1577836800 (2020-01-01); signingTime 2015-05-30; certificate expired 2025-05-03
    signedAt: { at: '1577836800', expect: { valid: true, code: 'SWX_OK', signer: 'Will Bond', certificate: 'valid' } },
    today: expired,
  },
];

function judge(label: string, outcome: Outcome, expected: Expectation, item: Case): void {
  const { exit, verdict } = outcome;
  const where = `${item.check} ${label}: ${JSON.stringify(verdict).slice(0, 600)} ${outcome.stderr.slice(0, 300)}`;
  assert.is(verdict.file, item.file, where);
  assert.is(verdict.detected, item.detected, where);
  if (item.kind) assert.is(verdict.kind, item.kind, where);
  assert.is(verdict.code, expected.code, where);
  assert.is(verdict.valid, expected.valid, where);
  assert.is(exit, expected.valid ? 0 : 1, where);
  if (!expected.valid) assert.ok(verdict.detail.length > 0, where);
  if (expected.signer) assert.ok(String(verdict.signer?.subject).includes(expected.signer), where);
  if (expected.references !== undefined) {
    assert.is(verdict.references?.length, expected.references, where);
    assert.ok(verdict.references.every((reference: { valid: boolean }) => reference.valid), where);
  }
  if (expected.certificate) assert.is(verdict.certificate?.status, expected.certificate, where);
}

for (const item of cases) {
  test(`${item.check}: ${item.file}`, async () => {
    const [atSigning, atToday] = await Promise.all([
      item.signedAt ? swxVerify([item.file, ...item.args, '--at', item.signedAt.at]) : undefined,
      swxVerify([item.file, ...item.args, '--at', today]),
    ]);
    if (item.signedAt) judge(`at ${item.signedAt.at}`, atSigning!, item.signedAt.expect, item);
    judge(`at ${today}`, atToday, item.today, item);
  });
}

test('without --at validity is judged now: the 2015 CMS signature is expired, its certificate status says when', async () => {
  const { exit, verdict } = await swxVerify(['asn1crypto/cms-signed.der', '--trusted', 'asn1crypto/keys/test.crt']);
  assert.is(exit, 1);
  assert.is(verdict.code, 'SWX_CERT_EXPIRED');
  assert.ok(Date.parse(verdict.certificate.at) > Date.parse('2025-05-03T14:37:16Z'));
  assert.is(verdict.signedAt, '2015-05-30T13:12:38.000Z');
});

test('the injected-certificates token names the real signer, not the spoofed certificate placed first', async () => {
  const { verdict } = await swxVerify(['rfc3161-client/test_tsa/response-injected-certs.tsr', '--data', 'rfc3161-client/_derived/hello.txt', '--trusted', 'rfc3161-client/_derived/test_tsa.root.pem', '--untrusted', 'rfc3161-client/test_tsa/ts_chain.pem']);
  assert.is(verdict.signer.subject, 'O=local, CN=Test TSA Timestamping');
  assert.not.match(JSON.stringify(verdict), /Spoofed/);
});

test('--cert pins the signer: the navikt mail checked against another Buypass test certificate is refused', async () => {
  const { exit, verdict } = await swxVerify(['navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg', '--cert', 'navikt-ebxml-processor/_derived/acknowledgment.eml.signer.pem', '--at', '2023-08-29T10:56:51Z']);
  assert.is(exit, 1);
  assert.is(verdict.code, 'SWX_SIG_KEY_MISMATCH', JSON.stringify(verdict));
  assert.ok(verdict.signer.subject.includes('SPEARE AS'));
});

test('a time stamp over other data fails with SWX_TSP_IMPRINT_MISMATCH', async () => {
  const { exit, verdict } = await swxVerify(['rfc3161-client/test_tsa/response.tsr', '--data', 'rfc3161-client/sigstore.mock/payload', '--trusted', 'rfc3161-client/_derived/test_tsa.root.pem', '--untrusted', 'rfc3161-client/test_tsa/ts_chain.pem']);
  assert.is(exit, 1);
  assert.is(verdict.code, 'SWX_TSP_IMPRINT_MISMATCH');
});

test('the Hermes capture lists its MIME parts; the ebMS SOAP part alone cannot resolve its attachment reference', async () => {
  const hermes = await swxVerify(['hermes/test1.msg']);
  assert.equal(hermes.verdict.parts, [
    { contentId: 'soappart', contentType: 'text/xml', bytes: 1673, root: true },
    { contentId: 'Payload-0', contentType: 'application/octream', bytes: 1500, root: false },
  ]);
  const alone = await swxVerify(['navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part1.soap.xml', '--cert', 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.cer', '--at', '2023-08-29T10:56:51Z']);
  assert.is(alone.exit, 1);
  assert.is(alone.verdict.code, 'SWX_SIG_REF_UNRESOLVED', JSON.stringify(alone.verdict));
});

test('a CMS file in PEM form is recognised, and --policy live refuses the legacy DSA-SHA1 that archive accepts as weak', async () => {
  const der = readFileSync(join(conformance, 'asn1crypto/cms-signed.der'));
  const pem = join(scratch, 'cms-signed.pem');
  writeFileSync(pem, `-----BEGIN CMS-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CMS-----\n`);
  const cms = await swxVerify([pem, '--trusted', 'asn1crypto/keys/test.crt', '--at', '1577836800']);
  assert.is(cms.verdict.detected, 'cms');
  assert.is(cms.exit, 0, JSON.stringify(cms.verdict));
  const archive = await swxVerify(['xmlsec/merlin-exc-c14n-one/exc-signature.xml']);
  assert.ok(archive.verdict.weak?.length > 0, JSON.stringify(archive.verdict));
  const live = await swxVerify(['xmlsec/merlin-exc-c14n-one/exc-signature.xml', '--policy', 'live']);
  assert.is(live.exit, 1);
  assert.is(live.verdict.code, 'SWX_SIG_WEAK_ALG');
});

// ---------------------------------------------------------------- hostile input: each a clean refusal with its code

const crlf = (text: string) => text.replace(/\r?\n/g, '\r\n');

function hostileFile(name: string, content: string | Buffer): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

const signedLooking = '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></S:Header><S:Body/></S:Envelope>';
const bomb = `<?xml version="1.0"?>\n<!DOCTYPE S:Envelope [\n<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">\n${Array.from({ length: 9 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`).join('\n')}\n]>\n${signedLooking.replace('<S:Body/>', '<S:Body>&j;</S:Body>')}`;
const mimeHead = 'From: a@example.org\nTo: b@example.org\nMIME-Version: 1.0\nContent-Type: multipart/related; boundary="b"; type="text/xml"; start="<root>"\n\n';
const rootPart = (xml: string) => `--b\nContent-Type: text/xml\nContent-ID: <root>\n\n${xml}\n`;

const hostile: [string, string, string, RegExp][] = [
  ['truncated MIME (the navikt mail cut inside its attachment)', 'truncated.msg', 'SWX_BAD_REQUEST', /never closes/],
  ['a boundary that never closes', 'unclosed.eml', 'SWX_BAD_REQUEST', /never closes/],
  ['a 10,000-part bomb', 'bomb-parts.eml', 'SWX_TOO_LARGE', /more than 1000 parts/],
  ['an XML entity bomb in the root part', 'bomb-entities.eml', 'SWX_XML_FORBIDDEN', /DTD|DOCTYPE|entit/i],
  ['random bytes', 'noise.bin', 'SWX_BAD_REQUEST', /not XML, CMS, RFC 3161, MIME, mail or an HTTP capture/],
  ['a chunked HTTP capture cut inside a chunk', 'cut-chunk.http', 'SWX_BAD_REQUEST', /truncated/],
];

test('hostile inputs are refused with their code, exit 1, never a crash', async () => {
  const navikt = readFileSync(join(conformance, 'navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg'));
  hostileFile('truncated.msg', navikt.subarray(0, navikt.length - 500));
  hostileFile('unclosed.eml', crlf(`${mimeHead}${rootPart(signedLooking)}--b\nContent-Type: application/octet-stream\nContent-ID: <att>\n\npayload\n`));
  hostileFile('bomb-parts.eml', crlf(`${mimeHead}${rootPart(signedLooking)}${'--b\nContent-Type: text/plain\n\nx\n'.repeat(10_000)}--b--\n`));
  hostileFile('bomb-entities.eml', crlf(`${mimeHead}${rootPart(bomb)}--b--\n`));
  hostileFile('noise.bin', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 151 + 7) % 251)));
  hostileFile('cut-chunk.http', crlf(`HTTP/1.1 200 OK\nContent-Type: application/soap+xml\nTransfer-Encoding: chunked\n\n400\n${signedLooking}`));
  const outcomes = await Promise.all(hostile.map(([, file]) => swxVerify([join(scratch, file)])));
  hostile.forEach(([name, , code, detail], index) => {
    const { exit, verdict, stderr } = outcomes[index]!;
    assert.is(exit, 1, `${name}: ${stderr}`);
    assert.is(verdict.valid, false, name);
    assert.is(verdict.code, code, `${name}: ${JSON.stringify(verdict)}`);
    assert.match(verdict.detail, detail, name);
    assert.is(stderr, '', name);
  });
});

test('usage errors exit 2 with the usage line', async () => {
  const usage: string[][] = [
    [],
    ['asn1crypto/cms-signed.der', '--at', 'yesterday'],
    ['asn1crypto/cms-signed.der', '--cert', 'no/such/file.pem'],
    ['no/such/file.xml'],
    ['rfc3161-client/test_tsa/response.tsr'],
    ['asn1crypto/cms-signed.der', '--policy', 'lenient'],
    ['asn1crypto/cms-signed.der', '--cert', 'xmlsec/keys/ec/ec-prime256v1-pubkey.pem'],
  ];
  for (const args of usage) {
    const { exit, stderr } = await swxVerify(args);
    assert.is(exit, 2, args.join(' '));
    assert.match(stderr, /usage: swx verify FILE/, args.join(' '));
  }
});

// ---------------------------------------------------------------- AS4 messages signed, then encrypted for the hub

const as4Envelope = '<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/" '
  + 'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><S:Header><eb:Messaging wsu:Id="messaging"><eb:UserMessage>'
  + '<eb:MessageInfo><eb:MessageId>enc-1@swx</eb:MessageId></eb:MessageInfo></eb:UserMessage></eb:Messaging></S:Header><S:Body wsu:Id="body"/></S:Envelope>';
const payloads: SwaPart[] = [
  { contentId: 'declaration@swx', contentType: 'application/xml', body: Buffer.from('<declaration><hs>0901.21</hs></declaration>') },
  { contentId: 'scan@swx', contentType: 'application/pdf', body: Buffer.from('%PDF-1.7 not really, but bytes all the same') },
];

/** An AS4 message as a MIME file: signed by `signer` over its plaintext parts, then encrypted for `hub`. */
async function encryptedAs4File(name: string, profile: EncryptionProfile, signer: TestCredential, hub: TestCredential, alter?: (xml: string) => string): Promise<string> {
  const signed = await signSoap(as4Envelope, { keyPem: signer.keyPem, certPem: signer.certPem, ids: ['messaging'], attachments: payloads.map((part) => ({ contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body as Buffer })) });
  const encrypted = await encryptSoapAttachments(signed, payloads, { certPem: hub.certPem }, profile);
  const root = alter ? alter(encrypted.envelope) : encrypted.envelope;
  const { contentType, body } = writeMultipart({ contentId: 'root@swx', contentType: 'application/soap+xml; charset=utf-8', body: Buffer.from(root) }, encrypted.parts);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return hostileFile(name, Buffer.concat([Buffer.from(`MIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n\r\n`), ...chunks]));
}

const fixture = await trustFixture();
const [hubRsa, hubX25519, otherRsa] = await Promise.all([
  fixture.issue({ key: 'rsa', commonName: 'hub encryption (RSA)', usages: ['keyEncipherment'] }),
  fixture.issue({ key: 'x25519', commonName: 'hub encryption (X25519)', usages: ['keyAgreement'] }),
  fixture.issue({ key: 'rsa', commonName: 'another recipient', usages: ['keyEncipherment'] }),
]);
const keyFile = (name: string, credential: TestCredential) => hostileFile(name, credential.keyPem + credential.certPem);

for (const { profile, signer, hub } of [
  { profile: 'eDelivery-AS4-1.15', signer: fixture.rsa, hub: hubRsa },
  { profile: 'eDelivery-AS4-2.0', signer: fixture.ed25519, hub: hubX25519 },
] as const) {
  test(`${profile}: a signed-then-encrypted AS4 message is reported encrypted without --key (the envelope's references judged), and valid with the hub's key`, async () => {
    const message = await encryptedAs4File(`encrypted-${profile}.msg`, profile, signer, hub);
    const signerPem = hostileFile(`signer-${profile}.pem`, signer.certPem);
    const sealed = await swxVerify([message, '--cert', signerPem]);
    const where = JSON.stringify(sealed.verdict);
    assert.is(sealed.exit, 1, where);
    assert.is(sealed.verdict.detected, 'mime', where);
    assert.is(sealed.verdict.kind, 'as4', where);
    assert.is(sealed.verdict.code, 'SWX_DECRYPT_KEY_MISSING', where);
    assert.match(sealed.verdict.detail, /<declaration@swx>, <scan@swx> are encrypted and no key was given/);
    const byUri = Object.fromEntries(sealed.verdict.references.map((reference: { uri: string }) => [reference.uri, reference]));
    assert.is(sealed.verdict.references.length, 5, where);
    for (const uri of ['#messaging', '#body']) assert.is(byUri[uri].valid, true, `${uri}: ${where}`);
    assert.ok(sealed.verdict.references.some((reference: { uri: string; valid: boolean }) => reference.uri.startsWith('#TS-') && reference.valid), where);
    for (const uri of ['cid:declaration@swx', 'cid:scan@swx']) {
      assert.is(byUri[uri].valid, false, where);
      assert.match(byUri[uri].detail, /encrypted: not judged/);
    }
    assert.not.match(where, /SWX_DIGEST_MISMATCH|tampered|altered/);
    assert.equal(sealed.verdict.encrypted.map((part: { contentId: string; mimeType: string; decrypted: boolean }) => [part.contentId, part.mimeType, part.decrypted]),
      [['declaration@swx', 'application/xml', false], ['scan@swx', 'application/pdf', false]]);

    const opened = await swxVerify([message, '--cert', signerPem, '--key', keyFile(`hub-${profile}.pem`, hub)]);
    assert.is(opened.exit, 0, JSON.stringify(opened.verdict));
    assert.is(opened.verdict.code, 'SWX_OK');
    assert.is(opened.verdict.certificate.status, 'valid');
    assert.is(opened.verdict.references.length, 5);
    assert.ok(opened.verdict.references.every((reference: { valid: boolean }) => reference.valid));
    assert.equal(opened.verdict.signedAttachments.sort(), ['declaration@swx', 'scan@swx']);
    assert.ok(opened.verdict.encrypted.every((part: { decrypted: boolean }) => part.decrypted));
  });
}

test('swx verify on encrypted AS4: another recipient\'s key, a ciphertext altered, the other profile and an altered Body each get their own code', async () => {
  const message = await encryptedAs4File('encrypted-refusals.msg', 'eDelivery-AS4-1.15', fixture.rsa, hubRsa);
  const other = await swxVerify([message, '--key', keyFile('other.pem', otherRsa)]);
  assert.is(other.exit, 1);
  assert.is(other.verdict.code, 'SWX_DECRYPT_FAILED', JSON.stringify(other.verdict));
  assert.match(other.verdict.detail, /another recipient/);
  const wrongProfile = await swxVerify([message, '--key', keyFile('hub-rsa.pem', hubRsa), '--profile', 'eDelivery-AS4-2.0']);
  assert.is(wrongProfile.verdict.code, 'SWX_ENC_ALG_UNSUPPORTED');
  assert.match(wrongProfile.verdict.detail, /expects key wrap http:\/\/www\.w3\.org\/2001\/04\/xmlenc#kw-aes128/);
  // A byte of the scan's ciphertext flipped (the last part, so the MIME framing stays intact).
  const bytes = readFileSync(message);
  const end = bytes.lastIndexOf(Buffer.from('\r\n--='));
  bytes[end - 20] = bytes[end - 20]! ^ 0x01;
  const altered = await swxVerify([hostileFile('encrypted-altered.msg', bytes), '--key', keyFile('hub-rsa.pem', hubRsa)]);
  assert.is(altered.verdict.code, 'SWX_DECRYPT_FAILED', JSON.stringify(altered.verdict));
  assert.match(altered.verdict.detail, /tag does not match/);
  // Without a key, a Body changed after signing is still a digest mismatch: encryption hides nothing of the envelope.
  const body = await encryptedAs4File('encrypted-body-altered.msg', 'eDelivery-AS4-1.15', fixture.rsa, hubRsa, (xml) => xml.replace('<S:Body wsu:Id="body"/>', '<S:Body wsu:Id="body"><x/></S:Body>'));
  const changed = await swxVerify([body]);
  assert.is(changed.verdict.code, 'SWX_DIGEST_MISMATCH', JSON.stringify(changed.verdict));
  const usage = await swxVerify([message, '--profile', 'eDelivery-AS4-3']);
  assert.is(usage.exit, 2);
  const noKey = await swxVerify([message, '--key', hostileFile('not-a-key.pem', hubRsa.certPem)]);
  assert.is(noKey.exit, 2);
  assert.match(noKey.stderr, /no PRIVATE KEY block/);
});

test.run();
