// Sessions with IBM MQ queue managers through the `ibmmq` package, loaded only when an MQ partner needs one: it is an
// optional dependency whose native part needs IBM's MQ C client library. A client connection (MQCNO_CLIENT_BINDING)
// over the endpoint's channel, with TLS and a user id and password from the environment when the endpoint says so;
// gets without waiting (the inbound loop polls), MQGMO_SYNCPOINT and MQPMO_SYNCPOINT, MQCMIT and MQBACK; the swx
// properties travel as message properties (MQRFH2 `usr` folder) through message handles.
import type { MqEndpoint } from './endpoint.ts';
import { MqError, type GotMessage, type OutgoingMqMessage, type QueueManagers, type QueueSession } from './session.ts';

/** What to do when the ibmmq package or the library under it cannot be loaded. */
export const ibmMqMissing = 'IBM MQ client library not available: install the IBM MQ redistributable client (or the MQ client) so that '
  + '/opt/mqm/lib64/libmqm_r.so exists, run `. /opt/mqm/bin/setmqenv -s` in the hub\'s environment, then `npm install ibmmq` and '
  + 'restart the hub; deliveries to MQ partners wait until then';

// The package has no type declarations: the connector uses the few verbs and structures below.
type IbmMq = any;

let loading: Promise<IbmMq> | undefined;

/** The ibmmq package, loaded once; rejects with an MqError saying what to install when it or IBM's library is missing. */
export function loadIbmMq(): Promise<IbmMq> {
  const name = 'ibmmq';
  loading ??= import(name).then((module: { default?: IbmMq }) => module.default ?? module, (error: Error) => {
    throw new MqError(`${ibmMqMissing} (${error.message.split('\n').map((line) => line.trim()).filter(Boolean).slice(0, 2).join(' ')})`);
  });
  return loading;
}

export class IbmMqQueueManagers implements QueueManagers {
  constructor(private readonly mq: IbmMq) {}

  async open(endpoint: MqEndpoint): Promise<QueueSession> {
    const { mq } = this;
    const cno = new mq.MQCNO();
    cno.Options = mq.MQC.MQCNO_CLIENT_BINDING;
    const cd = new mq.MQCD();
    cd.ConnectionName = endpoint.connectionName;
    cd.ChannelName = endpoint.channel;
    if (endpoint.tls) {
      cd.SSLCipherSpec = endpoint.tls.cipherSpec;
      if (endpoint.tls.peerName) cd.SSLPeerName = endpoint.tls.peerName;
      const sco = new mq.MQSCO();
      sco.KeyRepository = endpoint.tls.keyRepository;
      if (endpoint.tls.certificateLabel) sco.CertificateLabel = endpoint.tls.certificateLabel;
      cno.SSLConfig = sco;
    }
    cno.ClientConn = cd;
    if (endpoint.userEnv) {
      const csp = new mq.MQCSP();
      csp.UserId = process.env[endpoint.userEnv] ?? '';
      csp.Password = endpoint.passwordEnv ? process.env[endpoint.passwordEnv] ?? '' : null;
      cno.SecurityParms = csp;
    }
    const hConn = await call(() => mq.ConnxPromise(endpoint.queueManager, cno), `connecting to ${endpoint.queueManager} at ${endpoint.connectionName} over ${endpoint.channel}`);
    return new IbmMqSession(mq, hConn);
  }
}

class IbmMqSession implements QueueSession {
  private readonly objects = new Map<string, unknown>();
  private buffer = Buffer.alloc(0);

  constructor(private readonly mq: IbmMq, private readonly hConn: unknown) {}

  private async object(queue: string, input: boolean, queueManager = ''): Promise<unknown> {
    const key = `${input ? 'get' : 'put'}:${queue}@${queueManager}`;
    let hObj = this.objects.get(key);
    if (!hObj) {
      const { MQC } = this.mq;
      const od = new this.mq.MQOD();
      od.ObjectName = queue;
      if (queueManager) od.ObjectQMgrName = queueManager;
      const options = (input ? MQC.MQOO_INPUT_AS_Q_DEF : MQC.MQOO_OUTPUT) | MQC.MQOO_FAIL_IF_QUIESCING;
      hObj = await call(() => this.mq.OpenPromise(this.hConn, od, options), `opening ${queue}`);
      this.objects.set(key, hObj);
    }
    return hObj;
  }

