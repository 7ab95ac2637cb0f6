// The payloads of a received UserMessage too large to hold, streamed into the Object Store as its parts arrive
// (engine/streamed-payloads.ts): each part decrypted on the way where it came encrypted, digested over the plaintext
// the signature covers, then inflated where it came compressed (within the bomb caps); several become the package
// package.ts makes of them when held, a Body payload taken from the envelope.
import { Readable } from 'node:stream';
import type { Payloads } from '../../engine/payloads.ts';
import { digesting, StreamedPayloads } from '../../engine/streamed-payloads.ts';
import type { PartDecryption } from '../../engine/trust/index.ts';
import { decompress } from './compression.ts';
import { EbmsError } from './errors.ts';
import type { As4Message, UserMessage } from './model.ts';
import { bodyPayload, packagedPart, payloadType } from './package.ts';

/** The caps on inflation: as for a payload held (inbound.ts), up to the largest body streamed. */
export const inflateCaps = (maxBytes: number) => ({ maxBytes, maxRatio: 200, ratioFloorBytes: Math.min(maxBytes, 1024 * 1024) });

/** The payloads of `message` as its parts arrive, decrypted with `decryption` where they came encrypted. */
export function as4StreamedPayloads(message: As4Message & { message: UserMessage }, payloads: Payloads, maxBytes: number, decryption?: PartDecryption): StreamedPayloads {
  const user = message.message;
  const messageId = user.messageInfo.messageId;
  const expected = user.parts.map((info) => {
    if (info.location.kind === 'attachment') return { contentId: info.location.contentId };
    const { payload, contentType } = bodyPayload(info, message);
    return { held: { ...packagedPart(info, contentType), body: payload } };
  });
  return new StreamedPayloads(expected, {
    payloads,
    maxBytes,
    arrive(part) {
      const info = user.parts.find((named) => named.location.kind === 'attachment' && named.location.contentId === part.contentId)!;
      const encrypted = decryption?.parts.find((named) => named.contentId === part.contentId);
      const headers = encrypted ? { ...part.headers, 'content-type': encrypted.mimeType ?? 'application/octet-stream' } : part.headers;
      const plaintext = encrypted && decryption
        ? decryption.open({ contentId: part.contentId, contentType: part.headers['content-type'] ?? 'application/octet-stream', body: part.body }).body
        : part.body;
      const digested = digesting(headers, plaintext);
      const body = info.compressionType ? Readable.from(decompress(digested.body, info, inflateCaps(maxBytes)), { objectMode: false }) : digested.body;
      return { headers, body, digests: digested.digests, packaged: packagedPart(info, payloadType(info, { headers })) };
    },
    missing: (contentId) => new EbmsError('EBMS:0011', `PartInfo href cid:${contentId.slice(0, 120)}: the message has no MIME part with that Content-ID`, { refToMessageInError: messageId }),
    // What the sender sent cannot be inflated within the caps: its fault (4xx), as for a payload held. Any other failure
    // (a body cut short or malformed, a ciphertext that does not authenticate) the body reader names.
    fault: (error) => (error instanceof EbmsError && error.code === 'EBMS:0303' && !error.swxCode
      ? new EbmsError(error.code, error.detail, { refToMessageInError: messageId, faultCode: 'Sender', swxCode: 'SWX_TOO_LARGE' })
      : error),
  });
}
