// The hub's signed word on its REST replies: a message's acceptance (202) and every refusal, a query's answer and
// every refusal. Each is signed like a receipt (status, content type, digest and the message or query id it names),
// so that an agency can hold the hub to what it answered, a refusal too; and its answers with a payload from an inbox.
import { contentDigest, sign } from '../../engine/httpsig.ts';
import type { Seal } from '../../engine/http.ts';
import type { Envelope } from '../../engine/envelope.ts';
import { deliveryHeaders, envelopeHeaders, payloadReplyComponents, replyComponents } from './contract.ts';
import type { HubIdentity } from '../../engine/identity.ts';

/** The seal for a reply naming `id` (the message or query it is about), or none when the refusal came before one. */
export function hubSeal(signing: HubIdentity['signing']): (id: string | undefined) => Seal {
  return (id) => (status, headers, body) => {
    const named = Boolean(id);
    headers['content-digest'] = contentDigest(body);
    if (named) headers[envelopeHeaders.messageId] = id!;
    Object.assign(headers, sign({ status, headers }, { ...signing, components: replyComponents(named) }));
  };
}

/**
 * The seal for an answer carrying a message's payload, or a range of it: it signs the SHA-256 of the whole payload
 * (Repr-Digest), so the answer is signed before its bytes stream, and the receiver checks them once it holds them all.
 */
export function payloadSeal(signing: HubIdentity['signing'], envelope: Pick<Envelope, 'id' | 'from' | 'sha256'>): (status: number, headers: Record<string, string>) => void {
  return (status, headers) => {
    headers['repr-digest'] = `sha-256=:${Buffer.from(envelope.sha256, 'hex').toString('base64')}:`;
    headers[envelopeHeaders.messageId] = envelope.id;
    headers[deliveryHeaders.from] = envelope.from;
    Object.assign(headers, sign({ status, headers }, { ...signing, components: payloadReplyComponents(status === 206) }));
  };
}
