// The demo: agencies from the domain reference, each with its credentials under <data>/demo/<ID>/; a receiver (inbox
// there) for each agency that exchanges messages, a query provider for each Table 1 provider answering from the demo
// data (some over REST, some over SOAP, so the hub translates), the services they may use, and a round of signed
// traffic through the hub: messages, and one query per Table 1 dataset.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { issueAgency, loadPki } from '../engine/pki/index.ts';
import { AgencyClient, startAgencyReceiver, startRestProvider, type AgencyReceiver } from '../connectors/rest/agency.ts';
import { startSoapProvider } from '../connectors/ws/agency.ts';
import { answer as demoAnswer, sampleQuery } from './demo-data.ts';
import type { Hub } from './hub.ts';

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
  { id: 'notify.substandard-feed', name: 'Preventing substandard feed imports', rules: [{ from: ['COA-DAI'], to: ['TFDA'] }] },
  { id: 'notify.fishery-safety', name: 'International fishery product safety', rules: [{ from: ['TFDA'], to: ['BSMI', 'FA'] }] },
  { id: 'notify.food-toy', name: 'Food-toy import inspection (two-way)', rules: [{ from: ['BSMI', 'TFDA'], to: ['BSMI', 'TFDA'] }] },
];

export interface DemoAgency { id: string; dir: string; receiver?: AgencyReceiver; provider?: { close(): Promise<void> }; client: AgencyClient }

export interface Demo {
  agencies: Map<string, DemoAgency>;
  stop(): Promise<void>;
}

export const demoDir = (dataDir: string, id: string) => join(dataDir, 'demo', id);

/** Agencies that exchange messages in the demo services: each gets a receiver. */
const messaging = new Set(demoServices.flatMap((service) => service.rules.flatMap((rule) => [...rule.from, ...rule.to])));

/** Issues credentials, starts receivers and providers, and registers agencies and services with the hub. */
export async function startDemo(hub: Hub): Promise<Demo> {
  const pkiDir = join(hub.config.dataDir, 'pki');
  const pki = await loadPki(pkiDir);
  const agencies = new Map<string, DemoAgency>();
  const hubUrl = `https://localhost:${hub.agencyPort}`;
  for (const { id, name } of demoAgencies) {
    const credential = await issueAgency(pkiDir, id, { alg: hub.config.pkiAlg });
    const dir = demoDir(hub.config.dataDir, id);
    mkdirSync(dir, { recursive: true });
    copyFileSync(credential.certPath, join(dir, 'cert.pem'));
    copyFileSync(credential.keyPath, join(dir, 'key.pem'));
    writeFileSync(join(dir, 'ca.pem'), pki.ca.certPem);
    writeFileSync(join(dir, 'hub-sign.pem'), pki.hubSign.certPem);
    const credentials = { certPem: credential.certPem, keyPem: credential.keyPem, caPem: pki.ca.certPem };
    const receiver = messaging.has(id)
      ? await startAgencyReceiver({ ...credentials, port: 0, hubSignCertPem: pki.hubSign.certPem, inboxDir: join(dir, 'inbox') })
      : undefined;
    const answer = (dataset: string, keys: Record<string, string>) => demoAnswer(dataset, keys, id) as Record<string, unknown> | undefined;
    const protocol = demoProviders[id];
    const provider = protocol === 'soap'
      ? await startSoapProvider({ ...credentials, hubCertPem: pki.hubSign.certPem, provider: id, answer })
      : protocol === 'rest' ? await startRestProvider({ ...credentials, port: 0, hubSignCertPem: pki.hubSign.certPem, answer }) : undefined;
    await hub.registry.putPartner({
      id, name, certificates: [credential.certPem],
      ...(receiver ? { endpoint: { protocol: 'rest' as const, url: `https://localhost:${receiver.port}/inbox` } } : {}),
      ...(provider && protocol ? { queryEndpoint: { protocol, url: `https://localhost:${provider.port}/query` } } : {}),
    });
    agencies.set(id, { id, dir, receiver, provider, client: new AgencyClient(hubUrl, credentials, { hubSignCertPem: pki.hubSign.certPem }) });
  }
  for (const service of demoServices) await hub.registry.putService(service);
  return {
    agencies,
    async stop() {
      for (const agency of agencies.values()) {
        agency.client.close();
        await agency.receiver?.close();
        await agency.provider?.close();
      }
    },
  };
}

export interface AskedQuery { queryId: string; asker: string; dataset: string; provider: string; protocol: string; status: number; found: boolean; signed: boolean; code?: string }

