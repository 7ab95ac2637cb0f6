// The AS4 connector's hub-wide settings (`connectors.as4` in swx.json): the hub's own PartyId and Role as an MSH, where
// partners' MSHs POST, and the bounds of what it reads; and the algorithm the hub signs with under a partner's profile.
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { connectorSettings } from '../../engine/connector.ts';
import { SwxError } from '../../engine/errors.ts';
import { ebmsDefaults, type PartyId } from './model.ts';
import type { ProfileName } from './pmode.ts';

/** The PartyId type the hub writes for its own PartyId unless told, and reads a partner id by (see the README). */
export const swxPartyIdType = 'urn:oasis:names:tc:ebcore:partyid-type:unregistered:swx';

export const as4Settings = connectorSettings.extend({
  partyId: z.object({
    id: z.string().min(1).max(256),
    type: z.string().min(1).max(256).default(swxPartyIdType),
  }).strict().default({ id: 'swx', type: swxPartyIdType })
    .describe('the hub\'s own eb:PartyId: From of what it sends, To of what partners send to the hub itself'),
  role: z.string().min(1).max(2048).default(ebmsDefaults.role).describe('the hub\'s eb:Role'),
  path: z.string().regex(/^\/[A-Za-z0-9/._-]{0,200}$/).default('/as4').describe('where partners\' MSHs POST on the agency port'),
  maxMessageBytes: z.number().int().positive().optional().describe('largest AS4 HTTP body read (default limits.maxBodyBytes)'),
  maxPayloadBytes: z.number().int().positive().optional()
    .describe('largest payload held whole after inflation, received or sent, several of one message in all (default limits.inlinePayloadBytes); larger ones stream through the Object Store'),
  duplicateHorizonSeconds: z.number().int().positive().max(365 * 24 * 3600).default(7 * 24 * 3600)
    .describe('how long received MessageIds and their receipts are kept; a P-Mode\'s duplicate window is honoured up to this'),
  receiverProperty: z.string().min(1).max(128).default('finalRecipient')
    .describe('the eb:MessageProperties property naming the swx receiver of a message addressed to the hub\'s own PartyId'),
});

export type As4Settings = z.infer<typeof as4Settings>;

/** The hub's own PartyId as written and compared. */
export const hubParty = (settings: As4Settings): PartyId => ({ id: settings.partyId.id, type: settings.partyId.type });

export const sameParty = (a: PartyId, b: PartyId) => a.id === b.id && (a.type ?? '') === (b.type ?? '');

/**
 * The signature algorithm the hub signs with under `profile`, which its key type decides: the profile fixes RSA-SHA256
 * (eDelivery AS4 1.x) or Ed25519 (2.0), and a key of another type cannot make it (SWX_SIG_ALG_UNSUPPORTED).
 */
export function signatureFor(profile: ProfileName, key: KeyObject): 'rsa-sha256' | 'ed25519' {
  const wanted = profile === 'eDelivery-AS4-2.0' ? 'ed25519' as const : 'rsa-sha256' as const;
  const type = key.asymmetricKeyType;
  if ((wanted === 'ed25519' && type !== 'ed25519') || (wanted === 'rsa-sha256' && type !== 'rsa')) {
    throw new SwxError('SWX_SIG_ALG_UNSUPPORTED', `${profile} signs with ${wanted === 'ed25519' ? 'Ed25519' : 'RSA-SHA256'}, and the hub's signing key is ${type ?? 'of an unknown type'}: the hub needs a signing certificate with ${wanted === 'ed25519' ? 'an Ed25519' : 'an RSA (swx pki init --alg rsa)'} key, or the partner the other profile`);
  }
  return wanted;
}
