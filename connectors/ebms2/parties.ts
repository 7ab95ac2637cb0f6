// Who an ebMS 2.0 message is from and for, in the registry's terms: the sending partner is the one whose ebms2 endpoint
// (its CPA) has the message's CPAId and one of its From PartyIds; the swx receiver is the partner a To PartyId of the
// swx type names, or the one whose agreement names the To party; Service and Action map to the swx service and action,
// allowed only where the agreement lets the sender send them. Each fault is the ebMS error the MessageError reports.
import type { Partner, Registry } from '../../engine/registry.ts';
import { ebmsError, EbmsRefusal, type RefusedMessage } from './ebms-error.ts';
import { ebms2Endpoint, type Ebms2Channel, type Ebms2Endpoint } from './endpoint.ts';
import { mshService, type EbmsMessage, type PartyId } from './message.ts';
import { samePartyId, swxPartyIdType, swxServiceType, type Ebms2Settings } from './settings.ts';

export interface Ebms2Partner { partner: Partner; endpoint: Ebms2Endpoint }

const header = 'xpointer(/SOAP:Envelope/SOAP:Header/eb:MessageHeader)';

/** The partners with an ebms2 endpoint, each endpoint read through its schema. */
export function ebms2Partners(registry: Registry): Ebms2Partner[] {
  return registry.listPartners().flatMap((partner) => {
    const parsed = ebms2Endpoint.safeParse(partner.endpoints.ebms2);
    return partner.enabled && parsed.success ? [{ partner, endpoint: parsed.data }] : [];
  });
}

export function refusedOf(message: EbmsMessage): RefusedMessage {
  const { from, to, cpaId, conversationId, messageId } = message.header;
  return { from, to, cpaId, conversationId, messageId };
}

/** The sending partner: CPAId and a From PartyId of one registered agreement (ValueNotRecognized when none). */
export function senderOf(registry: Registry, message: EbmsMessage): Ebms2Partner {
  const { cpaId, from } = message.header;
  const byCpa = ebms2Partners(registry).filter((candidate) => candidate.endpoint.cpaId === cpaId);
  if (byCpa.length === 0) throw new EbmsRefusal([ebmsError('ValueNotRecognized', `CPAId ${JSON.stringify(cpaId.slice(0, 120))} names no agreement this hub holds`, `${header}/eb:CPAId`)], refusedOf(message));
  const parties = byCpa.filter((candidate) => from.partyIds.some((id) => candidate.endpoint.partyIds.some((known) => samePartyId(id, known))));
  // Several swx partners behind one MSH (another hub) share its PartyId: a From PartyId of the swx type says which.
  const named = from.partyIds.find((id) => id.type === swxPartyIdType)?.id;
  const found = parties.find((candidate) => candidate.partner.id === named) ?? (parties.length === 1 || named === undefined ? parties[0] : undefined);
  if (!found) throw new EbmsRefusal([ebmsError('Inconsistent', `no From PartyId is the partner's in agreement ${cpaId.slice(0, 120)}`, `${header}/eb:From`)], refusedOf(message));
  return found;
}

/** The hub is the To party: one To PartyId is the hub's own or names a swx partner (Inconsistent otherwise). */
export function checkAddressedToHub(message: EbmsMessage, settings: Ebms2Settings): void {
  const ids = message.header.to.partyIds;
  if (ids.some((id) => id.type === swxPartyIdType || settings.partyIds.some((own) => samePartyId(own, id)))) return;
  throw new EbmsRefusal([ebmsError('Inconsistent', `the To party (${ids.map(show).join(', ').slice(0, 200)}) is not this hub (${settings.partyIds.map(show).join(', ') || 'no PartyId set in connectors.ebms2.partyIds'})`, `${header}/eb:To`)], refusedOf(message));
}

const show = (id: PartyId) => (id.type ? `${id.type}:${id.id}` : id.id);

