// The HTTP body of an AS4 message as it arrives: a bare SOAP envelope, or multipart/related with the envelope as its
// start part and the payloads beside it (SOAP with Attachments), read through engine/mime's streaming reader within a
// byte limit. The envelope is held whole; a part beside it is held too, unless the caller takes it as it streams (a
// payload too large to hold, written to the Object Store with its digests taken on the way).
import { SwxError } from '../../engine/errors.ts';
import { defaultMimeLimits, parseMediaType, readMultipart, type MediaType } from '../../engine/mime/index.ts';
import type { StreamedParts } from '../../engine/streamed-payloads.ts';
import type { XmlAttachment } from '../../engine/trust/index.ts';
import { EbmsError, ebmsErrorOf } from './errors.ts';

export interface As4Body {
  envelope: Buffer;
  /** The MIME parts beside the envelope, in order, Content-ID without angle brackets. */
  attachments: XmlAttachment[];
}

const soapTypes = new Set(['application/soap+xml', 'text/xml']);
const typeOf = (media: MediaType) => `${media.type}/${media.subtype}`.toLowerCase();
const mimeError = (detail: string) => new EbmsError('EBMS:0007', detail);

async function collect(source: AsyncIterable<Uint8Array>, budget: { left: number }, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) {
    budget.left -= chunk.length;
    if (budget.left < 0) throw new SwxError('SWX_TOO_LARGE', `${what} makes the message larger than the limit`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/**
 * Reads an AS4 HTTP body of the given Content-Type. EBMS:0007 (MimeInconsistency) for a body that is neither SOAP nor
 * multipart/related with a SOAP start part, or whose MIME is malformed; over `maxBytes`, the hub's SWX_TOO_LARGE as
 * its EBMS code (ebmsErrorOf).
 */
export async function readAs4Body(source: AsyncIterable<Uint8Array>, contentType: string, maxBytes: number, streamed?: StreamedParts): Promise<As4Body> {
  const budget = { left: maxBytes };
  try {
    let media: MediaType;
    try {
      media = parseMediaType(contentType, 'Content-Type');
    } catch (error) {
      throw mimeError((error as Error).message);
    }
    if (soapTypes.has(typeOf(media))) return { envelope: await collect(source, budget, 'the envelope'), attachments: [] };
    if (typeOf(media) !== 'multipart/related') throw mimeError(`Content-Type ${typeOf(media).slice(0, 80)} is neither a SOAP envelope nor multipart/related`);
    const declared = media.parameters.type?.toLowerCase();
    if (declared !== undefined && !soapTypes.has(declared)) throw mimeError(`multipart/related type ${declared.slice(0, 80)} is not a SOAP envelope's`);
    let envelope: Buffer | undefined;
    const attachments: XmlAttachment[] = [];
    for await (const part of readMultipart(source, contentType, { ...defaultMimeLimits, maxBytes: streamed?.maxBytes ?? maxBytes })) {
      if (part.root) {
        if (!soapTypes.has(typeOf(part.contentType))) throw mimeError(`the start part is ${typeOf(part.contentType).slice(0, 80)}, not a SOAP envelope`);
        envelope = await collect(part.body, budget, 'the envelope');
      } else {
        if (part.contentId === undefined) throw mimeError('a MIME part beside the envelope has no Content-ID, so no PartInfo can name it');
        const taken = envelope && streamed ? await streamed.take(envelope, part) : undefined;
        if (taken) attachments.push(taken);
        else attachments.push({ contentId: part.contentId, headers: part.headers, body: await collect(part.body, budget, `part <${part.contentId.slice(0, 80)}>`) });
      }
    }
    if (!envelope) throw mimeError('the multipart body holds no SOAP envelope');
    return { envelope, attachments };
  } catch (error) {
    if (error instanceof SwxError && error.code === 'SWX_BAD_REQUEST') throw mimeError(error.message);
    throw ebmsErrorOf(error);
  }
}
