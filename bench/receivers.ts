// Bench receivers in their own process, as real agencies would be: they report each new message id with its
// arrival time (ms since the epoch, sub-millisecond) to the bench in batches.
import { startAgencyReceiver, type AgencyReceiver } from '../connectors/rest/agency.ts';

interface Setup { agencies: { id: string; certPem: string; keyPem: string; caPem: string; inboxDir: string }[]; hubSignCertPem: string }

const receivers: AgencyReceiver[] = [];
let pending: [string, number][] = [];

process.once('message', async (setup: Setup) => {
  const ports: Record<string, number> = {};
  for (const agency of setup.agencies) {
    const receiver = await startAgencyReceiver({
      ...agency, port: 0, hubSignCertPem: setup.hubSignCertPem,
      onMessage: (entry) => pending.push([entry.id, performance.timeOrigin + performance.now()]),
    });
    receivers.push(receiver);
    ports[agency.id] = receiver.port;
  }
  process.send!({ ready: ports });
  setInterval(() => {
    if (pending.length === 0) return;
    process.send!({ arrived: pending });
    pending = [];
  }, 50);
});
process.on('disconnect', () => process.exit(0));
