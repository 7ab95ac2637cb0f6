// The receiving agencies of a bench: registered with the hub, their reference receivers in a process of their own
// (bench/receivers.ts), each stored message reported back with its arrival time.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addAgency, agencyEndpoints, type HubProcess } from '../app/hub-process.ts';
import { loadPki } from '../engine/pki/index.ts';
import type { Arrival } from './receivers.ts';

export interface BenchReceivers {
  /** Arrival time of each message, by `<agency>/<id>`. */
  arrivals: Map<string, number>;
  stop(): void;
}

export const arrivalKey = (agency: string, id: string) => `${agency}/${id}`;

export async function startBenchReceivers(hub: HubProcess, ids: string[], options: { discardBodies?: boolean } = {}): Promise<BenchReceivers> {
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  const child: ChildProcess = fork(fileURLToPath(new URL('./receivers.ts', import.meta.url)), { execArgv: ['--import', 'tsx'] });
  const arrivals = new Map<string, number>();
  child.on('message', (message: { arrived?: Arrival[] }) => {
    for (const [agency, id, at] of message.arrived ?? []) arrivals.set(arrivalKey(agency, id), at);
  });
  const setup = [];
  for (const id of ids) {
    const agency = await addAgency(hub, id, { receiver: false });
    setup.push({ id, ...agency.credentials, inboxDir: join(hub.dataDir, 'bench-inbox', id) });
  }
  child.send({ agencies: setup, hubSignCertPem: pki.hubSign.certPem, discardBodies: options.discardBodies ?? false });
  const ports = await new Promise<Record<string, number>>((resolve) => child.once('message', (m: { ready: Record<string, number> }) => resolve(m.ready)));
  for (const { id, certPem } of setup) {
    await hub.admin('PUT', `/api/partners/${id}`, { name: id, certificates: [certPem], endpoints: agencyEndpoints(ports[id]) });
  }
  return { arrivals, stop: () => child.disconnect() };
}
