// The demo agencies' own process, apart from the hub as real agencies are: a receiver (inbox under <data>/demo/<ID>/,
// and arrivals.log, the ids in the order stored) for each agency that exchanges messages, and a query provider for each Table 1 provider answering from the demo
// data over REST or SOAP, each with the credentials the demo issued in <data>/demo/<ID>/. Nothing an agency's code
// does here can take the hub down.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgencyReceiver, startRestProvider } from '../connectors/rest/agency.ts';
import { startSoapProvider } from '../connectors/ws/agency.ts';
import { answer as demoAnswer } from './demo-data.ts';
import { arrivalLog, demoAgencies, demoDir, demoProviders, messagingAgencies, type DemoEndpoints } from './demo.ts';

export async function startDemoAgencies(dataDir: string): Promise<{ endpoints: DemoEndpoints; stop(): Promise<void> }> {
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
      if (messagingAgencies.has(id)) {
        // The order stored, for judging a channel's order: deliveredAt can tie within a millisecond, a line cannot.
        const log = arrivalLog(dataDir, id);
        const receiver = await startAgencyReceiver({
          ...credentials, port: 0, hubSignCertPem, inboxDir: join(dir, 'inbox'), onMessage: (entry) => appendFileSync(log, `${entry.id}\n`),
        });
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
