// The client side of the SFTP connector: the hub logs in to an agency's own SFTP server to push deliveries into its
// inbox folder (SftpPushOutbound) and to collect files from its outbox folder (SftpOutboxPoller). The connector's
// index.ts offers them beside the hub's own SFTP server, and merges the endpoint fields below into its schema.
export { clientKeyName, isTempName, sftpClientEndpoint, sftpClientServes, tempNameOf, type SftpClientEndpoint } from './endpoint.ts';
export { fileNameOf, openSession, SftpPushOutbound, type SftpClientOptions, type SftpPushOptions, type TransferRecord } from './push.ts';
export { HostKeyMismatch, SftpSession } from './session.ts';
export { hubClientKey, hubClientKeyPath } from './keys.ts';
export { outboxMessageId, SftpOutboxPoller, type PollResult, type SftpOutboxPollerOptions } from './poll.ts';
