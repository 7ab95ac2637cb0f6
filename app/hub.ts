// The composition root: builds a hub process from its configuration, and stops it in reverse order, draining.
import { existsSync, readFileSync } from 'node:fs';
import { Kvm } from '@nats-io/kv';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { publicUrl, type Config } from '../engine/config.ts';
import { lockDataDir } from '../engine/datadir.ts';
import { registeredConnectors, type Connector, type ConnectorContext, type ConnectorHealth, type Offered } from '../engine/connector.ts';
import { hubIdentity } from '../engine/identity.ts';
import type { Outbound } from '../engine/outbound.ts';
import type { ProviderConnector } from '../engine/query.ts';
import './connectors.ts';
import { EvidenceLog } from '../engine/evidence.ts';
import { UnauthenticatedRefusals } from '../engine/unauthenticated.ts';
import { exportBundle } from '../engine/evidence-bundle.ts';
import { Keyring } from '../engine/keyring.ts';
import { Catalogue } from '../engine/catalogue.ts';
import { table1 } from './table1.ts';
import { defaultCrlUrl, mountCrlDistribution, mountHubCertificates } from './crl-distribution.ts';
import { BodyBudget } from '../engine/budget.ts';
import { close as closeServer, createAgencyServer, listen, Router } from '../engine/http.ts';
import { log } from '../engine/log.ts';
import { actorBacklog } from '../engine/metrics.ts';
import { connectBus, provisionStreams, streams, type Bus } from '../engine/nats/jetstream.ts';
import { startPresence } from '../engine/nats/presence.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../engine/nats/server.ts';
import { trustBucket } from '../engine/nats/trust-share.ts';
import { Payloads } from '../engine/payloads.ts';
import { startExpiry } from '../engine/retention.ts';
import { ensureHubEncryption, initPki, loadPki, TrustStore } from '../engine/pki/index.ts';
import { Registry } from '../engine/registry.ts';
import { openStore, type Store } from '../engine/store/index.ts';
import { unarchivedMessages } from '../engine/status.ts';
import { createSignaturePool, inProcessSigners, verifyCms, verifyXml as verifyXmlInline } from '../engine/trust/index.ts';
import { ReplayWindow } from '../engine/replay.ts';
import { RateLimiter } from '../engine/ratelimit.ts';
import { QueryPipeline } from '../pipelines/query.ts';
import { startArchive } from '../pipelines/archive.ts';
import { EvidenceMessages } from '../pipelines/status.ts';
import { Deliveries } from '../pipelines/deliver.ts';
import { PartnerInbox } from '../pipelines/inbox.ts';
import { Receipts } from '../pipelines/receipts.ts';
import { resendChannel, startRoute } from '../pipelines/route.ts';
import { IntakeStage } from '../pipelines/intake.ts';
import { builtInTsa, externalTsa, Stamper } from '../pipelines/stamp.ts';
import { mountAdminApi, opsToken } from '../engine/admin.ts';
import { listDeadLetters, resendDeadLetter } from '../engine/deadletters.ts';
import { AuditLog } from '../dashboards/audit.ts';
import { AuditFile, auditLogSink } from '../dashboards/audit-sink.ts';
import { buildConsole, listenConsole } from '../dashboards/console.ts';
import type { ConsoleDeps } from '../dashboards/console-context.ts';
import { Lockout, Sessions } from '../dashboards/sessions.ts';
import { AlertEvaluator, judgeAlerts } from '../dashboards/alerts.ts';
import { openPanels } from '../dashboards/panels.ts';
import { RuntimeSettings } from '../dashboards/runtime-settings.ts';
import { Users } from '../dashboards/users.ts';
import { hubWatch } from './hub-watch.ts';

export interface Hub {
  config: Config;
  bus: Bus;
  registry: Registry;
  catalogue: Catalogue;
  store?: Store;
  agencyPort: number;
  opsPort: number;
  /** The console's HTTPS port (the console API for operators on the network). */
  consolePort: number;
  natsUrl: string;
  /** What the connectors with ports of their own listen on (SFTP: its port and host key fingerprint). */
  listening: string[];
  stop(): Promise<void>;
}

