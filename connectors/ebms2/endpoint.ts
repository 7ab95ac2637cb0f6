// A partner's ebMS 2.0 endpoint: what its CPA says the hub needs to exchange messages with it — its PartyIds, the
// agreement's id, its roles, the services and actions it may send and receive on which delivery channel, and each
// channel's transport, reliability and signing. Built from a CPA by endpointFromCpa, or written by hand.
import { z } from 'zod';
import type { Purpose } from '../../engine/endpoints.ts';
import { SwxError } from '../../engine/errors.ts';
import { serverTrust } from '../../engine/server-trust.ts';
import type { Cpa, CpaParty } from './cpa.ts';

const perMessage = z.enum(['always', 'never', 'perMessage']);
const partyId = z.object({ id: z.string().min(1), type: z.string().min(1).optional() }).strict();
const actions = z.array(z.object({
  action: z.string().min(1),
  /** The partner's delivery channels the action travels on (ids of `channels`). */
  channels: z.array(z.string().min(1)).min(1),
}).strict());

const channel = z.object({
  transport: z.string().min(1).describe('the CPA\'s TransportProtocol: HTTP or SMTP'),
  url: z.string().regex(/^(https?|mailto):\/?\/?\S+$/, 'an http(s) or mailto URI').optional()
    .describe('where the partner receives on this channel (its allPurpose or request endpoint); absent when it only sends on it'),
  syncReplyMode: z.enum(['mshSignalsOnly', 'responseOnly', 'signalsAndResponse', 'signalsOnly', 'none']),
  ackRequested: perMessage,
  ackSignatureRequested: perMessage,
  duplicateElimination: perMessage,
  actor: z.string().min(1).optional(),
  reliability: z.object({
    retries: z.number().int().nonnegative().optional(),
    retryIntervalMs: z.number().int().nonnegative().optional(),
    persistDurationMs: z.number().int().nonnegative().optional(),
    messageOrder: z.enum(['Guaranteed', 'NotGuaranteed']).optional(),
  }).strict().optional(),
  signature: z.object({
    algorithm: z.string().min(1).describe('XMLDSig SignatureMethod URI the agreement names'),
    hashFunction: z.string().min(1).optional(),
    weak: z.boolean().describe('SHA-1: the hub signs with it for this partner only because the agreement names it'),
  }).strict().optional(),
}).strict();

export const ebms2Endpoint = z.object({
  cpaId: z.string().min(1),
  agreement: z.object({
    status: z.enum(['agreed', 'signed', 'proposed']),
    start: z.iso.datetime({ offset: true }),
    end: z.iso.datetime({ offset: true }),
  }).strict().optional().describe('the CPA\'s Status, Start and End: messages under it outside that period are refused'),
  partyIds: z.array(partyId).min(1),
  roles: z.array(z.string().min(1)).min(1),
  url: z.string().regex(/^(https?|mailto):\/?\/?\S+$/, 'an http(s) or mailto URI').optional()
    .describe('where the hub delivers business messages to the partner: the url of the channel it receives its first action on'),
  tls: serverTrust.optional().describe('which server certificates the hub accepts at the partner\'s https URLs (default: those its own CA issued)'),
  defaultChannel: z.string().min(1).describe('the channel of MSH signals (the CPA\'s defaultMshChannelId)'),
  channels: z.record(z.string().min(1), channel),
  services: z.array(z.object({
    service: z.string().min(1),
    type: z.string().min(1).optional(),
    role: z.string().min(1),
    canSend: actions,
    canReceive: actions,
  }).strict()),
}).strict().superRefine((endpoint, context) => {
  const known = (id: string, path: (string | number)[]) => {
    if (!Object.hasOwn(endpoint.channels, id)) context.addIssue({ code: 'custom', path, message: `names channel ${JSON.stringify(id)}, which channels does not define` });
  };
  known(endpoint.defaultChannel, ['defaultChannel']);
  endpoint.services.forEach((service, s) => (['canSend', 'canReceive'] as const).forEach((direction) => service[direction].forEach((binding, b) => {
    binding.channels.forEach((id, c) => known(id, ['services', s, direction, b, 'channels', c]));
  })));
});

export type Ebms2Endpoint = z.infer<typeof ebms2Endpoint>;
export type Ebms2Channel = Ebms2Endpoint['channels'][string];

/** An endpoint with a URL to deliver to serves deliveries; ebMS 2.0 carries no queries. */
export function ebms2Serves(endpoint: Ebms2Endpoint): Purpose[] {
  return endpoint.url ? ['deliver'] : [];
}

const rsaSha1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';

/** The algorithm the hub signs with towards a channel: RSA-SHA1 only where the agreement names it, else RSA-SHA256. */
export function signatureFor(channel: Ebms2Channel): 'rsa-sha256' | 'rsa-sha1' {
  return channel.signature?.algorithm === rsaSha1 ? 'rsa-sha1' : 'rsa-sha256';
}

/** The party of the agreement `name` names: by PartyId (with or without its type) or by partyName. */
export function partyOf(cpa: Cpa, name: string): CpaParty {
  const found = cpa.parties.filter((party) => party.partyName === name
    || party.partyIds.some((id) => id.id === name || `${id.type}:${id.id}` === name));
  if (found.length !== 1) {
    const parties = cpa.parties.map((party) => `${party.partyName ?? '?'} (${party.partyIds.map((id) => (id.type ? `${id.type}:${id.id}` : id.id)).join(', ')})`).join('; ');
    throw new SwxError('SWX_BAD_REQUEST', `CPA ${cpa.cpaid}: ${found.length === 0 ? 'no party is' : 'both parties are'} ${JSON.stringify(name)}; its parties are ${parties}`);
  }
  return found[0]!;
}

