// The REST contract between the hub and agencies, shared by the hub's connector and the agency toolkit:
// which headers carry the envelope and which message components every signature must cover.
import type { KeyObject } from 'node:crypto';
import type { SigAlg } from '../../engine/httpsig.ts';

export const messagePath = '/v1/messages';

/** Envelope headers an agency sets; the optional ones are signed whenever present. */
export const envelopeHeaders = {
  to: 'swx-to',
  service: 'swx-service',
  action: 'swx-action',
  conversationId: 'swx-conversation-id',
  refTo: 'swx-ref-to',
  messageId: 'swx-message-id',
} as const;

/** Headers the hub adds when it delivers. */
export const deliveryHeaders = { from: 'swx-from', receivedAt: 'swx-received-at', sha256: 'swx-payload-sha256' } as const;

export const requiredRequestComponents = ['@method', '@target-uri', 'content-type', 'content-digest', envelopeHeaders.to, envelopeHeaders.service];
const optionalRequestComponents = [
  envelopeHeaders.action, envelopeHeaders.conversationId, envelopeHeaders.refTo, envelopeHeaders.messageId,
  deliveryHeaders.from, deliveryHeaders.receivedAt, deliveryHeaders.sha256,
];

/** Components to sign for a request with these (lower-case) headers. */
export function requestComponents(headers: Record<string, unknown>): string[] {
  return [...requiredRequestComponents, ...optionalRequestComponents.filter((name) => headers[name] !== undefined)];
}

/** A receipt is the receiver's signed 2xx answer; it names the message it acknowledges. */
export const receiptComponents = ['@status', 'content-type', 'content-digest', envelopeHeaders.messageId];

/** The signature algorithm for a key: ECDSA by curve, Ed25519, and RSA-PSS for RSA keys unless the signer said v1.5. */
export function algorithmFor(key: KeyObject, declared?: string): SigAlg | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const alg: SigAlg | undefined = curve === 'prime256v1' ? 'ecdsa-p256-sha256' : curve === 'secp384r1' ? 'ecdsa-p384-sha384' : undefined;
    return declared === undefined || declared === alg ? alg : undefined;
  }
  if (type === 'ed25519') return declared === undefined || declared === 'ed25519' ? 'ed25519' : undefined;
  if (type === 'rsa') return declared === 'rsa-v1_5-sha256' ? 'rsa-v1_5-sha256' : declared === undefined || declared === 'rsa-pss-sha512' ? 'rsa-pss-sha512' : undefined;
  return undefined;
}
