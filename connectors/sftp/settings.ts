// The SFTP connector's hub-wide settings (connectors.sftp in swx.json, SWX_SFTP_HOST / SWX_SFTP_PORT) and the shape of
// a partner's sftp endpoint: how that agency completes its uploads, its quota, and whether its legacy keys may log in.
import { z } from 'zod';
import { connectorSettings } from '../../engine/connector.ts';
import type { Purpose } from '../../engine/endpoints.ts';

/** The SFTP port: beside the agency HTTPS port (7443) and the operator port (7480), clear of a system sshd on 22. */
export const defaultSftpPort = 7422;

const bytes = z.coerce.number().int().positive();

export const sftpSettings = connectorSettings.extend({
  host: z.string().min(1).default('0.0.0.0').describe('address the SFTP server listens on'),
  port: z.coerce.number().int().min(0).max(65535).default(defaultSftpPort).describe('SFTP port (0: chosen by the system)'),
  quotaBytes: bytes.default(4 * 1024 ** 3)
    .describe('bytes one agency\'s uploads may hold on the hub before they are taken (in flight or waiting for their rename or signature), unless its endpoint says otherwise'),
  maxSessionsPerAgency: z.coerce.number().int().positive().default(16).describe('SFTP sessions one agency may hold open at once in this hub process'),
});
export type SftpSettings = z.infer<typeof sftpSettings>;

export const sftpEndpoint = z.object({
  completion: z.enum(['rename', 'signature']).default('rename')
    .describe('rename: a file is taken when NAME.part is renamed to NAME; signature: when NAME is closed and NAME.p7s is there too (either order)'),
  quotaBytes: bytes.optional().describe('this agency\'s quota instead of connectors.sftp.quotaBytes'),
  legacyKeyTypes: z.boolean().default(false)
    .describe('let this agency log in with ssh-rsa keys signing with SHA-1, or DSA keys (flagged in the log); off by default'),
}).strict();
export type SftpEndpoint = z.infer<typeof sftpEndpoint>;

/** An sftp endpoint says how the agency sends over SFTP; the hub does not deliver over SFTP yet. */
export function sftpServes(_endpoint: SftpEndpoint): Purpose[] {
  return [];
}
