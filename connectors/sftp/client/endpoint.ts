// The client side of a partner's SFTP endpoint: the agency's own SFTP server, which the hub logs in to, to push
// deliveries into its inbox folder and to collect files from its outbox folder. These fields sit beside the hub's own
// SFTP server's in the partner's `sftp` endpoint; the server connector merges them into its schema.
import { z } from 'zod';
import type { Purpose } from '../../../engine/endpoints.ts';
import { sshFingerprint } from '../../../engine/ssh-key.ts';

/** A remote absolute folder: no `..`, no NUL, no trailing slash. */
const remoteDir = z.string().max(1024).regex(/^\/(?!.*(^|\/)\.\.(\/|$))[^\0]*[^/\0]$|^\/$/, 'an absolute remote folder without .. or NUL');


/** The name of one of the hub's SSH client keys, a file under <data>/sftp/client-keys/. */
export const clientKeyName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a client key name: lower-case letters, digits, _ and -');

export const sftpClientEndpoint = z.object({
  host: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:[\]-]+$/, 'a host name or IP address').describe('the agency\'s SFTP server'),
  port: z.number().int().min(1).max(65_535).default(22),
  user: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'a user name: letters, digits, . _ -').describe('the user the hub logs in as'),
  hostKeyFingerprint: sshFingerprint.describe('the agency server\'s host key, pinned: a server presenting any other key is refused (never trusted on first use)'),
  clientKey: clientKeyName.default('hub').describe('which of the hub\'s own SSH client keys it logs in with: <data>/sftp/client-keys/<name> (its .pub is what the agency authorizes)'),
  inboxDir: remoteDir.optional().describe('where the hub pushes deliveries (towards the agency)'),
  outboxDir: remoteDir.optional().describe('where the hub collects the agency\'s files: <outboxDir>/<service>/<RECEIVER>/file, <outboxDir>/<channel>/file, <outboxDir>/<topic>/file'),
  tempName: z.string().regex(/^[^/\0]*\{name\}[^/\0]*$/, 'a file name pattern with {name} in it, e.g. .{name}.part').default('.{name}.part')
    .describe('the name a pushed file is written under until it is complete and renamed; files of this shape in the outbox are never taken'),
  complete: z.enum(['stable', 'signature']).default('stable')
    .describe('when an outbox file is complete: stable (its size and time unchanged across two listings) or signature (its name.p7s is present)'),
  doneDir: remoteDir.optional().describe('where a taken outbox file is moved once the hub stored it (default: it is removed)'),
  errorDir: remoteDir.optional().describe('where a refused outbox file is moved, with name.error.json beside it (default: <outboxDir>/error)'),
  pollIntervalMs: z.number().int().min(100).max(3_600_000).default(30_000).describe('how often the outbox is listed'),
  connectTimeoutMs: z.number().int().min(1_000).max(120_000).default(20_000).describe('the longest the SSH handshake and login may take'),
}).strict().refine((endpoint) => endpoint.inboxDir || endpoint.outboxDir, 'an SFTP client endpoint needs an inboxDir, an outboxDir or both');

export type SftpClientEndpoint = z.infer<typeof sftpClientEndpoint>;

export function sftpClientServes(endpoint: SftpClientEndpoint): Purpose[] {
  return endpoint.inboxDir ? ['deliver'] : [];
}

/** The temporary name of `name` under the endpoint's convention. */
export function tempNameOf(endpoint: Pick<SftpClientEndpoint, 'tempName'>, name: string): string {
  return endpoint.tempName.replace('{name}', name);
}

/** Whether `name` is a temporary name under the convention (never taken from an outbox). */
export function isTempName(endpoint: Pick<SftpClientEndpoint, 'tempName'>, name: string): boolean {
  const [before, after] = endpoint.tempName.split('{name}') as [string, string];
  return name.length > before.length + after.length && name.startsWith(before) && name.endsWith(after);
}
