// An in-memory queue manager for tests and the demo (`connectors.mq.queueManager: "in-memory"`): queues inside one
// process, lost when it stops, with MQ's documented unit-of-work semantics. A get under syncpoint hides the message
// from every other session until commit (deleted) or backout (back in its place, BackoutCount + 1); a put under
// syncpoint is seen by no one until commit and discarded by backout; a disconnect (MQDISC) commits what is
// uncommitted, a connection that breaks (a crash) backs it out. A message past its Expiry is discarded, not got.
import { randomBytes } from 'node:crypto';
import type { MqEndpoint } from './endpoint.ts';
import { MqError, type GotMessage, type MqMessage, type OutgoingMqMessage, type QueueManagers, type QueueSession } from './session.ts';

/** MQRC_CONNECTION_BROKEN, MQRC_TRUNCATED_MSG_ACCEPTED, as IBM MQ numbers them. */
const connectionBroken = 2009;
export const truncatedMsgAccepted = 2079;

interface Entry {
  message: MqMessage;
  putAt: number;
  /** The session whose uncommitted get holds it, hidden from all others. */
  heldBy?: InMemorySession;
}

const zeros = Buffer.alloc(24);

export class InMemoryQueueManager {
  private readonly queues = new Map<string, Entry[]>();
  private readonly sessions = new Set<InMemorySession>();

  constructor(readonly name: string, private readonly now: () => number = Date.now) {}

  /** A new connection (MQCONNX). */
  connect(): InMemorySession {
    const session = new InMemorySession(this, () => this.sessions.delete(session));
    this.sessions.add(session);
    return session;
  }

  /** Breaks every connection, as a queue manager ending immediately or a network failure does: their units of work back out. */
  severAll(): void {
    for (const session of [...this.sessions]) session.sever();
  }

  /** Messages another session could get now: committed, not held, not expired. */
  depth(queue: string): number {
    return this.live(queue).filter((entry) => !entry.heldBy).length;
  }

  /** Messages held by uncommitted gets. */
  held(queue: string): number {
    return this.live(queue).filter((entry) => entry.heldBy).length;
  }

  /** Copies of the messages another session could get now, in order (MQGMO_BROWSE). */
  browse(queue: string): MqMessage[] {
    return this.live(queue).filter((entry) => !entry.heldBy).map((entry) => copy(entry.message));
  }

  private live(queue: string): Entry[] {
    const entries = this.queues.get(queue) ?? [];
    const now = this.now();
    const kept = entries.filter((entry) => entry.heldBy || entry.message.descriptor.expiry < 0 || entry.putAt + entry.message.descriptor.expiry * 100 > now);
    if (kept.length !== entries.length) this.queues.set(queue, kept);
    return kept;
  }

  /** @internal the session's get */
  take(queue: string, session: InMemorySession): Entry | undefined {
    const entry = this.live(queue).find((candidate) => !candidate.heldBy);
    if (entry) entry.heldBy = session;
    return entry;
  }

  /** @internal commit: gets are deleted, puts become visible */
  settle(gotten: Entry[], puts: { queue: string; entry: Entry }[]): void {
    for (const entry of gotten) {
      for (const [queue, entries] of this.queues) this.queues.set(queue, entries.filter((candidate) => candidate !== entry));
    }
    for (const { queue, entry } of puts) {
      entry.putAt = this.now();
      this.queues.set(queue, [...(this.queues.get(queue) ?? []), entry]);
    }
  }

  /** @internal backout: gets go back where they were, counted; puts are dropped */
  restore(gotten: Entry[]): void {
    for (const entry of gotten) {
      entry.heldBy = undefined;
      entry.message.descriptor.backoutCount += 1;
    }
  }
}

export class InMemorySession implements QueueSession {
  private gotten: Entry[] = [];
  private puts: { queue: string; entry: Entry }[] = [];
  private ended = false;

  constructor(private readonly manager: InMemoryQueueManager, private readonly onEnd: () => void) {}

  private check(): void {
    if (this.ended) throw new MqError('the connection to the queue manager is closed', connectionBroken);
  }

  async get(queue: string, maxBytes: number): Promise<GotMessage | undefined> {
    this.check();
    const entry = this.manager.take(queue, this);
    if (!entry) return undefined;
    this.gotten.push(entry);
    const got = copy(entry.message);
    // As with MQGMO_ACCEPT_TRUNCATED_MSG: the message is got (under syncpoint), its body cut to the buffer.
    return got.body.length > maxBytes ? { ...got, body: got.body.subarray(0, maxBytes), truncated: true } : got;
  }

  /** One in-memory queue manager stands for every other: a queue named on another (a ReplyToQMgr) is on this one. */
  async put(queue: string, message: OutgoingMqMessage): Promise<void> {
    this.check();
    const descriptor = { ...message.descriptor, backoutCount: 0 };
    // MQPMO_NEW_MSG_ID: a put without a MsgId gets a unique one from the queue manager.
    if (descriptor.msgId.equals(zeros)) descriptor.msgId = randomBytes(24);
    this.puts.push({ queue, entry: { message: copy({ ...message, descriptor }), putAt: 0 } });
  }

  async commit(): Promise<void> {
    this.check();
    this.manager.settle(this.gotten, this.puts);
    this.gotten = [];
    this.puts = [];
  }

  async backout(): Promise<void> {
    this.check();
    this.manager.restore(this.gotten);
    this.gotten = [];
    this.puts = [];
  }

  /** MQDISC: the unit of work still open is committed. */
  async close(): Promise<void> {
    if (this.ended) return;
    await this.commit();
    this.ended = true;
    this.onEnd();
  }

  /** The connection breaks (the process holding it died): the unit of work still open is backed out. */
  sever(): void {
    if (this.ended) return;
    this.manager.restore(this.gotten);
    this.gotten = [];
    this.puts = [];
    this.ended = true;
    this.onEnd();
  }
}

/** The in-memory queue managers of one process, by name: what `queueManager: "in-memory"` connects to. */
export class InMemoryQueueManagers implements QueueManagers {
  private readonly managers = new Map<string, InMemoryQueueManager>();

  manager(name: string): InMemoryQueueManager {
    let manager = this.managers.get(name);
    if (!manager) {
      manager = new InMemoryQueueManager(name);
      this.managers.set(name, manager);
    }
    return manager;
  }

  async open(endpoint: MqEndpoint): Promise<QueueSession> {
    return this.manager(endpoint.queueManager).connect();
  }
}

function copy(message: MqMessage): MqMessage {
  return {
    descriptor: { ...message.descriptor, msgId: Buffer.from(message.descriptor.msgId), correlId: Buffer.from(message.descriptor.correlId) },
    properties: { ...message.properties },
    body: Buffer.from(message.body),
  };
}
