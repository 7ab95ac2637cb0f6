// How each demo agency connects, as a real agency of its kind would: most over REST (the Table 1 providers DOC, BAPHIQ
// and NIA answering queries over SOAP), the customs bulk datasets and the port and fiscal agencies' files over the hub's
// SFTP server, the clearance network operator's and the energy bureau's own SFTP servers the hub pushes their files to
// and polls Trade-Van's outbox on (as long as OpenSSH's sshd is installed to run them), the livestock department and
// the Fisheries Agency through AS4 gateways, the consular bureau's older ebMS 2.0 MSH, and the treasury on IBM MQ. What
// the demo registers for each (its endpoints, P-Modes, agreement), and by which protocol each message of a round leaves
// its sender and reaches each receiver.
import { existsSync } from 'node:fs';
import { swxServiceType } from '../connectors/ebms2/settings.ts';
import { table2 } from './table2.ts';
import { table3 } from './table3.ts';

/** How an agency receives its deliveries in the demo. */
export type ReceiveProtocol = 'rest' | 'rest-pull' | 'sftp-pull' | 'sftp-push' | 'as4' | 'ebms2' | 'mq';
/** How an agency's system sends a message in the demo. */
export type SendProtocol = 'rest' | 'sftp' | 'sftp-outbox' | 'as4';

/** Agencies behind an AS4 gateway (eDelivery AS4): the Council of Agriculture's livestock department sends its alerts
 *  through one; the Fisheries Agency receives its fishery notifications through its own. */
export const as4Agencies = new Set(['COA-DAI', 'FA']);
/** The Bureau of Consular Affairs' older ebMS 2.0 MSH, under an agreement (CPA) with the hub. */
export const ebms2Agency = 'BOCA';
/** The National Treasury's systems integrate through IBM MQ queues; no queue manager is reachable from the demo. */
export const mqAgencies = new Set(['NTA']);
/** Agencies whose systems take no inbound connection: they collect their deliveries from the hub's inbox, the
 *  Agriculture and Food Agency over REST, the Maritime and Port Bureau and the Fiscal Information Agency over SFTP. */
export const restPullAgencies = new Set(['AFA']);
export const sftpPullAgencies = new Set(['MPB', 'FIA']);
export const pullAgencies = new Set([...restPullAgencies, ...sftpPullAgencies]);

/**
 * Agencies whose systems take files on an SFTP server of their own, which the hub logs in to and pushes their
 * deliveries into: Trade-Van, the clearance network operator (a value-added network exchanging files), and the Bureau of
 * Energy, taking declarations and trade statistics as bulk files. Each runs OpenSSH's sshd in the demo agencies' process;
 * without /usr/sbin/sshd they receive by REST push instead.
 */
export const sftpPushAgencies = new Set(['TRADEVAN', 'BOE']);
/** Of those, Trade-Van also sends its clearance network data as signed files it drops in its own server's outbox folder, which the hub polls. */
export const sftpOutboxAgencies = new Set(['TRADEVAN']);
export const sshdPath = '/usr/sbin/sshd';
export const sshdInstalled = () => existsSync(sshdPath);

/**
 * Who uploads files to the hub's SFTP server, and which of its channels go that way: the bulk datasets customs
 * publishes as files (declarations, taxes and fees), and every channel of the agencies that exchange files.
 */
export const sftpUploads: Record<string, Set<string> | 'all'> = {
  CUSTOMS: new Set(['declarations', 'taxes-fees']), MPB: 'all', FIA: 'all', ANWS: 'all',
};
/** Agencies the demo writes an SSH key for (<data>/demo/<ID>/id_ed25519) and registers it. */
export const sftpAgencies = new Set([...Object.keys(sftpUploads), ...sftpPullAgencies]);

export function receiveProtocol(id: string): ReceiveProtocol {
  if (mqAgencies.has(id)) return 'mq';
  if (as4Agencies.has(id)) return 'as4';
  if (id === ebms2Agency) return 'ebms2';
  if (sftpPullAgencies.has(id)) return 'sftp-pull';
  if (sftpPushAgencies.has(id) && sshdInstalled()) return 'sftp-push';
  if (restPullAgencies.has(id)) return 'rest-pull';
  return 'rest';
}