/**
 * The swx receiver: the To PartyId of the swx partner type, else the partner (not the sender) whose agreement names a
 * To PartyId; undefined when the To party is the hub alone (a topic or channel service needs no receiver).
 */
export function receiverOf(registry: Registry, message: EbmsMessage, sender: Partner): string | undefined {
  const ids = message.header.to.partyIds;
  const named = ids.find((id) => id.type === swxPartyIdType);
  if (named) return named.id;
  return ebms2Partners(registry).find((candidate) => candidate.partner.id !== sender.id && ids.some((id) => candidate.endpoint.partyIds.some((known) => samePartyId(id, known))))?.partner.id;
}

/**
 * The channel the agreement binds the message to, as the sender sends it: the channel of its Service and Action among
 * what the partner may send (ValueNotRecognized when it may not); an MSH signal travels on the default channel.
 */
export function inboundChannel(endpoint: Ebms2Endpoint, message: EbmsMessage): Ebms2Channel {
  if (message.signal || message.header.service.value === mshService) return endpoint.channels[endpoint.defaultChannel]!;
  const { service, action } = message.header;
  const binding = endpoint.services
    .filter((entry) => entry.service === service.value && (service.type === undefined || entry.type === undefined || entry.type === service.type))
    .flatMap((entry) => entry.canSend).find((candidate) => candidate.action === action);
  if (!binding) {
    throw new EbmsRefusal([ebmsError('ValueNotRecognized', `agreement ${endpoint.cpaId} does not let this party send Service ${JSON.stringify(service.value.slice(0, 120))} Action ${JSON.stringify(action.slice(0, 60))}`, `${header}/eb:Action`)], refusedOf(message));
  }
  return endpoint.channels[binding.channels[0]!]!;
}

const swxService = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const swxToken = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The swx service and action of a business message: the Service value (or its mapping in settings) and the Action. */
export function swxServiceOf(message: EbmsMessage, settings: Ebms2Settings): { service: string; action: string } {
  const { service, action } = message.header;
  const mapped = settings.services[service.value] ?? service.value;
  if (!swxService.test(mapped)) {
    throw new EbmsRefusal([ebmsError('ValueNotRecognized', `Service ${JSON.stringify(service.value.slice(0, 120))} is no swx service id and connectors.ebms2.services maps it to none`, `${header}/eb:Service`)], refusedOf(message));
  }
  if (!swxToken.test(action)) {
    throw new EbmsRefusal([ebmsError('ValueNotRecognized', `Action ${JSON.stringify(action.slice(0, 60))} is not 1-128 characters of letters, digits and . _ : @ -`, `${header}/eb:Action`)], refusedOf(message));
  }
  return { service: mapped, action };
}

/**
 * The partner's binding for a delivery of swx `service` and `action`: the agreement's Service (by value, or mapped by
 * settings) the partner may receive the action of, and the channel it receives it on; undefined when there is none.
 */
export function outboundBinding(endpoint: Ebms2Endpoint, service: string, action: string, settings: Ebms2Settings): { service: { value: string; type?: string }; channelId: string; channel: Ebms2Channel } | undefined {
  const values = new Set([service, ...Object.entries(settings.services).filter(([, swx]) => swx === service).map(([ebms]) => ebms)]);
  for (const entry of endpoint.services) {
    if (!values.has(entry.service)) continue;
    const binding = entry.canReceive.find((candidate) => candidate.action === action);
    const channelId = binding?.channels.find((id) => endpoint.channels[id]);
    // ebMS 2.0 (3.1.5): a Service without a type is a URI; a swx service id travels with the swx service type.
    const type = entry.type ?? (/^[A-Za-z][A-Za-z0-9+.-]*:\S/.test(entry.service) ? undefined : swxServiceType);
    if (channelId) return { service: { value: entry.service, ...(type ? { type } : {}) }, channelId, channel: endpoint.channels[channelId]! };
  }
  return undefined;
}
