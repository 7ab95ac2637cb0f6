// A UserMessage's several payloads as one swx payload and back (engine/mime/package.ts): on the way in each part in
// PartInfo order, held inflated, keeping its Content-ID, MimeType and CharacterSet (as its Content-Type) and its other
// PartProperties; a SOAP Body payload becomes a part named by its Id (or soap-body@swx.invalid when the PartInfo names
// the whole Body). On the way out compose.ts splits a package again (payloadParts), one PartInfo per part.
import { SwxError } from '../../engine/errors.ts';
import { writePackage, type PackagedPart } from '../../engine/mime/index.ts';
import type { Submission } from '../../engine/submission.ts';
import type { PartInfo, UserMessage } from './model.ts';

/** The PartProperties a package part's Content-Type says, or that no longer hold once it is inflated. */
const typeProperties = new Set(['MimeType', 'CompressionType', 'CharacterSet']);

/** The Content-ID a Body payload is given in a package. */
const bodyContentId = (part: PartInfo) => (part.location.kind === 'body' ? part.location.id ?? 'soap-body@swx.invalid' : part.location.contentId);

/** The package of a message's several parts, each read by `payloadOf` within what is left of `maxBytes`. */
export async function packagedPayload(
  user: UserMessage,
  payloadOf: (part: PartInfo, maxBytes: number) => Promise<Pick<Submission, 'payload' | 'contentType'>>,
  maxBytes: number,
): Promise<Pick<Submission, 'payload' | 'contentType'>> {
  const parts: PackagedPart[] = [];
  let left = maxBytes;
  for (const part of user.parts) {
    const { payload, contentType } = await payloadOf(part, left);
    left -= payload.length;
    parts.push({ contentId: bodyContentId(part), contentType, properties: part.properties.filter((p) => !typeProperties.has(p.name)), body: payload });
  }
  const packaged = await writePackage(parts);
  if (packaged.body.length > maxBytes) throw new SwxError('SWX_TOO_LARGE', `the ${parts.length} payloads make a package of ${packaged.body.length} bytes; this hub carries at most ${maxBytes}`);
  return { payload: packaged.body, contentType: packaged.contentType };
}
