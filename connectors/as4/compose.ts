// An swx envelope as the UserMessage the hub sends, pushed (outbound.ts) or pulled (pull.ts): From the hub's PartyId, To
// the partner's, MessageId the envelope's id, or its receiver's copy's for a topic or channel (a resend keeps it), the
// swx sender and receiver as the four-corner properties, the payload (or each part of a payload package,
// engine/mime/package.ts) gzipped when the P-Mode says; signed with the algorithm the partner's profile fixes, then,
// when the P-Mode says, its payload encrypted to the partner's encryption certificate (compress, sign, encrypt: AS4).
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { isPackage, multipartBoundary, payloadParts } from '../../engine/mime/index.ts';
import { deliveryMessageId, type Envelope } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { whole } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { storedPackage } from '../../engine/streamed-payloads.ts';
import { certificate, encryptSoapAttachments, storedAttachmentDigests, type XmlSigners } from '../../engine/trust/index.ts';
import { compress, gzipType, mayCompress } from './compression.ts';
import { readAs4Message, signedReferences } from './message.ts';
import type { Property, ReferenceCopy } from './model.ts';
import { as4ServiceFor } from './parties.ts';
import type { As4Endpoint } from './pmode.ts';
import { hubParty, signatureFor, type As4Settings } from './settings.ts';
import { as4Multipart, signAs4, signedAttachment, userMessageEnvelope, type OutgoingPayload, type WrittenEnvelope } from './write.ts';

export interface ComposedMessage {
  /** The multipart/related HTTP body and its Content-Type. */
  body: Buffer;
  contentType: string;
  /** What the signature covers: a non-repudiation receipt must copy each of these. */
  references: ReferenceCopy[];
}

const mediaType = (contentType: string) => contentType.split(';')[0]!.trim();
const charsetOf = (contentType: string) => /;\s*charset="?([^";\s]+)"?/i.exec(contentType)?.[1];

/**
 * The certificate the hub encrypts to under this P-Mode: its `encryptionCertificate`, else (eDelivery AS4 1.x) the
 * partner's registered RSA certificate; within its validity. SwxError when there is none.
 */
function encryptionRecipient(pmode: As4Endpoint, partnerCertificates: readonly string[]): string {
  const pem = pmode.security.encryptionCertificate
    ?? (pmode.profile === 'eDelivery-AS4-1.15' ? partnerCertificates.find((text) => certificate(text).publicKey.asymmetricKeyType === 'rsa') : undefined);
  if (!pem) throw new SwxError('SWX_BAD_REQUEST', `the P-Mode asks for encrypted payloads and names no security.encryptionCertificate${pmode.profile === 'eDelivery-AS4-1.15' ? ', and no RSA certificate is registered to the partner' : ''}`);
  const cert = certificate(pem);
  const now = Date.now();
  if (now < cert.notBefore || now > cert.notAfter) {
    throw new SwxError('SWX_CERT_EXPIRED', `the encryption certificate ${cert.subject} is valid from ${new Date(cert.notBefore).toISOString()} to ${new Date(cert.notAfter).toISOString()}, not now`);
  }
  return pem;
}

/**
 * Checks that the hub can send the envelope to this P-Mode at all (a signature its key can make, an eb:Service for the
 * swx service, a certificate to encrypt to where the P-Mode asks): SwxError otherwise, a refusal that no retry changes.
 */
export function sendable(envelope: Envelope, pmode: As4Endpoint, signing: HubIdentity['signing'], partnerCertificates: readonly string[]): { algorithm: 'rsa-sha256' | 'ed25519'; service: { value: string; type?: string }; recipient?: string } {
  const algorithm = signatureFor(pmode.profile, signing.key);
  const service = as4ServiceFor(pmode, envelope.service, envelope.action);
  if (!service) throw new SwxError('SWX_UNKNOWN_SERVICE', `the P-Mode has no eb:Service for swx service ${envelope.service} with action ${envelope.action}`);
  return { algorithm, service, ...(pmode.security.encrypt ? { recipient: encryptionRecipient(pmode, partnerCertificates) } : {}) };
}

