// CMS signatures as agencies exchange them: what swx signs checks with `openssl cms`, what openssl signs checks in swx,
// and every kind of bad input gets a verdict with its own code instead of an exception.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki, issueAgency, thumbprint, type KeyAlg } from '../../engine/pki/index.ts';
import { signCms, verifyCms, type CmsVerdict } from '../../engine/trust/index.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-cms-'));
const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const payload = Buffer.from(`<declaration id="D-1">${'x'.repeat(4000)}</declaration>\n`);

interface Pki {
  dir: string;
  agency: string;
  certPem: string;
  keyPem: string;
  caPem: string;
}

const pkis: Partial<Record<KeyAlg, Pki>> = {};

async function pki(alg: KeyAlg): Promise<Pki> {
  const existing = pkis[alg];
  if (existing) return existing;
  const dir = join(root, alg);
  const agency = alg === 'rsa' ? 'BOFT' : 'CUSTOMS';
  await initPki(dir, { agencies: [agency], ...(alg === 'rsa' ? { alg } : {}) });
  const read = (path: string) => readFileSync(join(dir, path), 'utf8');
  const made = { dir, agency, certPem: read(`agencies/${agency}/cert.pem`), keyPem: read(`agencies/${agency}/key.pem`), caPem: read('ca/cert.pem') };
  pkis[alg] = made;
  return made;
}

