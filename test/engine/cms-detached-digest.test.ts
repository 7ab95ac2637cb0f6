// A detached CMS signature checked against its content's SHA-256 alone (content streamed to a store, never held):
// the fast path and the pkijs reference give the verdict they give with the content itself, refuse a wrong digest
// alike, and refuse a signature whose digest is not SHA-256, which the digest alone cannot check.
import { spawnSync } from 'node:child_process';
import { hash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { signCms, verifyCms, verifyCmsFast, verifyCmsReference, type CmsVerdict, type VerifyCmsOptions } from '../../engine/trust/index.ts';
import { trustFixture, type TrustFixture } from '../helpers/trust-fixture.ts';

let fixture: TrustFixture;
const content = randomBytes(100 * 1024);
const sha256 = hash('sha256', content, 'buffer');

test.before(async () => { fixture = await trustFixture(); });

const paths: [string, (der: Buffer, options: VerifyCmsOptions) => Promise<CmsVerdict | undefined> | CmsVerdict | undefined][] = [
  ['fast', verifyCmsFast], ['reference', verifyCmsReference], ['verifyCms', verifyCms],
];

/** The verdict without what only a check with the content can give. */
const comparable = (verdict: CmsVerdict | undefined) => {
  const { content: _content, ...rest } = verdict!;
  return rest;
};

test('by its SHA-256 a detached signature gets the verdict it gets with its content, on every path', async () => {
  const der = await signCms({ data: content, certPem: fixture.ecdsa.certPem, keyPem: fixture.ecdsa.keyPem, chainPem: fixture.ecdsa.chainPem, detached: true });
  const options = { trustedCertsPem: [fixture.root.certPem], at: fixture.issuedAt, policy: 'live' as const };
  for (const [name, verify] of paths) {
    const withContent = await verify(der, { ...options, data: content });
    const byDigest = await verify(der, { ...options, sha256 });
    assert.ok(byDigest, `${name} decides`);
    assert.is(byDigest!.valid, true, `${name}: ${byDigest!.detail}`);
    assert.is(byDigest!.detached, true);
    assert.is(byDigest!.content, undefined, 'no content is claimed that was not given');
    assert.equal(comparable(byDigest), comparable(withContent), name);
    const wrong = await verify(der, { ...options, sha256: hash('sha256', Buffer.from('other'), 'buffer') });
    assert.is(wrong!.code, 'SWX_DIGEST_MISMATCH', name);
  }
});

test('a signature that digests with SHA-384 cannot be checked by the SHA-256 alone: refused alike on both paths', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swx-cms-digest-'));
  for (const [file, text] of [['data', content], ['cert.pem', fixture.ecdsa.certPem], ['key.pem', fixture.ecdsa.keyPem]] as const) writeFileSync(join(dir, file), text);
  const made = spawnSync('openssl', ['cms', '-sign', '-binary', '-md', 'sha384', '-in', 'data', '-signer', 'cert.pem', '-inkey', 'key.pem', '-outform', 'DER', '-out', 'sig.p7s'], { cwd: dir, encoding: 'utf8' });
  assert.is(made.status, 0, made.stderr);
  const der = readFileSync(join(dir, 'sig.p7s'));
  for (const [name, verify] of paths) {
    assert.is((await verify(der, { data: content, at: fixture.issuedAt }))?.valid, true, `${name}: with the content it verifies`);
    const verdict = await verify(der, { sha256, at: fixture.issuedAt });
    assert.is(verdict?.code, 'SWX_BAD_REQUEST', name);
    assert.match(verdict!.detail, /SHA-256/);
  }
});

test.run();