/**
 * `partnerCertificates`: the partner's registered ones, where an eDelivery AS4 1.x recipient is found when the P-Mode
 * names none. `timestampTtlSeconds`: how long the signature's wsu:Timestamp stays valid, as long as the message may be
 * resent as it is.
 */
export async function composeUserMessage(envelope: Envelope, content: Buffer, pmode: As4Endpoint, settings: As4Settings, signing: HubIdentity['signing'], partnerCertificates: readonly string[], sign: XmlSigners['signSoap'], timestampTtlSeconds = 300): Promise<ComposedMessage> {
  const { algorithm, service, recipient } = sendable(envelope, pmode, signing, partnerCertificates);
  // A payload package goes out as its parts, each compressed, signed and encrypted on its own as one payload is.
  const payloads = await Promise.all(payloadParts(envelope.contentType, content, contentIdOf(envelope)).map(async (payload) => {
    const compressed = pmode.compression && mayCompress({ contentType: payload.contentType });
    const part = { contentId: payload.contentId, contentType: compressed ? gzipType : payload.contentType, body: compressed ? await whole(compress(payload.body)) : payload.body };
    return { part, info: payloadInfo(payload.contentId, payload.contentType, compressed, payload.properties) };
  }));
  const parts = payloads.map((payload) => payload.part);
  const written = writeUserMessage(envelope, pmode, settings, service, payloads.map((payload) => payload.info));
  const signed = await signAs4(written, { keyPem: signing.keyPem, certPem: signing.certPem, signatureAlgorithm: algorithm, attachments: parts.map(signedAttachment), timestampTtlSeconds }, sign);
  const references = signedReferences(readAs4Message(Buffer.from(signed, 'utf8'), { attachments: parts.map((part) => part.contentId) }));
  // Signed over the plaintext, then encrypted: the receiver decrypts, then checks the signature.
  const sent = recipient
    ? await encryptSoapAttachments(signed, parts, { certPem: recipient }, pmode.profile, pmode.profile === 'eDelivery-AS4-1.15' ? { keyTransport: pmode.security.keyTransport } : {})
    : { envelope: signed, parts: parts.map((part) => ({ ...part, body: (async function* () { yield part.body; })() })) };
  const multipart = as4Multipart(sent.envelope, sent.parts);
  return { body: await whole(multipart.body), contentType: multipart.contentType, references };
}

/** A payload too large to hold, as the Object Store gives it: its length, its SHA-256 (hex), and a fresh stream of it. */
export interface StreamedContent {
  size: number;
  sha256: string;
  open(): Readable;
}

/** A message whose payload is streamed from the Object Store each time it is sent. */
export interface StreamedMessage {
  contentType: string;
  length: number;
  /** The body, written afresh each call: the same signed envelope, the payload read again and encrypted anew. */
  open(): Readable;
  references: ReferenceCopy[];
  /** The bytes a resend keeps: the signed envelope only. */
  keptBytes: number;
}

/** The MessageProperty of a topic's or channel's copy that names the envelope it is a copy of. */
export const originalMessageIdProperty = 'originalMessageId';

const contentIdOf = (envelope: Envelope) => `payload-${envelope.id.replace(/[^A-Za-z0-9._-]/g, '_')}@swx`;

/**
 * composeUserMessage for a payload too large to hold: signed with the SHA-256 its store keeps (the Attachment-Content
 * transform over binary content digests its octets; text and XML are read through once for their canonical form; a
 * payload package once for each part's), never gzipped (compressing first would need its bytes to sign),
 * encrypted as it streams. Each open() sends the same signed envelope, MessageId and references, with the same framing
 * (boundary, root Content-ID), so its Content-Type and length stay; where the P-Mode encrypts, the content key and IV are
 * fresh each time (the EncryptedKey is as long), so the ciphertext differs while what the signature and a receipt name
 * does not.
 */
