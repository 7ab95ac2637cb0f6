// The HTTP body of an ebMS 2.0 message as it arrives (2.1): multipart/related with the SOAP envelope as its start part
// and the payloads beside it, read through engine/mime's streaming reader within a byte limit and the part caps; a bare
// text/xml envelope (a signal with no payload) is read too. The parts are held whole, unless the caller takes them as
// they stream (the payloads of a body too large to hold, written to the Object Store with their digests taken on the
// way).
import { SwxError } from '../../engine/errors.ts';
import { whole } from '../../engine/http.ts';
import { defaultMimeLimits, parseMediaType, readMultipart, type MediaType, type MessageParts, type MimePart } from '../../engine/mime/index.ts';
import type { StreamedParts } from '../../engine/streamed-payloads.ts';
import type { XmlAttachment } from '../../engine/trust/index.ts';
import { ebmsError, EbmsRefusal } from './ebms-error.ts';

/** A body that could not be read whole: the error, and its SOAP part when that much arrived (to address the answer). */
export class UnreadBody extends Error {
  constructor(readonly error: SwxError, readonly root?: MimePart) {
    super(error.message);
    this.name = 'UnreadBody';
  }
}

const typeOf = (media: MediaType) => `${media.type}/${media.subtype}`.toLowerCase();

const mimeProblem = (detail: string) => new EbmsRefusal([ebmsError('MimeProblem', detail)]);

/**
 * Reads an ebMS 2.0 HTTP body of the given Content-Type into its parts. A Content-Type that is neither is an
 * EbmsRefusal (MimeProblem); malformed or truncated MIME, or more than `maxBytes`, is an UnreadBody carrying the
 * hub's SwxError (SWX_BAD_REQUEST, SWX_TOO_LARGE) and the SOAP part if it was read before the fault.
 */
export async function readEbmsBody(source: AsyncIterable<Uint8Array>, contentType: string, maxBytes: number, streamed?: StreamedParts): Promise<MessageParts> {
  let media: MediaType;
  try {
    media = parseMediaType(contentType, 'Content-Type');
  } catch (error) {
    throw mimeProblem((error as Error).message);
  }
  let root: MimePart | undefined;
  try {
    if (typeOf(media) === 'text/xml') {
      root = { headers: { 'content-type': contentType }, contentType: media, body: await whole(source, maxBytes, 'the envelope') };
      return { root, attachments: [] };
    }
    if (typeOf(media) !== 'multipart/related') throw mimeProblem(`Content-Type ${typeOf(media).slice(0, 80)} is not multipart/related (ebMS 2.0, 2.1.2)`);
    const attachments: XmlAttachment[] = [];
    let held = 0;
    for await (const part of readMultipart(source, contentType, { ...defaultMimeLimits, maxBytes: streamed?.maxBytes ?? maxBytes })) {
      const taken = root && streamed ? await streamed.take(root.body, part) : undefined;
      if (taken) {
        attachments.push(taken);
        continue;
      }
      // Streamed, the body may be larger than `maxBytes`; what is held may not.
      const body = await whole(part.body, maxBytes - held, 'what is held of the message');
      held += body.length;
      if (part.root) root = { headers: part.headers, contentType: part.contentType, ...(part.contentId === undefined ? {} : { contentId: part.contentId }), body };
      else attachments.push({ contentId: part.contentId ?? '', headers: part.headers, body });
    }
    if (!root) throw mimeProblem('the multipart body holds no SOAP part');
    return { root, attachments };
  } catch (error) {
    if (error instanceof EbmsRefusal) throw error;
    const swx = error instanceof SwxError ? error : new SwxError('SWX_BAD_REQUEST', `the MIME body could not be read: ${(error as Error).message}`);
    throw new UnreadBody(swx, root);
  }
}
