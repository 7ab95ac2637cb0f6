// The inbox contract: the deliveries a partner that receives by pull collects itself, for connectors to offer over
// their protocol (REST: GET /v1/inbox). The hub keeps them on the same durable consumers it pushes from, so a
// partner that switches between push and pull keeps its place and its channels' order (pipelines/inbox.ts).
import type { Envelope, SignatureInfo } from './envelope.ts';

/** One delivery handed out: it stays the partner's until acknowledged, or until the visibility timeout passes. */
export interface InboxItem {
  /** Opaque to the partner: names this handing of the delivery, and is of use to its receiver only. */
  token: string;
  envelope: Envelope;
  /** 1 the first time the delivery is handed out (pushed or collected), more after each return. */
  attempt: number;
}

/** A delivery the partner kept: the message's id and the token it was handed out with. */
export interface Acknowledgement { id: string; token: string }

/** How the hub evidenced an acknowledgement: the first receipt it holds for a message, or a repeat. */
export interface Acknowledged { id: string; from: string; stage: 'delivered' | 'redelivered' }

export interface Inbox {
  /**
   * Hands out up to `max` of the partner's waiting deliveries, its messages first, then at most one item of each
   * channel lane (the next only once that one is acknowledged, so they arrive in order). Waits up to `waitMs` for the
   * first when none is waiting. SWX_RECEIVES_BY_PUSH for a partner that receives by push.
   */
  collect(partnerId: string, max: number, waitMs: number): Promise<InboxItem[]>;
  /** The delivery a token names, when it is one of the partner's; SWX_NOT_FOUND otherwise. */
  delivery(partnerId: string, token: string): Promise<Envelope>;
  /**
   * Keeps the partner's signed acknowledgement as the receipt of each delivery it names (`delivered`, or
   * `redelivered` for a repeat), then settles them. Every token must be the partner's and name its message id, or
   * nothing is acknowledged.
   */
  acknowledge(partnerId: string, acknowledgements: Acknowledgement[], receipt: { raw: string; signature: SignatureInfo }): Promise<Acknowledged[]>;
}
