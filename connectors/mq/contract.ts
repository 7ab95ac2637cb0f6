// The MQ contract between the hub and agencies: which message properties (MQRFH2 `usr` folder, JMS user properties)
// carry the envelope, and how MQMD fields map to it. The body is the signed document itself, as for a file transfer:
// CMS SignedData or an XML document with an enveloped XMLDSig over the whole of it.
import { createHash } from 'node:crypto';
import type { Envelope } from '../../engine/envelope.ts';

/** Envelope properties, as a partner sets them on its messages and the hub on its deliveries. */
export const envelopeProperties = {
  to: 'swxTo',
  service: 'swxService',
  action: 'swxAction',
  messageId: 'swxMessageId',
  conversationId: 'swxConversationId',
  refTo: 'swxRefTo',
  contentType: 'swxContentType',
} as const;

/** Properties the hub adds to what it puts. */
export const hubProperties = { from: 'swxFrom', receivedAt: 'swxReceivedAt', code: 'swxCode' } as const;

/** What a delivery carries as properties: each property and the envelope field it holds (left out when empty). */
export const deliveryProperties: Record<string, keyof Envelope> = {
  [envelopeProperties.messageId]: 'id',
  [envelopeProperties.to]: 'to',
  [envelopeProperties.service]: 'service',
  [envelopeProperties.action]: 'action',
  [envelopeProperties.conversationId]: 'conversationId',
  [envelopeProperties.refTo]: 'refToMessageId',
  [envelopeProperties.contentType]: 'contentType',
  [hubProperties.from]: 'from',
  [hubProperties.receivedAt]: 'receivedAt',
};

const idBytes = 24;
export const noId = Buffer.alloc(idBytes);

/** A MsgId or CorrelId as an swx id: its hex, the id of a message that names none of its own. */
export const idOfMqId = (mqId: Buffer) => mqId.toString('hex');

/**
 * The MsgId (or CorrelId) that stands for an swx id: the bytes of an id that is itself a MsgId in hex, so a partner's
 * CorrelId can echo it as MQ replies do; else the first 24 bytes of its SHA-256. The full id travels as swxMessageId.
 */
export function mqIdOf(id: string): Buffer {
  if (/^[0-9a-f]{48}$/.test(id)) return Buffer.from(id, 'hex');
  return createHash('sha256').update(id).digest().subarray(0, idBytes);
}

/** MQ's Expiry (tenths of a second, -1 for ever) left to an envelope's time-to-live at `now`. */
export function expiryOf(envelope: Pick<Envelope, 'expiresAt'>, now = Date.now()): number {
  if (!envelope.expiresAt) return -1;
  return Math.max(1, Math.ceil((Date.parse(envelope.expiresAt) - now) / 100));
}

/** MQFMT_STRING for text the queue manager may convert, MQFMT_NONE for bytes (CMS, anything binary). */
export function formatOf(contentType: string): string {
  return /^(text\/|application\/([a-z0-9.+-]*\+)?(xml|json)\b)/i.test(contentType) ? 'MQSTR' : '';
}

/** The content type of a body whose sender named none: an XML document if it begins with '<', else CMS SignedData. */
export function contentTypeOf(body: Buffer): string {
  const start = body.subarray(0, 64).toString('utf8').replace(/^\uFEFF?\s*/, '');
  return start.startsWith('<') ? 'application/xml' : 'application/pkcs7-mime';
}