export async function composeStreamedUserMessage(envelope: Envelope, content: StreamedContent, pmode: As4Endpoint, settings: As4Settings, signing: HubIdentity['signing'], partnerCertificates: readonly string[], sign: XmlSigners['signSoap'], timestampTtlSeconds = 300): Promise<StreamedMessage> {
  const { algorithm, service, recipient } = sendable(envelope, pmode, signing, partnerCertificates);
  // A payload package goes out as its parts, read through once for their digests, then each streamed in turn.
  const stored = isPackage(envelope.contentType) ? await storedPackage(envelope.contentType, () => content.open()) : undefined;
  const parts = stored?.parts ?? [{
    contentId: contentIdOf(envelope), contentType: envelope.contentType, properties: [], size: content.size,
    digests: await storedAttachmentDigests({ 'content-type': envelope.contentType }, content),
  }];
  const written = writeUserMessage(envelope, pmode, settings, service, parts.map((part) => payloadInfo(part.contentId, part.contentType, false, part.properties)));
  const attachments = parts.map((part) => ({ ...signedAttachment({ ...part, body: Buffer.alloc(0) }), digests: part.digests }));
  const signed = await signAs4(written, { keyPem: signing.keyPem, certPem: signing.certPem, signatureAlgorithm: algorithm, attachments, timestampTtlSeconds }, sign);
  const references = signedReferences(readAs4Message(Buffer.from(signed, 'utf8'), { attachments: parts.map((part) => part.contentId) }));
  const framing = { rootId: `soap-${randomUUID()}@swx`, boundary: multipartBoundary() };
  const framed = async () => {
    const bodies = stored?.bodies();
    const payloads = parts.map((part, index) => ({ contentId: part.contentId, contentType: part.contentType, body: bodies ? bodies[index]!() : content.open(), size: part.size }));
    const sent = recipient
      ? await encryptSoapAttachments(signed, payloads, { certPem: recipient }, pmode.profile, pmode.profile === 'eDelivery-AS4-1.15' ? { keyTransport: pmode.security.keyTransport } : {})
      : { envelope: signed, parts: payloads };
    return as4Multipart(sent.envelope, sent.parts, framing);
  };
  const first = await framed();
  first.body.destroy();
  if (first.length === undefined) throw new SwxError('SWX_INTERNAL', 'the length of a streamed AS4 message is not known');
  return {
    contentType: first.contentType,
    length: first.length,
    open: () => Readable.from((async function* () { yield* (await framed()).body; })(), { objectMode: false }),
    references,
    keptBytes: signed.length,
  };
}

/** A payload's PartInfo: its MimeType and CharacterSet from its media type, CompressionType when gzipped, its other PartProperties. */
function payloadInfo(contentId: string, contentType: string, compressed: boolean, properties: readonly Property[]): OutgoingPayload {
  const charset = charsetOf(contentType);
  return { contentId, mimeType: mediaType(contentType), ...(compressed ? { compressionType: gzipType } : {}), ...(charset ? { characterSet: charset } : {}), properties };
}

function writeUserMessage(envelope: Envelope, pmode: As4Endpoint, settings: As4Settings, service: { value: string; type?: string }, payloads: OutgoingPayload[]): WrittenEnvelope {
  const messageId = deliveryMessageId(envelope);
  return userMessageEnvelope({
    messageId,
    ...(envelope.refToMessageId ? { refToMessageId: envelope.refToMessageId } : {}),
    ...(pmode.mep.binding === 'pull' ? { mpc: pmode.mep.mpc } : {}),
    from: { partyIds: [hubParty(settings)], role: settings.role },
    to: { partyIds: pmode.partyIds, role: pmode.role },
    collaboration: {
      ...(pmode.agreement ? { agreementRef: { value: pmode.agreement.ref, ...(pmode.agreement.type ? { type: pmode.agreement.type } : {}), ...(pmode.agreement.pmode ? { pmode: pmode.agreement.pmode } : {}) } } : {}),
      service, action: envelope.action, conversationId: envelope.conversationId,
    },
    // The four-corner properties: the swx sender and receiver behind the two MSHs' PartyIds; a copy of a topic's or
    // channel's message names the message it is a copy of, so that the evidence on both sides links them.
    properties: [
      { name: 'originalSender', value: envelope.from }, ...(envelope.to ? [{ name: settings.receiverProperty, value: envelope.to }] : []),
      ...(messageId === envelope.id ? [] : [{ name: originalMessageIdProperty, value: envelope.id }]),
    ],
    payloads,
  });
}
