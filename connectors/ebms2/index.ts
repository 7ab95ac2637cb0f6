// The ebMS 2.0 connector: partners' MSHs POST messages to the agency port (connectors.ebms2.path) and get the hub's
// Acknowledgment, signed as their agreement asks, once the envelope is durable; the hub delivers to partners' MSHs the
// same way. Partners come from their collaboration-protocol agreements (CPA 2.0, `swx partner import-cpa`). The message
// layer below it (reading, validating, writing and signing messages and signals, reliable-messaging decisions) is
// exported for the tests and `swx verify`.
import { AnsweredMessages } from '../../engine/answered.ts';
import { registerConnector } from '../../engine/connector.ts';
import { probeHttps } from '../../engine/probe.ts';
import { SeparateReplies } from '../../engine/separate-replies.ts';
import { ebms2Endpoint, ebms2Serves, type Ebms2Endpoint } from './endpoint.ts';
import { mountEbms2Inbound } from './inbound.ts';
import { Ebms2Outbound } from './outbound.ts';
import type { ReceivedEntry } from './reliability.ts';
import { ebms2Settings, type Ebms2Settings } from './settings.ts';

/** Received MessageIds and the Acknowledgments they were answered with. */
const receivedBucket = 'swx_ebms2_received';

export { cpaNamespace, parseCpa, type Cpa, type CpaActionBinding, type CpaDeliveryChannel, type CpaMessagingBinding, type CpaParty, type CpaTransport } from './cpa.ts';
export { ebmsError, ebmsErrorCodes, ebmsErrorContext, ebmsErrorFor, EbmsRefusal, highestSeverity, swxCodeOf, type EbmsError, type EbmsErrorCode, type EbmsSeverity, type RefusedMessage } from './ebms-error.ts';
export {
  actors, ebmsNamespace, messageStatuses, mshActions, mshService, originalMessageIdDescription, originalMessageIdOf, pointer, readEbmsMessage, readEbmsParts,
  type DsReference, type EbmsMessage, type EbmsParty, type ManifestReference, type MessageHeader, type MessageStatus, type MshAction, type PartyId, type ReadOptions,
} from './message.ts';
export {
  acknowledgmentXml, ackRequestedXml, actorFilter, dsReferenceXml, ebmsMultipart, envelopeXml, errorListXml, manifestXml, messageErrorXml, messageHeaderXml,
  newMessageId, pongXml, signEbms, statusResponseXml, syncReplyXml,
  type EbmsSigning, type OutgoingHeader, type ReplyOptions, type SignedEbms,
} from './write.ts';
export { ebms2Endpoint, ebms2Serves, endpointFromCpa, otherParty, partnerIdFor, partyOf, signatureFor, type Ebms2Channel, type Ebms2Endpoint } from './endpoint.ts';

export { nextStep, received, receivedEntry, reception, sent, type NextStep, type Outstanding, type ReceivedEntry, type Reception, type RetryPolicy } from './reliability.ts';
export { ebms2Settings, swxPartyIdType, swxServiceType, type Ebms2Settings } from './settings.ts';

registerConnector<Ebms2Settings, Ebms2Endpoint>({
  protocol: 'ebms2',
  summary: 'ebMS 2.0 (SOAP with attachments, CPA 2.0): signed messages in and out, signed Acknowledgments, MessageErrors, duplicate elimination, Ping and StatusRequest',
  settings: ebms2Settings,
  endpoint: ebms2Endpoint,
  serves: ebms2Serves,
  async start({ config, identity, registry, trust, signatures, intake, evidence, messages, payloads, router, budget, bucket }, settings) {
    const maxMessageBytes = Math.min(settings.maxMessageBytes ?? config.limits.maxBodyBytes, config.limits.maxBodyBytes);
    // Duplicate elimination (ebMS 2.0, 6.4.2 and 6.6): each agreement's PersistDuration is judged on the entry's keepUntil.
    const received = new AnsweredMessages<ReceivedEntry>(await bucket(receivedBucket, settings.persistSeconds));
    const replies = new SeparateReplies(config.delivery);
    const outbound = new Ebms2Outbound(identity, registry, trust, signatures, {
      settings, timeoutMs: config.delivery.timeoutMs, maxSockets: config.delivery.concurrency, streamAboveBytes: config.limits.inlinePayloadBytes, replies,
    });
    mountEbms2Inbound(router, {
      settings, registry, intake, evidence, trust, signatures, signing: identity.signing, budget, received, messages, maxMessageBytes,
      payloads, maxStreamedBytes: config.limits.maxStreamedBodyBytes,
      sendSignal: (partner, xml, refTo) => outbound.sendSignal(partner, xml, refTo),
    });
    return { outbound, stop: () => { replies.stop(); outbound.close(); }, probe: (_partner, endpoint) => probeHttps((endpoint as Ebms2Endpoint).url, identity.tls, (endpoint as Ebms2Endpoint).tls) };
  },
});