/** `abort`: a stop asked for while the hub starts (a signal) ends the start, and what it started is stopped. */
export async function startHub(config: Config, options: { abort?: AbortSignal } = {}): Promise<Hub> {
  const started: (() => Promise<void> | void)[] = [];
  // The NATS connection waits for a server that may never come; an abort does not wait with it.
  const aborted = new Promise<never>((_resolve, reject) => {
    const stop = () => reject(new Error('stopped while starting'));
    if (options.abort?.aborted) stop();
    else options.abort?.addEventListener('abort', stop, { once: true });
  });
  aborted.catch(() => undefined);
  const stopAll = async () => {
    for (const stop of started.reverse()) {
      try { await stop(); } catch (error) { log.error({ err: error }, 'error while stopping'); }
    }
  };
  try {
    started.push(lockDataDir(config.dataDir));
    const pkiDir = join(config.dataDir, 'pki');
    if (!existsSync(join(pkiDir, 'ca'))) await initPki(pkiDir, { agencies: [], alg: config.pkiAlg, crlUrl: config.crlUrl ?? defaultCrlUrl(config.http.opsPort) });
    await ensureHubEncryption(pkiDir);
    const pki = await loadPki(pkiDir);

    let embedded: EmbeddedNats | undefined;
    if (!config.nats.url) {
      embedded = await startEmbeddedNats(config.dataDir, config.nats.port);
      started.push(() => embedded!.stop());
    }
    const natsUrl = config.nats.url ?? embedded!.url;
    const connecting = connectBus(natsUrl, `swx-hub-${config.node}`);
    // Closed if it connects after the start was abandoned.
    connecting.catch(() => undefined);
    const bus = await Promise.race([connecting, aborted]).catch(async (error: unknown) => {
      void connecting.then((late) => late.nc.close(), () => undefined);
      throw error;
    });
    started.push(async () => { await bus.nc.drain(); });
    // A signed request stays acceptable up to freshness + skew after its creation time, which itself may be up to the
    // skew (REST: the freshness) ahead of this clock: replays are looked for over all of that.
    const replayWindowSeconds = 2 * (config.query.freshnessSeconds + config.clockSkewSeconds);
    await provisionStreams(bus.jsm, config.dedupeHorizonSeconds, replayWindowSeconds);

    const registry = await Registry.open(bus);
    started.push(() => registry.close());
    // Settings changed at run time (the console's admins): every process applies them as they change.
    const runtime = await RuntimeSettings.open(bus, config, log.level);
    started.push(() => runtime.close());
    const trust = await TrustStore.open(pkiDir, config.revocation, { share: await trustBucket(bus) });
    trust.start();
    started.push(() => trust.close());
    const keyring = config.evidence.keyring ? Keyring.load(config.evidence.keyring) : undefined;
    // The query services' catalogue; a fresh deployment starts from Table 1 (app/table1.ts), operators edit it after.
    const catalogue = await Catalogue.open(bus);
    started.push(() => catalogue.close());
    await catalogue.seed(table1);
    const payloads = await Payloads.open(bus, config.limits.inlinePayloadBytes, keyring, config.evidence.retentionDays);
    const evidence = new EvidenceLog(bus, config.node);
    // Stopped after the agency server (pushed before it, run after): the last counts are written before the bus drains.
    const refusals = new UnauthenticatedRefusals(evidence);
    refusals.start();
    started.push(() => refusals.stop());

    const tsaTrustedPem = config.evidence.tsaTrustedPem ? readFileSync(config.evidence.tsaTrustedPem, 'utf8') : undefined;
    let store: Store | undefined;
    let stamper: Stamper | undefined;
    if (config.archive) {
      store = await openStore({
        dataDir: join(config.dataDir, 'chdb'),
        url: config.clickhouse.url,
        database: config.clickhouse.database,
        username: config.clickhouse.username,
        password: config.clickhouse.password,
      });
      started.push(() => store!.close());
      const tsa = config.evidence.tsaUrl
        ? externalTsa(config.evidence.tsaUrl, tsaTrustedPem, 10_000)
        : builtInTsa(pki.tsa);
      stamper = new Stamper(store, tsa, { intervalMs: config.evidence.stampIntervalMs, graceSeconds: config.evidence.tsaGraceSeconds, maxUnstampedRecords: config.evidence.maxUnstampedRecords });
      await stamper.recover(config.node);
      stamper.start();
      // Stopped after the archive actors (pushed first, run last): their final blocks get stamped.
      started.push(() => stamper!.stop());
      const archive = await startArchive(bus, store, { batchSize: config.evidence.batchSize, batchMs: config.evidence.batchMs, node: config.node, keyring }, stamper);
      started.push(() => Promise.all(archive.map((actor) => actor.stop())).then(() => undefined));
      started.push(startExpiry(store, () => Number(runtime.value('retentionDays'))));
    }

    const identity = hubIdentity(pki);
    // Filled as the connectors start; the stages look a protocol up when they need it.
    const outbounds = new Map<string, Outbound>();
    const providers = new Map<string, ProviderConnector>();
    /** Each started connector's health, asked when /readyz or /metrics is read. */
    const health = new Map<string, () => ConnectorHealth>();
    /** Each started connector's connection test, by protocol. */
    const probes = new Map<string, NonNullable<Offered['probe']>>();

    const bundleSigner = {
      caPem: pki.ca.certPem,
      tsaAnchorPem: config.evidence.tsaUrl ? tsaTrustedPem ?? '' : pki.ca.certPem,
      tsaChainPem: config.evidence.tsaUrl ? '' : pki.tsa.chainPem,
      hubSign: pki.hubSign,
    };
    const bundle = store
      ? (messageId: string) => exportBundle(messageId, { store: store!, signer: bundleSigner, keyring, payload: (rawRef, sha256) => payloads.bytes({ id: messageId, payloadRef: rawRef, sha256 }) })
      : undefined;
    const intake = new IntakeStage(bus, registry, payloads, evidence, refusals, () => stamper?.refusal());
    // XML and CMS signatures are checked, and XML signed, on worker threads, off the event loop that takes traffic.
    const pool = config.signatureThreads > 0 ? createSignaturePool({ threads: config.signatureThreads }) : undefined;
    if (pool) started.push(() => pool.close());
    const signatures = pool ?? { verifyCms, verifyXml: verifyXmlInline, ...inProcessSigners };
    const router = new Router();
    const budget = new BodyBudget(config.limits.inflightBodyBytes, config.limits.inflightBodyBytesPerPartner);
    const replay = new ReplayWindow(replayWindowSeconds);
    started.push(() => replay.close());
    // Per-asker limits are the whole hub's: each process on this NATS enforces its share.
    const limiter = new RateLimiter(config.query.rateLimits);
    const presence = await startPresence(bus, { node: config.node, dataDir: config.dataDir }, (processes) => limiter.shareAmong(processes));
    limiter.shareAmong(presence.count);
    started.push(() => presence.stop());
    const queries = new QueryPipeline({
      catalogue, registry, evidence, refusals,
      limiter,
      providers: (protocol) => providers.get(protocol),
      deadlineMs: config.query.deadlineMs,
      replay,
      admission: () => stamper?.refusal(),
    });
    const receipts = await Receipts.open(bus, evidence, config.dedupeHorizonSeconds);
    const inbox = new PartnerInbox(bus, registry, receipts);
    // Known once the agency port is bound (it may be chosen by the system).
    let agencyUrl = '';
    const context: ConnectorContext = {
      config, identity, registry, trust, signatures, intake, payloads, evidence, inbox, queries, catalogue, replay, router, budget,
      messages: store ? new EvidenceMessages(store, bus, { keyring }) : unarchivedMessages,
      publicUrl: () => agencyUrl,
      bucket: (name, maxAgeSeconds) => new Kvm(bus.js).create(name, { history: 1, ttl: maxAgeSeconds * 1000 }),
    };
    const listening: string[] = [];
    for (const connector of registeredConnectors()) {
      const settings = connectorSettingsOf(connector, config.connectors[connector.protocol]);
      if (!settings.enabled) continue;
      const offered = await connector.start(context, settings);
      if (offered.stop) started.push(offered.stop);
      if (offered.listening) listening.push(offered.listening);
      if (offered.outbound) outbounds.set(connector.protocol, offered.outbound);
      if (offered.provider) providers.set(connector.protocol, offered.provider);
      health.set(connector.protocol, offered.health ? () => offered.health!() : () => ({ ok: true }));
      if (offered.probe) probes.set(connector.protocol, offered.probe.bind(offered));
    }
    // Started after the connectors and so stopped before them: in-flight deliveries finish on open connections.
    const deliveries = await Deliveries.open(bus, registry, payloads, evidence, receipts, (protocol) => outbounds.get(protocol), config.delivery, config.dedupeHorizonSeconds);
    await deliveries.start();
    started.push(() => deliveries.stop());
    const route = await startRoute(bus, { concurrency: config.delivery.concurrency, backoffMs: config.delivery.backoffMs });
    started.push(() => route.stop());
    const agencyServer: Server = createAgencyServer(identity.tls, router);
    const agencyPort = await listen(agencyServer, config.http.port, config.http.host);
    agencyUrl = publicUrl(config, agencyPort);
    // Stopped first of all: no new work while the actors drain; listings waiting for deliveries are answered at once.
    const stopAgency = () => { inbox.stop(); return closeServer(agencyServer); };

    let ready = true;
    // The console API: the operator routes and the console's own, behind users, roles and audit, on loopback (where
    // the operator token also works, for local scripts) and on its HTTPS port for operators on the network.
    const users = await Users.open(bus);
    started.push(() => users.close());
    const panels = await openPanels(bus);
    started.push(() => panels.close());
    const watch = hubWatch({
      bus, registry, deliveries, dataDir: config.dataDir,
      hubCertificates: [
        { subject: 'hub CA', kind: 'hub', pem: pki.ca.certPem },
        { subject: 'hub signing', kind: 'hub', pem: pki.hubSign.certPem },
        { subject: 'hub TLS', kind: 'hub', pem: pki.hubTls.certPem },
        { subject: config.evidence.tsaUrl ? `TSA ${config.evidence.tsaUrl}` : 'built-in TSA', kind: 'tsa', pem: config.evidence.tsaUrl ? tsaTrustedPem ?? '' : pki.tsa.certPem },
      ],
      crls: () => trust.crlStatus(),
      stampingBacklog: () => stamper?.health().unstampedRecords ?? 0,
    });
    // Judged on a timer (and published on swx.alerts.<kind>) by the process that archives; any process judges on demand.
    const alerts = new AlertEvaluator(
      (now) => judgeAlerts(watch, store, config.alerts, now),
      (subject, change) => bus.nc.publish(subject, JSON.stringify(change)),
      config.alerts.intervalSeconds * 1_000,
    );
    if (store) {
      alerts.start();
      started.push(() => alerts.stop());
    }
    const consoleDeps: ConsoleDeps = {
      users,
      sessions: await Sessions.open(bus, config.console.sessionMinutes),
      lockout: new Lockout(config.console.lockoutFailures, config.console.lockoutSeconds),
      // The ClickHouse audit log where this process holds the store; a file of its own where it does not.
      audit: store ? auditLogSink(await AuditLog.open(store, config.node)) : new AuditFile(auditPath(config.dataDir, config.node), config.node),
      store,
      trust,
      opsToken: opsToken(config.dataDir, config.http.opsToken), opsHost: config.http.opsHost, opsNames: config.http.opsNames,
      csrfKey: await users.sharedSecret(),
      registry, catalogue, panels, runtime,
      deadLetters: {
        list: (limit) => listDeadLetters(bus, limit),
        resend: (seq, options) => resendDeadLetter(bus, seq, evidence, options),
      },
      settings: () => publicSettings(config),
      watch,
      alerts: { evaluator: alerts, thresholds: config.alerts },
      operatorRoutes: (table) => {
        mountCrlDistribution(table, () => trust.ownCrl());
        mountHubCertificates(table, identity);
        mountAdminApi(table, {
          bus, registry, store, evidence, bundle, keyring, catalogue,
          isReady: () => ready && !stamper?.refusal(),
          connectors: () => Object.fromEntries([...health].map(([protocol, of]) => [protocol, of()])),
          probe: (protocol, partner, endpoint) => probes.get(protocol)?.(partner, endpoint)
            ?? Promise.resolve({ ok: true, detail: `not applicable: the ${protocol} connector ${health.has(protocol) ? 'has no connection test' : 'is not started in this process'}`, ms: 0 }),
          stamping: () => stamper?.health(),
          resendChannel: (channel, requester, since) => resendChannel(bus, evidence, channel, requester, since),
        });
      },
    };
    const opsConsole = await buildConsole(consoleDeps, { kind: 'loopback' });
    const opsPort = await listenConsole(opsConsole, config.http.opsPort, config.http.opsHost);
    started.push(() => opsConsole.close());
    const networkConsole = await buildConsole(consoleDeps, { kind: 'network', tls: { ...identity.tls, requestCert: config.console.clientCertificates } });
    const consolePort = await listenConsole(networkConsole, config.console.port, config.console.host);
    started.push(() => networkConsole.close());

    started.push(runtime.follow((name, value) => {
      if (name === 'logLevel') log.level = String(value);
      if (name === 'tsaGraceSeconds') stamper?.tune({ graceSeconds: Number(value) });
      if (name === 'maxUnstampedRecords') stamper?.tune({ maxUnstampedRecords: Number(value) });
    }));
    const backlogTimer = setInterval(() => void sampleBacklog(bus), 5_000);
    backlogTimer.unref();
    started.push(() => clearInterval(backlogTimer));
    started.push(stopAgency);

    log.info({ agencyPort, opsPort, consolePort, nats: natsUrl, archive: config.archive, dataDir: config.dataDir }, 'hub ready');
    return {
      config, bus, registry, catalogue, store, agencyPort, opsPort, consolePort, natsUrl, listening,
      async stop() {
        ready = false;
        log.info('hub stopping: draining in-flight work');
        await stopAll();
        log.info('hub stopped');
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Where this hub process appends the console's audit entries (dashboards/audit-sink.ts). */
export function auditPath(dataDir: string, node: string): string {
  return join(dataDir, 'console', `audit-${node.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`);
}

/** The settings a hub runs with, as GET /api/settings shows them: without the operator token and database password. */
function publicSettings(config: Config): unknown {
  const { opsToken: _token, ...http } = config.http;
  const { password: _password, ...clickhouse } = config.clickhouse;
  return { ...config, http, clickhouse };
}

/** A connector's part of `connectors` in the configuration, checked by its own schema; a bad one stops the start naming it. */
function connectorSettingsOf<Settings>(connector: Connector<Settings>, given: unknown): Settings & { enabled: boolean } {
  const parsed = connector.settings.safeParse(given ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`invalid setting connectors.${connector.protocol}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
}

async function sampleBacklog(bus: Bus): Promise<void> {
  try {
    for (const stream of [streams.messages, streams.evidence]) {
      for await (const info of bus.jsm.consumers.list(stream)) {
        actorBacklog.set({ actor: info.name }, info.num_pending + info.num_ack_pending);
      }
    }
  } catch (error) {
    log.debug({ err: error }, 'backlog sample failed');
  }
}
