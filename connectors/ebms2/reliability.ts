// ebMS 2.0 reliable messaging (6.4) as pure decisions over state the connector keeps (the delivery stage counts the sends):
// the sending side resends a message on RetryInterval until it is acknowledged, at most Retries times, then reports a
// DeliveryFailure; the receiving side delivers a message once within PersistDuration and answers a duplicate with the
// Acknowledgment it stored. Times are epoch milliseconds; nothing here reads a clock or does I/O.
import type { ResendStep } from '../../engine/outbound.ts';
import { ebmsError, type EbmsError } from './ebms-error.ts';
import type { DsReference, EbmsMessage } from './message.ts';

export interface RetryPolicy {
  /** Resends after the first attempt (CPA Retries). */
  retries: number;
  retryIntervalMs: number;
}

/** A message sent with AckRequested, until it is acknowledged or given up. */
export interface Outstanding {
  messageId: string;
  /** Attempts made so far (the first send is 1). */
  attempts: number;
  lastSentAt: number;
  /** Its TimeToLive: no attempt after it. */
  expiresAt?: number;
  /** The references of the signature it was sent with: a signed Acknowledgment must repeat them (6.3.2.4). */
  signatureReferences: DsReference[];
  /** The agreement asks for a signed Acknowledgment. */
  signedAckRequested: boolean;
  state: 'waiting' | 'acknowledged' | 'failed';
  failure?: EbmsError;
}

export function sent(message: { messageId: string; timeToLive?: string; signatureReferences?: DsReference[] }, signedAckRequested: boolean, at: number): Outstanding {
  return {
    messageId: message.messageId,
    attempts: 1,
    lastSentAt: at,
    ...(message.timeToLive ? { expiresAt: Date.parse(message.timeToLive) } : {}),
    signatureReferences: message.signatureReferences ?? [],
    signedAckRequested,
    state: 'waiting',
  };
}

export type NextStep =
  | { kind: 'wait'; until: number }
  | { kind: 'resend'; outstanding: Outstanding }
  | { kind: 'fail'; outstanding: Outstanding }
  | { kind: 'done' };

/** What to do with an outstanding message at `now`: wait for the interval, send it again (same MessageId), or give up. */
export function nextStep(outstanding: Outstanding, policy: RetryPolicy, now: number): NextStep {
  if (outstanding.state !== 'waiting') return { kind: 'done' };
  const due = outstanding.lastSentAt + policy.retryIntervalMs;
  if (now < due) return { kind: 'wait', until: due };
  const expired = outstanding.expiresAt !== undefined && now >= outstanding.expiresAt;
  if (expired || outstanding.attempts > policy.retries) {
    const why = expired ? `its TimeToLive passed before it was acknowledged` : `no Acknowledgment after ${outstanding.attempts} attempts, ${policy.retryIntervalMs} ms apart`;
    const failure = ebmsError('DeliveryFailure', `message ${outstanding.messageId}: ${why}`);
    return { kind: 'fail', outstanding: { ...outstanding, state: 'failed', failure } };
  }
  return { kind: 'resend', outstanding: { ...outstanding, attempts: outstanding.attempts + 1, lastSentAt: now } };
}

/**
 * The delivery stage's schedule for a message sent with AckRequested under `policy` (engine/outbound.ts
 * UnansweredDelivery): after each send left without its Acknowledgment, what nextStep finds once RetryInterval has run
 * — a resend then, or DeliveryFailure. The Acknowledgment answers on the connection (SyncReply), so nothing can come
 * in between to change it.
 */
export function resendSchedule(message: { messageId: string; timeToLive?: string }, policy: RetryPolicy): (sends: number, firstSentAt: number, now: number) => ResendStep {
  return (sends, firstSentAt, now) => {
    const outstanding: Outstanding = { ...sent(message, false, firstSentAt), attempts: sends, lastSentAt: now };
    const step = nextStep(outstanding, policy, now + policy.retryIntervalMs);
    if (step.kind === 'resend') return { kind: 'resend', at: step.outstanding.lastSentAt };
    const failure = step.kind === 'fail' ? step.outstanding.failure : undefined;
    return { kind: 'failed', code: 'SWX_RECEIPT_MISSING', detail: `ebMS ${failure?.errorCode ?? 'DeliveryFailure'}: ${failure?.description ?? `message ${message.messageId} was not acknowledged`}` };
  };
}