/**
 * The party of the agreement that is not this hub: the one none of whose PartyIds is among `own` (the hub's, with their
 * types, from connectors.ebms2.partyIds), when the other party has one of them.
 */
export function otherParty(cpa: Cpa, own: readonly { id: string; type?: string }[]): CpaParty {
  const isHub = (party: CpaParty) => party.partyIds.some((id) => own.some((mine) => mine.id === id.id && (mine.type ?? '') === (id.type ?? '')));
  const hub = cpa.parties.filter(isHub);
  const others = cpa.parties.filter((party) => !isHub(party));
  if (hub.length !== 1 || others.length !== 1) {
    const mine = own.map((id) => (id.type ? `${id.type}:${id.id}` : id.id)).join(', ') || 'none set';
    const parties = cpa.parties.map((party) => party.partyIds.map((partyId) => partyId.id).join('|')).join(' or ');
    throw new SwxError('SWX_BAD_REQUEST', `CPA ${cpa.cpaid}: this hub's PartyIds (connectors.ebms2.partyIds: ${mine}) name ${hub.length === 0 ? 'neither' : 'both'} of its parties; name the partner's with --party (${parties})`);
  }
  return others[0]!;
}

/** The partner's endpoint as the agreement describes it; `party` is the partner (not the hub). */
export function endpointFromCpa(cpa: Cpa, party: CpaParty): Ebms2Endpoint {
  const channels: Record<string, Ebms2Channel> = {};
  for (const [id, delivery] of Object.entries(party.deliveryChannels)) {
    const transport = party.transports[delivery.transportId]!;
    const exchange = party.docExchanges[delivery.docExchangeId]!;
    // What the partner receives on the channel is governed by its receiver binding; a channel it only sends on, by its sender binding.
    const binding = exchange.receiver ?? exchange.sender;
    const endpoints = transport.receiver?.endpoints ?? [];
    const url = (endpoints.find((endpoint) => endpoint.type === 'allPurpose') ?? endpoints.find((endpoint) => endpoint.type === 'request') ?? endpoints[0])?.uri;
    const nonRepudiation = exchange.receiver?.nonRepudiation ?? exchange.sender?.nonRepudiation;
    const algorithm = nonRepudiation?.signatureAlgorithms[0];
    const reliable = binding?.reliableMessaging;
    channels[id] = {
      transport: transport.receiver?.protocol.name ?? transport.sender?.protocol.name ?? 'HTTP',
      ...(url ? { url } : {}),
      syncReplyMode: delivery.messaging.syncReplyMode,
      ackRequested: delivery.messaging.ackRequested,
      ackSignatureRequested: delivery.messaging.ackSignatureRequested,
      duplicateElimination: delivery.messaging.duplicateElimination,
      ...(delivery.messaging.actor ? { actor: delivery.messaging.actor } : {}),
      ...(reliable || binding?.persistDuration ? {
        reliability: {
          ...(reliable?.retries !== undefined ? { retries: reliable.retries } : {}),
          ...(reliable?.retryInterval ? { retryIntervalMs: reliable.retryInterval.ms } : {}),
          ...(binding?.persistDuration ? { persistDurationMs: binding.persistDuration.ms } : {}),
          ...(reliable ? { messageOrder: reliable.messageOrderSemantics } : {}),
        },
      } : {}),
      ...(algorithm ? {
        signature: { algorithm: algorithm.w3c ?? algorithm.value, hashFunction: nonRepudiation!.hashFunction.uri, weak: nonRepudiation!.weak },
      } : {}),
    };
  }
  const services = party.roles.flatMap((role) => role.services.map((service) => ({
    service: service.service,
    ...(service.type ? { type: service.type } : {}),
    role: role.role,
    canSend: service.canSend.map((binding) => ({ action: binding.action, channels: binding.channelIds })),
    canReceive: service.canReceive.map((binding) => ({ action: binding.action, channels: binding.channelIds })),
  })));
  const receiving = services.flatMap((service) => service.canReceive).flatMap((binding) => binding.channels).find((id) => channels[id]?.url);
  const url = receiving ? channels[receiving]!.url : channels[party.defaultMshChannelId]?.url;
  return ebms2Endpoint.parse({
    cpaId: cpa.cpaid,
    agreement: { status: cpa.status, start: cpa.start, end: cpa.end },
    partyIds: party.partyIds,
    roles: [...new Set(party.roles.map((role) => role.role))],
    ...(url ? { url } : {}),
    defaultChannel: party.defaultMshChannelId,
    channels,
    services,
  });
}

/** A registry id for the partner from its first PartyId: CECID stays, a number gets its type (HER-8141253). */
export function partnerIdFor(party: CpaParty): string | undefined {
  const first = party.partyIds[0]!;
  const plain = first.id.toUpperCase().replace(/[^A-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  const prefix = (first.type ?? 'PARTY').toUpperCase().replace(/[^A-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  const id = /^[A-Z]/.test(plain) ? plain : `${prefix}-${plain}`;
  return /^[A-Z][A-Z0-9-]{1,31}$/.test(id) ? id : undefined;
}
