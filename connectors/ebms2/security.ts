// The ebMS 2.0 signature of a received message (4.1.3), judged for the sending partner: the whole-envelope reference
// and one per Manifest payload verified (the attachments' decoded octets), the MessageHeader and the Body among what is
// signed, the signer a certificate registered to that partner and acceptable to the trust store. RSA-SHA1 and SHA-1
// digests pass only where the partner's agreement names them, and are then listed as weak in the evidence. An unsigned
// message passes only where the agreement asks for no signature and the TLS client is that same partner.
import type { SignatureInfo } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import type { Registry } from '../../engine/registry.ts';
import { signedElement, type CertificateCheck, type PayloadVerifiers, type XmlAttachment } from '../../engine/trust/index.ts';
import type { Ebms2Channel } from './endpoint.ts';
import type { EbmsMessage } from './message.ts';

export interface SignatureContext {
  registry: Registry;
  trust: CertificateCheck;
  verifyXml: PayloadVerifiers['verifyXml'];
}

/**
 * The checked signature of `message` (its SOAP part `envelope`, its MIME `attachments`) from `sender`, or undefined for
 * an unsigned message the agreement allows from `tlsPartner`. Throws SwxError with the trust core's code.
 */
export async function checkEbmsSignature(envelope: Buffer, attachments: readonly XmlAttachment[], message: EbmsMessage, sender: string, channel: Ebms2Channel, tlsPartner: string | undefined, context: SignatureContext): Promise<SignatureInfo | undefined> {
  if (message.signatureReferences.length === 0) {
    if (channel.signature) throw new SwxError('SWX_SIG_MISSING', `the agreement ${message.header.cpaId} asks for signed messages (${channel.signature.algorithm}); this one has no ds:Signature`);
    if (tlsPartner !== sender) throw new SwxError('SWX_SIG_MISSING', `an unsigned message is taken only over a TLS connection of ${sender}'s registered certificate`);
    return undefined;
  }
  const weakAllowed = channel.signature?.weak === true;
  const verdict = await context.verifyXml(envelope, { attachments, policy: weakAllowed ? 'archive' : 'live' });
  if (!verdict.valid) throw new SwxError(verdict.code === 'SWX_OK' ? 'SWX_SIG_INVALID' : verdict.code, `the ebMS signature: ${verdict.detail}`);
  for (const [path, what] of [['/Envelope/Header/MessageHeader', 'the MessageHeader'], ['/Envelope/Body', 'the SOAP Body']] as const) {
    if (!signedElement(verdict, path)) throw new SwxError('SWX_SIG_WRAPPED', `the ebMS signature does not cover ${what}`);
  }
  const unsigned = message.manifest.filter((reference) => !verdict.signedAttachments.includes(reference.contentId));
  if (unsigned.length > 0) throw new SwxError('SWX_SIG_WRAPPED', `the ebMS signature does not cover payload <${unsigned[0]!.contentId.slice(0, 120)}>`);
  const print = verdict.signer?.thumbprint;
  const key = print ? context.registry.keyByThumbprint(print) : undefined;
  if (!key || key.partner.id !== sender) {
    throw new SwxError('SWX_SIG_KEY_MISMATCH', `the message is signed by ${verdict.signer?.subject ?? 'an unknown key'}, not by a registered certificate of ${sender}, whose agreement the From PartyId names`);
  }
  const refusal = await context.trust.check(key.parsed, 'agency-signing');
  if (refusal) throw new SwxError(refusal.code, `the signing certificate ${key.thumbprint} of ${sender}: ${refusal.detail}`);
  const text = envelope.toString('utf8');
  return {
    scheme: 'xmldsig',
    algorithm: verdict.algorithms?.signature ?? '',
    keyId: key.thumbprint,
    certThumbprint: key.thumbprint,
    covered: ['""', ...verdict.signedAttachments.map((contentId) => `cid:${contentId}`)],
    value: /<(?:\w+:)?SignatureValue[^>]*>([^<]*)</.exec(text)?.[1]?.replace(/\s+/g, '') ?? '',
    base: text,
    certificate: key.certificate.toString(),
    ...(verdict.weak?.length ? { weak: verdict.weak } : {}),
  };
}