/** How `from` sends on `service` (a channel's `exchange.<id>`, a topic's `notify.<id>`, or a direct service). */
export function sendProtocol(from: string, service: string): SendProtocol {
  if (as4Agencies.has(from)) return 'as4';
  if (sftpOutboxAgencies.has(from) && sshdInstalled()) return 'sftp-outbox';
  const uploads = sftpUploads[from];
  const channel = service.startsWith('exchange.') ? service.slice('exchange.'.length) : undefined;
  if (uploads === 'all' || (channel && uploads?.has(channel))) return 'sftp';
  return 'rest';
}

/** The ids the demo's AS4 and ebMS 2.0 agencies' gateways carry as their PartyIds. */
export const gatewayPartyType = 'urn:oasis:names:tc:ebcore:partyid-type:unregistered';
export const gatewayPartyId = (id: string) => `${id.toLowerCase()}-gw`;
/** The hub's PartyIds in its ebMS 2.0 agreements (connectors.ebms2.partyIds), which the demo sets when none are. */
export const hubEbms2Party = { id: 'swx-hub', type: 'urn:swx:hub' };

/** The services, topics and channels an agency sends on (`send`) or receives on (`receive`), by the tables. */
function servicesOf(id: string) {
  const send = new Set<string>();
  const receive = new Set<string>();
  for (const topic of table2) {
    const service = `notify.${topic.id}`;
    if (topic.notifiers.includes(id) || (topic.twoWay && topic.receivers.includes(id))) send.add(service);
    if (topic.receivers.includes(id) || (topic.twoWay && topic.notifiers.includes(id))) receive.add(service);
  }
  for (const channel of table3) {
    if (channel.providers.includes(id)) send.add(`exchange.${channel.id}`);
    if (channel.requesters.includes(id)) receive.add(`exchange.${channel.id}`);
  }
  return { send, receive };
}

const actionsOf = (service: string) => (service.startsWith('exchange.') ? ['item'] : service.startsWith('notify.') ? ['alert', 'reply'] : ['import-declaration']);

/** An AS4 gateway's P-Mode: its PartyId, the eb:Service of each swx service it exchanges (a URN of the agency's), its MSH's URL when it receives. */
export function as4Pmode(id: string, receiverPort?: number) {
  const { send, receive } = servicesOf(id);
  return {
    ...(receiverPort ? { url: `https://localhost:${receiverPort}/as4` } : {}),
    partyIds: [{ id: gatewayPartyId(id), type: gatewayPartyType }],
    agreement: { ref: `urn:swx:agreement:${id.toLowerCase()}` },
    services: [...new Set([...send, ...receive])].map((swx) => ({ service: `urn:tw:gov:${swx}`, actions: actionsOf(swx), swx })),
    security: { sign: true, encrypt: false },
  };
}

/** The ebMS 2.0 agreement with BOCA's MSH, as an operator would import it from the CPA: one HTTPS channel, signed, acknowledged on the connection. */
export function ebms2Agreement(id: string, receiverPort: number) {
  const url = `https://localhost:${receiverPort}/msh`;
  const { send, receive } = servicesOf(id);
  return {
    cpaId: `swx-${id.toLowerCase()}`, partyIds: [{ id: gatewayPartyId(id), type: gatewayPartyType }], roles: ['exchange'], url, defaultChannel: 'https',
    channels: { https: {
      transport: 'HTTP', url, syncReplyMode: 'mshSignalsOnly', ackRequested: 'always', ackSignatureRequested: 'always', duplicateElimination: 'always',
      reliability: { retries: 3, retryIntervalMs: 2000, persistDurationMs: 24 * 3600 * 1000 },
      signature: { algorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', weak: false },
    } },
    services: [...new Set([...send, ...receive])].map((service) => ({
      service, type: swxServiceType, role: 'exchange',
      canSend: send.has(service) ? actionsOf(service).map((action) => ({ action, channels: ['https'] })) : [],
      canReceive: receive.has(service) ? actionsOf(service).map((action) => ({ action, channels: ['https'] })) : [],
    })),
  };
}

/** The treasury's MQ endpoint: queues on its queue manager, which this demo machine cannot reach (nor load IBM's client for). */
export function mqEndpoint(id: string) {
  return {
    queueManager: `QM_${id}`, connectionName: `mq.${id.toLowerCase()}.gov.example(1414)`, channel: 'SWX.SVRCONN',
    getQueue: `${id}.TO.SWX`, putQueue: `SWX.TO.${id}`, replyToQueue: `${id}.REPLIES`,
    userEnv: `SWX_MQ_${id}_USER`, passwordEnv: `SWX_MQ_${id}_PASSWORD`,
  };
}
