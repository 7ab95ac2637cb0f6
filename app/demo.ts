// The demo, the reference deployment of the platform's description: every agency, each with its credentials under
// <data>/demo/<ID>/, every topic of Table 2 and channel of Table 3, and a round of signed traffic through the hub
// (app/demo-traffic.ts): messages, notifications, channel items, and one query per Table 1 dataset. Three
// processes, as in a real deployment: the hub (`swx start`), the agencies' receivers and providers
// (`swx demo-agencies`), and this one, which sets them up as an operator would and sends as the agencies' systems do.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { readOpsToken } from '../engine/admin.ts';
import type { Config } from '../engine/config.ts';
import { audienceService } from '../engine/registry.ts';
import { issueAgency, loadPki } from '../engine/pki/index.ts';
import { AgencyClient } from '../connectors/rest/agency.ts';
import { agencies, type Agency } from './agencies.ts';
import { sampleQuery } from './demo-data.ts';
import { demoTraffic, type DemoMessage } from './demo-traffic.ts';
import { operatorApi, type Operator } from './operator.ts';
import { agencyEndpoints, swxBin } from './hub-process.ts';
import { table2 } from './table2.ts';
import { table3 } from './table3.ts';

/** The agencies the demo issues credentials for and registers: every agency of the description, each named in a table. */
export const demoAgencies = agencies;

/** How each Table 1 provider answers queries in the demo: a mix, so REST askers meet SOAP providers and back. */
export const demoProviders: Record<string, 'rest' | 'soap'> = {
  CUSTOMS: 'rest', DOC: 'soap', IDB: 'rest', BAPHIQ: 'soap', TFDA: 'rest', NIA: 'soap', BOT: 'rest',
};

export const demoServices = [
  { id: 'customs.declaration', name: 'Declarations (報單) exchange', rules: [{ from: ['CUSTOMS'], to: ['BOFT', 'BSMI', 'TFDA'] }] },
];

/** The hub as the demo reaches it: its ports and its operator API. */
export interface DemoHub { dataDir: string; agencyPort: number; opsPort: number; operator: Operator }

export interface DemoAgency { id: string; dir: string; client: AgencyClient }

export interface Demo {
  hub: DemoHub;
  agencies: Map<string, DemoAgency>;
  /** Resolves when the hub or the agencies' process exits before stop() was called, with what exited. */
  exited: Promise<string>;
  /** Where operators sign in to the console, and the demo's admin user, made at each start with a fresh password. */
  console: { url: string; user: string; password: string };
  stop(): Promise<void>;
}

export const demoDir = (dataDir: string, id: string) => join(dataDir, 'demo', id);

/** Where each demo agency listens: its receiver's port, and its query provider's port and protocol. */
export type DemoEndpoints = Record<string, { receiver?: number; provider?: { port: number; protocol: 'rest' | 'soap' } }>;

/**
 * Agencies that receive messages in the demo: each gets a receiver (an HTTPS endpoint the hub pushes to) in the agencies'
 * process, or, if it receives by pull, a collector of its inbox there.
 */
export const messagingAgencies = new Set([
  ...demoServices.flatMap((service) => service.rules.flatMap((rule) => [...rule.from, ...rule.to])),
  ...table2.flatMap((topic) => [...topic.notifiers, ...topic.receivers]),
  ...table3.flatMap((channel) => [...channel.providers, ...channel.requesters]),
]);

/**
 * Agencies that receive by pull in the demo (`"receive": "pull"`, no endpoint): their collectors list, store and
 * acknowledge their deliveries as `swx receive` does. Agencies whose older in-house systems sit behind a firewall that
 * takes no inbound connection: the Agriculture and Food Agency (the rice-inspection notifications and the declarations
 * channel) and the Maritime and Port Bureau (three channels, so three lanes collected in order at once). Neither
 * answers queries, which would take an endpoint.
 */
export const pullAgencies = new Set(['AFA', 'MPB']);

/** Where the demo agencies' process writes the ids an agency's receiver or collector stores, one a line, in the order stored. */
export const arrivalLog = (dataDir: string, id: string) => join(demoDir(dataDir, id), 'arrivals.log');

/** `swx <args>` as a child process, as an executable so that it gets the node flags on bin/swx.js's first line. */
function swx(args: string[], stdout: 'inherit' | 'pipe'): ChildProcess {
  // The demo prints its own account of what happened; the hub's JSON logs only for what goes wrong, unless asked.
  const env = { ...process.env, SWX_LOG_LEVEL: process.env.SWX_LOG_LEVEL ?? 'warn' };
  return spawn(swxBin, args, { env, stdio: ['ignore', stdout, 'inherit'] });
}

