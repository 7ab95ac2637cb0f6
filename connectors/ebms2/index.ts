// The ebMS 2.0 connector's public face: partners' collaboration-protocol agreements (CPA 2.0), the ebMS 2.0 message read
// and validated, the MSH signals and outgoing headers written and signed, and the partner endpoint kind. Until the
// connector sends and receives it registers only its endpoint kind (engine/endpoints.ts), so that the registry takes
// partners' ebms2 endpoints; deliveries to one wait, as for any protocol this hub process does not run.
import { registerEndpointKind } from '../../engine/endpoints.ts';
import { ebms2Endpoint, ebms2Serves, type Ebms2Endpoint } from './endpoint.ts';

export { cpaNamespace, parseCpa, type Cpa, type CpaActionBinding, type CpaDeliveryChannel, type CpaMessagingBinding, type CpaParty, type CpaTransport } from './cpa.ts';
export { ebmsError, ebmsErrorCodes, ebmsErrorContext, ebmsErrorFor, EbmsRefusal, highestSeverity, swxCodeOf, type EbmsError, type EbmsErrorCode, type EbmsSeverity, type RefusedMessage } from './ebms-error.ts';
export {
  actors, ebmsNamespace, messageStatuses, mshActions, mshService, pointer, readEbmsMessage, readEbmsParts,
  type DsReference, type EbmsMessage, type EbmsParty, type ManifestReference, type MessageHeader, type MessageStatus, type MshAction, type PartyId, type ReadOptions,
} from './message.ts';
export {
  acknowledgmentXml, ackRequestedXml, actorFilter, dsReferenceXml, ebmsMultipart, envelopeXml, errorListXml, manifestXml, messageErrorXml, messageHeaderXml,
  newMessageId, pongXml, signEbms, statusResponseXml, syncReplyXml,
  type EbmsSigning, type OutgoingHeader, type ReplyOptions, type SignedEbms,
} from './write.ts';
export { ebms2Endpoint, ebms2Serves, endpointFromCpa, partnerIdFor, partyOf, signatureFor, type Ebms2Channel, type Ebms2Endpoint } from './endpoint.ts';

registerEndpointKind({ protocol: 'ebms2', endpoint: ebms2Endpoint, serves: (endpoint) => ebms2Serves(endpoint as Ebms2Endpoint) });
export { nextStep, received, receivedEntry, reception, sent, type NextStep, type Outstanding, type ReceivedEntry, type Reception, type RetryPolicy } from './reliability.ts';
