// Who an AS4 message is from and to, and which swx service it is, as the registry's `as4` endpoints (P-Modes) say:
// the sender by its From PartyId (and AgreementRef when its P-Mode names one), the receiver by its To PartyId, the
// service and action by the P-Mode's services. Each refusal is the ebMS error the specification gives it.
import type { Partner, Registry } from '../../engine/registry.ts';
import { EbmsError } from './errors.ts';
import type { CollaborationInfo, PartyId, UserMessage } from './model.ts';
import { as4Endpoint, type As4Endpoint } from './pmode.ts';
import { hubParty, sameParty, swxPartyIdType, type As4Settings } from './settings.ts';

export interface As4Partner { partner: Partner; pmode: As4Endpoint }

/** The enabled partners with an `as4` endpoint, each with its P-Mode as its schema reads it. */
export function as4Partners(registry: Registry): As4Partner[] {
  const found: As4Partner[] = [];
  for (const partner of registry.listPartners()) {
    const endpoint = partner.endpoints.as4;
    if (!partner.enabled || !endpoint) continue;
    const parsed = as4Endpoint.safeParse(endpoint);
    if (parsed.success) found.push({ partner, pmode: parsed.data });
  }
  return found;
}

const hasParty = (pmode: As4Endpoint, ids: readonly PartyId[]) => ids.some((id) => pmode.partyIds.some((own) => sameParty(own, id)));

/**
 * The partner whose P-Mode has one of the From PartyIds and, when the P-Mode names an agreement, the message's
 * AgreementRef. EBMS:0010 (ProcessingModeMismatch) when none has, or more than one.
 */
export function senderOf(registry: Registry, message: UserMessage): As4Partner {
  const { agreementRef } = message.collaboration;
  const matches = as4Partners(registry).filter(({ pmode }) => hasParty(pmode, message.from.partyIds)
    && (!pmode.agreement || (agreementRef?.value === pmode.agreement.ref && (!pmode.agreement.pmode || !agreementRef.pmode || agreementRef.pmode === pmode.agreement.pmode))));
  const from = message.from.partyIds.map((id) => `${id.type ? `${id.type}:` : ''}${id.id}`).join(', ').slice(0, 300);
  const options = { refToMessageInError: message.messageInfo.messageId, swxCode: 'SWX_AUTH_UNKNOWN_CERT' as const };
  if (matches.length === 0) {
    throw new EbmsError('EBMS:0010', `no P-Mode of this hub has From PartyId ${from}${agreementRef ? ` with AgreementRef ${agreementRef.value.slice(0, 200)}` : ''}`, options);
  }
  if (matches.length > 1) throw new EbmsError('EBMS:0010', `From PartyId ${from} matches the P-Modes of ${matches.map((m) => m.partner.id).join(', ')}: give each its AgreementRef`, options);
  return matches[0]!;
}

/**
 * The swx receiver of a message, by its To PartyId: the hub's own PartyId names the receiver in the MessageProperty
 * `settings.receiverProperty` (none: a topic's or channel's service addresses no one); a partner's AS4 PartyId names
 * that partner; a PartyId of the swx type names the partner of that id. EBMS:0001 (ValueNotRecognized) otherwise.
 */
export function receiverOf(registry: Registry, message: UserMessage, settings: As4Settings): string | undefined {
  const to = message.to.partyIds;
  const error = (detail: string) => new EbmsError('EBMS:0001', detail, { refToMessageInError: message.messageInfo.messageId, swxCode: 'SWX_UNKNOWN_RECEIVER' });
  if (to.some((id) => sameParty(id, hubParty(settings)))) {
    return message.properties.find((property) => property.name === settings.receiverProperty)?.value;
  }
  const byParty = as4Partners(registry).filter(({ pmode }) => hasParty(pmode, to));
  if (byParty.length === 1) return byParty[0]!.partner.id;
  if (byParty.length > 1) throw error(`To PartyId ${to[0]?.id.slice(0, 200)} is the PartyId of several partners: ${byParty.map((m) => m.partner.id).join(', ')}`);
  const named = to.find((id) => id.type === swxPartyIdType && registry.partner(id.id));
  if (named) return named.id;
  throw error(`To PartyId ${to.map((id) => id.id).join(', ').slice(0, 200)} is neither this hub's (${settings.partyId.id}) nor a partner's`);
}

/**
 * The swx service and action of a message: the P-Mode's service of that eb:Service value and type (its `swx` id, else
 * the value itself), with the eb:Action among its actions. EBMS:0010 (ProcessingModeMismatch) otherwise.
 */
export function serviceOf(pmode: As4Endpoint, collaboration: CollaborationInfo, messageId: string): { service: string; action: string } {
  const { service, action } = collaboration;
  const entry = pmode.services.find((s) => s.service === service.value && (s.type ?? '') === (service.type ?? ''));
  const mismatch = (detail: string) => new EbmsError('EBMS:0010', detail, { refToMessageInError: messageId, swxCode: 'SWX_ACL_DENIED' });
  if (!entry) throw mismatch(`the P-Mode has no eb:Service ${service.value.slice(0, 200)}${service.type ? ` of type ${service.type.slice(0, 200)}` : ''}`);
  if (!entry.actions.includes(action)) throw mismatch(`the P-Mode allows eb:Action ${entry.actions.join(', ').slice(0, 300)} with ${service.value.slice(0, 200)}, not ${action.slice(0, 200)}`);
  return { service: entry.swx ?? service.value, action };
}

/** The P-Mode's eb:Service for a swx service, the other way; undefined when it has none. */
export function as4ServiceFor(pmode: As4Endpoint, swxService: string, action: string): { value: string; type?: string } | undefined {
  const entry = pmode.services.find((s) => (s.swx ?? s.service) === swxService && s.actions.includes(action));
  return entry && { value: entry.service, ...(entry.type ? { type: entry.type } : {}) };
}
