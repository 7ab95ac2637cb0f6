// A UserMessage's payloads as the swx payload (engine/mime/package.ts): one part as it is, several as one package, on
// the way in each part in PartInfo order, held inflated, keeping its Content-ID, MimeType and CharacterSet (as its
// Content-Type) and its other PartProperties; a SOAP Body payload becomes a part named by its Id (or
// soap-body@swx.invalid when the PartInfo names the whole Body). On the way out compose.ts splits a package again
// (payloadParts), one PartInfo per part. Held here; streamed.ts writes the same package as the parts arrive.
import { SwxError } from '../../engine/errors.ts';
import { writePackage, type PartToPackage } from '../../engine/mime/index.ts';
import type { Submission } from '../../engine/submission.ts';
import type { XmlAttachment } from '../../engine/trust/index.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import { EbmsError } from './errors.ts';
import type { As4Message, PartInfo, UserMessage } from './model.ts';
import { serializeElement } from './write.ts';

/** The PartProperties a package part's Content-Type says, or that no longer hold once it is inflated. */
const typeProperties = new Set(['MimeType', 'CompressionType', 'CharacterSet']);

/** The Content-ID a Body payload is given in a package. */
const bodyContentId = (part: PartInfo) => (part.location.kind === 'body' ? part.location.id ?? 'soap-body@swx.invalid' : part.location.contentId);

const withCharset = (part: PartInfo, type: string) => (part.characterSet && !/;\s*charset=/i.test(type) ? `${type}; charset=${part.characterSet}` : type);

/** A payload attachment's media type: its PartInfo MimeType (a compressed one always names it), else its part's Content-Type. */
export const payloadType = (part: PartInfo, attachment: Pick<XmlAttachment, 'headers'>) => withCharset(part, part.mimeType ?? String(attachment.headers['content-type'] ?? 'application/octet-stream'));

/** A payload in the SOAP Body: the element the PartInfo names (the Body's first child when it names the Body). */
export function bodyPayload(part: PartInfo, message: As4Message): Pick<Submission, 'payload' | 'contentType'> {
  const content = elementChildren(message.envelope.body);
  const id = part.location.kind === 'body' ? part.location.id : undefined;
  const element = id === undefined ? content[0] : content.find((child) => child.attributes.some((a) => a.localName === 'Id' && a.value === id));
  if (!element) throw new EbmsError('EBMS:0009', 'the PartInfo names a Body payload the Body does not hold', { refToMessageInError: message.message.messageInfo.messageId });
  return { payload: Buffer.from(serializeElement(element), 'utf8'), contentType: withCharset(part, part.mimeType ?? 'application/xml') };
}

/** The package part of a payload the PartInfo names, but for its body. */
export const packagedPart = (part: PartInfo, contentType: string): Omit<PartToPackage, 'body'> => ({
  contentId: bodyContentId(part), contentType, properties: part.properties.filter((p) => !typeProperties.has(p.name)),
});

/** The package of a message's several parts, each read by `payloadOf` within what is left of `maxBytes`. */
export async function packagedPayload(
  user: UserMessage,
  payloadOf: (part: PartInfo, maxBytes: number) => Promise<Pick<Submission, 'payload' | 'contentType'>>,
  maxBytes: number,
): Promise<Pick<Submission, 'payload' | 'contentType'>> {
  const parts: PartToPackage[] = [];
  let left = maxBytes;
  for (const part of user.parts) {
    const { payload, contentType } = await payloadOf(part, left);
    left -= payload.length;
    parts.push({ ...packagedPart(part, contentType), body: payload });
  }
  const packaged = await writePackage(parts);
  if (packaged.body.length > maxBytes) throw new SwxError('SWX_TOO_LARGE', `the ${parts.length} payloads make a package of ${packaged.body.length} bytes; this hub carries at most ${maxBytes}`);
  return { payload: packaged.body, contentType: packaged.contentType };
}
