// The transactional face of a queue manager, as the connector's loops use it: one connection (MQCONNX), its unit of
// work under syncpoint (MQGET/MQPUT with the SYNCPOINT options, MQCMIT, MQBACK) and its end. Two implementations:
// ibmmq.ts over IBM's client library, in-memory.ts for tests and the demo.
import type { MqEndpoint } from './endpoint.ts';

/** The MQMD fields the connector reads and sets. */
export interface MqDescriptor {
  /** MQBYTE24. */
  msgId: Buffer;
  /** MQBYTE24; all zeros when the message correlates with nothing. */
  correlId: Buffer;
  /** MQFMT_*: 'MQSTR' for character data, '' (MQFMT_NONE) for bytes. */
  format: string;
  persistent: boolean;
  /** Tenths of a second the message lives on its queue; -1 (MQEI_UNLIMITED) for ever. */
  expiry: number;
  replyToQ: string;
  replyToQMgr: string;
  /** How many times a get of this message under syncpoint was backed out. */
  backoutCount: number;
}

/** A message as got or to put: its descriptor, its properties (MQRFH2 `usr` folder) and its body. */
export interface MqMessage {
  descriptor: MqDescriptor;
  properties: Record<string, string>;
  body: Buffer;
}

export type GotMessage = MqMessage & { truncated?: boolean };

/** What a put sets; the queue manager fills in the rest (BackoutCount, put date and time). */
export type OutgoingMqMessage = Omit<MqMessage, 'descriptor'> & { descriptor: Omit<MqDescriptor, 'backoutCount'> };

/** An MQ failure, with the reason code the queue manager gave (MQRC_*), when it gave one. */
export class MqError extends Error {
  constructor(message: string, readonly reason?: number) {
    super(message);
    this.name = 'MqError';
  }
}

export interface QueueSession {
  /**
   * The next message on `queue` under syncpoint (hidden from others until commit or backout), or undefined when none
   * waits. One over `maxBytes` is got all the same with its body cut (MQGMO_ACCEPT_TRUNCATED_MSG), marked `truncated`.
   */
  get(queue: string, maxBytes: number): Promise<GotMessage | undefined>;
  /**
   * Puts under syncpoint: invisible until commit, discarded by backout. `queueManager` names another queue manager
   * the queue is on (a ReplyToQMgr), reached through the connected one's transmission queues.
   */
  put(queue: string, message: OutgoingMqMessage, queueManager?: string): Promise<void>;
  commit(): Promise<void>;
  backout(): Promise<void>;
  /** Disconnects (MQDISC: what is still uncommitted is committed, so back out first to discard it). */
  close(): Promise<void>;
}

/** Opens sessions with the queue manager of an endpoint. */
export interface QueueManagers {
  open(endpoint: MqEndpoint, partnerId: string): Promise<QueueSession>;
}
