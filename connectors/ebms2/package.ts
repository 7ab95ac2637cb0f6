// A message's payloads, named by its Manifest, as one swx payload and back (engine/mime/package.ts): one payload as it
// is; several as a package in Manifest order, each part keeping its Content-ID, Content-Type and xlink:role. On the way
// out outbound.ts splits a package again (payloadParts), one Manifest Reference and signed MIME part per part.
import { writePackage, type Attachment, type MessageParts } from '../../engine/mime/index.ts';
import type { Submission } from '../../engine/submission.ts';
import type { EbmsMessage } from './message.ts';

const contentTypeOf = (part: Attachment) => String(part.headers['content-type'] ?? 'application/octet-stream').trim();

/** The payload the Manifest names: none, its one part, or the package of its several parts. */
export async function manifestPayload(message: EbmsMessage, parts: MessageParts): Promise<Pick<Submission, 'payload' | 'contentType'>> {
  const named = message.manifest.flatMap((reference) => {
    const part = parts.attachments.find((attachment) => attachment.contentId === reference.contentId);
    return part ? [{ reference, part }] : [];
  });
  const [first] = named;
  if (!first) return { payload: Buffer.alloc(0), contentType: 'application/octet-stream' };
  if (named.length === 1) return { payload: first.part.body, contentType: contentTypeOf(first.part) };
  const packaged = await writePackage(named.map(({ reference, part }) => ({
    contentId: part.contentId, contentType: contentTypeOf(part), properties: [], ...(reference.role === undefined ? {} : { role: reference.role }), body: part.body,
  })));
  return { payload: packaged.body, contentType: packaged.contentType };
}
