// MQ outbound: a delivery is put to the partner's put queue under syncpoint, its MQMD and properties mapped from the
// envelope, and committed; it counts as delivered once MQCMIT succeeded, the queue manager's acceptance being all the
// acknowledgement MQ gives. Failures to reach or use the queue manager are transient: the partner's deliveries wait.
import { buffer } from 'node:stream/consumers';
import type { Envelope } from '../../engine/envelope.ts';
import { DeliveryError, type OutgoingPayload, type Outbound, type Receipt } from '../../engine/outbound.ts';
import type { Partner } from '../../engine/registry.ts';
import { deliveryProperties, expiryOf, formatOf, mqIdOf, noId } from './contract.ts';
import type { MqEndpoint } from './endpoint.ts';
import type { OutgoingMqMessage, QueueManagers, QueueSession } from './session.ts';

/** The MQ message that carries a delivery. */
export function deliveryMessage(envelope: Envelope, body: Buffer, endpoint: MqEndpoint, now = Date.now()): OutgoingMqMessage {
  return {
    descriptor: {
      msgId: mqIdOf(envelope.id),
      correlId: envelope.refToMessageId ? mqIdOf(envelope.refToMessageId) : noId,
      format: formatOf(envelope.contentType),
      persistent: true,
      expiry: expiryOf(envelope, now),
      replyToQ: endpoint.replyToQueue ?? '',
      replyToQMgr: endpoint.replyToQueue ? endpoint.queueManager : '',
    },
    properties: Object.fromEntries(Object.entries(deliveryProperties).flatMap(([name, field]) => (envelope[field] ? [[name, String(envelope[field])]] : []))),
    body,
  };
}

/** A changed endpoint (another queue manager, channel or credentials) gets a session of its own. */
const sessionKey = (partnerId: string, endpoint: MqEndpoint) => `${partnerId}\0${JSON.stringify(endpoint)}`;

export class MqOutbound implements Outbound {
  /** One session per partner, reused while it works; a delivery holds it from put to commit. */
  private readonly sessions = new Map<string, Promise<QueueSession>>();
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly managers: () => QueueManagers,
    private readonly maxMessageBytes: number,
  ) {}

  async deliver(envelope: Envelope, payload: OutgoingPayload, partner: Partner, endpoint: MqEndpoint): Promise<Receipt> {
    if (!endpoint.putQueue) throw new DeliveryError(false, 'SWX_UNKNOWN_RECEIVER', `${partner.id} has no MQ put queue`);
    if (payload.size > this.maxMessageBytes) {
      throw new DeliveryError(false, 'SWX_TOO_LARGE', `${payload.size} bytes is over the MQ message limit of ${this.maxMessageBytes} (connectors.mq.maxMessageBytes)`);
    }
    const body = payload.held ?? await buffer(payload.open());
    const message = deliveryMessage(envelope, body, endpoint);
    // A unit of work belongs to its connection: deliveries to one partner take turns on its session.
    const turn = (this.busy.get(partner.id) ?? Promise.resolve()).catch(() => undefined).then(() => this.putAndCommit(partner.id, endpoint, message));
    this.busy.set(partner.id, turn);
    await turn;
    const raw = `MQCMIT ok: ${endpoint.queueManager} ${endpoint.putQueue} MsgId ${message.descriptor.msgId.toString('hex')} CorrelId ${message.descriptor.correlId.toString('hex')} Expiry ${message.descriptor.expiry}`;
    return { status: 200, duplicate: false, raw };
  }

  private async putAndCommit(partnerId: string, endpoint: MqEndpoint, message: OutgoingMqMessage): Promise<void> {
    let session: QueueSession | undefined;
    try {
      session = await this.session(partnerId, endpoint);
      await session.put(endpoint.putQueue!, message);
      await session.commit();
    } catch (error) {
      // Not committed: nothing was delivered. The session is dropped; its queue manager backs out what it held.
      this.sessions.delete(sessionKey(partnerId, endpoint));
      await session?.backout().catch(() => undefined);
      await session?.close().catch(() => undefined);
      if (error instanceof DeliveryError) throw error;
      throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partnerId} over MQ (${endpoint.queueManager} at ${endpoint.connectionName}, queue ${endpoint.putQueue}): ${(error as Error).message}`);
    }
  }

  private session(partnerId: string, endpoint: MqEndpoint): Promise<QueueSession> {
    const key = sessionKey(partnerId, endpoint);
    let session = this.sessions.get(key);
    if (!session) {
      for (const [other, stale] of this.sessions) {
        if (other.startsWith(`${partnerId}\0`)) { this.sessions.delete(other); void stale.then((open) => open.close()).catch(() => undefined); }
      }
      session = Promise.resolve().then(() => this.managers().open(endpoint, partnerId));
      this.sessions.set(key, session);
      session.catch(() => this.sessions.delete(key));
    }
    return session;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.busy.values()]);
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of sessions) await session.then((open) => open.close()).catch(() => undefined);
  }
}
