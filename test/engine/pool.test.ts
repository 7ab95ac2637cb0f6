// The signature pool gives what the inline calls give, for many calls at once (batched), and a worker that dies
// surfaces as an error for its batch, not as a hang; the pool goes on with a new worker and closes cleanly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki } from '../../engine/pki/index.ts';
import { signCms, verifyCms, type CmsVerdict, type VerifyCmsOptions } from '../../engine/trust/cms.ts';
import { createSignaturePool } from '../../engine/trust/pool.ts';
import { verifyXml, type VerifyXmlOptions } from '../../engine/trust/xmldsig.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-pool-'));
const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const fixture = (path: string) => readFileSync(join(conformance, path));
const fixtureText = (path: string) => readFileSync(join(conformance, path), 'utf8');

const same = (verdict: CmsVerdict) => ({
  valid: verdict.valid,
  code: verdict.code,
  signer: verdict.signer?.thumbprint,
  signedAt: verdict.signedAt,
  certificate: verdict.certificate?.status,
  detached: verdict.detached,
  content: verdict.content ? Buffer.isBuffer(verdict.content) && verdict.content.toString('base64') : undefined,
});

test('CMS verdicts through the pool equal the inline ones, for 300 calls made at once', async () => {
  await initPki(join(root, 'pki'), { agencies: ['CUSTOMS'] });
  const read = (path: string) => readFileSync(join(root, 'pki', path), 'utf8');
  const certPem = read('agencies/CUSTOMS/cert.pem');
  const keyPem = read('agencies/CUSTOMS/key.pem');
  const ca = read('ca/cert.pem');
  const inputs: { der: Buffer; options: VerifyCmsOptions }[] = [
    { der: fixture('asn1crypto/cms-signed.der'), options: { trustedCertsPem: [fixtureText('asn1crypto/keys/test.crt')] } },
    { der: fixture('asn1crypto/cms-signed.der'), options: { trustedCertsPem: [fixtureText('asn1crypto/keys/test.crt')], at: new Date('2020-01-01T00:00:00Z') } },
    { der: fixture('rfc3161-client/_derived/test_tsa.response.token.der'), options: { trustedCertsPem: [fixtureText('rfc3161-client/test_tsa/ts_chain.pem')] } },
    { der: Buffer.from('not a message'), options: {} },
  ];
  for (let i = 0; i < 296; i++) {
    const data = Buffer.from(`declaration ${i}`);
    const detached = i % 3 === 0;
    const der = await signCms({ data, certPem, keyPem, detached });
    if (i % 7 === 0) der[der.length - 2]! ^= 0x01; // a broken signature now and then
    inputs.push({ der, options: { trustedCertsPem: [ca], ...(detached ? { data: i % 5 === 0 ? Buffer.from('other') : data } : {}) } });
  }
  const pool = createSignaturePool({ threads: 2, maxBatch: 32 });
  try {
    const pooled = await Promise.all(inputs.map(({ der, options }) => pool.verifyCms(der, options)));
    const inline = await Promise.all(inputs.map(({ der, options }) => verifyCms(der, options)));
    assert.equal(pooled.map(same), inline.map(same));
    // The mix holds every kind of outcome, so equality is not the trivial one.
    const codes = new Set(pooled.map((verdict) => verdict.code));
    for (const code of ['SWX_OK', 'SWX_CERT_EXPIRED', 'SWX_SIG_INVALID', 'SWX_DIGEST_MISMATCH', 'SWX_BAD_REQUEST']) assert.ok(codes.has(code as CmsVerdict['code']), `${code} among ${[...codes].join(', ')}`);
  } finally {
    await pool.close();
  }
});

test('digests through the pool equal openssl dgst', async () => {
  const pool = createSignaturePool({ threads: 1 });
  try {
    const data = Buffer.from('evidence record 1\n');
    writeFileSync(join(root, 'record.txt'), data);
    for (const algorithm of ['sha256', 'sha384', 'sha512'] as const) {
      const expected = spawnSync('openssl', ['dgst', `-${algorithm}`, '-r', join(root, 'record.txt')], { encoding: 'utf8' }).stdout.split(' ')[0];
      assert.is((await pool.digest(data, algorithm)).toString('hex'), expected);
    }
  } finally {
    await pool.close();
  }
});

test('XML verdicts through the pool equal the inline ones (xmlsec conformance files)', async () => {
  const cases: [string, VerifyXmlOptions][] = [
    ['xmlsec/aleksey-xmldsig-01/enveloped-sha256-ecdsa-sha256.xml', { publicKeysPem: { 'TestKeyName-ec-prime256v1': fixtureText('xmlsec/keys/ec/ec-prime256v1-pubkey.pem') } }],
    ['xmlsec/aleksey-xmldsig-01/enveloping-sha256-rsa-sha256.xml', { trustedCertsPem: fixtureText('xmlsec/keys/cacert.pem') }],
    ['xmlsec/phaos-xmldsig-three/signature-rsa-enveloped-bad-digest-val.xml', { policy: 'archive' }],
  ];
  const pool = createSignaturePool({ threads: 1 });
  try {
    for (const [path, options] of cases) {
      const xml = fixture(path);
      const inline = await verifyXml(xml, options);
      const pooled = await pool.verifyXml(xml, options);
      assert.equal([pooled.valid, pooled.code, pooled.signer?.thumbprint], [inline.valid, inline.code, inline.signer?.thumbprint], path);
    }
  } finally {
    await pool.close();
  }
});

