// A hub as a child process, as operators run it (chDB binds one data folder per process), in its own folder with its
// own ports, and agencies set up through its operator API as an operator would: what the suite and the benches drive.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { readOpsToken } from '../engine/admin.ts';
import { stopLeftNats } from '../engine/nats/server.ts';
import { issueAgency, loadPki, type Credential } from '../engine/pki/index.ts';
import { AgencyClient, startAgencyReceiver, startRestProvider, type AgencyReceiver, type InboxEntry } from '../connectors/rest/agency.ts';
import { startSoapProvider } from '../connectors/ws/agency.ts';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const swxBin = join(root, 'bin/swx.js');

/**
 * Ports for hubs started here come from a range of their own per process slot (SWX_TEST_SLOT, which scripts/test.mjs
 * sets for each of its parallel test processes), below the kernel's ephemeral range: a port found free here cannot be
 * taken by another test process, or by an outgoing connection, before the hub binds it. Within the process they are
 * handed out in turn, never twice.
 */
const portRange = { first: 20_000 + Number(process.env.SWX_TEST_SLOT ?? 0) * 1_000, size: 1_000 };
let nextPort = Math.floor(Math.random() * portRange.size);

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tried = 0; tried < portRange.size; tried++) {
    const port = portRange.first + (nextPort++ % portRange.size);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${portRange.first}-${portRange.first + portRange.size - 1}`);
}

/** The environment a hub or command started here begins from: this process's, without any SWX_* setting of the shell. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWX_')));
  return { ...env, SWX_LOG_LEVEL: process.env.SWX_LOG_LEVEL ?? 'warn' };
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `swx-${name}-`));
}

export interface HubProcess {
  dataDir: string;
  agencyPort: number;
  opsPort: number;
  natsPort: number;
  /** The console's HTTPS port. */
  consolePort: number;
  /** The SFTP connector's port. */
  sftpPort: number;
  env: NodeJS.ProcessEnv;
  proc: ChildProcess;
  output(): string;
  /** The operator token: SWX_OPS_TOKEN when the test set it, else what the hub wrote to <data>/ops-token. */
  token(): Promise<string>;
  /** A call to the operator API with the token, as `swx partner …` makes it. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export async function startHubProcess(options: {
  dataDir?: string; env?: NodeJS.ProcessEnv; ports?: { agency: number; ops: number; nats: number; sftp?: number; console?: number };
  /** How long a start may take to be ready before the hub is stopped and the start fails. */
  readyWithinMs?: number;
} = {}): Promise<HubProcess> {
  const dataDir = options.dataDir ?? tempDir('hub');
  const given = options.ports ?? { agency: await freePort(), ops: await freePort(), nats: await freePort() };
  const ports = { ...given, sftp: given.sftp ?? await freePort(), console: given.console ?? await freePort() };
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(),
    SWX_HTTP_PORT: String(ports.agency),
    SWX_HTTP_HOST: '127.0.0.1',
    SWX_OPS_PORT: String(ports.ops),
    SWX_NATS_PORT: String(ports.nats),
    SWX_CONSOLE_PORT: String(ports.console),
    SWX_CONSOLE_HOST: '127.0.0.1',
    SWX_SFTP_HOST: '127.0.0.1',
    SWX_SFTP_PORT: String(ports.sftp),
    ...options.env,
  };
  let out = '';
  const launch = async () => {
    // As an executable, as operators run it: with the node flags on bin/swx.js's first line.
    const proc = spawn(swxBin, ['start', '--data', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (chunk) => { out += chunk; });
    proc.stderr!.on('data', (chunk) => { out += chunk; });
    const readyWithinMs = options.readyWithinMs ?? 60_000;
    const deadline = Date.now() + readyWithinMs;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`hub exited with ${proc.exitCode}:\n${out.slice(-3000)}`);
      if (Date.now() > deadline) {
        // Stopped, not left behind: its nats-server and chDB owner would hold ports and folders for the next test.
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await Promise.race([exited, sleep(20_000, undefined, { ref: false }).then(() => proc.kill('SIGKILL'))]);
        await exited;
        // Killed mid-start, it may have left its nats-server (its own process group) running.
        await stopLeftNats(dataDir);
        throw new Error(`hub not ready within ${readyWithinMs / 1000} s:\n${out.slice(-3000)}`);
      }
      const ready = await fetch(`http://127.0.0.1:${ports.ops}/readyz`).then((r) => r.ok, () => false);
      if (ready) return proc;
      await sleep(100);
    }
  };
  const hub: HubProcess = {
    dataDir,
    agencyPort: ports.agency,
    opsPort: ports.ops,
    natsPort: ports.nats,
    consolePort: ports.console,
    sftpPort: ports.sftp,
    env,
    proc: await launch(),
    output: () => out,
    async token() {
      if (env.SWX_OPS_TOKEN) return env.SWX_OPS_TOKEN;
      let token: string | undefined;
      await waitFor(`${dataDir}/ops-token`, () => Boolean(token = readOpsToken(dataDir)), 10_000);
      return token!;
    },
    async admin(method, path, body) {
      const headers: Record<string, string> = { authorization: `Bearer ${await hub.token()}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(`http://127.0.0.1:${ports.ops}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: response.status, body: await response.json().catch(() => null) };
    },
    async stop() {
      // Ended already (by a signal too, when exitCode stays null): its 'exit' came and will not come again.
      if (hub.proc.exitCode !== null || hub.proc.signalCode !== null) return hub.proc.exitCode;
      const exited = new Promise<number | null>((resolve) => hub.proc.once('exit', (code) => resolve(code)));
      hub.proc.kill('SIGTERM');
      return Promise.race([exited, sleep(30_000, undefined, { ref: false }).then(() => { hub.proc.kill('SIGKILL'); return null; })]);
    },
    async kill() {
      if (hub.proc.exitCode !== null || hub.proc.signalCode !== null) return;
      const exited = new Promise((resolve) => hub.proc.once('exit', resolve));
      hub.proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      hub.proc = await launch();
    },
  };
  return hub;
}

