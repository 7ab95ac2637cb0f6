// A received payload too large to hold: its MIME part streams into the Object Store as it arrives, decrypted on the
// way where it came encrypted and inflated where it came compressed (within the bomb caps), its digests for the
// signature taken from the octets the signature covers (the plaintext, before inflation). Nothing of it is held whole;
// the signature is judged over those digests once it has ended, and a part that fails (truncated, not decrypting, not
// inflating) leaves nothing stored.
import { Readable, Transform } from 'node:stream';
import type { StreamedPart } from '../../engine/mime/index.ts';
import type { Payloads, StoredPayload } from '../../engine/payloads.ts';
import { attachmentDigester, digestableAsStreamed, type PartDecryption, type XmlAttachment } from '../../engine/trust/index.ts';
import { decompress } from './compression.ts';
import { EbmsError } from './errors.ts';
import type { UserMessage } from './model.ts';

export interface StreamedPayload {
  /** The part as the signature is judged over it: its headers (the plaintext's Content-Type) and digests, no body. */
  attachment: XmlAttachment;
  /** The payload as delivered: inflated where it came compressed. */
  stored: StoredPayload;
}

/** The caps on inflation: as for a payload held (inbound.ts), up to the largest body streamed. */
export const inflateCaps = (maxBytes: number) => ({ maxBytes, maxRatio: 200, ratioFloorBytes: Math.min(maxBytes, 1024 * 1024) });

/**
 * Streams the message's one payload part into the Object Store; undefined (the part is held, as ever) when the part is
 * not a payload the message names, or its content is XML, whose canonical form the signature digests whole.
 */
export async function streamPayloadPart(part: StreamedPart, user: UserMessage, payloads: Payloads, maxBytes: number, decryption?: PartDecryption): Promise<StreamedPayload | undefined> {
  const messageId = user.messageInfo.messageId;
  const info = user.parts.find((named) => named.location.kind === 'attachment' && named.location.contentId === part.contentId);
  if (!info || user.parts.length !== 1 || part.contentId === undefined) return undefined;
  const encrypted = decryption?.parts.find((named) => named.contentId === part.contentId);
  const headers = encrypted ? { ...part.headers, 'content-type': encrypted.mimeType ?? 'application/octet-stream' } : part.headers;
  if (!digestableAsStreamed(headers)) return undefined;
  const plaintext = encrypted && decryption
    ? decryption.open({ contentId: part.contentId, contentType: part.headers['content-type'] ?? 'application/octet-stream', body: part.body }).body
    : part.body;
  const digester = attachmentDigester(headers);
  const digested = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      digester.update(chunk);
      done(null, chunk);
    },
  });
  plaintext.on('error', (error) => digested.destroy(error));
  plaintext.pipe(digested);
  const payload = info.compressionType ? Readable.from(decompress(digested, info, inflateCaps(maxBytes)), { objectMode: false }) : digested;
  let stored: StoredPayload;
  try {
    stored = await payloads.receive(payload, []);
  } catch (error) {
    // What the sender sent cannot be inflated within the caps: its fault (4xx), as for a payload held. Any other
    // failure (a body cut short or malformed, a ciphertext that does not authenticate) the body reader names.
    if (error instanceof EbmsError && error.code === 'EBMS:0303') throw new EbmsError(error.code, error.detail, { refToMessageInError: messageId, faultCode: 'Sender', swxCode: 'SWX_TOO_LARGE' });
    throw error;
  }
  return { attachment: { contentId: part.contentId, headers, body: Buffer.alloc(0), digests: digester.digests() }, stored };
}
