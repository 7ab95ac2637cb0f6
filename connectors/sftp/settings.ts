// The SFTP connector's hub-wide settings (connectors.sftp in swx.json, SWX_SFTP_HOST / SWX_SFTP_PORT /
// SWX_SFTP_LEGACY_PORT) and the shape of a partner's sftp endpoint: how that agency completes its uploads, its quota,
// whether its legacy keys may log in and whether it may use the legacy listener, and
// the agency's own SFTP server where the hub pushes deliveries and collects files (`remote`).
import { z } from 'zod';
import { connectorSettings } from '../../engine/connector.ts';
import type { Purpose } from '../../engine/endpoints.ts';
import { sftpClientEndpoint, sftpClientServes } from './client/endpoint.ts';

/** The SFTP port: beside the agency HTTPS port (7443) and the operator port (7480), clear of a system sshd on 22. */
export const defaultSftpPort = 7422;

const bytes = z.coerce.number().int().positive();

export const sftpSettings = connectorSettings.extend({
  host: z.string().min(1).default('0.0.0.0').describe('address the SFTP server listens on'),
  port: z.coerce.number().int().min(0).max(65535).default(defaultSftpPort).describe('SFTP port (0: chosen by the system)'),
  quotaBytes: bytes.default(4 * 1024 ** 3)
    .describe('bytes one agency\'s uploads may hold on the hub before they are taken (in flight or waiting for their rename or signature), unless its endpoint says otherwise'),
  legacyPort: z.coerce.number().int().min(0).max(65535).optional()
    .describe('a second SFTP listener that also offers SHA-1 key exchange and MACs and CBC ciphers, for agencies whose endpoint allows legacyAlgorithms (0: chosen by the system); none by default'),
  maxSessionsPerAgency: z.coerce.number().int().positive().default(16).describe('SFTP sessions one agency may hold open at once in this hub process'),
});
export type SftpSettings = z.infer<typeof sftpSettings>;

export const sftpEndpoint = z.object({
  completion: z.enum(['rename', 'signature']).default('rename')
    .describe('rename: a file is taken when NAME.part is renamed to NAME; signature: when NAME is closed and NAME.p7s is there too (either order)'),
  quotaBytes: bytes.optional().describe('this agency\'s quota instead of connectors.sftp.quotaBytes'),
  legacyKeyTypes: z.boolean().default(false)
    .describe('let this agency log in with ssh-rsa keys signing with SHA-1, or DSA keys (its transfers flagged legacy_login); off by default'),
  legacyAlgorithms: z.boolean().default(false)
    .describe('let this agency log in through the legacy listener (connectors.sftp.legacyPort: SHA-1 key exchange and MACs, CBC ciphers; its transfers flagged legacy_algorithms); off by default'),
  remote: sftpClientEndpoint.optional()
    .describe('the agency\'s own SFTP server: the hub pushes deliveries into its inboxDir and collects files from its outboxDir'),
}).strict();
export type SftpEndpoint = z.infer<typeof sftpEndpoint>;

/** The hub delivers over SFTP to an agency whose own server has an inbox folder; the hub's server is for its uploads. */
export function sftpServes(endpoint: SftpEndpoint): Purpose[] {
  return endpoint.remote ? sftpClientServes(endpoint.remote) : [];
}