export interface HubAgency {
  id: string;
  credential: Credential;
  credentials: { certPem: string; keyPem: string; caPem: string };
  client: AgencyClient;
  receiver?: AgencyReceiver;
  provider?: { port: number; close(): Promise<void> };
  inboxDir: string;
}

/** How an agency answers queries as a provider: over REST (startRestProvider) or SOAP (startSoapProvider). */
export type ProviderAnswerFn = (dataset: string, keys: Record<string, string>, asker: string) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;

/** Issues an agency certificate in the hub's PKI, optionally starts its receiver and provider, and registers it with the hub. */
/**
 * The registry endpoints of an agency run by the agency toolkit on this machine: its reference receiver (REST, at
 * /inbox) and its query provider (REST or SOAP, at /query).
 */
export function agencyEndpoints(receiverPort: number | undefined, provider?: { protocol: 'rest' | 'soap'; port: number }, tls?: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const endpoints: Record<string, Record<string, unknown>> = {};
  if (receiverPort) endpoints.rest = { url: `https://localhost:${receiverPort}/inbox`, ...(tls ? { tls } : {}) };
  if (provider) endpoints[provider.protocol] = { ...endpoints[provider.protocol], queryUrl: `https://localhost:${provider.port}/query` };
  return endpoints;
}

export async function addAgency(hub: HubProcess, id: string, options: {
  receiver?: boolean;
  /** `pull`: registered to collect its deliveries from its inbox, with no receiver of its own. */
  receive?: 'push' | 'pull';
  port?: number;
  /** The receiver's TLS server credential when another CA issued it, and the server trust its endpoint names. */
  serverTls?: { certPem: string; keyPem: string; trust?: Record<string, unknown> };
  /** Called once per message the agency's receiver stores (not for redeliveries), in the order they arrive. */
  onMessage?(entry: InboxEntry): void;
  /** Also answer queries as a provider (REST unless said), with this function; `credentials` signs its answers instead of its own. */
  provider?: { answer: ProviderAnswerFn; protocol?: 'rest' | 'soap'; credentials?: { certPem: string; keyPem: string } };
} = {}): Promise<HubAgency> {
  const pkiDir = join(hub.dataDir, 'pki');
  const pki = await loadPki(pkiDir);
  const credential = await issueAgency(pkiDir, id);
  const credentials = { certPem: credential.certPem, keyPem: credential.keyPem, caPem: pki.ca.certPem };
  const inboxDir = join(hub.dataDir, 'agencies', id, 'inbox');
  const pull = options.receive === 'pull';
  const receiver = options.receiver === false || pull ? undefined : await startAgencyReceiver({
    ...credentials, port: options.port ?? 0, hubSignCertPem: pki.hubSign.certPem, inboxDir, ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    ...(options.serverTls ? { serverTls: options.serverTls } : {}),
  });
  const providerCredentials = { ...credentials, ...options.provider?.credentials };
  const provider = !options.provider ? undefined : options.provider.protocol === 'soap'
    ? await startSoapProvider({ ...providerCredentials, hubCertPem: pki.hubSign.certPem, provider: id, answer: options.provider.answer })
    : await startRestProvider({ ...providerCredentials, port: 0, hubSignCertPem: pki.hubSign.certPem, answer: options.provider.answer });
  const registered = await hub.admin('PUT', `/api/partners/${id}`, {
    name: `${id} (test)`,
    certificates: [credential.certPem],
    endpoints: agencyEndpoints(receiver?.port, provider && { protocol: options.provider!.protocol ?? 'rest', port: provider.port }, options.serverTls?.trust),
    ...(pull ? { receive: 'pull' } : {}),
  });
  if (registered.status !== 200) throw new Error(`registering ${id}: ${JSON.stringify(registered.body)}`);
  const client = new AgencyClient(`https://localhost:${hub.agencyPort}`, credentials, { hubSignCertPem: pki.hubSign.certPem });
  return { id, credential, credentials, client, receiver, provider, inboxDir };
}

export async function addService(hub: HubProcess, id: string, from: string[], to: string[], extra: Record<string, unknown> = {}): Promise<void> {
  const answer = await hub.admin('PUT', `/api/services/${id}`, { name: id, rules: [{ from, to }], ...extra });
  if (answer.status !== 200) throw new Error(`registering service ${id}: ${JSON.stringify(answer.body)}`);
}

export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
