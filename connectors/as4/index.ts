// The AS4 connector's message layer (eDelivery AS4 over ebMS 3.0): reading and writing messages and signals, P-Modes
// and their algorithm profiles, payload compression, and the ebMS error codes. The inbound route, the outbound and
// reception awareness build on these; the connector registers itself once they exist.
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
export { checkReceipt, DuplicateDetection, errorsEnd, nextStep, type NextStep, type Outstanding, type ReceiptStore, type RetryPolicy, type SentMessage } from './reception.ts';
export { checkAs4Security, type As4SecurityOptions } from './security.ts';
export { readAs4Body, type As4Body } from './body.ts';
