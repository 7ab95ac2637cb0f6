// The delivery contract: what an outbound connector does for the delivery stage (pipelines/deliver.ts), whatever
// protocol it speaks. The stage knows this contract only; the hub hands it the connector.
import type { Envelope, SignatureInfo } from './envelope.ts';
import { SwxError } from './errors.ts';
import type { Partner } from './registry.ts';

/** The receiver's signed acknowledgement of a delivery. */
export interface Receipt {
  /** The receiver's status for the delivery, as its protocol states it (an HTTP status for REST). */
  status: number;
  /** The receiver said it already had the message (a repeat whose first answer was lost). */
  duplicate: boolean;
  /** What the receiver signed and with which key, as evidence keeps it. */
  signature: SignatureInfo;
  /** The receipt as received, for evidence. */
  raw: string;
}

/** A delivery failure: `transient` ones (transport, 5xx, 429) trip the partner's circuit breaker and never dead-letter. */
export class DeliveryError extends SwxError {
  constructor(readonly transient: boolean, code: ConstructorParameters<typeof SwxError>[0], detail: string) {
    super(code, detail);
  }
}

export interface Outbound {
  /**
   * Delivers the envelope and its payload to the partner at `endpoint` (its endpoint of this connector's protocol, as
   * the connector declared its shape); resolves with its checked receipt, or throws a DeliveryError.
   */
  deliver(envelope: Envelope, payload: Buffer, partner: Partner, endpoint: Record<string, unknown>): Promise<Receipt>;
}