/** Stops a child with SIGTERM (it drains), and SIGKILL if it has not exited within `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const exitOf = (child: ChildProcess, what: string) => new Promise<string>((resolve) => {
  child.once('exit', (code, signal) => resolve(`${what} exited (${signal ?? `code ${code}`})`));
});

/** Rejects if the child exits (for a race with its start-up); handled, so an exit after the race is no error. */
function failOnExit(exit: Promise<string>): Promise<never> {
  const failure = exit.then((what) => { throw new Error(`${what} while starting`); });
  failure.catch(() => undefined);
  return failure;
}

/**
 * Starts the hub and the agencies' process, issues the demo agencies' credentials, and registers the agencies and
 * services through the operator API. Needs fixed ports: the configured ones are where it finds the hub.
 */
export async function startDemo(config: Config): Promise<Demo> {
  if (config.http.port === 0 || config.http.opsPort === 0) throw new Error('the demo needs fixed ports: set SWX_HTTP_PORT and SWX_OPS_PORT to ports other than 0');
  const { dataDir } = config;
  const children: ChildProcess[] = [];
  let stopping = false;
  // The hub first, so that what it is still delivering reaches the receivers.
  const stop = async () => { stopping = true; for (const child of children) await stopChild(child); };
  try {
    const hubProcess = swx(['start', '--data', dataDir], 'inherit');
    children.push(hubProcess);
    const hubExit = exitOf(hubProcess, 'the hub');
    const opsHost = ['0.0.0.0', '::', '[::]'].includes(config.http.opsHost) ? '127.0.0.1' : config.http.opsHost;
    const opsUrl = `http://${opsHost.includes(':') && !opsHost.startsWith('[') ? `[${opsHost}]` : opsHost}:${config.http.opsPort}`;
    await Promise.race([hubReady(opsUrl), failOnExit(hubExit)]);
    const token = config.http.opsToken ?? readOpsToken(dataDir);
    if (!token) throw new Error(`the hub left no operator token in ${dataDir}`);
    const hub: DemoHub = { dataDir, agencyPort: config.http.port, opsPort: config.http.opsPort, operator: operatorApi(opsUrl, token) };

    const pkiDir = join(dataDir, 'pki');
    const pki = await loadPki(pkiDir);
    const certificates = new Map<string, string>();
    for (const { id } of demoAgencies) {
      const credential = await issueAgency(pkiDir, id, { alg: config.pkiAlg });
      const dir = demoDir(dataDir, id);
      mkdirSync(dir, { recursive: true });
      copyFileSync(credential.certPath, join(dir, 'cert.pem'));
      copyFileSync(credential.keyPath, join(dir, 'key.pem'));
      writeFileSync(join(dir, 'ca.pem'), pki.ca.certPem);
      writeFileSync(join(dir, 'hub-sign.pem'), pki.hubSign.certPem);
      certificates.set(id, credential.certPem);
    }

    const register = (agency: Agency, endpoints: DemoEndpoints[string] = {}) => hub.operator('PUT', `/api/partners/${agency.id}`, {
      name: `${agency.name} (${agency.nameZh})`, certificates: [certificates.get(agency.id)],
      endpoints: agencyEndpoints(endpoints.receiver, endpoints.provider), ...(pullAgencies.has(agency.id) ? { receive: 'pull' } : {}),
    });
    // Pull agencies need no endpoint from the agencies' process: registered first, their collectors find them at once.
    for (const agency of demoAgencies) if (pullAgencies.has(agency.id)) await register(agency);
    const hubUrl = `https://localhost:${hub.agencyPort}`;
    const agencyProcess = swx(['demo-agencies', '--data', dataDir, '--hub', hubUrl], 'pipe');
    children.push(agencyProcess);
    const agencyExit = exitOf(agencyProcess, 'the demo agencies\' process');
    const endpoints = await Promise.race([firstLine(agencyProcess), failOnExit(agencyExit)]);
    for (const agency of demoAgencies) if (!pullAgencies.has(agency.id) || endpoints[agency.id]?.provider) await register(agency, endpoints[agency.id]);
    for (const service of demoServices) await hub.operator('PUT', `/api/services/${service.id}`, service);
    for (const topic of table2) await hub.operator('PUT', `/api/topics/${topic.id}`, topic);
    for (const channel of table3) await hub.operator('PUT', `/api/channels/${channel.id}`, channel);
    const consoleAdmin = await demoAdmin(hub.operator);

    const agencies = new Map<string, DemoAgency>();
    for (const { id } of demoAgencies) {
      const dir = demoDir(dataDir, id);
      const credentials = { certPem: certificates.get(id)!, keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'), caPem: pki.ca.certPem };
      agencies.set(id, { id, dir, client: new AgencyClient(hubUrl, credentials, { hubSignCertPem: pki.hubSign.certPem }) });
    }
    const exited = Promise.race([hubExit, agencyExit]).then(async (what) => { if (stopping) await new Promise(() => undefined); return what; });
    return {
      hub, agencies, exited,
      console: { url: `https://localhost:${config.console.port}/api/session`, ...consoleAdmin },
      async stop() {
        for (const agency of agencies.values()) agency.client.close();
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The demo's console admin: added on the first start, given a fresh password on every start (the demo prints it), as
 * the first admin of a deployment is, through the loopback listener with the operator token.
 */
async function demoAdmin(operator: Operator): Promise<{ user: string; password: string }> {
  const user = 'admin';
  const password = randomBytes(18).toString('base64url');
  await operator('PUT', `/api/users/${user}`, { roles: ['admin'], password })
    .catch(() => operator('PUT', `/api/users/${user}/password`, { password }));
  return { user, password };
}

async function hubReady(opsUrl: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await fetch(`${opsUrl}/readyz`).then((response) => response.ok, () => false))) {
    if (Date.now() > deadline) throw new Error(`the hub is not ready at ${opsUrl} after 120 s`);
    await sleep(200);
  }
}

/** The endpoints the agencies' process prints as its first line once it listens. */
function firstLine(child: ChildProcess): Promise<DemoEndpoints> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      lines.close();
      child.stdout!.resume();
      try { resolve((JSON.parse(line) as { endpoints: DemoEndpoints }).endpoints); } catch { reject(new Error(`the demo agencies' process said ${line.slice(0, 200)}`)); }
    });
  });
}

