// The ebMS 2.0 connector's public face. So far it reads partners' collaboration-protocol agreements (CPA 2.0); the
// connector registers itself here once it sends and receives.
export { cpaNamespace, parseCpa, type Cpa, type CpaActionBinding, type CpaDeliveryChannel, type CpaMessagingBinding, type CpaParty, type CpaTransport } from './cpa.ts';
