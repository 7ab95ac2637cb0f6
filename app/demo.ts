// The demo, the reference deployment of the platform's description: every agency, each with its credentials under
// <data>/demo/<ID>/, every topic of Table 2 and channel of Table 3, and a round of signed traffic through the hub
// (app/demo-traffic.ts): messages, notifications, channel items, and one query per Table 1 dataset. Three
// processes, as in a real deployment: the hub (`swx start`), the agencies' receivers and providers
// (`swx demo-agencies`), and this one, which sets them up as an operator would and sends as the agencies' systems do.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { readOpsToken } from '../engine/admin.ts';
import type { Config } from '../engine/config.ts';
import { audienceService } from '../engine/registry.ts';
import { issueAgency, loadPki } from '../engine/pki/index.ts';
import { newEd25519KeyPair } from '../engine/ssh-key.ts';
import { AgencyClient, type AgencyCredentials } from '../connectors/rest/agency.ts';
import { defaultSftpPort, loadHostKey } from '../connectors/sftp/index.ts';
import { hubClientKey } from '../connectors/sftp/client/index.ts';
import { agencies, type Agency } from './agencies.ts';
import { sampleQuery } from './demo-data.ts';
import { dropSigned, sendAs4, sftpSession, uploadSigned, type SftpLogin } from './demo-gateways.ts';
import {
  as4Agencies, as4Pmode, ebms2Agency, ebms2Agreement, hubEbms2Party, mqAgencies, mqEndpoint, pullAgencies, sendProtocol, sftpAgencies, sftpPushAgencies,
  sshdInstalled, type SendProtocol,
} from './demo-protocols.ts';
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

export { pullAgencies } from './demo-protocols.ts';

/** The hub as the demo reaches it: its ports and its operator API. */
export interface DemoHub { dataDir: string; agencyPort: number; opsPort: number; operator: Operator }

export interface DemoAgency {
  id: string;
  dir: string;
  client: AgencyClient;
  credentials: AgencyCredentials;
  /** How it logs in to the hub's SFTP server, for an agency that exchanges files. */
  sftp?: SftpLogin;
  /** The outbox folder of its own SFTP server, which the hub polls, for an agency that drops files there. */
  outbox?: string;
}

export interface Demo {
  hub: DemoHub;
  agencies: Map<string, DemoAgency>;
  /** Resolves when the hub or the agencies' process exits before stop() was called, with what exited. */
  exited: Promise<string>;
  /** Where operators sign in to the console, and the demo's admin user, made at each start with a fresh password. */
  console: { url: string; user: string; password: string };
  /** The hub's agency URL and its signing certificate, as the agencies' gateways reach and check it. */
  hubUrl: string;
  hubSignCertPem: string;
  /** The hub's SFTP port and its host key's fingerprint, as agencies pin it. */
  sftp: { port: number; fingerprint: string; knownHosts: string };
  stop(): Promise<void>;
}

export const demoDir = (dataDir: string, id: string) => join(dataDir, 'demo', id);

/**
 * Where each demo agency listens: its REST receiver's, AS4 or ebMS 2.0 gateway's port, its own SFTP server (the user the
 * hub logs in as, the host key to pin, the folder to push into), and its query provider's port and protocol.
 */
export type DemoEndpoints = Record<string, {
  receiver?: number; as4?: number; ebms2?: number; sftp?: { port: number; user: string; fingerprint: string; inboxDir: string; outboxDir?: string };
  provider?: { port: number; protocol: 'rest' | 'soap' };
}>;

/**
 * Agencies that receive messages in the demo: each gets a receiver (an HTTPS endpoint the hub pushes to) in the agencies'
 * process, or, if it receives by pull, a collector of its inbox there.
 */
export const messagingAgencies = new Set([
  ...demoServices.flatMap((service) => service.rules.flatMap((rule) => [...rule.from, ...rule.to])),
  ...table2.flatMap((topic) => [...topic.notifiers, ...topic.receivers]),
  ...table3.flatMap((channel) => [...channel.providers, ...channel.requesters]),
]);

