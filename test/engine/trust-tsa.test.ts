// The hub's time-stamp authority, checked the way an auditor would: our tokens verify with `openssl ts -verify`,
// openssl's and other TSAs' tokens verify with ours, and altered or untrusted tokens fail with a reason code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { initPki, type KeyAlg } from '../../engine/pki/index.ts';
import { toArrayBuffer } from '../../engine/trust/x509.ts';
import {
  createTimeStampToken,
  parseTimeStampRequest,
  requestTimeStamp,
  timeStampRequest,
  timeStampTokenOf,
  verifyTimeStampResponse,
  verifyTimeStampToken,
  type TsaCredential,
} from '../../engine/trust/index.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-tsa-'));
const conformance = fileURLToPath(new URL('../../../shared/conformance/rfc3161-client/', import.meta.url));
const fixture = (path: string) => readFileSync(join(conformance, path));
const fixtureText = (path: string) => readFileSync(join(conformance, path), 'utf8');
const policy = '1.3.6.1.4.1.61000.3161.1';

interface Deployment {
  dir: string;
  tsa: TsaCredential;
  caPem: string;
  hubSign: TsaCredential;
}
const deployments: Partial<Record<KeyAlg, Deployment>> = {};

async function deployment(alg: KeyAlg): Promise<Deployment> {
  if (deployments[alg]) return deployments[alg]!;
  const dir = join(root, alg);
  await initPki(dir, { agencies: [], alg });
  const read = (path: string) => readFileSync(join(dir, path), 'utf8');
  deployments[alg] = {
    dir,
    tsa: { certPem: read('tsa/cert.pem'), keyPem: read('tsa/key.pem') },
    caPem: read('ca/cert.pem'),
    hubSign: { certPem: read('hub-sign/cert.pem'), keyPem: read('hub-sign/key.pem') },
  };
  return deployments[alg]!;
}