/** xmlsec1 --verify with the signer's certificate: its exit status, and whether every SignedInfo reference checked. */
function xmlsec1(xml: string, certPem: string, extra: string[] = []): { ok: boolean; out: string } {
  writeFileSync(join(root, 'signed.xml'), xml);
  writeFileSync(join(root, 'signer.pem'), certPem);
  const result = spawnSync('xmlsec1', ['--verify', '--pubkey-cert-pem', join(root, 'signer.pem'), ...extra, join(root, 'signed.xml')], { encoding: 'utf8' });
  const out = `${result.stdout}${result.stderr}`;
  const refs = /SignedInfo References \(ok\/all\): (\d+)\/(\d+)/.exec(out);
  return { ok: result.status === 0 && !!refs && refs[1] === refs[2] && refs[1] !== '0', out };
}

test('XML and SOAP signatures made through the pool verify with xmlsec1; a bad key is refused with its code', async () => {
  await initPki(join(root, 'pki-sign'), { agencies: ['SIGNER'], alg: 'rsa' });
  const certPem = readFileSync(join(root, 'pki-sign', 'agencies/SIGNER/cert.pem'), 'utf8');
  const keyPem = readFileSync(join(root, 'pki-sign', 'agencies/SIGNER/key.pem'), 'utf8');
  const pool = createSignaturePool({ threads: 1 });
  try {
    // Enveloped over the whole SOAP 1.1 envelope and an attachment's octets, as ebMS 2.0 signs.
    const part = { contentId: 'payload-1@example', headers: { 'content-type': 'application/xml' }, body: Buffer.from('<Declaration>42</Declaration>') };
    writeFileSync(join(root, 'part.bin'), part.body);
    const envelope11 = '<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Header/><SOAP:Body><m xmlns="urn:example">x</m></SOAP:Body></SOAP:Envelope>';
    const enveloped = await pool.signXml(envelope11, { keyPem, certPem, canonicalization: 'c14n', attachments: [part], attachmentTransform: 'none' });
    const checked = xmlsec1(enveloped, certPem, [`--url-map:cid:${part.contentId}`, join(root, 'part.bin')]);
    assert.ok(checked.ok, checked.out);
    // WS-Security over a SOAP 1.2 Body and Timestamp, as AS4 signs its signals.
    const envelope12 = '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header/><env:Body><m xmlns="urn:example">y</m></env:Body></env:Envelope>';
    const wss = await pool.signSoap(envelope12, { keyPem, certPem });
    const soapChecked = xmlsec1(wss, certPem, [
      '--id-attr:Id', 'http://www.w3.org/2003/05/soap-envelope:Body',
      '--id-attr:Id', 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd:Timestamp',
    ]);
    assert.ok(soapChecked.ok, soapChecked.out);
    let refused: unknown;
    await pool.signSoap(envelope12, { keyPem: 'not a key', certPem }).catch((error: unknown) => { refused = error; });
    assert.is((refused as { code?: string })?.code, 'SWX_BAD_REQUEST');
  } finally {
    await pool.close();
  }
});

test('a worker that dies (heap bound exceeded) fails its batch with an error; the pool goes on and closes', async () => {
  const pool = createSignaturePool({ threads: 1, maxHeapMb: 48 });
  try {
    // 99,000 NULLs in an indefinite-length SEQUENCE: BER, so the fast path leaves it to pkijs, whose object tree for
    // it is larger than the worker may hold.
    const heavy = Buffer.concat([Buffer.from([0x30, 0x80]), Buffer.alloc(99_000 * 2).fill(Buffer.from([0x05, 0x00])), Buffer.from([0, 0])]);
    let failure: unknown;
    try {
      await pool.verifyCms(heavy);
    } catch (error) {
      failure = error;
    }
    assert.ok(failure instanceof Error, 'the call failed');
    assert.is((failure as { code?: string }).code, 'SWX_INTERNAL');
    assert.match((failure as Error).message, /signature worker failed/);
    // A new worker takes the next batch.
    const verdict = await pool.verifyCms(fixture('asn1crypto/cms-signed.der'), { at: new Date('2020-01-01T00:00:00Z') });
    assert.is(verdict.code, 'SWX_OK');
  } finally {
    await pool.close();
  }
  let refused: unknown;
  try {
    await pool.verifyCms(fixture('asn1crypto/cms-signed.der'));
  } catch (error) {
    refused = error;
  }
  assert.is((refused as { code?: string }).code, 'SWX_UNAVAILABLE');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
