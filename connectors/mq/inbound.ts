// MQ inbound: one loop per partner with a get queue. It gets a message under syncpoint, checks the signature its body
// carries (the partner's own, as registered), hands it to intake and commits only once intake resolved, i.e. once
// JetStream acknowledged the envelope: a crash before that leaves the message on the queue. A refusal is evidenced
// and answered with a signed error report (to the message's ReplyToQ, else the endpoint's error or reply queue),
// then committed. A hub failure backs the message out; one that keeps failing goes to the backout queue, evidenced.
import { setTimeout as sleep } from 'node:timers/promises';
import { messageIdPattern } from '../../engine/envelope.ts';
import { errorCodes, SwxError } from '../../engine/errors.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { log } from '../../engine/log.ts';
import { inboundBackouts, messagesTotal } from '../../engine/metrics.ts';
import { partnerId, serviceSchema, type Registry } from '../../engine/registry.ts';
import type { Accepted, Intake, RefusedSubmission, Submission } from '../../engine/submission.ts';
import { checkSignedPayload, signCms, type CertificateCheck, type PayloadVerifiers } from '../../engine/trust/index.ts';
import { contentTypeOf, envelopeProperties, hubProperties, idOfMqId, noId } from './contract.ts';
import type { MqEndpoint } from './endpoint.ts';
import type { GotMessage, QueueManagers, QueueSession } from './session.ts';

export interface MqInboundOptions {
  intake: Intake;
  registry: Registry;
  trust: CertificateCheck;
  payloadVerifiers: PayloadVerifiers;
  /** The hub's signing key: error reports are CMS SignedData by the hub. */
  signing: HubIdentity['signing'];
  maxMessageBytes: number;
  /** The backout queue of an endpoint that names none. */
  backoutQueue: string;
  /** Told when the loop reaches its queue manager, or why it cannot. */
  onHealth(ok: boolean, detail?: string): void;
}

type Field = 'to' | 'service' | 'action' | 'conversationId' | 'refToMessageId' | 'id' | 'contentType';
const token = { valid: (value: string) => messageIdPattern.test(value), rule: '1-128 characters of letters, digits and . _ : @ -' };
const propertyShapes: { name: string; field: Field; valid: (value: string) => boolean; rule: string }[] = [
  { name: envelopeProperties.to, field: 'to', valid: (value) => partnerId.safeParse(value).success, rule: 'a partner id' },
  { name: envelopeProperties.service, field: 'service', valid: (value) => serviceSchema.shape.id.safeParse(value).success, rule: 'a service id' },
  { name: envelopeProperties.action, field: 'action', ...token },
  { name: envelopeProperties.conversationId, field: 'conversationId', ...token },
  { name: envelopeProperties.refTo, field: 'refToMessageId', ...token },
  { name: envelopeProperties.messageId, field: 'id', ...token },
  { name: envelopeProperties.contentType, field: 'contentType', valid: (value) => /^[\x20-\x7e]{1,200}$/.test(value), rule: 'up to 200 printable ASCII characters' },
];

/** The envelope of a message: its swx properties where set, else what its MQMD says; the first malformed one named. */
export function envelopeOf(message: GotMessage): { fields: Partial<Pick<Submission, Field>>; malformed?: string } {
  const fields: Partial<Pick<Submission, Field>> = { action: 'deliver' };
  let malformed: string | undefined;
  for (const { name, field, valid, rule } of propertyShapes) {
    const value = message.properties[name];
    if (value === undefined) continue;
    if (valid(value)) fields[field] = value;
    else malformed ??= `property ${name} must be ${rule}`;
  }
  // A partner that sets no swxMessageId is known by its MsgId, and a reply by the CorrelId MQ replies carry.
  fields.id ??= idOfMqId(message.descriptor.msgId);
  if (!fields.refToMessageId && !message.descriptor.correlId.equals(noId)) fields.refToMessageId = idOfMqId(message.descriptor.correlId);
  fields.contentType ??= contentTypeOf(message.body);
  return { fields, malformed };
}

/** Whether a failure is the hub's (it may pass: back the message out) rather than the message's (refuse it). */
const hubFailure = (error: unknown) => !(error instanceof SwxError) || errorCodes[error.code].status >= 500;

export class MqInbound {
  private readonly stopping = new AbortController();
  private session?: QueueSession;
  private running?: Promise<void>;
  /** Consecutive hub failures: the loop waits longer after each, up to a minute. */
  private failures = 0;

