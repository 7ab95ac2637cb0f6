// What became of a message, as its sender asks: the message's facts and, per receiver, the state of its delivery with
// the receiver's signed receipt as the hub holds it, so that an agency can prove delivery without the hub's operator.
// Protocol-neutral: a connector answers with it; the evidence archive provides it (pipelines/status.ts).
import type { SignatureInfo } from './envelope.ts';
import { SwxError, type ErrorCode } from './errors.ts';

/** Each state of a receiver's copy, with what it means: the README and the OpenAPI document show these. */
export const receiverStates = {
  waiting: 'the hub holds the message for this receiver; nothing about its copy is archived yet',
  routed: 'stored for delivery; no answer from the receiver yet (one that cannot be reached stays here while the hub retries)',
  failing: 'the receiver refused it (`code` says why); it is retried',
  delivered: 'delivered: the receiver\'s signed receipt is held',
  redelivered: 'delivered, and delivered again since (delivery is at least once); the receipt is the first one',
  dead_lettered: 'given up (`code` says why); an operator may resend it',
  resent: 'put back for delivery by an operator',
} as const;

export type ReceiverState = keyof typeof receiverStates;

/** The receiver's acknowledgement, as the `delivered` evidence record keeps it. */
export interface HeldReceipt {
  /** Base64 of the receipt as received: status line, signature headers, digest and body (MQ: the commit it was put under). */
  raw: string;
  /**
   * The receiver's signature as the hub checked it: RFC 9421 signature base, key id and certificate. Absent for an
   * MQ delivery, whose acknowledgement is its queue manager's commit, not a signature.
   */
  signature?: SignatureInfo;
}

export interface ReceiverStatus {
  to: string;
  state: ReceiverState;
  /** When the receiver's copy reached this state (absent while waiting). */
  at?: string;
  routedAt?: string;
  deliveredAt?: string;
  /** Why the last attempt failed, or why the copy was given up. */
  code?: ErrorCode;
  detail?: string;
  receipt?: HeldReceipt;
}

export interface MessageStatus {
  id: string;
  from: string;
  service: string;
  action: string;
  conversationId: string;
  receivedAt: string;
  size: number;
  sha256: string;
  topic?: string;
  channel?: string;
  /** `accepted`: stored and delivered to each receiver in turn; `rejected`: refused when it was sent (`code`). */
  state: 'accepted' | 'rejected';
  /** False while the message's evidence is not archived yet: each receiver is `waiting`; ask again shortly. */
  archived: boolean;
  code?: ErrorCode;
  detail?: string;
  receivers: ReceiverStatus[];
}

export interface Messages {
  /**
   * What became of message `id` sent by `from`, as `asker` may see it (asSeenBy); undefined when there is no such
   * message or the asker may not see it. Throws SwxError: SWX_UNAVAILABLE where no evidence archive can be read.
   */
  status(from: string, id: string, asker: string): Promise<MessageStatus | undefined>;
}

/**
 * The sender sees every receiver; a receiver sees its own entry alone; anyone else nothing, as if the message did not
 * exist (its id is not to be confirmed to others).
 */
export function asSeenBy(status: MessageStatus, asker: string): MessageStatus | undefined {
  if (asker === status.from) return status;
  const own = status.receivers.filter((receiver) => receiver.to === asker);
  return own.length > 0 ? { ...status, receivers: own } : undefined;
}

/** The answer of a hub process that does not archive evidence: only the one that does can say. */
export const unarchivedMessages: Messages = {
  status: () => Promise.reject(new SwxError('SWX_UNAVAILABLE', 'this hub process does not archive evidence, so it cannot tell a message\'s state; ask again (a hub that archives answers)')),
};