/** Where an agency that receives by SFTP push runs its own SFTP server (OpenSSH's sshd): its settings, keys and files. */
export const sshdDir = (dataDir: string, id: string) => join(demoDir(dataDir, id), 'sshd');
/** The folder of that server the hub pushes the agency's deliveries into (sshd serves `<sshdDir>/files` by absolute path). */
export const pushInbox = (dataDir: string, id: string) => join(sshdDir(dataDir, id), 'files', 'inbox');
/** The message id of a file the hub pushed: its name less the extension its content type gave it. */
export const pushedId = (name: string) => name.replace(/\.[^.]+$/, '');

/** Where the demo agencies' process writes the ids an agency's receiver or collector stores, one a line, in the order stored. */
export const arrivalLog = (dataDir: string, id: string) => join(demoDir(dataDir, id), 'arrivals.log');

/**
 * The demo's key algorithm, unless SWX_PKI_ALG says: RSA, which the AS4 (eDelivery AS4 1.x) and ebMS 2.0 agencies'
 * gateways sign and check with; it is the hub's too when the demo makes its data folder.
 */
const demoPkiAlg = (config: Config) => (process.env.SWX_PKI_ALG ? config.pkiAlg : 'rsa');

/** `swx <args>` as a child process, as an executable so that it gets the node flags on bin/swx.js's first line. */
function swx(args: string[], stdout: 'inherit' | 'pipe'): ChildProcess {
  // The demo prints its own account of what happened; the hub's JSON logs only for what goes wrong, unless asked.
  const env = { ...process.env, SWX_LOG_LEVEL: process.env.SWX_LOG_LEVEL ?? 'warn', SWX_PKI_ALG: process.env.SWX_PKI_ALG ?? 'rsa' };
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
  const sftpPort = Number(config.connectors.sftp?.port ?? defaultSftpPort);
  if (sftpPort === 0) throw new Error('the demo needs a fixed SFTP port: set SWX_SFTP_PORT to a port other than 0');
  hubPartyIdsForEbms2(config);
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
      const credential = await issueAgency(pkiDir, id, { alg: demoPkiAlg(config) });
      const dir = demoDir(dataDir, id);
      mkdirSync(dir, { recursive: true });
      copyFileSync(credential.certPath, join(dir, 'cert.pem'));
      copyFileSync(credential.keyPath, join(dir, 'key.pem'));
      writeFileSync(join(dir, 'ca.pem'), pki.ca.certPem);
      writeFileSync(join(dir, 'hub-sign.pem'), pki.hubSign.certPem);
      certificates.set(id, credential.certPem);
      if (sftpAgencies.has(id)) sshKeyOf(dir, id);
    }
    // What an agency pins the hub's SFTP host key with: a known_hosts line, as OpenSSH's sftp reads it.
    const hostKey = loadHostKey(dataDir);
    const knownHosts = join(dataDir, 'demo', 'known_hosts');
    writeFileSync(knownHosts, `[localhost]:${sftpPort} ${hostKey.publicKey}\n[127.0.0.1]:${sftpPort} ${hostKey.publicKey}\n`);
    // The hub's SSH client key as an operator hands it to the agencies running their own SFTP server, to authorize: made
    // here if the hub has not used it yet (the hub makes it at first use, and reads the same file).
    if (sshdInstalled()) {
      const hubKey = hubClientKey(dataDir, 'hub').publicKey;
      for (const id of sftpPushAgencies) writeFileSync(join(demoDir(dataDir, id), 'hub.pub'), `${hubKey}\n`);
    }

    const register = async (agency: Agency, endpoints: DemoEndpoints[string] = {}) => {
      await hub.operator('PUT', `/api/partners/${agency.id}`, {
        name: `${agency.name} (${agency.nameZh})`, certificates: [certificates.get(agency.id)], endpoints: {
          ...agencyEndpoints(endpoints.receiver, endpoints.provider),
          ...(as4Agencies.has(agency.id) ? { as4: as4Pmode(agency.id, endpoints.as4) } : {}),
          ...(agency.id === ebms2Agency && endpoints.ebms2 ? { ebms2: ebms2Agreement(agency.id, endpoints.ebms2) } : {}),
          ...(mqAgencies.has(agency.id) ? { mq: mqEndpoint(agency.id) } : {}),
          ...(endpoints.sftp ? { sftp: { remote: {
            host: '127.0.0.1', port: endpoints.sftp.port, user: endpoints.sftp.user, hostKeyFingerprint: endpoints.sftp.fingerprint, inboxDir: endpoints.sftp.inboxDir,
            // Polled every second, a file taken once its signature is there: the demo drops the file first.
            ...(endpoints.sftp.outboxDir ? { outboxDir: endpoints.sftp.outboxDir, complete: 'signature', pollIntervalMs: 1000 } : {}),
          } } } : {}),
        },
        ...(pullAgencies.has(agency.id) ? { receive: 'pull' } : {}),
      });
      if (sftpAgencies.has(agency.id)) {
        const key = readFileSync(join(demoDir(dataDir, agency.id), 'id_ed25519.pub'), 'utf8');
        await hub.operator('POST', `/api/partners/${agency.id}/ssh-keys`, { key }).catch((error: Error) => {
          if (!/already registered/.test(error.message)) throw error;
        });
      }
    };
    // Pull agencies need no endpoint from the agencies' process: registered first, their collectors find them at once.
    for (const agency of demoAgencies) if (pullAgencies.has(agency.id)) await register(agency);
    const hubUrl = `https://localhost:${hub.agencyPort}`;
    const agencyProcess = swx(['demo-agencies', '--data', dataDir, '--hub', hubUrl, '--sftp-port', String(sftpPort)], 'pipe');
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
      const sftp = sftpAgencies.has(id) ? { host: 'localhost', port: sftpPort, user: id, privateKey: readFileSync(join(dir, 'id_ed25519')), hostKey: hostKey.publicKey } : undefined;
      const outbox = endpoints[id]?.sftp?.outboxDir;
      agencies.set(id, { id, dir, credentials, client: new AgencyClient(hubUrl, credentials, { hubSignCertPem: pki.hubSign.certPem }), ...(sftp ? { sftp } : {}), ...(outbox ? { outbox } : {}) });
    }
    const exited = Promise.race([hubExit, agencyExit]).then(async (what) => { if (stopping) await new Promise(() => undefined); return what; });
    return {
      hub, agencies, exited,
      console: { url: `https://localhost:${config.console.port}/api/session`, ...consoleAdmin },
      hubUrl, hubSignCertPem: pki.hubSign.certPem, sftp: { port: sftpPort, fingerprint: hostKey.fingerprint, knownHosts },
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
 * The agency's SSH key for the hub's SFTP server, `<dir>/id_ed25519` (mode 0600, OpenSSH's format, as `sftp -i` takes
 * it) and its public half beside it: made once, kept across starts like the registry that holds the public key.
 */
function sshKeyOf(dir: string, id: string): void {
  const file = join(dir, 'id_ed25519');
  if (existsSync(file)) return;
  const made = newEd25519KeyPair(`${id}@demo`);
  writeFileSync(file, made.private, { mode: 0o600 });
  writeFileSync(`${file}.pub`, `${made.public}\n`);
}

/**
 * The hub's own PartyIds in its ebMS 2.0 agreements (connectors.ebms2.partyIds), which it needs to send to BOCA's MSH:
 * written into the data folder's swx.json for the hub the demo starts, unless the settings already name them.
 */
function hubPartyIdsForEbms2(config: Config): void {
  if (((config.connectors.ebms2?.partyIds ?? []) as unknown[]).length > 0) return;
  if (process.env.SWX_CONFIG) throw new Error(`the demo's ebMS 2.0 agency needs connectors.ebms2.partyIds in ${process.env.SWX_CONFIG}, e.g. [${JSON.stringify(hubEbms2Party)}]`);
  const file = join(config.dataDir, 'swx.json');
  const settings = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as { connectors?: Record<string, Record<string, unknown>> } : {};
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ ...settings, connectors: { ...settings.connectors, ebms2: { ...settings.connectors?.ebms2, partyIds: [hubEbms2Party] } } }, null, 2)}\n`);
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

/**
 * A message the demo sent: by which protocol, every agency it must reach, the receivers it cannot reach here (MQ, no
 * queue manager), and the message it answers.
 */
export interface SentMessage { id: string; from: string; to: string[]; service: string; refTo?: string; protocol?: SendProtocol; skipped?: string[]; sha256: string }

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

/**
 * Sends a round of traffic one message at a time, so that each channel's items are published in the order listed; each
 * as its sender's system does: over REST, from its AS4 gateway, or as a signed file uploaded to the hub's SFTP server.
 */
export async function sendDemoRound(demo: Demo, round: number): Promise<SentMessage[]> {
  const sent: SentMessage[] = [];
  for (const message of demoTraffic(round)) {
    const refTo = message.replyTo === undefined ? undefined : sent[message.replyTo]!.id;
    const receivers = receiversOf(message);
    const protocol = sendProtocol(message.from, message.service);
    const body = Buffer.from(JSON.stringify(message.body));
    const id = await sendAs(demo, protocol, message, body, refTo, `${receivers.join(', ')}`);
    const to = receivers.filter((receiver) => !mqAgencies.has(receiver));
    const skipped = receivers.filter((receiver) => mqAgencies.has(receiver));
    sent.push({ id, from: message.from, to, service: message.service, protocol, ...(refTo ? { refTo } : {}), ...(skipped.length ? { skipped } : {}), sha256: createHash('sha256').update(body).digest('hex') });
  }
  return sent;
}

/** Sends one message by `protocol`; the hub's signed answer checked. Resolves with the message's id at the hub. */
async function sendAs(demo: Demo, protocol: SendProtocol, message: DemoMessage, body: Buffer, refTo: string | undefined, to: string): Promise<string> {
  const agency = demo.agencies.get(message.from)!;
  if (protocol === 'as4') {
    return sendAs4(demo.hubUrl, agency.id, agency.credentials, demo.hubSignCertPem, {
      service: message.service, action: message.action, body, contentType: 'application/json', ...(message.to ? { to: message.to } : {}), ...(refTo ? { refTo } : {}),
    });
  }
  if (protocol === 'sftp' || protocol === 'sftp-outbox') {
    // The folder of the agency's outbox for the message: a channel's or topic's, or the service's for one receiver.
    const [kind, name] = message.service.split(/\.(.*)/s) as [string, string];
    const folder = kind === 'exchange' || kind === 'notify' ? name : `${message.service}/${message.to}`;
    const file = `${name ?? message.service}-${String(message.body.sequence ?? randomBytes(4).toString('hex'))}.json`;
    if (protocol === 'sftp-outbox') return dropSigned(agency.id, agency.outbox!, folder, file, body, agency.credentials);
    return sftpSession(agency.sftp!, (sftp) => uploadSigned(sftp, agency.credentials, `/outbox/${folder}`, file, body));
  }
  const answer = await agency.client.send({ ...(message.to ? { to: message.to } : {}), service: message.service, action: message.action, refTo, contentType: 'application/json', body });
  if (answer.status !== 202) throw new Error(`demo message ${message.from} → ${to} refused: ${JSON.stringify(answer.body)}`);
  if (!answer.signed) throw new Error(`demo message ${message.from} → ${to}: the hub's receipt was not checked`);
  return String(answer.body.id);
}
