// The SFTP server's host key: one ed25519 key made at first start and kept in the data folder (mode 0600), so that
// agencies pin it once; written in OpenSSH's own private key format, which ssh2 reads, and named by its fingerprint.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintOf } from '../../engine/ssh-key.ts';

export interface HostKey {
  /** The private key in OpenSSH format, as ssh2 takes it. */
  privateKey: string;
  /** The public key as an OpenSSH line (`ssh-ed25519 AAAA… swx-hub`), for an agency's known_hosts. */
  publicKey: string;
  /** SHA256:… as `ssh-keygen -l` and the OpenSSH client print it. */
  fingerprint: string;
}

export const hostKeyPath = (dataDir: string) => join(dataDir, 'sftp', 'host_ed25519_key');

const sshString = (value: Buffer | string) => {
  const bytes = Buffer.from(value);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
};
const uint32 = (value: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
};

/** A fresh ed25519 key in the unencrypted openssh-key-v1 format (OpenSSH's PROTOCOL.key). */
function newOpenSshKey(comment: string): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pub = Buffer.from(jwk.x!, 'base64url');
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const padding = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), uint32(1), sshString(publicBlob), sshString(secret)]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** The hub's SFTP host key from <data>/sftp/, made there (mode 0600) at first start. */
export function loadHostKey(dataDir: string): HostKey {
  const file = hostKeyPath(dataDir);
  mkdirSync(join(dataDir, 'sftp'), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, newOpenSshKey('swx-hub'), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const privateKey = readFileSync(file, 'utf8');
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error(`SFTP host key ${file} cannot be read (${parsed instanceof Error ? parsed.message : 'several keys'}); move it away to have a new one made`);
  const blob = parsed.getPublicSSH();
  return { privateKey, publicKey: `${parsed.type} ${blob.toString('base64')} swx-hub`, fingerprint: fingerprintOf(blob) };
}
