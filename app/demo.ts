// The demo: agencies from the domain reference, each with its credentials under <data>/demo/<ID>/ and a receiver
// that keeps its inbox there; services they may use; and a round of signed traffic through the hub.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { issueAgency, loadPki } from '../engine/pki/index.ts';
import { AgencyClient, startAgencyReceiver, type AgencyReceiver } from '../connectors/rest/agency.ts';
import type { Hub } from './hub.ts';

export const demoAgencies = [
  { id: 'CUSTOMS', name: 'Customs Administration (關務署)' },
  { id: 'BOFT', name: 'Bureau of Foreign Trade (貿易局)' },
  { id: 'BSMI', name: 'Bureau of Standards, Metrology and Inspection (標檢局)' },
  { id: 'TFDA', name: 'Food and Drug Administration (食藥署)' },
  { id: 'COA-DAI', name: 'Council of Agriculture, Dept. of Animal Industry (畜牧處)' },
  { id: 'FA', name: 'Fisheries Agency (漁業署)' },
];

export const demoServices = [
  { id: 'customs.declaration', name: 'Declarations (報單) exchange', rules: [{ from: ['CUSTOMS'], to: ['BOFT', 'BSMI', 'TFDA'] }] },
  { id: 'notify.substandard-feed', name: 'Preventing substandard feed imports', rules: [{ from: ['COA-DAI'], to: ['TFDA'] }] },
  { id: 'notify.fishery-safety', name: 'International fishery product safety', rules: [{ from: ['TFDA'], to: ['BSMI', 'FA'] }] },
  { id: 'notify.food-toy', name: 'Food-toy import inspection (two-way)', rules: [{ from: ['BSMI', 'TFDA'], to: ['BSMI', 'TFDA'] }] },
];

export interface DemoAgency { id: string; dir: string; receiver: AgencyReceiver; client: AgencyClient }

export interface Demo {
  agencies: Map<string, DemoAgency>;
  stop(): Promise<void>;
}

export const demoDir = (dataDir: string, id: string) => join(dataDir, 'demo', id);

/** Issues credentials, starts a receiver per agency and registers agencies and services with the hub. */
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
    const receiver = await startAgencyReceiver({ ...credentials, port: 0, hubSignCertPem: pki.hubSign.certPem, inboxDir: join(dir, 'inbox') });
    await hub.registry.putPartner({ id, name, certificates: [credential.certPem], endpoint: { protocol: 'rest', url: `https://localhost:${receiver.port}/inbox` } });
    agencies.set(id, { id, dir, receiver, client: new AgencyClient(hubUrl, credentials) });
  }
  for (const service of demoServices) await hub.registry.putService(service);
  return {
    agencies,
    async stop() {
      for (const agency of agencies.values()) {
        agency.client.close();
        await agency.receiver.close();
      }
    },
  };
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

/** Waits until every sent message is in its receiver's inbox and has `delivered` evidence in ClickHouse. */
export async function checkDelivered(hub: Hub, sent: SentMessage[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let missingInbox: string[] = [];
  let missingEvidence: string[] = [];
  while (Date.now() < deadline) {
    missingInbox = sent.filter((m) => !inboxIds(hub.config.dataDir, m.to).has(m.id)).map((m) => m.id);
    const rows = hub.store
      ? await hub.store.query<{ message_id: string }>(
        "SELECT DISTINCT message_id FROM evidence WHERE stage = 'delivered' AND message_id IN {ids:Array(String)}", { ids: sent.map((m) => m.id) })
      : [];
    const evidenced = new Set(rows.map((row) => row.message_id));
    missingEvidence = sent.filter((m) => !evidenced.has(m.id)).map((m) => m.id);
    if (missingInbox.length === 0 && missingEvidence.length === 0) break;
    await sleep(200);
  }
  return { missingInbox, missingEvidence, ok: missingInbox.length === 0 && missingEvidence.length === 0 };
}

export function readInboxEntry(dataDir: string, agency: string, id: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(demoDir(dataDir, agency), 'inbox', `${id}.json`), 'utf8')) as Record<string, unknown>;
}
