// The AS4 connector (eDelivery AS4 over ebMS 3.0, one-way push and pull): partners' MSHs POST UserMessages (signed,
// their payloads encrypted to the hub where the P-Mode says) to the agency port and get the hub's signed Receipt once
// the envelope is durable; the hub delivers to partners' MSHs the same way. The
// message layer below it (reading and writing messages and signals, P-Modes and their algorithm profiles, payload
// compression, the ebMS error codes) is exported for the tests and `swx verify`.
import { registerConnector } from '../../engine/connector.ts';
import { SeparateReplies } from '../../engine/separate-replies.ts';
import { AwaitedReceipts, awaitedBucket } from './awaited.ts';
import { duplicatesBucket, ReceivedMessages } from './duplicates.ts';
import { mountAs4Inbound } from './inbound.ts';
import { probeHttps } from '../../engine/probe.ts';
import { As4Outbound } from './outbound.ts';
import { as4Endpoint, as4Serves, type As4Endpoint } from './pmode.ts';
import { pulledBucket } from './pull.ts';
import { as4Settings, type As4Settings } from './settings.ts';

registerConnector<As4Settings, typeof as4Endpoint['_output']>({
  protocol: 'as4',
  summary: 'eDelivery AS4 (ebMS 3.0) one-way push and pull: signed and encrypted UserMessages in and out, signed non-repudiation receipts and ebMS error signals, on the HTTP answer or asynchronous, duplicate detection',
  settings: as4Settings,
  endpoint: as4Endpoint,
  serves: as4Serves,
  async start({ config, identity, registry, trust, signatures, intake, evidence, inbox, payloads, router, budget, bucket }, settings) {
    const maxMessageBytes = Math.min(settings.maxMessageBytes ?? config.limits.maxBodyBytes, config.limits.maxBodyBytes);
    const maxPayloadBytes = settings.maxPayloadBytes ?? config.limits.inlinePayloadBytes;
    const received = new ReceivedMessages(await bucket(duplicatesBucket, settings.duplicateHorizonSeconds));
    // A pulled message is remembered as long as the inbox keeps it handed out, and as long again for a late Receipt.
    const pulled = await bucket(pulledBucket, 2 * config.delivery.inboxVisibilitySeconds);
    // A send awaits its own receipt through its P-Mode's resends, which the duplicate horizon bounds as well.
    const awaited = new AwaitedReceipts(await bucket(awaitedBucket, settings.duplicateHorizonSeconds));
    const replies = new SeparateReplies(config.delivery);
    const outbound = new As4Outbound(identity, registry, trust, signatures, {
      settings, timeoutMs: config.delivery.timeoutMs, maxSockets: config.delivery.concurrency, clockSkewSeconds: config.clockSkewSeconds, maxPayloadBytes, awaited, replies,
    });
    mountAs4Inbound(router, {
      settings, registry, intake, evidence, trust, signatures, signing: identity.signing, decryption: identity.encryption, budget, received,
      maxMessageBytes, maxPayloadBytes, payloads, maxStreamedBytes: config.limits.maxStreamedBodyBytes, clockSkewSeconds: config.clockSkewSeconds,
      pull: { settings, registry, trust, signatures, signing: identity.signing, inbox, payloads, pulled, maxPayloadBytes, clockSkewSeconds: config.clockSkewSeconds },
      awaited, sendSignal: (to, xml, refTo, what) => outbound.sendSignal(to, xml, refTo, what),
    });
    return { outbound, stop: () => { replies.stop(); awaited.close(); outbound.close(); }, probe: (_partner, endpoint) => probeHttps((endpoint as As4Endpoint).url, identity.tls, (endpoint as As4Endpoint).tls) };
  },
});

export { EbmsError, ebmsErrorOf, ebmsErrors, swxToEbms, type EbmsCategory, type EbmsCode, type EbmsSeverity, type FaultCode } from './errors.ts';
export {
  as4Namespaces,
  ebmsDefaults,
  type As4Message,
  type CollaborationInfo,
  type MessageInfo,
  type PartInfo,
  type PartLocation,
  type Party,
  type PartyId,
  type Property,
  type ReadOptions,
  type ReferenceCopy,
  type SignalError,
  type SignalMessage,
  type UserMessage,
} from './model.ts';
export { contentIdOfHref, isEbmsCode, messageIdOf, readAs4Message, signatureReferences, signedReferences } from './message.ts';
export {
  as4Multipart,
  errorEnvelope,
  newMessageId,
  pullRequestEnvelope,
  receiptEnvelope,
  serializeElement,
  signAs4,
  signedAttachment,
  soapContentType,
  userMessageEnvelope,
  type ErrorSignal,
  type OutgoingPayload,
  type OutgoingUserMessage,
  type SignalOptions,
  type SignAs4Options,
  type WrittenEnvelope,
} from './write.ts';
export { compress, decompress, defaultInflateLimits, gzipType, mayCompress, type InflateLimits } from './compression.ts';
export { algorithmsOf, as4Endpoint, as4Serves, checkProfile, profiles, type As4Endpoint, type ProfileName, type UsedAlgorithms } from './pmode.ts';
export { awaitSchedule, checkReceipt, errorsEnd, nextStep, type NextStep, type Outstanding, type RetryPolicy, type SentMessage } from './reception.ts';
export { checkAs4Security, type As4SecurityOptions } from './security.ts';
export { readAs4Body, type As4Body } from './body.ts';
export { as4Settings, swxPartyIdType, type As4Settings } from './settings.ts';
export { originalMessageIdProperty } from './compose.ts';