/**
 * One query per dataset of the hub's catalogue, from its first asker, for a record the provider holds (a different
 * record each round). Answered synchronously: the result says whether it came back found and signed by the hub.
 */
export async function askDemoQueries(hub: Hub, demo: Demo, round: number): Promise<AskedQuery[]> {
  const asked: AskedQuery[] = [];
  for (const dataset of hub.catalogue.list()) {
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

/** One round of realistic traffic: declarations and alerts between the demo agencies. */
export function demoTraffic(round: number): { from: string; to: string; service: string; action: string; body: Record<string, unknown> }[] {
  const declaration = (to: string, n: number) => ({
    from: 'CUSTOMS', to, service: 'customs.declaration', action: 'import-declaration',
    body: { declarationNo: `AA/BE/${String(13 + round).padStart(2, '0')}/${String(100 + n).padStart(3, '0')}/0001`, type: 'G1', trader: '12345675', hsCode: '0303.89', value: 125000 + n, currency: 'TWD' },
  });
  return [
    declaration('BOFT', 1), declaration('BSMI', 2), declaration('TFDA', 3),
    { from: 'COA-DAI', to: 'TFDA', service: 'notify.substandard-feed', action: 'alert', body: { case: `FEED-${round}-01`, product: 'fish meal', finding: 'melamine above limit', importer: '24536806' } },
    { from: 'TFDA', to: 'FA', service: 'notify.fishery-safety', action: 'alert', body: { case: `FISH-${round}-07`, product: 'frozen mackerel', finding: 'histamine 320 mg/kg' } },
    { from: 'BSMI', to: 'TFDA', service: 'notify.food-toy', action: 'alert', body: { case: `TOY-${round}-03`, product: 'candy-shaped eraser', finding: 'food-shaped toy' } },
    { from: 'TFDA', to: 'BSMI', service: 'notify.food-toy', action: 'reply', body: { case: `TOY-${round}-03`, decision: 'seized at border' } },
  ];
}

export interface SentMessage { id: string; from: string; to: string; service: string }

export async function sendDemoRound(demo: Demo, round: number): Promise<SentMessage[]> {
  const sent: SentMessage[] = [];
  for (const message of demoTraffic(round)) {
    const agency = demo.agencies.get(message.from)!;
    const answer = await agency.client.send({
      to: message.to, service: message.service, action: message.action,
      contentType: 'application/json', body: Buffer.from(JSON.stringify(message.body)),
    });
    if (answer.status !== 202) throw new Error(`demo message ${message.from} → ${message.to} refused: ${JSON.stringify(answer.body)}`);
    if (!answer.signed) throw new Error(`demo message ${message.from} → ${message.to}: the hub's receipt was not checked`);
    sent.push({ id: String(answer.body.id), from: message.from, to: message.to, service: message.service });
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
 * Waits until every sent message is in its receiver's inbox and has `delivered` evidence in ClickHouse, and every
 * query answered found and signed has `answered` evidence.
 */
export async function checkDelivered(hub: Hub, sent: SentMessage[], asked: AskedQuery[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const unanswered = asked.filter((query) => query.status !== 200 || !query.found || !query.signed).map((query) => query.queryId || query.dataset);
  let missingInbox: string[] = [];
  let missingEvidence: string[] = [];
  const evidenced = async (stage: string, ids: string[]) => new Set(hub.store
    ? (await hub.store.query<{ message_id: string }>(
      'SELECT DISTINCT message_id FROM evidence WHERE stage = {stage:String} AND message_id IN {ids:Array(String)}', { stage, ids })).map((row) => row.message_id)
    : []);
  while (Date.now() < deadline) {
    missingInbox = sent.filter((m) => !inboxIds(hub.config.dataDir, m.to).has(m.id)).map((m) => m.id);
    const delivered = await evidenced('delivered', sent.map((m) => m.id));
    const answered = await evidenced('answered', asked.map((query) => query.queryId));
    missingEvidence = [
      ...sent.filter((m) => !delivered.has(m.id)).map((m) => m.id),
      ...asked.filter((query) => query.status === 200 && !answered.has(query.queryId)).map((query) => query.queryId),
    ];
    if (missingInbox.length === 0 && missingEvidence.length === 0) break;
    await sleep(200);
  }
  return { missingInbox, missingEvidence, unanswered, ok: missingInbox.length === 0 && missingEvidence.length === 0 && unanswered.length === 0 };
}

export function readInboxEntry(dataDir: string, agency: string, id: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(demoDir(dataDir, agency), 'inbox', `${id}.json`), 'utf8')) as Record<string, unknown>;
}
