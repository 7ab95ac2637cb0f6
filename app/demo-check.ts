// How `swx demo --check` judges a round: by what each agency's receiver or inbox collector stored (its inbox, and the
// order it stored messages in; for an agency the hub pushes files to over SFTP, the files complete under their final names
// in its own server's folder, each with the SHA-256 of what was sent) and by the evidence the archive (ClickHouse) holds, not by the hub's word that it delivered.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InboxEntry } from '../connectors/rest/agency.ts';
import { arrivalLog, demoAgencies, demoDir, pushedId, pushInbox, type AskedQuery, type DemoHub, type SentMessage } from './demo.ts';
import { receiveProtocol } from './demo-protocols.ts';

/**
 * The files the hub pushed into an agency's own SFTP server, by message id: only those under their final names (a file
 * is renamed to it once written whole; `.NAME.part` until then).
 */
export function pushedFiles(dataDir: string, agency: string): Map<string, string> {
  const inbox = pushInbox(dataDir, agency);
  if (!existsSync(inbox)) return new Map();
  return new Map(readdirSync(inbox).filter((name) => !name.startsWith('.')).map((name) => [pushedId(name), join(inbox, name)]));
}

/** Ids in an agency's inbox: judged from the receiver's own files (or its SFTP server's), not from the hub. */
export function inboxIds(dataDir: string, agency: string): Set<string> {
  if (receiveProtocol(agency) === 'sftp-push') return new Set(pushedFiles(dataDir, agency).keys());
  const inbox = join(demoDir(dataDir, agency), 'inbox');
  if (!existsSync(inbox)) return new Set();
  return new Set(readdirSync(inbox).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5)));
}

export function readInboxEntry(dataDir: string, agency: string, id: string): InboxEntry {
  return JSON.parse(readFileSync(join(demoDir(dataDir, agency), 'inbox', `${id}.json`), 'utf8')) as InboxEntry;
}

/** The ids an agency's receiver, or the collector of an agency that receives by pull, stored, in the order stored. */
function arrivals(dataDir: string, agency: string): string[] {
  const log = arrivalLog(dataDir, agency);
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
}

const channelOf = (message: SentMessage) => (message.service.startsWith('exchange.') ? message.service.slice('exchange.'.length) : undefined);

/**
 * Each channel's items as each requester stored them, against the order they were published (the demo sends one at
 * a time, so the order sent). `incomplete` names lanes whose items have not all arrived yet, `outOfOrder` those whose
 * items all arrived in another order; each as `channel → requester`.
 */
function laneOrder(dataDir: string, sent: SentMessage[]) {
  const lanes = new Map<string, string[]>();
  for (const message of sent) {
    const channel = channelOf(message);
    if (channel) for (const requester of message.to) lanes.set(`${channel} → ${requester}`, [...lanes.get(`${channel} → ${requester}`) ?? [], message.id]);
  }
  const stored = new Map<string, string[]>();
  const incomplete: string[] = [];
  const outOfOrder: string[] = [];
  for (const [lane, published] of lanes) {
    const requester = lane.slice(lane.indexOf(' → ') + 3);
    if (!stored.has(requester)) stored.set(requester, arrivals(dataDir, requester));
    const items = new Set(published);
    const arrived = stored.get(requester)!.filter((id) => items.has(id));
    if (arrived.length < published.length) incomplete.push(lane);
    else if (arrived.some((id, i) => id !== published[i])) outOfOrder.push(lane);
  }
  return { incomplete, outOfOrder };
}

/**
 * Waits until every sent message is in each of its receivers' inboxes with one `delivered` record per receiver in
 * ClickHouse, every channel's items are stored by every requester, and every query answered found and signed has
 * `answered` evidence. Then judges what is there: a message in an inbox it was not meant for (`stray`), `delivered`
 * records that are not one per receiver, a channel lane (`notInOrder`) whose items did not all arrive in the order
 * published, a reply that lost its Ref-To.
 */
