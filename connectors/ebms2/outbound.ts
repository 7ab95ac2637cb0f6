// ebMS 2.0 outbound: the hub delivers an envelope to a partner's MSH as its agreement (CPA) says — From the hub's
// PartyIds, To the partner's, its CPAId, the Service and Action the partner may receive and the channel it receives
// them on, MessageId the envelope's id or, for a topic's or channel's message, its receiver's copy's (a retry keeps
// it), AckRequested and SyncReply as the channel asks, the payload as the one Manifest attachment (a payload package
// as one per part, engine/mime/package.ts; over the inline limit streamed from the Object Store) — signed with the ebMS 2.0 XMLDSig profile (RSA-SHA1 only where the
// agreement names it) and POSTed over mutual TLS. The synchronous Acknowledgment, its signature judged through the
// trust store and its references against what was signed, is the delivery's receipt; a MessageError of severity
// Error is the partner's refusal. Where the CPA names Retries, a send left without its Acknowledgment goes again
// (same MessageId and signature) on its RetryInterval, at most Retries times, counted by the delivery stage; then
// DeliveryFailure.
import { randomUUID } from 'node:crypto';
import { deliveryMessageId, type Envelope, type SignatureInfo } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { postHttps, whole, type HttpsAnswer } from '../../engine/http.ts';
import { PartnerAgents } from '../../engine/server-trust.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { entityOf, isPackage, messageParts, multipartBoundary, payloadParts } from '../../engine/mime/index.ts';
import { deliveryDeadlineMs, DeliveryError, transportFailure, UnansweredDelivery, type OutgoingPayload, type Outbound, type Receipt } from '../../engine/outbound.ts';
import type { Partner, Registry } from '../../engine/registry.ts';
import type { SeparateReplies } from '../../engine/separate-replies.ts';
import { storedPackage } from '../../engine/streamed-payloads.ts';
import { storedAttachmentDigests, type CertificateCheck, type PayloadVerifiers, type XmlAttachment, type XmlSigners } from '../../engine/trust/index.ts';
import { EbmsRefusal } from './ebms-error.ts';
import { ebms2Endpoint, signatureFor, type Ebms2Channel } from './endpoint.ts';
import { originalMessageIdDescription, readEbmsMessage, readEbmsParts, type EbmsMessage } from './message.ts';
import { outboundBinding, type Ebms2Partner } from './parties.ts';
import { received, resendSchedule, sent } from './reliability.ts';
import { swxPartyIdType, type Ebms2Settings } from './settings.ts';
import { ackRequestedXml, ebmsMultipart, envelopeXml, manifestXml, messageHeaderXml, signEbms, syncReplyXml } from './write.ts';

export interface Ebms2OutboundOptions {
  settings: Ebms2Settings;
  timeoutMs: number;
  maxSockets: number;
  /** A payload larger than this streams from the Object Store (a payload package part by part). */
  streamAboveBytes: number;
  /** Sends the signals that go on a connection of their own. */
  replies: SeparateReplies;
}

/** The largest answer read: an Acknowledgment copies the message's references, a MessageError its errors; neither is large. */
const maxAnswerBytes = 1024 * 1024;

const wants = (value: 'always' | 'never' | 'perMessage') => value !== 'never';

export class Ebms2Outbound implements Outbound {
  private readonly agents: PartnerAgents;

  constructor(
    private readonly hub: HubIdentity,
    private readonly registry: Registry,
    private readonly trust: CertificateCheck,
    private readonly signatures: PayloadVerifiers & XmlSigners,
    private readonly options: Ebms2OutboundOptions,
  ) {
    this.agents = new PartnerAgents(hub.tls, options.maxSockets);
  }