  constructor(
    private readonly partner: string,
    private readonly endpoint: MqEndpoint & { getQueue: string },
    private readonly managers: QueueManagers,
    private readonly options: MqInboundOptions,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    const { signal } = this.stopping;
    while (!signal.aborted) {
      let waitMs = 0;
      try {
        this.session ??= await this.managers.open(this.endpoint, this.partner);
        this.options.onHealth(true);
        const message = await this.session.get(this.endpoint.getQueue, this.options.maxMessageBytes);
        if (message) await this.take(this.session, message);
        else waitMs = this.endpoint.pollIntervalMs;
        this.failures = 0;
      } catch (error) {
        this.failures += 1;
        waitMs = Math.min(60_000, this.endpoint.pollIntervalMs * 2 ** Math.min(this.failures, 6));
        const detail = `${this.partner}: ${(error as Error).message}`;
        log.warn({ err: error, partner: this.partner, queue: this.endpoint.getQueue, retryInMs: waitMs }, 'MQ inbound: failed; its unit of work is backed out and the loop retries');
        // What the unit of work holds goes back to the queue; a session that cannot back out is dropped, and its
        // queue manager backs it out when the connection ends.
        const session = this.session;
        const kept = await session?.backout().then(() => true, () => false);
        if (kept) inboundBackouts.inc({ protocol: 'mq', partner: this.partner });
        if (!kept) {
          this.session = undefined;
          this.options.onHealth(false, detail);
          await session?.close().catch(() => undefined);
        }
      }
      if (waitMs > 0) await sleep(waitMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** One message, from its get to its commit. Throws on a hub failure, leaving the unit of work to be backed out. */
  private async take(session: QueueSession, message: GotMessage): Promise<void> {
    const { fields, malformed } = envelopeOf(message);
    const partial: RefusedSubmission = { protocol: 'mq', from: this.partner, payload: message.body, ...fields };
    const threshold = this.endpoint.backoutThreshold;
    // A message that comes back after twice the threshold crashed the processes that tried it: no further try.
    if (message.descriptor.backoutCount >= 2 * threshold) return this.setAside(session, message, partial);
    let accepted: Accepted;
    try {
      accepted = await this.options.intake.accept(await this.checked(message, partial, malformed));
    } catch (error) {
      if (hubFailure(error)) {
        // Past the threshold a failure is the message's last: it goes to the backout queue, if that can be evidenced.
        if (message.descriptor.backoutCount >= threshold) return this.setAside(session, message, partial, error as Error);
        throw error;
      }
      return this.refuse(session, message, partial, error as SwxError);
    }
    // Stored: a commit that fails now leaves the message to come again, and intake answers the repeat as a duplicate.
    await session.commit();
    messagesTotal.inc({ stage: 'received', outcome: accepted.duplicate ? 'duplicate' : 'accepted', code: '' });
  }

  /** The submission of a message whose envelope is well-formed and whose body carries its sender's valid signature. */
  private async checked(message: GotMessage, partial: RefusedSubmission, malformed: string | undefined): Promise<Submission> {
    if (malformed) throw new SwxError('SWX_BAD_REQUEST', malformed);
    if (message.truncated) throw new SwxError('SWX_TOO_LARGE', `the message is larger than ${this.options.maxMessageBytes} bytes`);
    if (!partial.service) throw new SwxError('SWX_BAD_REQUEST', `property ${envelopeProperties.service} is required`);
    const { registry } = this.options;
    // An MQ message has no transport signature: the signature in its body is what makes it the partner's.
    partial.payloadSignature = await checkSignedPayload(message.body, partial.contentType!, this.partner, {
      verifiers: this.options.payloadVerifiers, keyByThumbprint: (print) => registry.keyByThumbprint(print), trust: this.options.trust,
    });
    if (!partial.payloadSignature) {
      throw new SwxError('SWX_SIG_MISSING', 'an MQ message must be signed in its body: CMS SignedData (application/pkcs7-mime) or an XML document with an enveloped XMLDSig over the whole of it');
    }
    return partial as Submission;
  }

  /** Evidences a refusal, answers it with a signed error report and commits: the message is settled. */
  private async refuse(session: QueueSession, message: GotMessage, partial: RefusedSubmission, error: SwxError): Promise<void> {
    messagesTotal.inc({ stage: 'received', outcome: 'rejected', code: error.code });
    const id = await this.options.intake.reject(partial, error);
    const named = message.descriptor.replyToQ.trim();
    const replyQueue = named || this.endpoint.errorQueue || this.endpoint.replyToQueue;
    if (replyQueue) {
      await session.put(replyQueue, await this.errorReport(message, id, error), named ? message.descriptor.replyToQMgr.trim() : undefined);
    } else {
      log.warn({ partner: this.partner, id, code: error.code }, 'MQ inbound: refused message names no ReplyToQ and the endpoint no error queue; evidenced only');
    }
    await session.commit();
  }

  /** Moves a message that failed every try to the backout queue, evidenced first. */
  private async setAside(session: QueueSession, message: GotMessage, partial: RefusedSubmission, cause?: Error): Promise<void> {
    const queue = this.endpoint.backoutQueue ?? this.options.backoutQueue;
    const error = new SwxError('SWX_MQ_BACKOUT', `backed out ${message.descriptor.backoutCount} times${cause ? `, last: ${cause.message}` : ''}; moved to ${queue}`);
    messagesTotal.inc({ stage: 'received', outcome: 'rejected', code: error.code });
    const id = await this.options.intake.reject(partial, error);
    await session.put(queue, { descriptor: { ...message.descriptor }, properties: message.properties, body: message.body });
    await session.commit();
    log.warn({ partner: this.partner, id, queue, backouts: message.descriptor.backoutCount }, 'MQ inbound: message moved to the backout queue');
  }

  /** The hub's signed answer to a refused message: JSON in CMS SignedData, correlated by the message's MsgId. */
  private async errorReport(message: GotMessage, id: string, error: SwxError): Promise<Parameters<QueueSession['put']>[1]> {
    const report = { messageId: id, code: error.code, title: errorCodes[error.code].title, detail: error.message, status: error.status };
    const body = await signCms({ data: Buffer.from(JSON.stringify(report)), certPem: this.options.signing.certPem, keyPem: this.options.signing.keyPem });
    return {
      descriptor: {
        msgId: noId, correlId: message.descriptor.msgId, format: '', persistent: message.descriptor.persistent, expiry: -1,
        replyToQ: '', replyToQMgr: '',
      },
      properties: { [envelopeProperties.refTo]: id, [hubProperties.code]: error.code, [envelopeProperties.contentType]: 'application/pkcs7-mime' },
      body,
    };
  }

  /** Stops getting; the message in hand finishes (or is backed out) and the connection ends. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
    const session = this.session;
    this.session = undefined;
    await session?.backout().catch(() => undefined);
    await session?.close().catch(() => undefined);
  }
}