export async function checkDelivered(hub: DemoHub, sent: SentMessage[], asked: AskedQuery[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const unanswered = asked.filter((query) => query.status !== 200 || !query.found || !query.signed).map((query) => query.queryId || query.dataset);
  const ids = [...sent.map((m) => m.id), ...asked.map((query) => query.queryId).filter(Boolean)];
  const agencies = demoAgencies.map((agency) => agency.id);
  let missingInbox: string[] = [];
  let stages: Record<string, Record<string, number>> = {};
  let lanes = laneOrder(hub.dataDir, sent);
  const delivered = (id: string) => stages[id]?.delivered ?? 0;
  while (Date.now() < deadline) {
    const inboxes = new Map(agencies.map((agency) => [agency, inboxIds(hub.dataDir, agency)]));
    missingInbox = sent.filter((m) => m.to.some((to) => !inboxes.get(to)!.has(m.id))).map((m) => m.id);
    // The evidence as the archive holds it (ClickHouse), per id and stage.
    stages = await hub.operator('POST', '/api/messages/stages', { ids }) as Record<string, Record<string, number>>;
    lanes = laneOrder(hub.dataDir, sent);
    const unevidenced = sent.some((m) => delivered(m.id) < m.to.length) || asked.some((query) => query.status === 200 && !stages[query.queryId]?.answered);
    if (missingInbox.length === 0 && !unevidenced && lanes.incomplete.length === 0) break;
    await sleep(200);
  }
  const missingEvidence = [
    ...sent.filter((m) => delivered(m.id) !== m.to.length).map((m) => m.id),
    ...asked.filter((query) => query.status === 200 && !stages[query.queryId]?.answered).map((query) => query.queryId),
  ];
  const receivers = new Map(sent.map((m) => [m.id, m.to]));
  const stray = agencies.flatMap((agency) => [...inboxIds(hub.dataDir, agency)]
    .filter((id) => receivers.has(id) && !receivers.get(id)!.includes(agency)).map((id) => `${id} at ${agency}`));
  // A file pushed over SFTP is the payload alone: it carries no Ref-To to lose.
  const lostRefTo = sent.filter((m) => m.refTo && m.to.some((to) => receiveProtocol(to) !== 'sftp-push' && inboxIds(hub.dataDir, to).has(m.id) && readInboxEntry(hub.dataDir, to, m.id).refToMessageId !== m.refTo)).map((m) => m.id);
  const notInOrder = [...lanes.incomplete, ...lanes.outOfOrder];
  const corrupt = corruptPushes(hub.dataDir, sent);
  const { sentBy, deliveredBy } = byProtocol(hub.dataDir, sent);
  const failed = new Set([...missingInbox, ...missingEvidence, ...lostRefTo, ...[...stray, ...corrupt].map((entry) => entry.slice(0, entry.indexOf(' at ')))]);
  return {
    missingInbox, missingEvidence, stray, corrupt, notInOrder, lostRefTo, unanswered, sentBy, deliveredBy, skipped: await skippedLegs(hub, sent),
    /** Every sent message with any of the problems above. */
    failed,
    ok: [missingInbox, missingEvidence, stray, corrupt, notInOrder, lostRefTo, unanswered].every((problems) => problems.length === 0),
  };
}

/** The files pushed over SFTP whose SHA-256 is not that of the message sent, each as `id at AGENCY`. */
function corruptPushes(dataDir: string, sent: SentMessage[]): string[] {
  const pushed = new Map<string, Map<string, string>>();
  return sent.flatMap((message) => message.to.filter((to) => receiveProtocol(to) === 'sftp-push').flatMap((to) => {
    if (!pushed.has(to)) pushed.set(to, pushedFiles(dataDir, to));
    const file = pushed.get(to)!.get(message.id);
    return file && createHash('sha256').update(readFileSync(file)).digest('hex') !== message.sha256 ? [`${message.id} at ${to}`] : [];
  }));
}

/**
 * Messages sent per protocol (REST, SFTP upload, AS4), and deliveries per protocol counted from what each receiver
 * stored: a message in the inbox of an agency it was meant for counts once for that agency's protocol.
 */
function byProtocol(dataDir: string, sent: SentMessage[]) {
  const sentBy: Record<string, number> = {};
  const deliveredBy: Record<string, number> = {};
  const inboxes = new Map<string, Set<string>>();
  for (const message of sent) {
    sentBy[message.protocol ?? 'rest'] = (sentBy[message.protocol ?? 'rest'] ?? 0) + 1;
    for (const receiver of message.to) {
      if (!inboxes.has(receiver)) inboxes.set(receiver, inboxIds(dataDir, receiver));
      if (inboxes.get(receiver)!.has(message.id)) deliveredBy[receiveProtocol(receiver)] = (deliveredBy[receiveProtocol(receiver)] ?? 0) + 1;
    }
  }
  return { sentBy, deliveredBy };
}

/**
 * The legs the demo cannot run here, each with why: deliveries to MQ agencies, which wait at the hub while its MQ
 * connector is unhealthy (it says why in /readyz: IBM's MQ client library is missing) or no queue manager is reachable.
 */
async function skippedLegs(hub: DemoHub, sent: SentMessage[]) {
  const legs = sent.flatMap((message) => (message.skipped ?? []).map((to) => ({ id: message.id, from: message.from, to, service: message.service, protocol: 'mq' })));
  if (legs.length === 0) return [];
  const ready = await hub.operator('GET', '/readyz') as { connectors?: Record<string, { ok: boolean; detail?: string }> };
  const mq = ready.connectors?.mq;
  const reason = mq && !mq.ok ? mq.detail ?? 'the MQ connector is unhealthy' : `no queue manager is reachable from the demo${mq?.detail ? ` (${mq.detail})` : ''}`;
  return legs.map((leg) => ({ ...leg, reason }));
}