  async deliver(envelope: Envelope, payload: OutgoingPayload, partner: Partner, given: Record<string, unknown>): Promise<Receipt> {
    const permanent = (code: ConstructorParameters<typeof SwxError>[0], detail: string) => new DeliveryError(false, code, `${partner.id}: ${detail}`);
    const parsed = ebms2Endpoint.safeParse(given);
    if (!parsed.success) throw permanent('SWX_BAD_REQUEST', `its ebms2 endpoint does not fit the schema: ${parsed.error.issues[0]?.message}`);
    const endpoint = parsed.data;
    const { settings } = this.options;
    if (settings.partyIds.length === 0) throw permanent('SWX_BAD_REQUEST', 'connectors.ebms2.partyIds names no PartyId of this hub to send From');
    const binding = outboundBinding(endpoint, envelope.service, envelope.action, settings);
    if (!binding) throw permanent('SWX_UNKNOWN_SERVICE', `agreement ${endpoint.cpaId} has no Service for swx service ${envelope.service} whose Action ${envelope.action} the partner receives`);
    const { channel } = binding;
    const url = channel.url ?? endpoint.url;
    if (!url || !/^https?:/.test(url)) throw permanent('SWX_UNKNOWN_RECEIVER', `agreement ${endpoint.cpaId} gives no HTTP URL for channel ${binding.channelId}`);
    // A payload over the limit streams from the Object Store, signed by the digests of its stored bytes; a payload
    // package part by part, read through once for their digests.
    const streams = !payload.held && payload.size > this.options.streamAboveBytes;
    const algorithm = signatureFor(channel);
    const contentId = `payload-${envelope.id.replace(/[^A-Za-z0-9._-]/g, '_')}@swx.invalid`;
    let parts: { contentId: string; contentType: string; role?: string; body: Buffer | (() => AsyncIterable<Uint8Array>); size?: number }[];
    let signedParts: XmlAttachment[];
    if (streams) {
      const sha1 = algorithm === 'rsa-sha1';
      const stored = isPackage(envelope.contentType)
        ? await storedPackage(envelope.contentType, () => payload.open(), { sha1 }).catch((error: unknown) => { throw permanent((error as SwxError).code ?? 'SWX_BAD_REQUEST', `its payload package: ${(error as Error).message}`); })
        : undefined;
      const outline = stored?.parts ?? [{
        contentId, contentType: envelope.contentType, properties: [], size: payload.size,
        digests: await storedAttachmentDigests({ 'content-type': envelope.contentType }, { sha256: payload.sha256, open: () => payload.open() }, { sha1 }),
      }];
      // Each send reads the parts afresh from the store: the bodies of one send are made when its first part is reached.
      let bodies: (() => AsyncIterable<Uint8Array>)[] | undefined;
      parts = outline.map((part, index) => ({
        contentId: part.contentId, contentType: part.contentType, ...(part.role === undefined ? {} : { role: part.role }), size: part.size,
        body: stored ? () => (index === 0 ? (bodies = stored.bodies()) : bodies!)[index]!() : () => payload.open(),
      }));
      signedParts = outline.map((part) => ({ contentId: part.contentId, headers: { 'content-type': part.contentType }, body: Buffer.alloc(0), digests: part.digests }));
    } else {
      const content = payload.held ?? await whole(payload.open());
      try {
        parts = payloadParts(envelope.contentType, content, contentId);
      } catch (error) {
        // A payload package that does not read as one (its sender's REST upload) fails the same way at every attempt.
        throw permanent((error as SwxError).code ?? 'SWX_BAD_REQUEST', `its payload package: ${(error as Error).message}`);
      }
      signedParts = parts.map((part) => ({ contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body as Buffer }));
    }
    const messageId = deliveryMessageId(envelope);
    const ackRequested = wants(channel.ackRequested);
    const syncReply = channel.syncReplyMode !== 'none';
    const blocks = [
      messageHeaderXml({
        // The swx sender and receiver behind the two MSHs, as PartyIds of the swx type beside the MSHs' own.
        from: { partyIds: [...settings.partyIds, { id: envelope.from, type: swxPartyIdType }] },
        to: { partyIds: [...endpoint.partyIds, ...(envelope.to ? [{ id: envelope.to, type: swxPartyIdType }] : [])] },
        cpaId: endpoint.cpaId,
        conversationId: envelope.conversationId,
        service: binding.service,
        action: envelope.action,
        messageId,
        // The hub's receipt of the message, not the attempt's: a retry writes the same envelope, whose signature
        // references then digest the same, so the Acknowledgment a receiver stored for the first attempt still holds.
        timestamp: new Date(envelope.receivedAt),
        ...(envelope.refToMessageId ? { refToMessageId: envelope.refToMessageId } : {}),
        duplicateElimination: wants(channel.duplicateElimination),
        // A topic's or channel's copy names the message it is a copy of, so that the evidence on both sides links them.
        ...(messageId === envelope.id ? {} : { descriptions: [originalMessageIdDescription(envelope.id)] }),
      }),
      ...(ackRequested ? [ackRequestedXml(wants(channel.ackSignatureRequested))] : []),
      ...(syncReply ? [syncReplyXml()] : []),
    ];
    const signed = await signEbms(envelopeXml(blocks, [manifestXml(parts)]), signedParts,
      { keyPem: this.hub.signing.keyPem, certPem: this.hub.signing.certPem, signatureAlgorithm: algorithm, sign: this.signatures.signXml });
    const message = readEbmsMessage(signed.xml, { attachments: parts, at: false });
    // Each send writes the same framing, the payload read again from the store when it streams.
    const framing = { envelopeId: `soap-${randomUUID()}@swx.invalid`, boundary: multipartBoundary() };
    const multipart = ebmsMultipart(signed.xml, parts, framing);
    const length = multipart.length!;
    const body = streams ? () => ebmsMultipart(signed.xml, parts, framing).body : await whole(multipart.body);
    if (streams) multipart.body.destroy();

    const deadlineMs = deliveryDeadlineMs(this.options.timeoutMs, length);
    const acknowledged = ackRequested && syncReply;
    const receipt = await postHttps(new URL(url), {
      headers: { 'content-type': multipart.contentType, 'content-length': String(length), soapaction: '"ebXML"' },
      agent: this.agents.for(partner.id, endpoint.tls), signal: AbortSignal.timeout(deadlineMs),
    }, body, maxAnswerBytes).catch((error: Error) => {
      if (error instanceof SwxError) throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}: ${error.message}`);
      throw transportFailure(error, `${partner.id} at ${new URL(url).origin}`, deadlineMs);
    }).then((answer) => this.judge(answer, { partner, endpoint }, channel, message, acknowledged)).catch((error: unknown) => {
      const { reliability } = channel;
      // Reliable messaging (6.4): a send left without its Acknowledgment goes again on the agreement's RetryInterval,
      // at most Retries times, then fails with DeliveryFailure.
      if (!acknowledged || reliability?.retries === undefined) throw error;
      throw UnansweredDelivery.of(error, resendSchedule(message.header, { retries: reliability.retries, retryIntervalMs: reliability.retryIntervalMs ?? 0 }));
    });
    // The hub's own signature used SHA-1 because the agreement names it: the receipt's evidence says so.
    return signed.weak ? { ...receipt, raw: `weak: the hub signed with RSA-SHA1 as agreement ${endpoint.cpaId} names it\n${receipt.raw}` } : receipt;
  }

  /** The answer to a message: its Acknowledgment (the receipt) when one was asked for on the connection, a MessageError, or a failure. */
  private async judge(answer: HttpsAnswer, to: Ebms2Partner, channel: Ebms2Channel, message: EbmsMessage, acknowledged: boolean): Promise<Receipt> {
    const { partner } = to;
    const transient = answer.status >= 500 || answer.status === 429 || answer.status === 408;
    const text = answer.body.toString('utf8');
    if (answer.body.length === 0) {
      if (transient) throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} answered ${answer.status}`);
      if (answer.status < 200 || answer.status >= 300) throw new DeliveryError(false, 'SWX_DELIVERY_REJECTED', `${partner.id} answered ${answer.status}`);
      if (acknowledged) throw new DeliveryError(false, 'SWX_RECEIPT_MISSING', `${partner.id} answered ${answer.status} without the Acknowledgment asked for (SyncReply)`);
      // No Acknowledgment on the connection was asked for: the transport's 2xx is all the receipt there is.
      return { status: answer.status, duplicate: false, raw: `HTTP ${answer.status}` };
    }
    let signal: EbmsMessage;
    let parts;
    try {
      parts = messageParts(entityOf({ 'content-type': String(answer.headers['content-type'] ?? 'text/xml') }, answer.body));
      signal = readEbmsParts(parts, { at: false });
    } catch (error) {
      if (transient) throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} answered ${answer.status}`);
      const why = error instanceof EbmsRefusal || error instanceof SwxError ? error.message : String(error);
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id} answered ${answer.status} with no ebMS signal: ${why.slice(0, 300)}`);
    }
    if (signal.signal === 'MessageError') {
      const detail = (signal.errorList?.errors ?? []).map((e) => `${e.errorCode}: ${e.description}`).join('; ').slice(0, 1000);
      if (signal.errorList?.highestSeverity === 'Error' || transient) {
        throw new DeliveryError(transient, transient ? 'SWX_UNAVAILABLE' : 'SWX_DELIVERY_REJECTED', `${partner.id} answered with an ebMS MessageError: ${detail}`);
      }
    }
    if (transient) throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} answered ${answer.status}`);
    if (!acknowledged) return { status: answer.status, duplicate: false, raw: text };
    const verified = signal.signatureReferences.length > 0 ? await this.signer(parts.root.body, to, channel) : undefined;
    const outcome = received(sent({ messageId: message.header.messageId, signatureReferences: message.signatureReferences }, wants(channel.ackSignatureRequested), Date.now()), signal, verified !== undefined);
    if (outcome.refused || outcome.outstanding.state !== 'acknowledged') {
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s Acknowledgment: ${outcome.refused ?? outcome.outstanding.failure?.description ?? 'not an Acknowledgment'}`);
    }
    return { status: answer.status, duplicate: false, ...(verified ? { signature: verified } : {}), raw: text };
  }

  /** The Acknowledgment's signature, by a certificate registered to the partner that passes the trust store. */
  private async signer(envelope: Buffer, to: Ebms2Partner, channel: Ebms2Channel): Promise<SignatureInfo> {
    const { partner } = to;
    const verdict = await this.signatures.verifyXml(envelope, { policy: channel.signature?.weak ? 'archive' : 'live' });
    if (!verdict.valid) throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s Acknowledgment: ${verdict.code}: ${verdict.detail}`);
    const key = verdict.signer?.thumbprint ? this.registry.keyByThumbprint(verdict.signer.thumbprint) : undefined;
    if (!key || key.partner.id !== partner.id) {
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s Acknowledgment is signed by ${verdict.signer?.subject ?? 'an unknown key'}, not a certificate registered to ${partner.id}`);
    }
    const refusal = await this.trust.check(key.parsed, 'agency-signing');
    if (refusal) throw new DeliveryError(refusal.code === 'SWX_CERT_REVOCATION_UNKNOWN', 'SWX_RECEIPT_INVALID', `${partner.id}'s Acknowledgment is signed with ${key.thumbprint}: ${refusal.code}: ${refusal.detail}`);
    return {
      scheme: 'xmldsig', algorithm: verdict.algorithms?.signature ?? '', keyId: key.thumbprint, certThumbprint: key.thumbprint,
      covered: ['""'], value: '', base: envelope.toString('utf8'), certificate: key.certificate.toString(),
      ...(verdict.weak?.length ? { weak: verdict.weak } : {}),
    };
  }

  /**
   * A signal (an Acknowledgment asked for without SyncReply) POSTed to the partner on a connection of its own, in the
   * background, sent again on the delivery backoff while the partner cannot take it.
   */
  async sendSignal(to: Ebms2Partner, xml: string, refToMessageId: string): Promise<void> {
    const channel = to.endpoint.channels[to.endpoint.defaultChannel];
    const url = channel?.url ?? to.endpoint.url;
    if (!url || !/^https?:/.test(url)) throw new SwxError('SWX_UNKNOWN_RECEIVER', `${to.partner.id}: agreement ${to.endpoint.cpaId} gives no HTTP URL for its MSH signals`);
    const multipart = ebmsMultipart(xml, []);
    const body = await whole(multipart.body);
    await this.options.replies.send({
      partner: to.partner.id, refToMessageId, what: 'ebMS Acknowledgment', url: new URL(url), agent: this.agents.for(to.partner.id, to.endpoint.tls),
      headers: { 'content-type': multipart.contentType, soapaction: '"ebXML"' }, body,
    });
  }

  close(): void {
    this.agents.close();
  }
}
