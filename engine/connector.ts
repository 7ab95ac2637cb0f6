// The connector contract: one unit per protocol, as a component is in Redpanda Connect or a source and sink in Vector.
// A connector declares its protocol, the schema of its hub-wide settings and of a partner's endpoint, and a start that
// takes the one context below and returns what it offers. Each connectors/<protocol>/index.ts registers itself here;
// the hub starts every registered connector its settings do not turn off.
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import type { BodyBudget } from './budget.ts';
import type { Catalogue } from './catalogue.ts';
import type { Config } from './config.ts';
import { registerEndpointKind, type EndpointKind } from './endpoints.ts';
import type { EvidenceLog } from './evidence.ts';
import type { Router } from './http.ts';
import type { HubIdentity } from './identity.ts';
import type { Inbox } from './inbox.ts';
import type { Outbound } from './outbound.ts';
import type { Payloads } from './payloads.ts';
import type { ProviderConnector, QueryService, ReplayGuard } from './query.ts';
import type { Partner, Registry } from './registry.ts';
import type { ProbeResult } from './probe.ts';
import type { Messages } from './status.ts';
import type { Intake } from './submission.ts';
import type { CertificateCheck } from './trust/path.ts';
import type { PayloadVerifiers } from './trust/payload.ts';
import type { XmlSigners } from './trust/pool.ts';

/** What every connector may use: the hub's parts, shared, and the listener for agency traffic. */
export interface ConnectorContext {
  config: Config;
  /** The hub's one signing identity and TLS credential. */
  identity: HubIdentity;
  registry: Registry;
  /** Judges certificates: path to a trust anchor, validity, key usage, revocation. */
  trust: CertificateCheck;
  /** Signature checks for XML and CMS, and XML signing, on the signature pool's threads when there is one. */
  signatures: PayloadVerifiers & XmlSigners;
  intake: Intake;
  payloads: Payloads;
  evidence: EvidenceLog;
  /** The deliveries waiting for partners that receive by pull. */
  inbox: Inbox;
  queries: QueryService;
  /** What became of a message at each receiver, as its sender asks; SWX_UNAVAILABLE in a process that does not archive. */
  messages: Messages;
  catalogue: Catalogue;
  /** Claims query ids and request signatures once within the replay window. */
  replay: ReplayGuard;
  /** The agency port's router (HTTPS, mutual TLS): HTTP-borne connectors mount their routes here. */
  router: Router;
  /** In-flight body bytes, the hub's and each agency's: shared by every connector. */
  budget: BodyBudget;
  /** The origin agencies reach the agency port at; known once the port is bound. */
  publicUrl(): string;
  /**
   * A key-value bucket of the connector's own, shared by every hub process on this NATS (created when missing), whose
   * entries are forgotten `maxAgeSeconds` after they were written: state a protocol must keep beyond one process.
   */
  bucket(name: string, maxAgeSeconds: number): Promise<KV>;
}

/** The settings every connector has; a connector's own schema extends it. */
export const connectorSettings = z.object({
  enabled: z.boolean().default(true).describe('start this connector in this hub process'),
});

export interface ConnectorHealth { ok: boolean; detail?: string }

/** What a started connector offers; each part is optional. */
export interface Offered {
  /** Delivers messages to partners' endpoints of this protocol. */
  outbound?: Outbound;
  /** Puts queries to providers' endpoints of this protocol. */
  provider?: ProviderConnector;
  health?(): ConnectorHealth;
  /**
   * Tries the way to a partner's endpoint of this protocol without sending a message (a TLS or SSH handshake with
   * the credentials deliveries use), within a bounded time; a connector without it cannot be tested.
   */
  probe?(partner: Partner, endpoint: unknown): Promise<ProbeResult>;
  /** One line for the hub's start message when the connector listens on a port of its own: where, and what agencies pin. */
  listening?: string;
  /** Stops taking work and drains; called in reverse order of start. */
  stop?(): Promise<void> | void;
}

export interface Connector<Settings = unknown, Endpoint = unknown> extends EndpointKind<Endpoint> {
  /** One line for `swx connectors` and the README. */
  readonly summary: string;
  /** Hub-wide settings: `connectors.<protocol>` in swx.json, an extension of connectorSettings. */
  readonly settings: z.ZodType<Settings & { enabled: boolean }>;
  start(context: ConnectorContext, settings: Settings): Promise<Offered> | Offered;
}

const registered = new Map<string, Connector>();

export function registerConnector<Settings, Endpoint>(connector: Connector<Settings, Endpoint>): void {
  if (registered.has(connector.protocol)) throw new Error(`a connector for ${connector.protocol} is registered twice`);
  registered.set(connector.protocol, connector as Connector);
  registerEndpointKind(connector as EndpointKind);
}

/** The registered connectors, by protocol name. */
export function registeredConnectors(): Connector[] {
  return [...registered.values()].sort((a, b) => a.protocol.localeCompare(b.protocol));
}
