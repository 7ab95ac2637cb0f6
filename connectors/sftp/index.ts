// The SFTP connector: agencies that exchange files log in with a registered SSH key and upload into their outbox
// (a channel's items, a topic's notifications, a service's messages to one receiver), each file with its detached
// CMS signature; the hub takes a file once it is complete and checked, and answers with a signed receipt or refusal
// in the agency's receipts folder. Towards an agency with its own SFTP server, the hub pushes deliveries into its inbox
// folder and collects the files in its outbox folder (client/).
import { registerConnector, type ConnectorHealth } from '../../engine/connector.ts';
import { log } from '../../engine/log.ts';
import { DeliveryError, type Outbound } from '../../engine/outbound.ts';
import type { Partner } from '../../engine/registry.ts';
import { hubClientKey, openSession, SftpOutboxPoller, SftpPushOutbound, type SftpClientEndpoint } from './client/index.ts';
import { probeTimeoutMs } from '../../engine/probe.ts';
import { loadHostKey } from './hostkey.ts';
import { InboxFolders } from './inbox.ts';
import { ReceiptFolder } from './receipts.ts';
import { startSftpServer, type SessionCounts } from './server.ts';
import { sftpEndpoint, sftpServes, sftpSettings, type SftpEndpoint } from './settings.ts';
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
    const serverOptions = {
      hostKey, registry, intake, maxSessionsPerAgency: settings.maxSessionsPerAgency,
      session: { registry, intake, payloads, trust, signatures, receipts: new ReceiptFolder(identity.signing), staging: new Staging(), quotaBytes: settings.quotaBytes,
        inboxes: new InboxFolders({ inbox, payloads, registry, trust, signatures, visibilitySeconds: config.delivery.inboxVisibilitySeconds }) },
    };
    const sessions: SessionCounts = new Map();
    const server = await startSftpServer(serverOptions, settings.host, settings.port, 'main', sessions);
    log.info({ port: server.port, host: settings.host, fingerprint: hostKey.fingerprint }, 'SFTP server listening');
    const legacyServer = settings.legacyPort === undefined ? undefined : await startSftpServer(serverOptions, settings.host, settings.legacyPort, 'legacy', sessions);
    if (legacyServer) log.warn({ port: legacyServer.port, host: settings.host }, 'SFTP legacy listener (SHA-1 key exchange and MACs, CBC ciphers) listening, for agencies whose endpoint allows legacyAlgorithms');

    const clientKey = (name: string) => hubClientKey(config.dataDir, name).privateKey;
    const push = new SftpPushOutbound({ clientKey, signing: identity.signing, timeoutMs: config.delivery.timeoutMs });
    const outbound: Outbound = {
      deliver(envelope, payload, partner, endpoint) {
        const remote = (endpoint as SftpEndpoint).remote;
        if (!remote) return Promise.reject(new DeliveryError(false, 'SWX_UNKNOWN_RECEIVER', `${partner.id} has no SFTP server of its own to deliver to`));
        return push.deliver(envelope, payload, partner, remote);
      },
    };

    /** One poller per agency whose own server has an outbox folder, restarted when its endpoint changes. */
    const pollers = new Map<string, { poller: SftpOutboxPoller; endpoint: string }>();
    const outboxOf = (partner: Partner) => {
      const remote = sftpEndpoint.safeParse(partner.endpoints.sftp ?? {}).data?.remote;
      return remote?.outboxDir && partner.enabled ? remote as SftpClientEndpoint & { outboxDir: string } : undefined;
    };
    let chain: Promise<void> = Promise.resolve();
    const sync = async () => {
      const wanted = new Map(registry.listPartners().flatMap((partner) => {
        const remote = outboxOf(partner);
        return remote ? [[partner.id, remote] as const] : [];
      }));
      for (const [id, running] of pollers) {
        if (JSON.stringify(wanted.get(id)) === running.endpoint) continue;
        pollers.delete(id);
        await running.poller.stop();
      }
      for (const [id, remote] of wanted) {
        if (pollers.has(id)) continue;
        const poller = new SftpOutboxPoller(id, remote, { intake, registry, payloads, trust, signatures, clientKey, maxFileBytes: config.limits.maxStreamedBodyBytes });
        pollers.set(id, { poller, endpoint: JSON.stringify(remote) });
        poller.start();
      }
    };
    const resync = () => { chain = chain.then(sync).catch((error) => log.error({ err: error }, 'SFTP connector: could not start the outbox pollers')); };
    resync();
    const unsubscribe = registry.onChange((kind) => { if (kind === 'partner') resync(); });

    return {
      // The partner's own server, as a push or a poll reaches it: the pinned host key checked, the hub's client key
      // logged in with, the SFTP subsystem opened, and closed.
      async probe(partner, endpoint) {
        const started = performance.now();
        const result = (ok: boolean, detail: string) => ({ ok, detail, ms: Math.round(performance.now() - started) });
        const remote = (endpoint as SftpEndpoint).remote;
        if (!remote) return result(true, 'not applicable: the partner logs in to the hub');
        const where = `${remote.user}@${remote.host}:${remote.port}`;
        try {
          const session = await openSession(partner.id, { ...remote, connectTimeoutMs: Math.min(remote.connectTimeoutMs, probeTimeoutMs) }, { clientKey });
          session.end();
          return result(true, `${where}: host key ${session.fingerprint} as pinned, logged in with client key ${remote.clientKey}`);
        } catch (error) {
          return result(false, `${where}: ${(error as Error).message}`);
        }
      },
      health(): ConnectorHealth {
        const problems = [...pollers.values()].flatMap(({ poller }) => poller.problem ?? []);
        if (problems.length) return { ok: false, detail: `${problems.length} of ${pollers.size} outbox poller(s) failing: ${problems.join('; ')}` };
        return { ok: true, detail: `${pollers.size} outbox poller(s)` };
      },
      listening: `SFTP ${settings.host}:${server.port}${legacyServer ? `, legacy ${settings.host}:${legacyServer.port}` : ''} (host key ${hostKey.fingerprint})`,
      outbound,
      async stop() {
        unsubscribe();
        await chain;
        await Promise.all([...pollers.values()].map((running) => running.poller.stop()));
        pollers.clear();
        await Promise.all([server.close(), legacyServer?.close()]);
      },
    };
  },
});
