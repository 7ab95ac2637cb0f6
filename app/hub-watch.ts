// The console's readers of the running hub (dashboards/watch.ts): delivery backlogs from the JetStream consumers,
// breakers from this process's deliveries, dead letters, the certificates and CRLs in use, the time-stamping backlog
// and the data folder's disk.
import { X509Certificate } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import type { HubWatch, Expiry } from '../dashboards/watch.ts';
import { streams, type Bus } from '../engine/nats/jetstream.ts';
import type { Registry } from '../engine/registry.ts';
import type { CrlInfo } from '../engine/trust/revocation.ts';
import type { Deliveries } from '../pipelines/deliver.ts';

export interface HubWatchParts {
  bus: Bus;
  registry: Registry;
  deliveries: Deliveries;
  /** The hub's own certificates (CA, signing, TLS) and the TSA's, as PEM. */
  hubCertificates: { subject: string; kind: 'hub' | 'tsa'; pem: string }[];
  crls(): CrlInfo[];
  stampingBacklog(): number;
  dataDir: string;
}

/** The partner a delivery lane's subject is for: `swx.msg.<partner>[.<channel>]`. */
const partnerOfSubject = (subject: string): string | undefined => /^swx\.msg\.([^.]+)(\.[^.]+)?$/.exec(subject)?.[1];

function certificateExpiry(subject: string, kind: Expiry['kind'], pem: string): Expiry | undefined {
  try {
    return { subject, kind, notAfter: new Date(new X509Certificate(pem).validTo).toISOString() };
  } catch {
    return undefined;
  }
}

export function hubWatch(parts: HubWatchParts): HubWatch {
  return {
    async partners() {
      const backlog = new Map<string, number>();
      for await (const info of parts.bus.jsm.consumers.list(streams.messages)) {
        const filters = [info.config.filter_subject, ...(info.config.filter_subjects ?? [])].filter((subject): subject is string => Boolean(subject));
        const partner = filters.map(partnerOfSubject).find(Boolean);
        if (partner) backlog.set(partner, (backlog.get(partner) ?? 0) + info.num_pending + info.num_ack_pending);
      }
      const breakers = parts.deliveries.breakerStates();
      return parts.registry.listPartners().map((partner) => ({ id: partner.id, backlog: backlog.get(partner.id) ?? 0, breaker: breakers.get(partner.id) ?? 'closed' }));
    },
    async deadLetters() {
      return (await parts.bus.jsm.streams.info(streams.deadLetters)).state.messages;
    },
    expiries() {
      const agencies = parts.registry.listPartners().flatMap((partner) => partner.certificates.map((pem, index) =>
        certificateExpiry(partner.certificates.length > 1 ? `${partner.id} #${index + 1}` : partner.id, 'agency', pem)));
      const own = parts.hubCertificates.map(({ subject, kind, pem }) => certificateExpiry(subject, kind, pem));
      const crls: Expiry[] = parts.crls().map((crl) => ({ subject: crl.issuer || crl.source, kind: 'crl', notAfter: crl.nextUpdate }));
      return [...agencies, ...own, ...crls].filter((expiry): expiry is Expiry => expiry !== undefined);
    },
    stampingBacklog: parts.stampingBacklog,
    async disk() {
      const stats = await statfs(parts.dataDir);
      return { path: parts.dataDir, freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
    },
  };
}
