// The demo: agencies from the domain reference, each with its credentials under <data>/demo/<ID>/, the services they
// may use, and a round of signed traffic through the hub: messages, and one query per Table 1 dataset. Three
// processes, as in a real deployment: the hub (`swx start`), the agencies' receivers and providers
// (`swx demo-agencies`), and this one, which sets them up as an operator would and sends as the agencies' systems do.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { readOpsToken } from '../engine/admin.ts';
import type { Config } from '../engine/config.ts';
import { issueAgency, loadPki } from '../engine/pki/index.ts';
import { AgencyClient } from '../connectors/rest/agency.ts';
import { sampleQuery } from './demo-data.ts';
import { operatorApi, type Operator } from './operator.ts';
import { agencyEndpoints, swxBin } from './hub-process.ts';

export const demoAgencies = [
  { id: 'CUSTOMS', name: 'Customs Administration (關務署)' },
  { id: 'BOFT', name: 'Bureau of Foreign Trade (貿易局)' },
  { id: 'BSMI', name: 'Bureau of Standards, Metrology and Inspection (標檢局)' },
  { id: 'TFDA', name: 'Food and Drug Administration (食藥署)' },
  { id: 'COA-DAI', name: 'Council of Agriculture, Dept. of Animal Industry (畜牧處)' },
  { id: 'FA', name: 'Fisheries Agency (漁業署)' },
  { id: 'IDB', name: 'Industrial Development Bureau (工業局)' },
  { id: 'NCC', name: 'National Communications Commission (通傳會)' },
  { id: 'COA', name: 'Council of Agriculture (農委會)' },
  { id: 'BAPHIQ', name: 'Bureau of Animal and Plant Health Inspection and Quarantine (防檢局)' },
  { id: 'PABP', name: 'Pingtung Agricultural Biotechnology Park (農科園區)' },
  { id: 'EPZA', name: 'Export Processing Zone Administration (加工區管理處)' },
  { id: 'DCMP', name: 'Dept. of Chinese Medicine and Pharmacy (中醫藥司)' },
  { id: 'NTA', name: 'National Treasury Administration (國庫署)' },
  { id: 'SPA', name: 'Science Park Administration (科管局)' },
  { id: 'MPB', name: 'Maritime and Port Bureau (航港局)' },
  { id: 'DOC', name: 'Dept. of Commerce (商業司)' },
  { id: 'CDC', name: 'Centers for Disease Control (疾管署)' },
  { id: 'NIA', name: 'National Immigration Agency (移民署)' },
  { id: 'BOT', name: 'Bank of Taiwan (臺灣銀行)' },
];

/** How each Table 1 provider answers queries in the demo: a mix, so REST askers meet SOAP providers and back. */
export const demoProviders: Record<string, 'rest' | 'soap'> = {
  CUSTOMS: 'rest', DOC: 'soap', IDB: 'rest', BAPHIQ: 'soap', TFDA: 'rest', NIA: 'soap', BOT: 'rest',
};

export const demoServices = [
  { id: 'customs.declaration', name: 'Declarations (報單) exchange', rules: [{ from: ['CUSTOMS'], to: ['BOFT', 'BSMI', 'TFDA'] }] },
];

/** Notification topics of Table 2 (情資通報) the demo runs. */
export const demoTopics = [
  { id: 'substandard-feed', name: 'Preventing substandard feed imports', nameZh: '防範劣質飼料進口', notifiers: ['COA-DAI'], receivers: ['TFDA'] },
  { id: 'fishery-safety', name: 'International fishery product safety', nameZh: '國際漁產品安全', notifiers: ['TFDA'], receivers: ['BSMI', 'FA'] },
  { id: 'food-toy', name: 'Food-toy import inspection', nameZh: '食品玩具輸入查驗', notifiers: ['BSMI', 'TFDA'], receivers: ['BSMI', 'TFDA'], twoWay: true },
];

/** The hub as the demo reaches it: its ports and its operator API. */
export interface DemoHub { dataDir: string; agencyPort: number; opsPort: number; operator: Operator }

export interface DemoAgency { id: string; dir: string; client: AgencyClient }

export interface Demo {
  hub: DemoHub;
  agencies: Map<string, DemoAgency>;
  /** Resolves when the hub or the agencies' process exits before stop() was called, with what exited. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

export const demoDir = (dataDir: string, id: string) => join(dataDir, 'demo', id);

/** Where each demo agency listens: its receiver's port, and its query provider's port and protocol. */
export type DemoEndpoints = Record<string, { receiver?: number; provider?: { port: number; protocol: 'rest' | 'soap' } }>;

/** Agencies that exchange messages in the demo services: each gets a receiver. */
export const messagingAgencies = new Set([
  ...demoServices.flatMap((service) => service.rules.flatMap((rule) => [...rule.from, ...rule.to])),
  ...demoTopics.flatMap((topic) => [...topic.notifiers, ...topic.receivers]),
]);

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

    const agencyProcess = swx(['demo-agencies', '--data', dataDir], 'pipe');
    children.push(agencyProcess);
    const agencyExit = exitOf(agencyProcess, 'the demo agencies\' process');
    const endpoints = await Promise.race([firstLine(agencyProcess), failOnExit(agencyExit)]);
    for (const { id, name } of demoAgencies) {
      const { receiver, provider } = endpoints[id] ?? {};
      await hub.operator('PUT', `/api/partners/${id}`, {
        name, certificates: [certificates.get(id)],
        endpoints: agencyEndpoints(receiver, provider),
      });
    }
    for (const service of demoServices) await hub.operator('PUT', `/api/services/${service.id}`, service);
    for (const topic of demoTopics) await hub.operator('PUT', `/api/topics/${topic.id}`, topic);

