// A message's payloads, named by its Manifest, as one swx payload and back (engine/mime/package.ts): one payload as it
// is; several as a package in Manifest order, each part keeping its Content-ID, Content-Type and xlink:role. On the way
// out outbound.ts splits a package again (payloadParts), one Manifest Reference and signed MIME part per part. A body
// too large to hold has its parts streamed into the Object Store as they arrive (engine/streamed-payloads.ts), their
// octets digested on the way (SHA-1 too, where the agreement lets the sender sign so).
import { writePackage, type Attachment, type MessageParts, type PartToPackage } from '../../engine/mime/index.ts';
import type { Payloads } from '../../engine/payloads.ts';
import { digesting, StreamedPayloads } from '../../engine/streamed-payloads.ts';
import type { Submission } from '../../engine/submission.ts';
import { ebmsError, EbmsRefusal } from './ebms-error.ts';
import type { EbmsMessage, ManifestReference } from './message.ts';

const contentTypeOf = (part: Pick<Attachment, 'headers'>) => String(part.headers['content-type'] ?? 'application/octet-stream').trim();

/** A Manifest Reference's part as a package part, but for its body. */
export const packagedPart = (reference: ManifestReference, part: Pick<Attachment, 'contentId' | 'headers'>): Omit<PartToPackage, 'body'> => ({
  contentId: part.contentId, contentType: contentTypeOf(part), properties: [], ...(reference.role === undefined ? {} : { role: reference.role }),
});

/** The payload the Manifest names: none, its one part, or the package of its several parts. */
export async function manifestPayload(message: EbmsMessage, parts: MessageParts): Promise<Pick<Submission, 'payload' | 'contentType'>> {
  const named = message.manifest.flatMap((reference) => {
    const part = parts.attachments.find((attachment) => attachment.contentId === reference.contentId);
    return part ? [{ reference, part }] : [];
  });
  const [first] = named;
  if (!first) return { payload: Buffer.alloc(0), contentType: 'application/octet-stream' };
  if (named.length === 1) return { payload: first.part.body, contentType: contentTypeOf(first.part) };
  const packaged = await writePackage(named.map(({ reference, part }) => ({ ...packagedPart(reference, part), body: part.body })));
  return { payload: packaged.body, contentType: packaged.contentType };
}

/** The payloads the Manifest names, as their parts arrive; `sha1` where the sender's agreement allows SHA-1 digests. */
export function ebms2StreamedPayloads(message: EbmsMessage, payloads: Payloads, maxBytes: number, sha1: boolean): StreamedPayloads {
  return new StreamedPayloads(message.manifest.map((reference) => ({ contentId: reference.contentId })), {
    payloads,
    maxBytes,
    arrive(part) {
      const reference = message.manifest.find((named) => named.contentId === part.contentId)!;
      const digested = digesting(part.headers, part.body, { sha1 });
      return { headers: part.headers, body: digested.body, digests: digested.digests, packaged: packagedPart(reference, part) };
    },
    missing: (contentId) => new EbmsRefusal([ebmsError('MimeProblem', `no MIME part has Content-ID <${contentId.slice(0, 120)}>`, `cid:${contentId.slice(0, 200)}`)]),
  });
}
