// The hub's inbound parts in one process for connector tests: a real nats-server with the hub's streams, the partner
// registry, the trust store over a fresh PKI, the Object Store and the real intake stage, and a reader of what
// JetStream stored. Connectors that poll or get (SFTP outboxes, MQ queues) are driven against these.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Envelope } from '../../engine/envelope.ts';
import { EvidenceLog } from '../../engine/evidence.ts';
import { hubIdentity } from '../../engine/identity.ts';
import { connectBus, provisionStreams, streams, subjects, type Bus } from '../../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { Payloads } from '../../engine/payloads.ts';
import { initPki, issueAgency, loadPki, TrustStore, type Credential } from '../../engine/pki/index.ts';
import { Registry } from '../../engine/registry.ts';
import { UnauthenticatedRefusals } from '../../engine/unauthenticated.ts';
import { IntakeStage } from '../../pipelines/intake.ts';
import { EvidenceStream } from './evidence-stream.ts';
import { freePort } from './hub.ts';

export interface IntakeParts {
  bus: Bus;
  registry: Registry;
  trust: TrustStore;
  intake: IntakeStage;
  payloads: Payloads;
  evidence: EvidenceStream;
  hubCaPem: string;
  signing: ReturnType<typeof hubIdentity>['signing'];
  /** Agency credentials issued by the test CA, by id. */
  agencies: Record<string, Credential>;
  /** The nats-server's pid, to pause it (SIGSTOP) under a connector. */
  natsPid(): number;
  /** The envelopes JetStream holds for `receiver` with this id. */
  stored(receiver: string, id: string): Promise<Envelope[]>;
  close(): Promise<void>;
}

export async function startIntakeParts(dir: string, agencies: string[], inlineLimit = 256 * 1024): Promise<IntakeParts> {
  const pkiDir = join(dir, 'pki');
  await initPki(pkiDir, { agencies: [], alg: 'ecdsa', crlUrl: 'http://127.0.0.1:9/pki/crl' });
  const pki = await loadPki(pkiDir);
  const issued: Record<string, Credential> = {};
  for (const agency of agencies) issued[agency] = await issueAgency(pkiDir, agency);
  const nats: EmbeddedNats = await startEmbeddedNats(dir, await freePort());
  const bus = await connectBus(nats.url, 'intake-parts-test');
  await provisionStreams(bus.jsm, 3600, 30);
  const registry = await Registry.open(bus);
  const trust = await TrustStore.open(pkiDir, { graceSeconds: 86_400, ocsp: false, maxAgeSeconds: 3_600, fetchTimeoutMs: 5_000, failOpen: false });
  const log = new EvidenceLog(bus, 'test');
  const payloads = await Payloads.open(bus, inlineLimit);
  const intake = new IntakeStage(bus, registry, payloads, log, new UnauthenticatedRefusals(log));
  const natsPid = () => Number(readFileSync(join(dir, 'nats', 'nats-server.pid'), 'utf8').trim());
  return {
    bus, registry, trust, intake, payloads, evidence: new EvidenceStream(bus), hubCaPem: pki.ca.certPem, signing: hubIdentity(pki).signing,
    agencies: issued, natsPid,
    async stored(receiver, id) {
      const { state } = await bus.jsm.streams.info(streams.messages);
      const found: Envelope[] = [];
      for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
        const message = await bus.jsm.streams.getMessage(streams.messages, { seq }).catch(() => null);
        if (message?.subject !== subjects.message(receiver)) continue;
        const envelope = message.json<Envelope>();
        if (envelope.id === id) found.push(envelope);
      }
      return found;
    },
    async close() {
      try { process.kill(natsPid(), 'SIGCONT'); } catch { /* not running */ }
      trust.close();
      registry.close();
      await bus.nc.drain();
      await nats.stop();
    },
  };
}
