// AS4 reception awareness (AS4 profile 3.2), as pure functions over state the caller keeps: the sender's retry
// schedule (every resend keeps the MessageId and the signed bytes), the receipt judged against what was signed, a
// missing receipt after the last retry raising EBMS:0301. The receiver's duplicate detection is duplicates.ts.
import type { ResendStep } from '../../engine/outbound.ts';
import { EbmsError } from './errors.ts';
import type { ReferenceCopy, SignalError, SignalMessage } from './model.ts';

export interface RetryPolicy {
  /** The waits (seconds) after each send before the next; after the last, the last wait again before giving up. */
  retrySeconds: readonly number[];
}

/** A UserMessage sent and not yet answered by its receipt. */
export interface Outstanding {
  messageId: string;
  /** Sends so far, the first included. */
  attempts: number;
  firstSentAt: number;
  lastSentAt: number;
}

export type NextStep =
  | { kind: 'resend'; messageId: string; at: number }
  | { kind: 'wait'; until: number }
  | { kind: 'failed'; error: EbmsError };

/**
 * What to do about a message still without its receipt at `now`: resend it (same MessageId) when its wait has run,
 * wait for the receipt after the last resend, or fail with EBMS:0301 (MissingReceipt) once that wait has run too.
 */
export function nextStep(outstanding: Outstanding, policy: RetryPolicy, now: number): NextStep {
  const { retrySeconds } = policy;
  if (outstanding.attempts <= retrySeconds.length) {
    return { kind: 'resend', messageId: outstanding.messageId, at: outstanding.lastSentAt + retrySeconds[outstanding.attempts - 1]! * 1000 };
  }
  const until = outstanding.lastSentAt + (retrySeconds.at(-1) ?? 0) * 1000;
  if (now < until) return { kind: 'wait', until };
  return { kind: 'failed', error: missingReceipt(outstanding, now) };
}

/** EBMS:0301 (MissingReceipt) for a message whose sends are spent. */
function missingReceipt(outstanding: Outstanding, now: number): EbmsError {
  const seconds = Math.round((now - outstanding.firstSentAt) / 1000);
  return new EbmsError('EBMS:0301', `no receipt for ${outstanding.messageId} after ${outstanding.attempts} sends over ${seconds} s`, { refToMessageInError: outstanding.messageId });
}

/**
 * The delivery stage's schedule for a UserMessage sent under `policy` (engine/outbound.ts UnansweredDelivery): after
 * each send left without a receipt, the resend nextStep gives, or EBMS:0301 once the sends are spent.
 */
export function resendSchedule(messageId: string, policy: RetryPolicy): (sends: number, firstSentAt: number, now: number) => ResendStep {
  return (sends, firstSentAt, now) => {
    const outstanding: Outstanding = { messageId, attempts: sends, firstSentAt, lastSentAt: now };
    const step = nextStep(outstanding, policy, now);
    if (step.kind === 'resend') return { kind: 'resend', at: step.at };
    // The receipt answers on the connection (sync reply): after the last send there is nothing left to wait for.
    return failed(missingReceipt(outstanding, now));
  };
}

/**
 * The schedule of a UserMessage whose receipt comes on its own (async reply), from the sends the outbound recorded:
 * the next resend counted from the last send, not from when the delivery stopped waiting; after the last send, one
 * more attempt once its wait has run, which sends nothing (AwaitedReceipts: the receipt may be there by then), then
 * EBMS:0301.
 */
export function awaitSchedule(outstanding: Outstanding, policy: RetryPolicy): (sends: number, firstSentAt: number, now: number) => ResendStep {
  return (_sends, _firstSentAt, now) => {
    const step = nextStep(outstanding, policy, now);
    if (step.kind === 'failed') return failed(step.error);
    return { kind: 'resend', at: step.kind === 'resend' ? step.at : step.until };
  };
}

const failed = (error: EbmsError): ResendStep => ({ kind: 'failed', code: 'SWX_RECEIPT_MISSING', detail: `${error.code} ${error.shortDescription}: ${error.detail}` });

/** The message as sent: its MessageId and the references of its signature, which a non-repudiation receipt must copy. */
export interface SentMessage {
  messageId: string;
  references: readonly ReferenceCopy[];
}

/**
 * Judges a Receipt for a sent message: it must answer that MessageId and, when a non-repudiation receipt is required,
 * copy every reference of the message's signature with the same digest. EBMS:0302 (InvalidReceipt) naming the first
 * difference; undefined when it holds. Whether the receipt's own signature checks out is the caller's WS-Security check.
 */
export function checkReceipt(receipt: SignalMessage, sent: SentMessage, nonRepudiation: boolean): EbmsError | undefined {
  const invalid = (detail: string) => new EbmsError('EBMS:0302', detail, { refToMessageInError: receipt.messageInfo.messageId });
  if (!receipt.receipt) return invalid(`signal ${receipt.messageInfo.messageId} holds no eb:Receipt`);
  if (receipt.messageInfo.refToMessageId !== sent.messageId) {
    return invalid(`the receipt answers ${receipt.messageInfo.refToMessageId ?? 'no message'}, not ${sent.messageId}`);
  }
  if (!nonRepudiation) return undefined;
  const copied = new Map(receipt.receipt.nonRepudiation.map((reference) => [reference.uri, reference]));
  if (copied.size === 0) return invalid(`the receipt for ${sent.messageId} holds no non-repudiation information, and the P-Mode asks for it`);
  for (const reference of sent.references) {
    const copy = copied.get(reference.uri);
    if (!copy) return invalid(`the receipt for ${sent.messageId} does not copy the signature's reference ${reference.uri.slice(0, 120)}`);
    if (copy.digestValue !== reference.digestValue || copy.digestMethod !== reference.digestMethod) {
      return invalid(`the receipt for ${sent.messageId} copies reference ${reference.uri.slice(0, 120)} with another digest than was signed`);
    }
  }
  return undefined;
}

/** Whether an Error signal answering a sent message ends it (a failure) or lets it stand (warnings only). */
export function errorsEnd(errors: readonly SignalError[]): boolean {
  return errors.some((error) => error.severity === 'failure');
}
