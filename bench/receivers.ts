// Bench receivers in their own process, as real agencies would be: they report each new message with the agency that
// stored it and its arrival time (ms since the epoch, sub-millisecond) to the bench in batches. With `discardBodies`
// they keep each message's digest, not its bytes, so a bench can move gigabytes.
import { startAgencyReceiver, type AgencyReceiver } from '../connectors/rest/agency.ts';

interface Setup {
  agencies: { id: string; certPem: string; keyPem: string; caPem: string; inboxDir: string }[];
  hubSignCertPem: string;
  discardBodies?: boolean;
}

/** One stored message: the agency that stored it, its id, and when. */
export type Arrival = [agency: string, id: string, at: number];

const receivers: AgencyReceiver[] = [];
let pending: Arrival[] = [];

process.once('message', async (setup: Setup) => {
  const ports: Record<string, number> = {};
  for (const agency of setup.agencies) {
    const receiver = await startAgencyReceiver({
      ...agency, port: 0, hubSignCertPem: setup.hubSignCertPem, discardBodies: setup.discardBodies ?? false,
      onMessage: (entry) => pending.push([agency.id, entry.id, performance.timeOrigin + performance.now()]),
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
