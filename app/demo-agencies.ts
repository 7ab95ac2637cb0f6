// The demo agencies' own process, apart from the hub as real agencies are: for each agency that exchanges messages a
// receiver the hub pushes to, or for one that receives by pull a collector of its inbox at the hub (each stores into
// <data>/demo/<ID>/inbox, and appends the ids to arrivals.log in the order stored), and a query provider for each
// Table 1 provider answering from the demo data over REST or SOAP, each with the credentials the demo issued in
// <data>/demo/<ID>/. Nothing an agency's code does here can take the hub down.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgencyClient, receiveInbox, startAgencyReceiver, startRestProvider, type AgencyCredentials, type InboxEntry } from '../connectors/rest/agency.ts';
import { startSoapProvider } from '../connectors/ws/agency.ts';
import { answer as demoAnswer } from './demo-data.ts';
import { arrivalLog, demoAgencies, demoDir, demoProviders, messagingAgencies, pullAgencies, type DemoEndpoints } from './demo.ts';

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

export async function startDemoAgencies(dataDir: string, hubUrl: string): Promise<{ endpoints: DemoEndpoints; stop(): Promise<void> }> {
  const servers: { close(): Promise<void> }[] = [];
  const endpoints: DemoEndpoints = {};
  const stop = async () => { for (const server of servers) await server.close(); };
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
      if (pullAgencies.has(id)) {
        servers.push(startCollector(id, hubUrl, credentials, hubSignCertPem, inboxDir, stored));
      } else if (messagingAgencies.has(id)) {
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