function openssl(args: string[], cwd?: string): { ok: boolean; out: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd });
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}` };
}

/** uvu 0.5 has no assert.rejects. */
async function rejects(promise: Promise<unknown>, expected: RegExp | ((error: unknown) => boolean)): Promise<void> {
  try {
    await promise;
  } catch (error) {
    const ok = expected instanceof RegExp ? expected.test(String((error as Error).message)) : expected(error);
    assert.ok(ok, `unexpected error: ${(error as Error).message}`);
    return;
  }
  assert.unreachable('expected a rejection');
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

test.after(() => rmSync(root, { recursive: true, force: true }));

for (const alg of ['ecdsa', 'rsa'] as const) {
  test(`${alg}: a token from our TSA verifies with openssl ts -verify, by digest and by data`, async () => {
    const { dir, tsa, caPem } = await deployment(alg);
    const data = Buffer.from(`evidence batch root, ${alg}`);
    writeFileSync(join(dir, 'data.bin'), data);
    const nonce = randomBytes(8);
    const response = createTimeStampToken({ digest: sha256(data), nonce, policy, tsa, serial: 1n });
    writeFileSync(join(dir, 'resp.der'), response);
    const common = ['-in', 'resp.der', '-CAfile', 'ca/cert.pem', '-untrusted', 'tsa/cert.pem'];
    const byDigest = openssl(['ts', '-verify', '-digest', sha256(data).toString('hex'), ...common], dir);
    assert.ok(byDigest.ok && byDigest.out.includes('Verification: OK'), byDigest.out);
    const byData = openssl(['ts', '-verify', '-data', 'data.bin', ...common], dir);
    assert.ok(byData.ok && byData.out.includes('Verification: OK'), byData.out);
    // Against the request it answers, as a client of our TSA would check it (nonce and imprint).
    writeFileSync(join(dir, 'req.tsq'), timeStampRequest(sha256(data), nonce));
    const byQuery = openssl(['ts', '-verify', '-queryfile', 'req.tsq', ...common], dir);
    assert.ok(byQuery.ok && byQuery.out.includes('Verification: OK'), byQuery.out);
    // The token alone is plain CMS too.
    writeFileSync(join(dir, 'token.der'), timeStampTokenOf(response));
    const cms = openssl(['cms', '-verify', '-inform', 'DER', '-in', 'token.der', '-CAfile', 'ca/cert.pem', '-purpose', 'any', '-out', '/dev/null'], dir);
    assert.ok(cms.ok, cms.out);

    const verdict = verifyTimeStampResponse(response, { data, nonce, trustedCertsPem: caPem });
    assert.ok(verdict.valid, verdict.detail);
    assert.equal(verdict.certificate, { status: 'valid', at: verdict.certificate!.at, trust: 'chain' });
    assert.is(verdict.kind, 'timestamp');
    assert.is(verdict.signer?.subject, 'O=swx demo, CN=swx hub TSA');
    assert.is(verdict.serial, '1');
    assert.is(verdict.policy, policy);
    assert.is(verdict.hashAlgorithm, 'SHA-256');
    assert.is(verdict.nonce, BigInt(`0x${nonce.toString('hex')}`).toString(16));
  });
}

test('the token says what was asked: genTime, serial, policy, and no certificate when certReq is false', async () => {
  const { dir, tsa, caPem } = await deployment('ecdsa');
  const genTime = new Date('2026-11-27T10:11:12.345Z');
  const digest = sha256('x');
  const response = createTimeStampToken({ digest, policy, tsa, serial: Buffer.from('00ff00ff00ff00ff00', 'hex'), genTime, certReq: false });
  const verdict = verifyTimeStampResponse(response, { digest, trustedCertsPem: caPem, untrustedCertsPem: tsa.certPem });
  assert.ok(verdict.valid, verdict.detail);
  assert.equal(verdict.genTime, genTime);
  assert.is(verdict.serial, 'ff00ff00ff00ff00');
  // Without the certificate in the token or given, the signer cannot be found.
  assert.is(verifyTimeStampResponse(response, { digest, trustedCertsPem: caPem }).code, 'SWX_TSP_SIGNER_UNKNOWN');
  writeFileSync(join(dir, 'nocert.der'), response);
  const reply = openssl(['ts', '-reply', '-in', 'nocert.der', '-text'], dir);
  assert.match(reply.out, /Time stamp: Nov 27 10:11:12\.345 2026 GMT/);
  assert.match(reply.out, /TSA: DirName:\/?O\s?=\s?swx demo/);
});

test('requests round-trip and refuse digests of the wrong length', () => {
  const digest = sha256('y');
  const parsed = parseTimeStampRequest(timeStampRequest(digest, Buffer.from('8001', 'hex'), { policy }));
  assert.equal(parsed, { hashAlgorithm: 'SHA-256', digest, nonce: Buffer.from('8001', 'hex'), certReq: true, policy });
  // Nonces whose hex starts with a zero nibble or byte, or with the top bit set (DER pads it with 0x00).
  for (const [given, read] of [['0abc', '0abc'], ['00ff', 'ff'], ['ff01', 'ff01'], ['000000', '00']]) {
    assert.is(parseTimeStampRequest(timeStampRequest(digest, Buffer.from(given!, 'hex'))).nonce!.toString('hex'), read, given);
  }
  assert.throws(() => timeStampRequest(digest.subarray(1)), /SHA-256 digest is 32 bytes, got 31/);
  assert.throws(() => parseTimeStampRequest(Buffer.from('not asn.1')), /not a DER TimeStampReq/);
});

test('only a certificate made for time-stamping may sign tokens', async () => {
  const { hubSign } = await deployment('ecdsa');
  assert.throws(() => createTimeStampToken({ digest: sha256('z'), policy, tsa: hubSign, serial: 1n }), /timeStamping/);
});

/** An openssl TSA in the temp dir with the same certificate and key as ours. */
function opensslTsa(dir: string, essCertIdAlg: 'sha1' | 'sha256'): string {
  const config = join(dir, `tsa-${essCertIdAlg}.cnf`);
  writeFileSync(join(dir, 'tsaserial'), '1000\n');
  writeFileSync(
    config,
    [
      '[ tsa ]',
      'default_tsa = swx_test',
      '[ swx_test ]',
      `dir = ${dir}`,
      'serial = $dir/tsaserial',
      'signer_cert = $dir/tsa/cert.pem',
      'signer_key = $dir/tsa/key.pem',
      'certs = $dir/ca/cert.pem',
      'signer_digest = sha256',
      `default_policy = ${policy}`,
      'digests = sha256, sha384, sha512',
      'accuracy = secs:1, millisecs:500',
      'ordering = yes',
      'tsa_name = yes',
      `ess_cert_id_alg = ${essCertIdAlg}`,
      '',
    ].join('\n'),
  );
  return config;
}

for (const alg of ['ecdsa', 'rsa'] as const) {
  for (const essCertIdAlg of ['sha256', 'sha1'] as const) {
    test(`${alg}: a token made by openssl ts -reply (ESS cert id ${essCertIdAlg}) verifies in ours`, async () => {
      const { dir, caPem } = await deployment(alg);
      const config = opensslTsa(dir, essCertIdAlg);
      const data = Buffer.from('what openssl stamped');
      writeFileSync(join(dir, 'ossl-data.bin'), data);
      const query = openssl(['ts', '-query', '-data', 'ossl-data.bin', '-sha512', '-cert', '-out', 'ossl.tsq'], dir);
      assert.ok(query.ok, query.out);
      const reply = openssl(['ts', '-reply', '-config', config, '-queryfile', 'ossl.tsq', '-out', 'ossl.tsr'], dir);
      assert.ok(reply.ok, reply.out);
      const response = readFileSync(join(dir, 'ossl.tsr'));
      const request = readFileSync(join(dir, 'ossl.tsq'));
      const verdict = verifyTimeStampResponse(response, { data, request, trustedCertsPem: caPem });
      assert.ok(verdict.valid, `${verdict.code}: ${verdict.detail}`);
      assert.is(verdict.hashAlgorithm, 'SHA-512');
      assert.is(verdict.signer?.subject, 'O=swx demo, CN=swx hub TSA');
      assert.is(verdict.policy, policy);
      assert.is(verifyTimeStampResponse(response, { data: Buffer.from('other data'), request, trustedCertsPem: caPem }).code, 'SWX_TSP_IMPRINT_MISMATCH');
    });
  }
}

test('a rejection from the TSA is reported as not granted', async () => {
  const { dir, caPem } = await deployment('ecdsa');
  const config = opensslTsa(dir, 'sha256');
  // SHA-1 is not among the digests this TSA accepts, so openssl answers with status rejection (badAlg).
  assert.ok(openssl(['ts', '-query', '-digest', 'aa'.repeat(20), '-sha1', '-out', 'sha1.tsq'], dir).ok);
  assert.ok(openssl(['ts', '-reply', '-config', config, '-queryfile', 'sha1.tsq', '-out', 'sha1.tsr'], dir).ok);
  const verdict = verifyTimeStampResponse(readFileSync(join(dir, 'sha1.tsr')), { digest: Buffer.alloc(20, 0xaa), trustedCertsPem: caPem });
  assert.is(verdict.valid, false);
  assert.is(verdict.code, 'SWX_TSP_NOT_GRANTED');
  assert.match(verdict.detail, /status 2/);
});

test('tampering, replays and foreign trust anchors fail, each with its reason', async () => {
  const { tsa, caPem } = await deployment('ecdsa');
  const digest = sha256('the real evidence');
  const nonce = Buffer.from('0102030405060708', 'hex');
  const response = createTimeStampToken({ digest, nonce, policy, tsa, serial: 7n });
  const check = (der: Buffer, extra: object = {}) => verifyTimeStampResponse(der, { digest, trustedCertsPem: caPem, ...extra });
  assert.ok(check(response).valid);

  const other = sha256('forged evidence');
  const tampered = check(response, { digest: other });
  assert.is(tampered.code, 'SWX_TSP_IMPRINT_MISMATCH');
  assert.match(tampered.detail, /not the given data/);

  // The imprint inside the signed TSTInfo rewritten to the forged digest: the message-digest attribute catches it.
  const at = response.indexOf(digest);
  assert.ok(at > 0);
  const rewritten = Buffer.from(response);
  other.copy(rewritten, at);
  assert.is(check(rewritten, { digest: other }).code, 'SWX_SIG_INVALID');

  // A byte of the signature value flipped (the signature ends the SignerInfo, before the certificate-free tail).
  const flipped = Buffer.from(response);
  flipped[flipped.length - 5]! ^= 0x01;
  assert.is(check(flipped).code, 'SWX_SIG_INVALID');

  assert.is(check(response, { nonce: Buffer.from('09', 'hex') }).code, 'SWX_TSP_NONCE_MISMATCH');
  assert.is(check(response, { policy: '1.2.3' }).code, 'SWX_TSP_POLICY_MISMATCH');
  assert.is(check(response, { trustedCertsPem: fixtureText('test_tsa/ts_chain.pem') }).code, 'SWX_CERT_UNTRUSTED');
  assert.is(check(response, { at: new Date('2020-01-01') }).code, 'SWX_CERT_EXPIRED');
  assert.is(check(response, { trustedCertsPem: undefined, pinnedCertsPem: tsa.certPem }).certificate?.trust, 'pinned');
  assert.ok(check(response, { trustedCertsPem: undefined, pinnedCertsPem: tsa.certPem }).valid);
  assert.is(check(response, { trustedCertsPem: undefined, pinnedCertsPem: fixtureText('test_tsa/ts_chain.pem') }).code, 'SWX_CERT_UNTRUSTED');
  const untrusted = check(response, { trustedCertsPem: undefined });
  assert.equal([untrusted.valid, untrusted.certificate?.status, untrusted.certificate?.trust], [true, 'unchecked', 'none']);
  assert.match(untrusted.detail, /neither a pin nor a trust anchor/);
  assert.is(check(Buffer.from('garbage')).code, 'SWX_TSP_MALFORMED');
  assert.is(check(response.subarray(0, response.length - 40)).code, 'SWX_TSP_MALFORMED');
});

test('a signer named by subjectKeyIdentifier is found too', async () => {
  const { dir, tsa, caPem } = await deployment('ecdsa');
  const digest = sha256('named by key id');
  const response = pkijs.TimeStampResp.fromBER(toArrayBuffer(createTimeStampToken({ digest, policy, tsa, serial: 9n })));
  const signedData = new pkijs.SignedData({ schema: response.timeStampToken!.content });
  const cert = signedData.certificates![0] as pkijs.Certificate;
  const ski = cert.extensions!.find((ext) => ext.extnID === '2.5.29.14')!;
  const keyId = (asn1js.fromBER(ski.extnValue.getValue()).result as asn1js.OctetString).getValue();
  // The signature covers the signed attributes only, so the SignerInfo may name its certificate either way.
  const signerInfo = signedData.signerInfos[0]!;
  signerInfo.version = 3;
  signerInfo.sid = new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: keyId });
  const rebuilt = new pkijs.TimeStampResp({ status: response.status, timeStampToken: new pkijs.ContentInfo({ contentType: '1.2.840.113549.1.7.2', content: signedData.toSchema(true) }) });
  const der = Buffer.from(rebuilt.toSchema().toBER());
  const verdict = verifyTimeStampResponse(der, { digest, trustedCertsPem: caPem });
  assert.ok(verdict.valid, `${verdict.code}: ${verdict.detail}`);
  // openssl cms reads it; openssl ts cannot (its PKCS7 parser knows issuerAndSerialNumber only), which is why our TSA
  // names its certificate by issuer and serial.
  writeFileSync(join(dir, 'ski.tsr'), der);
  writeFileSync(join(dir, 'ski.token'), timeStampTokenOf(der));
  const cms = openssl(['cms', '-verify', '-inform', 'DER', '-in', 'ski.token', '-CAfile', 'ca/cert.pem', '-purpose', 'any', '-out', '/dev/null'], dir);
  assert.ok(cms.ok, cms.out);
  assert.match(openssl(['ts', '-verify', '-digest', digest.toString('hex'), '-in', 'ski.tsr', '-CAfile', 'ca/cert.pem'], dir).out, /PKCS7_ISSUER_AND_SERIAL/);
});

// ../shared/conformance/INDEX.md, rfc3161-client section: real tokens from other TSAs, with their verdicts.
const testTsa = { trustedCertsPem: fixtureText('_derived/test_tsa.root.pem'), untrustedCertsPem: fixtureText('test_tsa/ts_chain.pem') };

test('TS_TT: trailofbits test TSA response verifies against its request and data', () => {
  const verdict = verifyTimeStampResponse(fixture('test_tsa/response.tsr'), { ...testTsa, request: fixture('test_tsa/request.der'), data: fixture('_derived/hello.txt') });
  assert.ok(verdict.valid, `${verdict.code}: ${verdict.detail}`);
  assert.is(verdict.hashAlgorithm, 'SHA-512');
  assert.is(verdict.policy, '1.3.6.1.4.1.57264.2');
  assert.match(verdict.signer!.subject, /CN=Test TSA Timestamping/);
  assert.is(verdict.genTime!.toISOString().slice(0, 10), '2024-10-08');
  assert.is(verifyTimeStampResponse(fixture('test_tsa/response.tsr'), { ...testTsa, data: Buffer.from('hello!') }).code, 'SWX_TSP_IMPRINT_MISMATCH');
});

test('TS_TT_CMS: the token alone verifies', () => {
  const verdict = verifyTimeStampToken(fixture('_derived/test_tsa.response.token.der'), { trustedCertsPem: fixtureText('test_tsa/ts_chain.pem'), data: fixture('_derived/hello.txt') });
  assert.ok(verdict.valid, `${verdict.code}: ${verdict.detail}`);
});

test('TS_TT_INJ: injected certificates do not change who signed', () => {
  const verdict = verifyTimeStampResponse(fixture('test_tsa/response-injected-certs.tsr'), { ...testTsa, request: fixture('test_tsa/request.der') });
  assert.ok(verdict.valid, `${verdict.code}: ${verdict.detail}`);
  assert.match(verdict.signer!.subject, /CN=Test TSA Timestamping/);
  assert.not.match(verdict.signer!.subject, /Spoofed/);
});

test('TS_SM_EXP / TS_SM_ATTIME: expired TSA certificate fails now, verifies at its genTime', () => {
  const response = fixture('sigstore.mock/response-expired.tsr');
  const options = { data: fixture('sigstore.mock/payload'), trustedCertsPem: fixtureText('_derived/sigstore.mock.root.pem'), untrustedCertsPem: fixtureText('sigstore.mock/ts_chain.pem') };
  const now = verifyTimeStampResponse(response, options);
  assert.is(now.valid, false);
  assert.is(now.code, 'SWX_CERT_EXPIRED');
  const then = verifyTimeStampResponse(response, { ...options, at: new Date(1675209601 * 1000) });
  assert.ok(then.valid, `${then.code}: ${then.detail}`);
  assert.is(then.genTime!.toISOString().slice(0, 10), '2023-02-01');
  // The verdict's own genTime is what a caller passes as `at` for archived evidence.
  assert.ok(verifyTimeStampResponse(response, { ...options, at: then.genTime! }).valid);
});

/** A TSA over HTTP answering with our createTimeStampToken; `mangle` lets a test misbehave. */
async function httpTsa(tsa: TsaCredential, mangle: (nonce: Buffer | undefined) => Buffer | undefined = (n) => n, status = 200): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  let serial = 0n;
  const server = createServer(async (req, res) => {
    seen.push(String(req.headers['content-type']));
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const parsed = parseTimeStampRequest(Buffer.concat(chunks));
    serial += 1n;
    const nonce = mangle(parsed.nonce);
    const body = createTimeStampToken({ digest: parsed.digest, hashAlgorithm: parsed.hashAlgorithm, certReq: parsed.certReq, policy, tsa, serial, ...(nonce ? { nonce } : {}) });
    res.writeHead(status, { 'content-type': 'application/timestamp-reply' }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tsa`, seen };
}

