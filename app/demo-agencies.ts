// The demo agencies' own process, apart from the hub as real agencies are: for each agency that exchanges messages what
// receives them by its protocol (app/demo-protocols.ts) — a REST receiver the hub pushes to, an AS4 or ebMS 2.0 gateway,
// its own SFTP server (OpenSSH's sshd) the hub pushes files into, or for one that receives by pull a collector of its
// inbox at the hub over REST or SFTP (each stores into
// <data>/demo/<ID>/inbox, and appends the ids to arrivals.log in the order stored); MQ agencies get nothing, no queue
// manager being reachable here — and a query provider for each
// Table 1 provider answering from the demo data over REST or SOAP, each with the credentials the demo issued in
// <data>/demo/<ID>/. Nothing an agency's code does here can take the hub down.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgencyClient, receiveInbox, startAgencyReceiver, startRestProvider, type AgencyCredentials, type InboxEntry } from '../connectors/rest/agency.ts';
import { startSoapProvider } from '../connectors/ws/agency.ts';
import { answer as demoAnswer } from './demo-data.ts';
import { arrivalLog, demoAgencies, demoDir, demoProviders, messagingAgencies, pushedId, sshdDir, type DemoEndpoints } from './demo.ts';
import { startAs4Gateway, startEbms2Gateway, startSftpCollector, startSftpPushServer } from './demo-gateways.ts';
import { receiveProtocol, sftpOutboxAgencies, sftpPushAgencies, sshdInstalled, sshdPath } from './demo-protocols.ts';

/** Long-poll wait of a collector's listing: a delivery is collected as soon as it waits, and few listings come back empty. */
const collectWaitSeconds = 20;

/**
 * Collects an agency's deliveries from its inbox at `hubUrl` until closed, as `swx receive` does: each stored once
 * (its SHA-256 and the hub's signatures checked), then acknowledged; the acknowledgement is its receipt.
 */
function startCollector(id: string, hubUrl: string, credentials: AgencyCredentials, hubSignCertPem: string, inboxDir: string, onMessage: (entry: InboxEntry) => void) {
  const client = new AgencyClient(hubUrl, credentials, { hubSignCertPem });
  const stopped = new AbortController();
  const collecting = receiveInbox(client, {
    inboxDir, wait: collectWaitSeconds, signal: stopped.signal, onMessage,
    onError: (error) => console.error(`${id}: collecting from the inbox failed (${error.message}); asking again in 5 s`),
  });
  return {
    async close() {
      stopped.abort();
      // Ends a listing still waiting; what it would have handed out stays in the inbox.
      client.close();
      const { failed } = await collecting;
      for (const failure of failed) console.error(`${id}: ${failure.id} not acknowledged: ${failure.error}`);
    },
  };
}

export async function startDemoAgencies(dataDir: string, hubUrl: string, sftpPort: number): Promise<{ endpoints: DemoEndpoints; stop(): Promise<void> }> {
  const servers: { close(): Promise<void> }[] = [];
  // The hub's host key as the demo pinned it for the agencies (<data>/demo/known_hosts).
  const hostKey = () => readFileSync(join(dataDir, 'demo', 'known_hosts'), 'utf8').split('\n')[0]!.split(' ').slice(1).join(' ');
  const endpoints: DemoEndpoints = {};
  const stop = async () => { for (const server of servers) await server.close(); };
  if (!sshdInstalled()) {
    console.error(`OpenSSH's sshd is not installed (${sshdPath}; apt-get install openssh-server): ${[...sftpPushAgencies].join(' and ')} receive by REST push instead of SFTP push to an SFTP server of their own`);
  }
  try {
    for (const { id } of demoAgencies) {
      const dir = demoDir(dataDir, id);
      const read = (file: string) => readFileSync(join(dir, file), 'utf8');
      const credentials = { certPem: read('cert.pem'), keyPem: read('key.pem'), caPem: read('ca.pem') };
      const hubSignCertPem = read('hub-sign.pem');
      const endpoint: DemoEndpoints[string] = {};
      // The order stored, for judging a channel's order: deliveredAt can tie within a millisecond, a line cannot.
      const stored = (entry: InboxEntry) => appendFileSync(arrivalLog(dataDir, id), `${entry.id}\n`);
      const inboxDir = join(dir, 'inbox');
      const receives = messagingAgencies.has(id) ? receiveProtocol(id) : undefined;
      if (receives === 'rest-pull') {
        servers.push(startCollector(id, hubUrl, credentials, hubSignCertPem, inboxDir, stored));
      } else if (receives === 'sftp-pull') {
        const login = { host: 'localhost', port: sftpPort, user: id, privateKey: readFileSync(join(dir, 'id_ed25519')), hostKey: hostKey() };
        servers.push(startSftpCollector(login, credentials, inboxDir, stored, (error) => console.error(`${id}: collecting from inbox/ over SFTP failed (${error.message}); trying again in 5 s`)));
      } else if (receives === 'sftp-push') {
        const server = await startSftpPushServer(sshdDir(dataDir, id), read('hub.pub').trim(), (name) => appendFileSync(arrivalLog(dataDir, id), `${pushedId(name)}\n`));
        servers.push(server);
        endpoint.sftp = {
          port: server.port, user: server.user, fingerprint: server.fingerprint, inboxDir: server.inboxDir,
          ...(sftpOutboxAgencies.has(id) ? { outboxDir: server.outboxDir } : {}),
        };
      } else if (receives === 'as4' || receives === 'ebms2') {
        const gateway = await (receives === 'as4' ? startAs4Gateway : startEbms2Gateway)({ ...credentials, id, hubSignCertPem, inboxDir, onMessage: stored });
        servers.push(gateway);
        endpoint[receives] = gateway.port;
      } else if (receives === 'rest') {
        const receiver = await startAgencyReceiver({ ...credentials, port: 0, hubSignCertPem, inboxDir, onMessage: stored });
        servers.push(receiver);
        endpoint.receiver = receiver.port;
      }
      const protocol = demoProviders[id];
      const answer = (dataset: string, keys: Record<string, string>) => demoAnswer(dataset, keys, id) as Record<string, unknown> | undefined;
      if (protocol) {
        const provider = protocol === 'soap'
          ? await startSoapProvider({ ...credentials, hubCertPem: hubSignCertPem, provider: id, answer })
          : await startRestProvider({ ...credentials, port: 0, hubSignCertPem, answer });
        servers.push(provider);
        endpoint.provider = { port: provider.port, protocol };
      }
      endpoints[id] = endpoint;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoints, stop };
}
