// What an inbound connector hands the intake stage once it has authenticated the sender and checked the protocol
// signature, and what it gets back. The stage itself is pipelines/intake.ts; connectors know only this contract.
import type { Protocol, SignatureInfo } from './envelope.ts';
import type { SwxError } from './errors.ts';
import type { StoredPayload } from './payloads.ts';

export interface Submission {
  id?: string;
  from: string;
  /**
   * The receiver; absent for a message to a topic or channel (service notify.<topic> or exchange.<channel>), but for
   * one `relayed` to one of its receivers.
   */
  to?: string;
  /**
   * `to` is the final recipient a four-corner protocol (AS4, ebMS 2.0) names on each copy it carries: a topic's or
   * channel's message so named is one receiver's copy that another hub fanned out, and reaches `to` alone, when `to`
   * is one of its receivers here.
   */
  relayed?: boolean;
  service: string;
  action: string;
  conversationId?: string;
  refToMessageId?: string;
  protocol: Protocol;
  contentType: string;
  /** The body held whole; empty where it was written to the Object Store as it arrived (`stored`). */
  payload: Buffer;
  stored?: StoredPayload;
  signature?: SignatureInfo;
  payloadSignature?: SignatureInfo;
  /** How the sender's connection fell short of the hub's policy, allowed by its agreement (Envelope.flags). */
  flags?: string[];
}

/** A submission that was refused before it was whole: what is known of it, and the id its sender claimed. */
export type RefusedSubmission = Partial<Submission> & { payload: Buffer; claimedId?: string };

export interface Accepted { id: string; conversationId: string; duplicate: boolean }

export interface Intake {
  /** Checks the service, receiver and access and stores the envelope; resolves once it is durable. Throws SwxError. */
  accept(submission: Submission): Promise<Accepted>;
  /** Evidences a submission refused before it could be accepted; returns the id it was evidenced under. */
  reject(submission: RefusedSubmission, error: SwxError): Promise<string>;
}
