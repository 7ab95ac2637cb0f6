// The hub's own SSH client keys, with which it logs in to agencies' SFTP servers: each an ed25519 key made at first
// use and kept under the data folder (mode 0600), in OpenSSH's private key format; the agency authorizes its .pub line.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newEd25519KeyPair } from '../../../engine/ssh-key.ts';
import type { clientKeyName } from './endpoint.ts';

export const hubClientKeyPath = (dataDir: string, name: string) => join(dataDir, 'sftp', 'client-keys', name);

/** The hub's client key `name` (an endpoint's clientKey), made at first use; its public key line is written beside it. */
export function hubClientKey(dataDir: string, name: ReturnType<typeof clientKeyName.parse>): { privateKey: Buffer; publicKey: string } {
  const file = hubClientKeyPath(dataDir, name);
  mkdirSync(join(dataDir, 'sftp', 'client-keys'), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) {
    const made = newEd25519KeyPair(`swx-hub-${name}`);
    try {
      writeFileSync(file, made.private, { mode: 0o600, flag: 'wx' });
      writeFileSync(`${file}.pub`, `${made.public}\n`, { mode: 0o644 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error; // made by another process meanwhile
    }
  }
  return { privateKey: readFileSync(file), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}
