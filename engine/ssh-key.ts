// SSH public keys as the partner registry keeps them: one OpenSSH `authorized_keys` line per key, named by its SHA-256
// fingerprint as OpenSSH prints it (SHA256:<base64 without padding> of the key blob). Connectors that authenticate
// agencies by SSH key (SFTP) match the key a client offers against these.
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { z } from 'zod';
import { SwxError } from './errors.ts';

/** Key types an agency may register. ssh-rsa and ssh-dss are accepted here; whether SHA-1 signatures with them are let in is the connector's choice. */
export const sshKeyTypes = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa', 'ssh-dss'] as const;

export const sshFingerprintPattern = /^SHA256:[A-Za-z0-9+/]{43}$/;
export const sshFingerprint = z.string().regex(sshFingerprintPattern, 'an SSH key fingerprint as OpenSSH prints it, SHA256:<43 base64 characters>');

/** A registered SSH key: its authorized_keys line, its fingerprint, its type, and when it was added. */
export const sshKeySchema = z.object({
  key: z.string().min(16).max(16_384).describe('the public key as an OpenSSH authorized_keys line: type, base64 blob, optional comment'),
  fingerprint: sshFingerprint,
  type: z.enum(sshKeyTypes),
  comment: z.string().max(200).optional(),
  addedAt: z.iso.datetime().optional(),
}).strict();
export type SshKey = z.infer<typeof sshKeySchema>;

/**
 * A new ed25519 key pair in OpenSSH's formats (private key file text, public key line). ssh2's generator drops a public
 * key's leading zero byte (about one key in 256), writing a 31-byte key that no parser takes: such a pair is made again.
 */
export function newEd25519KeyPair(comment: string): { private: string; public: string } {
  for (;;) {
    const made = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const parsed = ssh2.utils.parseKey(made.public);
    if (!(parsed instanceof Error) && !Array.isArray(parsed) && parsed.getPublicSSH().length === 51) return made;
  }
}

/** The fingerprint of a public key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Reads one OpenSSH public key line (or a `.pub` file's text) into the registry's shape; SWX_BAD_REQUEST naming what
 * is wrong for anything else (a private key, a certificate, an unknown type, several keys).
 */
export function readSshPublicKey(text: string, addedAt = new Date()): SshKey {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  if (lines.length !== 1) throw new SwxError('SWX_BAD_REQUEST', `an SSH public key is one line (type, base64 key, comment); got ${lines.length} lines`);
  const [type = '', blobText = '', ...rest] = lines[0]!.split(/\s+/);
  if (!(sshKeyTypes as readonly string[]).includes(type)) {
    throw new SwxError('SWX_BAD_REQUEST', `SSH key type ${JSON.stringify(type.slice(0, 40))} is not one of ${sshKeyTypes.join(', ')}`);
  }
  const parsed = ssh2.utils.parseKey(`${type} ${blobText}`);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== type || parsed.isPrivateKey()) {
    throw new SwxError('SWX_BAD_REQUEST', `not a valid ${type} public key${parsed instanceof Error ? `: ${parsed.message}` : ''}`);
  }
  const blob = parsed.getPublicSSH();
  const comment = rest.join(' ').slice(0, 200);
  return {
    key: `${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`,
    fingerprint: fingerprintOf(blob),
    type: type as SshKey['type'],
    ...(comment ? { comment } : {}),
    addedAt: addedAt.toISOString(),
  };
}