const sameReference = (a: DsReference, b: DsReference) => a.uri === b.uri && a.digestMethod === b.digestMethod && a.digestValue === b.digestValue;

/**
 * An incoming Acknowledgment or MessageError applied to the message it refers to. An Acknowledgment closes it when it
 * names the message and, where a signed one was asked for, is signed (`signatureValid`) and repeats every reference
 * of the message's signature; otherwise the message stays outstanding and the reason is returned. A MessageError of
 * severity Error about it fails it.
 */
export function received(outstanding: Outstanding, signal: EbmsMessage, signatureValid: boolean): { outstanding: Outstanding; refused?: string } {
  if (signal.signal === 'MessageError' && signal.header.refToMessageId === outstanding.messageId) {
    const errors = signal.errorList?.errors ?? [];
    if (signal.errorList?.highestSeverity !== 'Error') return { outstanding };
    const failure = ebmsError('DeliveryFailure', `the receiving MSH refused message ${outstanding.messageId}: ${errors.map((error) => `${error.errorCode} ${error.description}`).join('; ')}`.slice(0, 500));
    return { outstanding: { ...outstanding, state: 'failed', failure } };
  }
  const ack = signal.acknowledgment;
  if (!ack || ack.refToMessageId !== outstanding.messageId) return { outstanding, refused: `not an Acknowledgment of ${outstanding.messageId}` };
  if (outstanding.signedAckRequested) {
    if (!signatureValid) return { outstanding, refused: 'a signed Acknowledgment was asked for; this one is unsigned or its signature does not verify' };
    const missing = outstanding.signatureReferences.filter((reference) => !ack.references.some((copy) => sameReference(copy, reference)));
    if (missing.length > 0) return { outstanding, refused: `the Acknowledgment does not repeat the signature references of ${missing.map((reference) => reference.uri || '""').join(', ')}` };
  }
  return { outstanding: { ...outstanding, state: 'acknowledged' } };
}

/** A message this MSH received, kept for duplicate elimination until `keepUntil`. */
export interface ReceivedEntry {
  messageId: string;
  receivedAt: number;
  keepUntil: number;
  /** The Acknowledgment sent for it (as sent, signed), to send again for a duplicate. */
  acknowledgment?: string;
}

/** The entry to keep for a message received at `at`: for the agreement's PersistDuration, at least until its TimeToLive. */
export function receivedEntry(message: EbmsMessage, at: number, persistDurationMs: number, acknowledgment?: string): ReceivedEntry {
  const ttl = message.header.timeToLive ? Date.parse(message.header.timeToLive) : 0;
  return { messageId: message.header.messageId, receivedAt: at, keepUntil: Math.max(at + persistDurationMs, ttl), ...(acknowledgment ? { acknowledgment } : {}) };
}

export type Reception =
  | { kind: 'deliver' }
  /** Not delivered again; the stored Acknowledgment (if one was asked for) is sent again. */
  | { kind: 'duplicate'; acknowledgment?: string };

/**
 * Whether a received message is delivered (6.4.2 / 6.6): a message whose MessageId was received before, within the
 * persistence window, is a duplicate when it asks for DuplicateElimination; without it, it is delivered again (at
 * least once). Either way its Acknowledgment is the one stored.
 */
export function reception(message: EbmsMessage, earlier: ReceivedEntry | undefined, now: number): Reception {
  if (!earlier || earlier.messageId !== message.header.messageId || now > earlier.keepUntil) return { kind: 'deliver' };
  if (!message.header.duplicateElimination) return { kind: 'deliver' };
  return { kind: 'duplicate', ...(earlier.acknowledgment ? { acknowledgment: earlier.acknowledgment } : {}) };
}
