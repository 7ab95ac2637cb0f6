// The delivery contract: what an outbound connector does for the delivery stage (pipelines/deliver.ts), whatever
// protocol it speaks. The stage knows this contract only; the hub hands it the connector.
import type { Readable } from 'node:stream';
import type { Envelope, SignatureInfo } from './envelope.ts';
import { SwxError } from './errors.ts';
import type { Partner } from './registry.ts';

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