function openssl(args: string[], cwd: string): { ok: boolean; out: string } {
  const result = spawnSync('openssl', args, { cwd });
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}` };
}

function refused(verdict: CmsVerdict, codes: string[]): void {
  assert.is(verdict.valid, false, `expected a refusal, got ${JSON.stringify(verdict)}`);
  assert.ok(codes.includes(verdict.code), `code ${verdict.code} (${verdict.detail}) is not one of ${codes.join(', ')}`);
}

for (const alg of ['ecdsa', 'rsa'] as const) {
  for (const detached of [false, true]) {
    const kind = `${alg} ${detached ? 'detached' : 'attached'}`;

    test(`${kind}: what swx signs verifies with openssl cms and in swx`, async () => {
      const { dir, certPem, keyPem, caPem, agency } = await pki(alg);
      const signingTime = new Date('2026-03-01T10:00:00Z');
      const der = await signCms({ data: payload, certPem, keyPem, detached, signingTime });
      const name = `swx-${detached ? 'detached' : 'attached'}`;
      writeFileSync(join(dir, `${name}.der`), der);
      writeFileSync(join(dir, 'data.bin'), payload);
      const checked = openssl(
        ['cms', '-verify', '-binary', '-inform', 'DER', '-in', `${name}.der`, '-CAfile', 'ca/cert.pem', ...(detached ? ['-content', 'data.bin'] : []), '-out', '/dev/null'],
        dir,
      );
      assert.ok(checked.ok && checked.out.includes('Verification successful'), checked.out);

      const verdict = await verifyCms(der, { ...(detached ? { data: payload } : {}), trustedCertsPem: [caPem], pinnedCertPem: certPem });
      assert.is(verdict.code, 'SWX_OK', verdict.detail);
      assert.ok(verdict.valid);
      assert.is(verdict.detached, detached);
      assert.is(verdict.signedAt, signingTime.toISOString());
      assert.is(verdict.signer?.thumbprint, thumbprint(certPem));
      assert.is(verdict.signer?.subject, `O=swx demo, CN=${agency}`);
      assert.equal(verdict.algorithms?.digest, ['SHA-256']);
      assert.is(verdict.algorithms?.signature, alg === 'rsa' ? 'RSA-PKCS1-v1_5-SHA256' : 'ECDSA-SHA256');
      assert.ok(verdict.content?.equals(payload));
    });

    test(`${kind}: what openssl cms signs verifies in swx`, async () => {
      const { dir, certPem, caPem, agency } = await pki(alg);
      writeFileSync(join(dir, 'data.bin'), payload);
      const out = `openssl-${detached ? 'detached' : 'attached'}.der`;
      const signed = openssl(
        ['cms', '-sign', '-binary', '-outform', 'DER', ...(detached ? [] : ['-nodetach']), '-md', 'sha256', '-in', 'data.bin', '-signer', `agencies/${agency}/cert.pem`, '-inkey', `agencies/${agency}/key.pem`, '-out', out],
        dir,
      );
      assert.ok(signed.ok, signed.out);
      const der = readFileSync(join(dir, out));
      const verdict = await verifyCms(der, { ...(detached ? { data: payload } : {}), trustedCertsPem: [caPem], pinnedCertPem: certPem });
      assert.is(verdict.code, 'SWX_OK', verdict.detail);
      assert.is(verdict.detached, detached);
      assert.ok(!Number.isNaN(Date.parse(verdict.signedAt!)));
      assert.is(verdict.signer?.thumbprint, thumbprint(certPem));
    });

    test(`${kind}: tampered content and tampered signature are refused`, async () => {
      const { certPem, keyPem, caPem } = await pki(alg);
      const der = await signCms({ data: payload, certPem, keyPem, detached });
      const other = Buffer.from(payload);
      other[10] = other[10]! ^ 0x01;
      if (detached) {
        refused(await verifyCms(der, { data: other, trustedCertsPem: [caPem] }), ['SWX_DIGEST_MISMATCH']);
      } else {
        const at = der.indexOf(payload);
        assert.ok(at > 0);
        const tampered = Buffer.from(der);
        tampered[at + 10] = tampered[at + 10]! ^ 0x01;
        refused(await verifyCms(tampered, { trustedCertsPem: [caPem] }), ['SWX_DIGEST_MISMATCH', 'SWX_SIG_INVALID']);
      }
      // The signature value is the last OCTET STRING of the message: flip a byte near its end.
      const badSig = Buffer.from(der);
      badSig[badSig.length - 3] = badSig[badSig.length - 3]! ^ 0x01;
      refused(await verifyCms(badSig, { ...(detached ? { data: payload } : {}), trustedCertsPem: [caPem] }), ['SWX_SIG_INVALID', 'SWX_BAD_REQUEST']);
    });
  }
}

test('detached signature without the data is a bad request; attached with different data is a digest mismatch', async () => {
  const { certPem, keyPem } = await pki('ecdsa');
  refused(await verifyCms(await signCms({ data: payload, certPem, keyPem, detached: true })), ['SWX_BAD_REQUEST']);
  refused(await verifyCms(await signCms({ data: payload, certPem, keyPem }), { data: Buffer.from('other') }), ['SWX_DIGEST_MISMATCH']);
});

test('expired signer certificate: refused now, valid at a time inside its validity', async () => {
  const { dir, caPem } = await pki('ecdsa');
  // Expired a few minutes ago, but issued while the (back-dated) CA was already valid, so the whole path held then.
  const caFrom = new Date(new X509Certificate(caPem).validFrom);
  const notBefore = caFrom;
  const notAfter = new Date(caFrom.getTime() + 60_000);
  const old = await issueAgency(dir, 'OLD', { notBefore, notAfter });
  const signingTime = new Date(caFrom.getTime() + 30_000);
  const der = await signCms({ data: payload, certPem: old.certPem, keyPem: old.keyPem, signingTime });
  refused(await verifyCms(der, { trustedCertsPem: [caPem] }), ['SWX_CERT_EXPIRED']);
  refused(await verifyCms(der), ['SWX_CERT_EXPIRED']);
  const then = await verifyCms(der, { trustedCertsPem: [caPem], at: signingTime });
  assert.is(then.code, 'SWX_OK', then.detail);
  assert.is(then.signedAt, signingTime.toISOString());

  // Before the CA existed the path does not hold, even though the signer certificate alone was valid.
  const older = await issueAgency(dir, 'OLDER', { notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2025-01-01T00:00:00Z') });
  const olderDer = await signCms({ data: payload, certPem: older.certPem, keyPem: older.keyPem });
  const in2024 = new Date('2024-06-01T00:00:00Z');
  assert.is((await verifyCms(olderDer, { at: in2024 })).code, 'SWX_OK');
  refused(await verifyCms(olderDer, { trustedCertsPem: [caPem], at: in2024 }), ['SWX_CERT_EXPIRED']);
});

test('the verdict is the common shape: certificate standing, and the caveat when nothing was pinned or anchored', async () => {
  const { certPem, keyPem, caPem } = await pki('ecdsa');
  const der = await signCms({ data: payload, certPem, keyPem });
  const at = new Date();
  const anchored = await verifyCms(der, { trustedCertsPem: [caPem], at });
  assert.equal([anchored.kind, anchored.detail, anchored.certificate], ['cms', '', { status: 'valid', at: at.toISOString(), trust: 'chain' }]);
  assert.is(anchored.signer?.issuer, new X509Certificate(caPem).subject.split('\n').join(', '));
  const bare = await verifyCms(der, { at });
  assert.equal([bare.valid, bare.certificate?.status, bare.certificate?.trust], [true, 'unchecked', 'none']);
  assert.match(bare.detail, /neither a pin nor a trust anchor/);
  const expired = await verifyCms(der, { trustedCertsPem: [caPem], at: new Date('2000-01-01T00:00:00Z') });
  assert.equal([expired.code, expired.certificate?.status], ['SWX_CERT_EXPIRED', 'expired']);
});

test('SHA-1 (openssl cms -md sha1): accepted and listed as weak by default, refused by the live policy', async () => {
  const { dir, agency, caPem } = await pki('ecdsa');
  writeFileSync(join(dir, 'data.bin'), payload);
  const signed = openssl(['cms', '-sign', '-binary', '-outform', 'DER', '-nodetach', '-md', 'sha1', '-in', 'data.bin', '-signer', `agencies/${agency}/cert.pem`, '-inkey', `agencies/${agency}/key.pem`, '-out', 'sha1.der'], dir);
  assert.ok(signed.ok, signed.out);
  const der = readFileSync(join(dir, 'sha1.der'));
  const archive = await verifyCms(der, { trustedCertsPem: [caPem] });
  assert.is(archive.code, 'SWX_OK', archive.detail);
  assert.ok(archive.weak?.includes('SHA-1'), JSON.stringify(archive.weak));
  const live = await verifyCms(der, { trustedCertsPem: [caPem], policy: 'live' });
  assert.equal([live.valid, live.code], [false, 'SWX_SIG_WEAK_ALG']);
  assert.match(live.detail, /SHA-1/);
});

test('signer from another CA is untrusted; a different pinned certificate is refused', async () => {
  const ecdsa = await pki('ecdsa');
  const rsa = await pki('rsa');
  const der = await signCms({ data: payload, certPem: rsa.certPem, keyPem: rsa.keyPem });
  refused(await verifyCms(der, { trustedCertsPem: [ecdsa.caPem] }), ['SWX_CERT_UNTRUSTED']);
  refused(await verifyCms(der, { trustedCertsPem: [rsa.caPem], pinnedCertPem: ecdsa.certPem }), ['SWX_SIG_KEY_MISMATCH']);
  // A self-signed anchor that is the signer itself is trusted directly (as openssl -CAfile does).
  assert.is((await verifyCms(der, { trustedCertsPem: [rsa.caPem, ecdsa.caPem] })).code, 'SWX_OK');
});

test('garbage, truncated and wrong-type DER: a verdict, never an exception', async () => {
  const { certPem, keyPem } = await pki('ecdsa');
  const der = await signCms({ data: payload, certPem, keyPem });
  const inputs: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('not der at all'),
    Buffer.from([0x30, 0x82, 0xff, 0xff, 0x06]),
    Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
    Buffer.concat([der, Buffer.from([0])]),
    readFileSync(fileURLToPath(new URL('../../../shared/conformance/asn1crypto/keys/test.crt', import.meta.url))),
  ];
  for (let cut = 1; cut < der.length; cut += 97) inputs.push(der.subarray(0, cut));
  // Flip one byte at a time through the structure: every result must be a verdict.
  for (let at = 0; at < der.length; at += 53) {
    const mutated = Buffer.from(der);
    mutated[at] = mutated[at]! ^ 0xa5;
    inputs.push(mutated);
  }
  for (const input of inputs) {
    const verdict = await verifyCms(input);
    assert.type(verdict.valid, 'boolean');
    assert.type(verdict.code, 'string');
    assert.ok(/^SWX_[A-Z_]+$/.test(verdict.code));
  }
  for (let cut = 1; cut < der.length; cut += 97) refused(await verifyCms(der.subarray(0, cut)), ['SWX_BAD_REQUEST']);
  refused(await verifyCms(Buffer.from('not der at all')), ['SWX_BAD_REQUEST']);
  refused(await verifyCms('not a buffer' as unknown as Buffer), ['SWX_BAD_REQUEST']);
});

test('no single-bit change in a signed message still verifies', async () => {
  for (const alg of ['ecdsa', 'rsa'] as const) {
    const { certPem, keyPem, caPem } = await pki(alg);
    const der = await signCms({ data: Buffer.alloc(64, 'a'), certPem, keyPem });
    const accepted: number[] = [];
    // Every third byte (the full sweep, run once by hand, accepted none either) keeps the suite under ten seconds.
    for (let at = alg === 'rsa' ? 1 : 0; at < der.length; at += 3) {
      const mutated = Buffer.from(der);
      mutated[at] = mutated[at]! ^ 0x01;
      if ((await verifyCms(mutated, { trustedCertsPem: [caPem] })).valid) accepted.push(at);
    }
    assert.equal(accepted, [], `${alg}: flips at offsets ${accepted.join(', ')} were accepted`);
  }
});

test('conformance asn1crypto/cms-signed.der: expired now (as openssl), verified at 2020-01-01', async () => {
  const der = readFileSync(join(conformance, 'asn1crypto/cms-signed.der'));
  const anchor = readFileSync(join(conformance, 'asn1crypto/keys/test.crt'), 'utf8');
  const now = await verifyCms(der, { trustedCertsPem: [anchor] });
  refused(now, ['SWX_CERT_EXPIRED']);
  const then = await verifyCms(der, { trustedCertsPem: [anchor], at: new Date('2020-01-01T00:00:00Z') });
  assert.is(then.code, 'SWX_OK', then.detail);
  assert.is(then.detached, false);
  assert.equal(then.algorithms?.digest, ['SHA-256']);
  assert.is(then.signer?.thumbprint, thumbprint(anchor));
  // The repo copy of message.txt differs from the eContent only in line endings.
  const message = readFileSync(join(conformance, 'asn1crypto/message.txt'), 'utf8');
  assert.is(then.content?.toString('utf8').replace(/\r\n/g, '\n'), message.replace(/\r\n/g, '\n'));
});

test.run();