    const hubUrl = `https://localhost:${hub.agencyPort}`;
    const agencies = new Map<string, DemoAgency>();
    for (const { id } of demoAgencies) {
      const dir = demoDir(dataDir, id);
      const credentials = { certPem: certificates.get(id)!, keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'), caPem: pki.ca.certPem };
      agencies.set(id, { id, dir, client: new AgencyClient(hubUrl, credentials, { hubSignCertPem: pki.hubSign.certPem }) });
    }
    const exited = Promise.race([hubExit, agencyExit]).then(async (what) => { if (stopping) await new Promise(() => undefined); return what; });
    return {
      hub, agencies, exited,
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

/** One round of realistic traffic: declarations to one agency each, and alerts to every receiver of their topic. */
export function demoTraffic(round: number): { from: string; to?: string; service: string; action: string; body: Record<string, unknown> }[] {
  const declaration = (to: string, n: number) => ({
    from: 'CUSTOMS', to, service: 'customs.declaration', action: 'import-declaration',
    body: { declarationNo: `AA/BE/${String(13 + round).padStart(2, '0')}/${String(100 + n).padStart(3, '0')}/0001`, type: 'G1', trader: '12345675', hsCode: '0303.89', value: 125000 + n, currency: 'TWD' },
  });
  return [
    declaration('BOFT', 1), declaration('BSMI', 2), declaration('TFDA', 3),
    { from: 'COA-DAI', service: 'notify.substandard-feed', action: 'alert', body: { case: `FEED-${round}-01`, product: 'fish meal', finding: 'melamine above limit', importer: '24536806' } },
    { from: 'TFDA', service: 'notify.fishery-safety', action: 'alert', body: { case: `FISH-${round}-07`, product: 'frozen mackerel', finding: 'histamine 320 mg/kg' } },
    { from: 'BSMI', service: 'notify.food-toy', action: 'alert', body: { case: `TOY-${round}-03`, product: 'candy-shaped eraser', finding: 'food-shaped toy' } },
    { from: 'TFDA', service: 'notify.food-toy', action: 'reply', body: { case: `TOY-${round}-03`, decision: 'seized at border' } },
  ];
}

/** A message the demo sent, and every agency it must reach. */
export interface SentMessage { id: string; from: string; to: string[]; service: string }

/** Who a demo message reaches: its receiver, or every receiver of its topic but its sender. */
function receiversOf(message: { from: string; to?: string; service: string }): string[] {
  if (message.to) return [message.to];
  const topic = demoTopics.find((candidate) => `notify.${candidate.id}` === message.service)!;
  return (topic.notifiers.includes(message.from) ? topic.receivers : topic.notifiers).filter((id) => id !== message.from);
}

export async function sendDemoRound(demo: Demo, round: number): Promise<SentMessage[]> {
  const sent: SentMessage[] = [];
  for (const message of demoTraffic(round)) {
    const agency = demo.agencies.get(message.from)!;
    const answer = await agency.client.send({
      ...(message.to ? { to: message.to } : {}), service: message.service, action: message.action,
      contentType: 'application/json', body: Buffer.from(JSON.stringify(message.body)),
    });
    const to = receiversOf(message);
    if (answer.status !== 202) throw new Error(`demo message ${message.from} → ${to.join(', ')} refused: ${JSON.stringify(answer.body)}`);
    if (!answer.signed) throw new Error(`demo message ${message.from} → ${to.join(', ')}: the hub's receipt was not checked`);
    sent.push({ id: String(answer.body.id), from: message.from, to, service: message.service });
  }
  return sent;
}

/** Ids in an agency's inbox: judged from the receiver's own files, not from the hub. */
export function inboxIds(dataDir: string, agency: string): Set<string> {
  const inbox = join(demoDir(dataDir, agency), 'inbox');
  if (!existsSync(inbox)) return new Set();
  return new Set(readdirSync(inbox).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5)));
}

/**
 * Waits until every sent message is in each of its receivers' inboxes with `delivered` evidence for each in ClickHouse, and every
 * query answered found and signed has `answered` evidence.
 */
export async function checkDelivered(hub: DemoHub, sent: SentMessage[], asked: AskedQuery[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const unanswered = asked.filter((query) => query.status !== 200 || !query.found || !query.signed).map((query) => query.queryId || query.dataset);
  let missingInbox: string[] = [];
  let missingEvidence: string[] = [];
  const ids = [...sent.map((m) => m.id), ...asked.map((query) => query.queryId).filter(Boolean)];
  while (Date.now() < deadline) {
    missingInbox = sent.filter((m) => m.to.some((to) => !inboxIds(hub.dataDir, to).has(m.id))).map((m) => m.id);
    // The evidence as the archive holds it (ClickHouse), per id and stage.
    const stages = await hub.operator('POST', '/api/messages/stages', { ids }) as Record<string, Record<string, number>>;
    missingEvidence = [
      ...sent.filter((m) => (stages[m.id]?.delivered ?? 0) < m.to.length).map((m) => m.id),
      ...asked.filter((query) => query.status === 200 && !stages[query.queryId]?.answered).map((query) => query.queryId),
    ];
    if (missingInbox.length === 0 && missingEvidence.length === 0) break;
    await sleep(200);
  }
  return { missingInbox, missingEvidence, unanswered, ok: missingInbox.length === 0 && missingEvidence.length === 0 && unanswered.length === 0 };
}

export function readInboxEntry(dataDir: string, agency: string, id: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(demoDir(dataDir, agency), 'inbox', `${id}.json`), 'utf8')) as Record<string, unknown>;
}
