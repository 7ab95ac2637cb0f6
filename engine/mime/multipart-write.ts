// A SOAP-with-Attachments body (multipart/related, RFC 2387) written as it is read: the root part, then each attachment
// streamed from its source, so an attachment of any size costs only the chunks in flight.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { SwxError } from '../errors.ts';
import { parseMediaType } from './headers.ts';

export interface OutgoingPart {
  /** Without angle brackets; written `<id>` in the Content-ID field, referenced as `cid:id` (RFC 2392). */
  contentId: string;
  /** The full field value, parameters included (e.g. `application/soap+xml; charset=utf-8`). */
  contentType: string;
  /** The content as is (binary transfer encoding); a function is called when the part is reached. */
  body: Buffer | AsyncIterable<Uint8Array> | (() => AsyncIterable<Uint8Array>);
  /** The length of a body given as a stream, when known: with every part's, the whole body's is. */
  size?: number;
  /** Further header fields of the part, by name (e.g. a payload package's Part-Property). */
  fields?: Readonly<Record<string, string>>;
}

export interface MultipartBody {
  /** For the Content-Type field: boundary, `type` (the root's media type) and `start` (its Content-ID). */
  contentType: string;
  body: Readable;
  /** Its length in bytes, when every part's is known (a Buffer's, or its `size`). */
  length?: number;
}

/** A fresh random delimiter: 144 random bits, so no content, however chosen, holds it by chance. */
export const multipartBoundary = () => `=_swx_${randomBytes(18).toString('base64url')}`;

/**
 * The multipart/related body of a root part and its attachments, with a fresh random boundary unless one is given (a
 * body written again with the same framing, so that its Content-Type stays the same).
 */
export function writeMultipart(root: OutgoingPart, attachments: OutgoingPart[], boundary = multipartBoundary()): MultipartBody {
  const parts = [root, ...attachments];
  const fields = parts.map((part, index) => partFields(part, index === 0 ? 'the root part' : `attachment ${index}`));
  const seen = new Set(parts.map((part) => part.contentId));
  if (seen.size < parts.length) throw new SwxError('SWX_BAD_REQUEST', 'two parts have one Content-ID: a cid: reference must name one part only');
  const contentType = relatedContentType(boundary, root);
  const opening = (index: number) => delimited(boundary, fields[index]!, index);
  const closing = closingDelimiter(boundary);
  const sizes = parts.map((part) => (Buffer.isBuffer(part.body) ? part.body.length : part.size));
  const length = sizes.every((size) => size !== undefined)
    ? parts.reduce((sum, _part, index) => sum + opening(index).length + sizes[index]!, closing.length) : undefined;
  async function* content(): AsyncGenerator<Buffer> {
    for (const [index, part] of parts.entries()) {
      yield opening(index);
      const body = typeof part.body === 'function' ? part.body() : part.body;
      if (Buffer.isBuffer(body)) yield body;
      else for await (const chunk of body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    }
    yield closing;
  }
  return { contentType, body: Readable.from(content(), { objectMode: false }), ...(length === undefined ? {} : { length }) };
}

/** The Content-Type of a multipart/related body whose start part is `root`. */
export function relatedContentType(boundary: string, root: Pick<OutgoingPart, 'contentId' | 'contentType'>): string {
  const { type, subtype } = parseMediaType(root.contentType, 'the root part Content-Type');
  return `multipart/related; boundary="${boundary}"; type="${type}/${subtype}"; start="<${root.contentId}>"`;
}

/** The delimiter and header block that open the part at `index` (`fields` from partFields). */
export const delimited = (boundary: string, fields: string, index: number) => Buffer.from(`${index === 0 ? '' : '\r\n'}--${boundary}\r\n${fields}\r\n`, 'latin1');

export const closingDelimiter = (boundary: string) => Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');

/** The header block of a part; a value that could end the field early (a line break) would let it forge others. */
export function partFields(part: Pick<OutgoingPart, 'contentId' | 'contentType' | 'fields'>, what: string): string {
  if (/[\r\n]/.test(part.contentType)) throw new SwxError('SWX_BAD_REQUEST', `${what}: Content-Type holds a line break`);
  parseMediaType(part.contentType, `${what} Content-Type`);
  if (!/^[!-;=?-~]+$/.test(part.contentId)) {
    throw new SwxError('SWX_BAD_REQUEST', `${what}: Content-ID ${JSON.stringify(part.contentId.slice(0, 80))} is not printable ASCII without <, > and white space`);
  }
  const extra = Object.entries(part.fields ?? {}).map(([name, value]) => {
    if (!/^[!-9;-~]+$/.test(name) || /^content-/i.test(name)) throw new SwxError('SWX_BAD_REQUEST', `${what}: ${JSON.stringify(name.slice(0, 40))} is not a further header field name`);
    if (/[^\x20-\x7e]/.test(value)) throw new SwxError('SWX_BAD_REQUEST', `${what}: the ${name} field holds a character outside printable ASCII`);
    return `${name}: ${value}\r\n`;
  }).join('');
  return `Content-Type: ${part.contentType}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <${part.contentId}>\r\n${extra}`;
}