export interface AskedQuery { queryId: string; asker: string; dataset: string; provider: string; protocol: string; status: number; found: boolean; signed: boolean; code?: string }

/**
 * One query per dataset of the hub's catalogue, from its first asker, for a record the provider holds (a different
 * record each round). Answered synchronously: the result says whether it came back found and signed by the hub.
 */
export async function askDemoQueries(demo: Demo, round: number): Promise<AskedQuery[]> {
  const asked: AskedQuery[] = [];
  const catalogue = await demo.hub.operator('GET', '/api/catalogue') as { id: string; askers: string[]; providers: string[] }[];
  for (const dataset of catalogue) {
    const asker = demo.agencies.get(dataset.askers[0]!);
    const provider = dataset.providers[round % dataset.providers.length]!;
    const keys = sampleQuery(dataset.id, round, provider)[round - 1];
    if (!asker || !keys) continue;
    const answer = await asker.client.query(dataset.id, keys, dataset.providers.length > 1 ? { provider } : {});
    asked.push({
      queryId: String(answer.body.queryId ?? ''), asker: asker.id, dataset: dataset.id, provider,
      protocol: demoProviders[provider] ?? '', status: answer.status, found: answer.body.found === true, signed: answer.signed,
      ...(typeof answer.body.code === 'string' ? { code: answer.body.code } : {}),
    });
  }
  return asked;
}

/** A message the demo sent, every agency it must reach, and the message it answers. */
export interface SentMessage { id: string; from: string; to: string[]; service: string; refTo?: string }

/**
 * Who a demo message must reach, by the tables, not by the hub: its receiver; a topic's receivers (from a receiver of a
 * two-way topic, its notifiers); a channel's requesters. Never its sender.
 */
function receiversOf(message: DemoMessage): string[] {
  if (message.to) return [message.to];
  const topic = table2.find((candidate) => audienceService.topic(candidate.id) === message.service);
  const channel = table3.find((candidate) => audienceService.channel(candidate.id) === message.service);
  const receivers = topic ? (topic.notifiers.includes(message.from) ? topic.receivers : topic.notifiers) : channel!.requesters;
  return receivers.filter((id) => id !== message.from);
}

/** Sends a round of traffic one message at a time, so that each channel's items are published in the order listed. */
export async function sendDemoRound(demo: Demo, round: number): Promise<SentMessage[]> {
  const sent: SentMessage[] = [];
  for (const message of demoTraffic(round)) {
    const agency = demo.agencies.get(message.from)!;
    const refTo = message.replyTo === undefined ? undefined : sent[message.replyTo]!.id;
    const answer = await agency.client.send({
      ...(message.to ? { to: message.to } : {}), service: message.service, action: message.action, refTo,
      contentType: 'application/json', body: Buffer.from(JSON.stringify(message.body)),
    });
    const to = receiversOf(message);
    if (answer.status !== 202) throw new Error(`demo message ${message.from} → ${to.join(', ')} refused: ${JSON.stringify(answer.body)}`);
    if (!answer.signed) throw new Error(`demo message ${message.from} → ${to.join(', ')}: the hub's receipt was not checked`);
    sent.push({ id: String(answer.body.id), from: message.from, to, service: message.service, ...(refTo ? { refTo } : {}) });
  }
  return sent;
}
