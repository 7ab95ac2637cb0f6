// The hub's signed word on its REST replies: a message's acceptance (202) and every refusal, a query's answer and
// every refusal. Each is signed like a receipt (status, content type, digest and the message or query id it names),
// so that an agency can hold the hub to what it answered, a refusal too.
import { contentDigest, sign } from '../../engine/httpsig.ts';
import type { Seal } from '../../engine/http.ts';
import { envelopeHeaders, replyComponents } from './contract.ts';
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
