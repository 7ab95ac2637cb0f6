// Query bench providers in their own process, as provider agencies would be: the reference REST and SOAP providers
// answering demo records. Each query is timed here, from the arrival of the hub's request to the end of the
// provider's response, and reported to the bench by query id: the hub's added latency is what the asker saw minus
// this. Timing comes from node:http's diagnostics channels, so the providers run unchanged.
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { answer } from '../app/demo-data.ts';
import { envelopeHeaders } from '../connectors/rest/contract.ts';
import { startRestProvider } from '../connectors/rest/agency.ts';
import { startSoapProvider } from '../connectors/ws/agency.ts';

export interface ProviderSetup {
  providers: { id: string; protocol: 'rest' | 'soap'; certPem: string; keyPem: string; caPem: string }[];
  hubSignCertPem: string;
}

interface HttpEvent { request: IncomingMessage }

const started = new WeakMap<IncomingMessage, { at: number; body: Buffer[] }>();
let timed: [string, number][] = [];

subscribe('http.server.request.start', (message) => {
  const { request } = message as HttpEvent;
  const entry = { at: performance.now(), body: [] as Buffer[] };
  started.set(request, entry);
  // A SOAP query names its id only inside the envelope (q:Context/q:queryId); REST carries it in a header.
  if (request.headers[envelopeHeaders.messageId] === undefined) request.on('data', (chunk: Buffer) => entry.body.push(chunk));
});

subscribe('http.server.response.finish', (message) => {
  const { request } = message as HttpEvent;
  const entry = started.get(request);
  if (!entry) return;
  const header = request.headers[envelopeHeaders.messageId];
  const id = typeof header === 'string' ? header : /<q:queryId>([^<]{1,128})<\/q:queryId>/.exec(Buffer.concat(entry.body).toString('utf8'))?.[1];
  if (id) timed.push([id, performance.now() - entry.at]);
});

process.once('message', async (setup: ProviderSetup) => {
  const ports: Record<string, number> = {};
  for (const provider of setup.providers) {
    const answerAs = (dataset: string, keys: Record<string, string>) => answer(dataset, keys, provider.id) as Record<string, unknown> | undefined;
    const credentials = { certPem: provider.certPem, keyPem: provider.keyPem, caPem: provider.caPem };
    ports[provider.id] = provider.protocol === 'soap'
      ? (await startSoapProvider({ ...credentials, hubCertPem: setup.hubSignCertPem, provider: provider.id, answer: answerAs })).port
      : (await startRestProvider({ ...credentials, port: 0, hubSignCertPem: setup.hubSignCertPem, answer: answerAs })).port;
  }
  process.send!({ ready: ports });
  setInterval(() => {
    // The bench may be gone already (it stops the hub, then leaves): a send then would throw EPIPE.
    if (timed.length === 0 || !process.connected) return;
    process.send!({ timed });
    timed = [];
  }, 50);
});
process.on('disconnect', () => process.exit(0));
