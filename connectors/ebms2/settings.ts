// The ebMS 2.0 connector's hub-wide settings (`connectors.ebms2` in swx.json): the hub's own PartyIds, which name it in
// agreements (From of what it sends, To of what it receives), where partners' MSHs post, and the limits it keeps.
import { z } from 'zod';
import { connectorSettings } from '../../engine/connector.ts';
import type { PartyId } from './message.ts';

/** The PartyId type that names a swx partner (the final sender or receiver behind an MSH) beside an MSH's own PartyIds. */
export const swxPartyIdType = 'urn:swx:partner';

/** The Service type a swx service id travels with where the agreement names no type (a Service without one is a URI). */
export const swxServiceType = 'urn:swx:service';

export const ebms2Settings = connectorSettings.extend({
  partyIds: z.array(z.object({ id: z.string().min(1), type: z.string().min(1).optional() }).strict()).default([])
    .describe('the hub\'s own PartyIds in its agreements (CPA), with their types: From of every message it sends; needed to send'),
  path: z.string().regex(/^\/[A-Za-z0-9/_-]*$/).default('/ebms2').describe('where partners\' MSHs POST ebMS 2.0 messages on the agency port'),
  maxMessageBytes: z.number().int().positive().optional()
    .describe('the largest ebMS 2.0 message read (envelope and attachments, held whole: the signature covers them); default and ceiling limits.maxBodyBytes'),
  persistSeconds: z.number().int().positive().default(7 * 24 * 3600)
    .describe('how long received MessageIds and their Acknowledgments are kept for duplicate elimination at most; each agreement\'s PersistDuration is judged within it'),
  defaultPersistSeconds: z.number().int().positive().default(24 * 3600)
    .describe('how long a received MessageId is kept where its agreement names no PersistDuration'),
  services: z.record(z.string().min(1), z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/)).default({})
    .describe('ebMS Service value → swx service id, where they differ (by default the Service value is the swx service id)'),
});

export type Ebms2Settings = z.output<typeof ebms2Settings>;

/** The same PartyId: equal id, and equal type where both name one. */
export const samePartyId = (a: PartyId, b: PartyId) => a.id === b.id && (a.type ?? '') === (b.type ?? '');
