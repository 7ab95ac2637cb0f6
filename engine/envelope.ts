// The one message model every connector produces and every stage consumes.
import { createHash } from 'node:crypto';

/** A sender-chosen message id, and the shape of the other envelope tokens (action, conversation, ref-to). */
export const messageIdPattern = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The name of the connector a message came in through (engine/connector.ts): rest, soap, ebms2, as4, sftp, mq... */
export type Protocol = string;

/** How the sender's signature was checked; the trust core adds XMLDSig and CMS detail here. */
export interface SignatureInfo {
  scheme: 'http-message-signatures' | 'xmldsig' | 'cms';
  algorithm: string;
  keyId: string;
  /** SHA-256 thumbprint (base64url) of the signer certificate. */
  certThumbprint: string;
  /** What the signature covers, e.g. RFC 9421 component identifiers. */
  covered: string[];
  /** The signature header lines or value as received, kept for evidence. */
  value: string;
  createdAt?: string;
  /** RFC 9421: the signature base checked, so the evidence can be verified without the hub. */
  base?: string;
  /** The signer certificate (PEM) as registered when the signature was checked. */
  certificate?: string;
  /** Legacy algorithms (SHA-1) the signature uses, accepted only because the partner's agreement names them. */
  weak?: string[];
}

export interface Envelope {
  id: string;
  conversationId: string;
  refToMessageId?: string;
  service: string;
  action: string;
  from: string;
  /** The receiver; '' on a message to a topic or channel, which the route stage copies once per receiver. */
  to: string;
  /** A message to a topic or channel: which one and every receiver it reaches. Each receiver's copy keeps it. */
  audience?: { kind: 'topic' | 'channel'; id: string; receivers: string[] };
  protocol: Protocol;
  contentType: string;
  size: number;
  /** Hex SHA-256 of the payload bytes. */
  sha256: string;
  /** Base64 payload when small; otherwise `payloadRef` names the Object Store entry. */
  payload?: string;
  payloadRef?: string;
  signature?: SignatureInfo;
  /** The payload's own signature (CMS SignedData, enveloped XMLDSig) when it carries one, as the hub verified it. */
  payloadSignature?: SignatureInfo;
  /** How the sender's connection fell short of the hub's policy, allowed by its agreement: e.g. legacy_login. Evidenced. */
  flags?: string[];
  receivedAt: string;
  /** Deliver before this instant or dead-letter with SWX_TTL_EXPIRED. */
  expiresAt?: string;
}

/**
 * The MessageId a delivery travels under where the receiving MSH keeps message ids to answer resends (AS4, ebMS 2.0):
 * the envelope's own for a direct message; for one receiver's copy of a topic's or channel's message, an id of that
 * copy, since several receivers behind one MSH (another hub) each get a copy and must not share one. Derived from the
 * sender, the envelope id and the receiver, so that a retry keeps it; RFC 2822 msg-id form, as both protocols ask.
 */
export function deliveryMessageId(envelope: Pick<Envelope, 'id' | 'from' | 'to' | 'audience'>): string {
  if (!envelope.audience) return envelope.id;
  const digest = createHash('sha256').update(`${envelope.from}\u0000${envelope.id}\u0000${envelope.to}`).digest('hex').slice(0, 32);
  return `${digest}.${envelope.to}@swx.invalid`;
}
