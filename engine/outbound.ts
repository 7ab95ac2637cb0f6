// The delivery contract: what an outbound connector does for the delivery stage (pipelines/deliver.ts), whatever
// protocol it speaks. The stage knows this contract only; the hub hands it the connector.
import type { Readable } from 'node:stream';
import type { Envelope, SignatureInfo } from './envelope.ts';
import { SwxError, type ErrorCode } from './errors.ts';
import type { Partner } from './registry.ts';
import { describeTransportFailure, untrustedServer } from './server-trust.ts';

/** The receiver's signed acknowledgement of a delivery. */
export interface Receipt {
  /** The receiver's status for the delivery, as its protocol states it (an HTTP status for REST). */
  status: number;
  /** The receiver said it already had the message (a repeat whose first answer was lost). */
  duplicate: boolean;
  /**
   * What the receiver signed and with which key, as evidence keeps it; absent where the protocol's acknowledgement is
   * not signed by the receiver (MQ: the queue manager's MQCMIT, described in `raw`).
   */
  signature?: SignatureInfo;
  /** The receipt as received, for evidence. */
  raw: string;
}

/** A delivery failure: `transient` ones (transport, 5xx, 429) trip the partner's circuit breaker and never dead-letter. */
export class DeliveryError extends SwxError {
  constructor(readonly transient: boolean, code: ConstructorParameters<typeof SwxError>[0], detail: string) {
    super(code, detail);
  }
}

/**
 * A delivery's request that got no answer, `where` naming the partner and origin: a server the hub does not trust is
 * a refusal (retried on the backoff, then dead-lettered, each in the evidence) until the endpoint's tls setting says
 * otherwise; anything else (a refused connection, a reset, the deadline) an outage.
 */
export function transportFailure(error: Error, where: string, deadlineMs: number): DeliveryError {
  if (untrustedServer(error)) return new DeliveryError(false, 'SWX_CERT_UNTRUSTED', `${where}: ${describeTransportFailure(error)}`);
  const reason = error.name === 'AbortError' || error.name === 'TimeoutError' ? `no complete answer within ${deadlineMs} ms` : describeTransportFailure(error);
  return new DeliveryError(true, 'SWX_UNAVAILABLE', `${where}: ${reason}`);
}

/** What a protocol's agreement says comes after a send its receiver left without a receipt. */
export type ResendStep =
  | { kind: 'resend'; at: number }
  /** The agreed sends are spent: the delivery fails for good with this code and detail (the protocol's error). */
  | { kind: 'failed'; code: ErrorCode; detail: string };

/**
 * A send left without its receipt, under a protocol whose agreement fixes how often and when it is sent again (AS4
 * reception awareness, ebMS 2.0 reliable messaging): the delivery stage counts such sends per delivery and asks
 * `next` after each, instead of retrying without end as for an outage. `transient`: the transport failed (no answer
 * at all), which also counts against the partner's circuit breaker.
 */
export class UnansweredDelivery extends DeliveryError {
  constructor(
    transient: boolean,
    detail: string,
    /** `sends` made so far, the first at `firstSentAt`, the last just now (epoch ms). */
    readonly next: (sends: number, firstSentAt: number, now: number) => ResendStep,
  ) {
    super(transient, 'SWX_RECEIPT_MISSING', detail);
  }

  /**
   * The failure of a send as such a protocol sees it: one that left the send without a receipt (no answer or an
   * outage's SWX_UNAVAILABLE, or SWX_RECEIPT_MISSING: an answer without the receipt) is resent on `next`'s schedule;
   * any other (a refusal, a receipt that does not verify) stands as it is.
   */
  static of(error: unknown, next: UnansweredDelivery['next']): unknown {
    if (!(error instanceof DeliveryError) || error instanceof UnansweredDelivery) return error;
    const missing = error.code === 'SWX_RECEIPT_MISSING' || (error.transient && error.code === 'SWX_UNAVAILABLE');
    return missing ? new UnansweredDelivery(error.transient, error.message, next) : error;
  }
}

/**
 * What a delivery sends: a small payload held whole, a large one opened afresh from the Object Store for each attempt
 * and streamed out, never held. A stream errors, rather than ends, when what it read does not match `sha256`.
 */
export interface OutgoingPayload {
  size: number;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  /** The bytes, when the payload travels inline in its envelope. */
  held?: Buffer;
  open(): Readable;
  /**
   * The bytes from `start` to the end, for a transfer that resumes where an interrupted one stopped; not checked
   * against `sha256` (that covers the whole), so the receiver's copy must be checked whole. Absent: skip in open().
   */
  openAt?(start: number): Readable;
}

export interface Outbound {
  /**
   * Delivers the envelope and its payload to the partner at `endpoint` (its endpoint of this connector's protocol, as
   * the connector declared its shape); resolves with its checked receipt, or throws a DeliveryError.
   */
  deliver(envelope: Envelope, payload: OutgoingPayload, partner: Partner, endpoint: Record<string, unknown>): Promise<Receipt>;
}

/** The slowest transfer a delivery's deadline allows for: a large payload gets this much more time per byte. */
export const slowestBytesPerSecond = 1024 * 1024;

/** The deadline of one delivery attempt: the delivery timeout, plus the time the payload takes at the slowest rate. */
export function deliveryDeadlineMs(timeoutMs: number, size: number): number {
  return timeoutMs + Math.ceil((size / slowestBytesPerSecond) * 1000);
}
