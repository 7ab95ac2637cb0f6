// The SFTP connector: agencies that exchange files log in with a registered SSH key and upload into their outbox
// (a channel's items, a topic's notifications, a service's messages to one receiver), each file with its detached
// CMS signature; the hub takes a file once it is complete and checked, and answers with a signed receipt or refusal
// in the agency's receipts folder.
import { registerConnector } from '../../engine/connector.ts';
import { log } from '../../engine/log.ts';
import { loadHostKey } from './hostkey.ts';
import { InboxFolders } from './inbox.ts';
import { ReceiptFolder } from './receipts.ts';
import { startSftpServer } from './server.ts';
import { sftpEndpoint, sftpServes, sftpSettings } from './settings.ts';
import { Staging } from './staging.ts';

export { sftpEndpoint, type SftpEndpoint, defaultSftpPort } from './settings.ts';
export { hostKeyPath, loadHostKey } from './hostkey.ts';

registerConnector({
  protocol: 'sftp',
  summary: 'SFTP (SSH keys on the partner entry): signed files uploaded to per-agency outboxes, signed receipts and refusals',
  settings: sftpSettings,
  endpoint: sftpEndpoint,
  serves: sftpServes,
  async start({ config, registry, intake, payloads, trust, signatures, identity, inbox }, settings) {
    const hostKey = loadHostKey(config.dataDir);
    const server = await startSftpServer({
      hostKey, registry, intake, maxSessionsPerAgency: settings.maxSessionsPerAgency,
      session: { registry, intake, payloads, trust, signatures, receipts: new ReceiptFolder(identity.signing), staging: new Staging(), quotaBytes: settings.quotaBytes,
        inboxes: new InboxFolders({ inbox, payloads, registry, trust, signatures, visibilitySeconds: config.delivery.inboxVisibilitySeconds }) },
    }, settings.host, settings.port);
    log.info({ port: server.port, host: settings.host, fingerprint: hostKey.fingerprint }, 'SFTP server listening');
    return {
      listening: `SFTP ${settings.host}:${server.port} (host key ${hostKey.fingerprint})`,
      stop: () => server.close(),
    };
  },
});