  async get(queue: string, maxBytes: number): Promise<GotMessage | undefined> {
    const { mq } = this;
    const { MQC } = mq;
    const hObj = await this.object(queue, true);
    if (this.buffer.length !== maxBytes) this.buffer = Buffer.alloc(maxBytes);
    const md = new mq.MQMD();
    const gmo = new mq.MQGMO();
    gmo.Options = MQC.MQGMO_SYNCPOINT | MQC.MQGMO_NO_WAIT | MQC.MQGMO_FAIL_IF_QUIESCING | MQC.MQGMO_ACCEPT_TRUNCATED_MSG | MQC.MQGMO_PROPERTIES_IN_HANDLE;
    gmo.MatchOptions = MQC.MQMO_NONE;
    const hMsg = mq.CrtMh(this.hConn, new mq.MQCMHO());
    gmo.MsgHandle = hMsg;
    try {
      let length: number;
      let truncated = false;
      try {
        length = mq.GetSync(hObj, md, gmo, this.buffer);
      } catch (error) {
        const reason = (error as { mqrc?: number }).mqrc;
        if (reason === MQC.MQRC_NO_MSG_AVAILABLE) return undefined;
        if (reason !== MQC.MQRC_TRUNCATED_MSG_ACCEPTED) throw asMqError(error, `getting from ${queue}`);
        truncated = true;
        length = maxBytes;
      }
      return {
        descriptor: {
          msgId: Buffer.from(md.MsgId), correlId: Buffer.from(md.CorrelId), format: String(md.Format ?? '').trim(),
          persistent: md.Persistence === MQC.MQPER_PERSISTENT, expiry: md.Expiry,
          replyToQ: String(md.ReplyToQ ?? '').trim(), replyToQMgr: String(md.ReplyToQMgr ?? '').trim(), backoutCount: md.BackoutCount,
        },
        properties: this.properties(hMsg),
        body: Buffer.from(this.buffer.subarray(0, Math.min(length, maxBytes))),
        ...(truncated ? { truncated } : {}),
      };
    } finally {
      mq.DltMh(this.hConn, hMsg, new mq.MQDMHO());
    }
  }

  /** The message's string properties, every one ('%' matches all names). */
  private properties(hMsg: unknown): Record<string, string> {
    const { mq } = this;
    const properties: Record<string, string> = {};
    const impo = new mq.MQIMPO();
    impo.Options = mq.MQC.MQIMPO_INQ_NEXT | mq.MQC.MQIMPO_CONVERT_VALUE;
    const value = Buffer.alloc(1024);
    for (;;) {
      let found: { name?: string; value?: unknown } | undefined;
      mq.InqMp(this.hConn, hMsg, impo, new mq.MQPD(), '%', value, (error: { mqrc?: number } | null, name?: string, got?: unknown) => {
        if (error && error.mqrc !== mq.MQC.MQRC_PROPERTY_NOT_AVAILABLE) throw asMqError(error, 'reading message properties');
        found = error ? undefined : { name, value: got };
      });
      if (!found) return properties;
      if (found.name && typeof found.value === 'string') properties[found.name.replace(/^usr\./, '')] = found.value;
    }
  }

  async put(queue: string, message: OutgoingMqMessage, queueManager?: string): Promise<void> {
    const { mq } = this;
    const { MQC } = mq;
    const hObj = await this.object(queue, false, queueManager);
    const md = new mq.MQMD();
    const { descriptor } = message;
    md.MsgId = descriptor.msgId;
    md.CorrelId = descriptor.correlId;
    md.Format = descriptor.format;
    md.Persistence = descriptor.persistent ? MQC.MQPER_PERSISTENT : MQC.MQPER_NOT_PERSISTENT;
    md.Expiry = descriptor.expiry;
    if (descriptor.replyToQ) md.ReplyToQ = descriptor.replyToQ;
    if (descriptor.replyToQMgr) md.ReplyToQMgr = descriptor.replyToQMgr;
    const pmo = new mq.MQPMO();
    pmo.Options = MQC.MQPMO_SYNCPOINT | MQC.MQPMO_FAIL_IF_QUIESCING | (descriptor.msgId.every((byte) => byte === 0) ? MQC.MQPMO_NEW_MSG_ID : 0);
    const hMsg = mq.CrtMh(this.hConn, new mq.MQCMHO());
    try {
      for (const [name, value] of Object.entries(message.properties)) mq.SetMp(this.hConn, hMsg, new mq.MQSMPO(), name, new mq.MQPD(), value);
      pmo.OriginalMsgHandle = hMsg;
      await call(() => mq.PutPromise(hObj, md, pmo, message.body), `putting to ${queue}`);
    } finally {
      mq.DltMh(this.hConn, hMsg, new mq.MQDMHO());
    }
  }

  commit(): Promise<void> {
    return call(() => new Promise<void>((resolve, reject) => this.mq.Cmit(this.hConn, (error: unknown) => (error ? reject(error) : resolve()))), 'MQCMIT');
  }

  backout(): Promise<void> {
    return call(() => new Promise<void>((resolve, reject) => this.mq.Back(this.hConn, (error: unknown) => (error ? reject(error) : resolve()))), 'MQBACK');
  }

  async close(): Promise<void> {
    for (const hObj of this.objects.values()) await this.mq.ClosePromise(hObj, 0).catch(() => undefined);
    this.objects.clear();
    await call(() => this.mq.DiscPromise(this.hConn), 'MQDISC');
  }
}

function asMqError(error: unknown, what: string): MqError {
  const reason = (error as { mqrc?: number }).mqrc;
  return new MqError(`${what}: ${(error as Error).message}`, reason);
}

async function call<T>(verb: () => Promise<T>, what: string): Promise<T> {
  try {
    return await verb();
  } catch (error) {
    throw asMqError(error, what);
  }
}