test('client: requestTimeStamp gets and checks a token from a TSA over HTTP', async () => {
  const { tsa, caPem } = await deployment('ecdsa');
  const digest = sha256('batch 1');
  const good = await httpTsa(tsa);
  try {
    const { response, token, verdict } = await requestTimeStamp(good.url, digest, { trustedCertsPem: caPem });
    assert.ok(verdict.valid);
    assert.equal(good.seen, ['application/timestamp-query']);
    assert.equal(timeStampTokenOf(response), token);
    assert.ok(verifyTimeStampToken(token, { digest, trustedCertsPem: caPem }).valid);
    await rejects(requestTimeStamp(good.url, digest, { trustedCertsPem: fixtureText('test_tsa/ts_chain.pem') }), /SWX_CERT_UNTRUSTED/);
  } finally {
    good.server.close();
  }
  const replaying = await httpTsa(tsa, () => Buffer.from('01', 'hex'));
  const failing = await httpTsa(tsa, (n) => n, 503);
  try {
    await rejects(requestTimeStamp(replaying.url, digest, { trustedCertsPem: caPem }), /SWX_TSP_NONCE_MISMATCH/);
    await rejects(requestTimeStamp(failing.url, digest, { trustedCertsPem: caPem }), /HTTP 503/);
    await rejects(requestTimeStamp('http://127.0.0.1:1/tsa', digest, { trustedCertsPem: caPem, timeoutMs: 2000 }), (error: unknown) => (error as { code?: string }).code === 'SWX_UNAVAILABLE');
  } finally {
    replaying.server.close();
    failing.server.close();
  }
});

test.run();
