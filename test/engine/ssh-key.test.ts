// The hub's ed25519 SSH keys (its SFTP client key, the demo agencies' keys) come from ssh2's generator, which drops a
// public key's leading zero byte about once in 256 keys: every pair newEd25519KeyPair gives must read back, by swx's
// own reader and by OpenSSH's ssh-keygen, as the same 32-byte key.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newEd25519KeyPair, readSshPublicKey } from '../../engine/ssh-key.ts';

test('two thousand new ed25519 pairs all read back as 32-byte keys (ssh2 alone fails about eight of them)', () => {
  let read = 0;
  for (let i = 0; i < 2000; i++) {
    const pair = newEd25519KeyPair(`key-${i}@test`);
    const key = readSshPublicKey(pair.public);
    assert.is(Buffer.from(key.key.split(' ')[1]!, 'base64').length, 51, pair.public);
    read++;
  }
  assert.is(read, 2000);
});

test('OpenSSH reads the private key and derives the same public key from it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swx-ssh-key-'));
  const pair = newEd25519KeyPair('derived@test');
  const file = join(dir, 'id_ed25519');
  writeFileSync(file, pair.private, { mode: 0o600 });
  const derived = spawnSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' });
  assert.is(derived.status, 0, derived.stderr);
  assert.is(derived.stdout.trim().split(' ').slice(0, 2).join(' '), pair.public.split(' ').slice(0, 2).join(' '));
});

test.run();
