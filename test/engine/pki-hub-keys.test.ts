// The hub's Edwards-curve keys in its PKI, as openssl sees them: an Ed25519 signing key placed before `swx pki init` is
// certified as it is (eDelivery AS4 2.0 signs with it), and the X25519 key partners encrypt to (pki/hub-enc) is made
// once, for key agreement only, issued by the hub CA; a PKI made before it gets one at the hub's start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureHubEncryption, initPki, loadPki } from '../../engine/pki/index.ts';
import { hubIdentity } from '../../engine/identity.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-pki-hub-keys-'));

const x509Text = (path: string) => spawnSync('openssl', ['x509', '-in', path, '-noout', '-text'], { encoding: 'utf8' }).stdout;
const verifiedByCa = (dir: string, leaf: string) => spawnSync('openssl', ['verify', '-CAfile', join(dir, 'ca', 'cert.pem'), join(dir, leaf, 'cert.pem')], { encoding: 'utf8' });

test('an Ed25519 signing key placed before init is certified as it is; the X25519 encryption certificate is for key agreement only, issued by the CA', async () => {
  const dir = join(root, 'ed', 'pki');
  mkdirSync(join(dir, 'hub-sign'), { recursive: true });
  const placed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(join(dir, 'hub-sign', 'key.pem'), placed, { mode: 0o600 });
  const summary = await initPki(dir, { agencies: [], alg: 'rsa' });
  assert.is(summary.hubSign.alg, 'ed25519');
  assert.is(summary.hubEnc.alg, 'x25519');
  assert.is(summary.ca.alg, 'rsa');
  assert.is(readFileSync(join(dir, 'hub-sign', 'key.pem'), 'utf8'), placed, 'the placed key is kept');
  for (const leaf of ['hub-sign', 'hub-enc']) {
    const verified = verifiedByCa(dir, leaf);
    assert.is(verified.status, 0, `${leaf}: ${verified.stdout}${verified.stderr}`);
  }
  assert.match(x509Text(join(dir, 'hub-sign', 'cert.pem')), /Public Key Algorithm: ED25519/);
  const enc = x509Text(join(dir, 'hub-enc', 'cert.pem'));
  assert.match(enc, /Public Key Algorithm: X25519/);
  assert.match(enc, /X509v3 Key Usage: critical\s+Key Agreement\s/);
  assert.not.match(enc, /Extended Key Usage/);

  const identity = hubIdentity(await loadPki(dir));
  assert.is(identity.signing.alg, 'ed25519');
  assert.is(identity.encryption.rsa, undefined, 'an Ed25519 signing key is no RSA-OAEP recipient');
  assert.is(identity.encryption.x25519?.certPem, readFileSync(join(dir, 'hub-enc', 'cert.pem'), 'utf8'));
});

test('the X25519 credential is made once: kept across starts, and made for a PKI from before it', async () => {
  const dir = join(root, 'rsa', 'pki');
  await initPki(dir, { agencies: [], alg: 'rsa' });
  const first = await ensureHubEncryption(dir);
  assert.is((await ensureHubEncryption(dir)).thumbprint, first.thumbprint, 'kept');
  const identity = hubIdentity(await loadPki(dir));
  assert.match(x509Text(join(dir, 'hub-sign', 'cert.pem')), /Key Encipherment/, 'an RSA signing certificate is the eDelivery AS4 1.x encryption certificate too');
  assert.is(identity.encryption.rsa?.certPem, readFileSync(join(dir, 'hub-sign', 'cert.pem'), 'utf8'));

  // A PKI from before hub-enc existed: the hub's start makes it.
  rmSync(join(dir, 'hub-enc'), { recursive: true });
  assert.is((await loadPki(dir)).hubEnc, undefined);
  const made = await ensureHubEncryption(dir);
  assert.is.not(made.thumbprint, first.thumbprint);
  assert.is(new X509Certificate(made.certPem).publicKey.asymmetricKeyType, 'x25519');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
