// The REST contract between the hub and agencies, shared by the hub's connector and the agency toolkit:
// which headers carry the envelope and which message components every signature must cover.

export const messagePath = '/v1/messages';

/** Envelope headers an agency sets; the optional ones are signed whenever present. */
export const envelopeHeaders = {
  to: 'swx-to',
  service: 'swx-service',
  action: 'swx-action',
  conversationId: 'swx-conversation-id',
  refTo: 'swx-ref-to',
  messageId: 'swx-message-id',
} as const;

/** Headers the hub adds when it delivers. */
export const deliveryHeaders = { from: 'swx-from', receivedAt: 'swx-received-at' } as const;

/** What every message's signature covers; Swx-To too when present (a message to a topic or channel has none). */
export const requiredRequestComponents = ['@method', '@target-uri', 'content-type', 'content-digest', envelopeHeaders.service];
/** What the hub's signature on a delivery covers: a delivery always names its receiver, sender and id. */
export const deliveryComponents = [...requiredRequestComponents, envelopeHeaders.to, envelopeHeaders.messageId, deliveryHeaders.from];

/** `base`, and every Swx-* header present (lower-case names): none can be added or changed in transit. */
function withSwxHeaders(base: string[], headers: Record<string, unknown>): string[] {
  return [...base, ...Object.keys(headers).filter((name) => name.startsWith('swx-') && headers[name] !== undefined && !base.includes(name))];
}

/** Components to sign for a message with these (lower-case) headers. */
export function requestComponents(headers: Record<string, unknown>): string[] {
  return withSwxHeaders(requiredRequestComponents, headers);
}

/** A receipt is the receiver's signed 2xx answer; it names the message it acknowledges. */
export const receiptComponents = ['@status', 'content-type', 'content-digest', envelopeHeaders.messageId];
/** What a signed reply covers: a receipt's components, less the id when the reply names none (a refusal before any id). */
export const replyComponents = (named: boolean) => named ? receiptComponents : receiptComponents.filter((name) => name !== envelopeHeaders.messageId);

/** Queries (即時查證): an asker POSTs `{ keys, provider? }` to /v1/query/<dataset>; the hub POSTs `{ queryId, dataset,
 * asker, keys }` to the provider's query endpoint; both answers are signed like receipts (receiptComponents). */
export const queryPath = '/v1/query';
export const queryRequestComponents = ['@method', '@target-uri', 'content-type', 'content-digest'];
/** Components to sign for a query with these (lower-case) headers. */
export function queryComponents(headers: Record<string, unknown>): string[] {
  return withSwxHeaders(queryRequestComponents, headers);
}
/** What the hub's request to a provider covers: whose query it is and its id. */
export const providerRequestComponents = [...queryRequestComponents, envelopeHeaders.messageId, deliveryHeaders.from];

/** Message status: the sender GETs /v1/messages/<id> (a receiver adds `?from=<sender>`); the request has no body, so
 * its signature covers the method and the target URI with its query; the answer is signed like a receipt. */
export const statusRequestComponents = ['@method', '@target-uri'];
/** Components to sign for a status request with these (lower-case) headers. */
export function statusComponents(headers: Record<string, unknown>): string[] {
  return withSwxHeaders(statusRequestComponents, headers);
}
/**
 * The pull inbox of an agency that receives by pull: it lists what waits for it (GET /v1/inbox?max=&wait=), downloads
 * a payload too large to list inline (GET /v1/inbox/payload/<token>, Range allowed) and acknowledges what it kept
 * (POST /v1/inbox/ack, `{ messages: [{ id, token }], receipt? }`). The hub's answers are signed like its other replies;
 * a payload's answer signs the digest of the whole payload (Repr-Digest), known before its first byte is sent.
 */
export const inboxPath = '/v1/inbox';
export const inboxPayloadPath = `${inboxPath}/payload`;
export const inboxAckPath = `${inboxPath}/ack`;
/** Components to sign for an inbox request: a GET has no body, so no content type or digest. */
export function inboxComponents(method: 'GET' | 'POST', headers: Record<string, unknown>): string[] {
  return withSwxHeaders(method === 'GET' ? statusRequestComponents : queryRequestComponents, headers);
}
/** What the hub's answer with a payload, or the range of it asked for, covers. */
export const payloadReplyComponents = (partial: boolean) => [
  '@status', 'content-type', 'repr-digest', envelopeHeaders.messageId, deliveryHeaders.from, ...(partial ? ['content-range'] : []),
];
