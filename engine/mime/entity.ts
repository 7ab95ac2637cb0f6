// MIME entities (RFC 2045/2046), RFC 822 mail being one: header block, transfer decoding, multipart bodies, and the
// root part and attachments of a SOAP-with-attachments message (multipart/related, RFC 2387).
import { SwxError } from '../errors.ts';
import { bareContentId, lineAt, parseHeaderBlock, parseMediaType, type Headers, type MediaType } from './headers.ts';
import { defaultMimeLimits, type MimeLimits } from './limits.ts';

export interface MimePart {
  /** Lower-case names. */
  headers: Headers;
  /** From Content-Type; text/plain when absent (RFC 2045). */
  contentType: MediaType;
  /** Content-ID without its angle brackets; absent when the part has none. */
  contentId?: string;
  /** The content after Content-Transfer-Encoding decoding; for a multipart, its raw body. */
  body: Buffer;
  /** The parts of a multipart, in order. */
  parts?: MimePart[];
}

/** A part other than the root, in the shape the XMLDSig verifier resolves `cid:` references against. */
export interface Attachment {
  /** Without angle brackets; "" when the part has no Content-ID. */
  contentId: string;
  headers: Headers;
  body: Buffer;
}

export interface MessageParts {
  /** The SOAP envelope (or other root document): the `start` part of a multipart/related, else the first part. */
  root: MimePart;
  attachments: Attachment[];
}

const textPlain = (): MediaType => ({ type: 'text', subtype: 'plain', parameters: { charset: 'us-ascii' } });

/** Parses a MIME entity or an RFC 822 / SMTP mail (the same grammar: a header block, a blank line, a body). */
export function parseEntity(bytes: Buffer, limits: MimeLimits = defaultMimeLimits): MimePart {
  if (bytes.length > limits.maxBytes) throw new SwxError('SWX_TOO_LARGE', `message of ${bytes.length} bytes exceeds ${limits.maxBytes}`);
  const block = parseHeaderBlock(bytes, 0, limits, 'message headers');
  return entityOf(block.headers, bytes.subarray(block.bodyStart), limits);
}

// RFC 2046 5.1.1 bchars: what a boundary may hold (a space, but not last).
const boundaryLine = /^--([0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?])[ \t]*$/;

/**
 * A multipart/related body logged without the headers that named its boundary (some MSH logs keep only the body): it
 * begins with a delimiter line, whose boundary it is read with. Undefined when the first line is not a delimiter.
 */
export function headerlessMultipart(bytes: Buffer, limits: MimeLimits = defaultMimeLimits): MimePart | undefined {
  let start = 0;
  while (bytes[start] === 0x0d || bytes[start] === 0x0a) start += 1;
  const line = lineAt(bytes.subarray(start, start + 200), 0);
  if (line.end === -1) return undefined;
  const boundary = boundaryLine.exec(bytes.toString('latin1', start, start + line.end))?.[1];
  if (boundary === undefined) return undefined;
  return entityOf({ 'content-type': `multipart/related; boundary="${boundary}"` }, bytes.subarray(start), limits);
}

/** The entity made of given headers (e.g. an HTTP message's) and body; the body is transfer-decoded or split. */
export function entityOf(headers: Headers, body: Buffer, limits: MimeLimits = defaultMimeLimits): MimePart {
  if (body.length > limits.maxBytes) throw new SwxError('SWX_TOO_LARGE', `message body of ${body.length} bytes exceeds ${limits.maxBytes}`);
  return buildEntity(headers, body, limits, { parts: 0 }, 0, 'message');
}

/** What a part's header fields say of it: media type, Content-ID (without <>) and transfer encoding (lower case). */
export function describePart(headers: Headers, what: string): { contentType: MediaType; contentId?: string; encoding: string } {
  const contentType = headers['content-type'] === undefined ? textPlain() : parseMediaType(headers['content-type'], `${what} Content-Type`);
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').trim().toLowerCase();
  return headers['content-id'] === undefined ? { contentType, encoding } : { contentType, contentId: bareContentId(headers['content-id']), encoding };
}

/** The boundary parameter of a multipart media type, checked against RFC 2046 5.1.1. */
export function boundaryOf(contentType: MediaType, what: string): string {
  const boundary = contentType.parameters.boundary;
  if (!boundary || boundary.length > 70 || /[^ -~]|\s$/.test(boundary)) {
    throw new SwxError('SWX_BAD_REQUEST', `${what}: multipart/${contentType.subtype} needs a boundary of 1-70 printable characters`);
  }
  return boundary;
}

function buildEntity(headers: Headers, body: Buffer, limits: MimeLimits, count: { parts: number }, depth: number, what: string): MimePart {
  const { contentType, contentId, encoding } = describePart(headers, what);
  const part: MimePart = { headers, contentType, body, ...(contentId === undefined ? {} : { contentId }) };
  if (contentType.type !== 'multipart') {
    part.body = transferDecode(body, encoding, what);
    return part;
  }
  // RFC 2045 6.4: a multipart is never encoded, or its boundaries could not be found.
  if (!['7bit', '8bit', 'binary'].includes(encoding)) throw new SwxError('SWX_BAD_REQUEST', `${what}: a multipart with Content-Transfer-Encoding ${encoding}`);
  if (depth >= limits.maxDepth) throw new SwxError('SWX_TOO_LARGE', `${what}: multiparts nested deeper than ${limits.maxDepth}`);
  const boundary = boundaryOf(contentType, what);
  part.parts = splitMultipart(body, boundary, what, count, limits.maxParts).map((range, index) => {
    const name = depth === 0 ? `part ${index + 1}` : `${what}.${index + 1}`;
    const content = body.subarray(range.start, range.end);
    // A part without header fields still has the blank line (RFC 2046 5.1.1).
    const block = parseHeaderBlock(content, 0, limits, `${name} headers`);
    return buildEntity(block.headers, content.subarray(block.bodyStart), limits, count, depth + 1, name);
  });
  return part;
}

/**
 * The byte ranges of the body parts between `--boundary` delimiter lines. A delimiter starts a line and is followed by
 * optional white space and the line end, or by `--` for the last one; the line break before a delimiter belongs to it.
 */
function splitMultipart(body: Buffer, boundary: string, what: string, count: { parts: number }, maxParts: number): { start: number; end: number }[] {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  const ranges: { start: number; end: number }[] = [];
  let partStart = -1;
  for (let at = body.indexOf(dashBoundary); at !== -1; at = body.indexOf(dashBoundary, at + 1)) {
    if (at > 0 && body[at - 1] !== 0x0a) continue;
    const after = at + dashBoundary.length;
    const closing = body[after] === 0x2d && body[after + 1] === 0x2d;
    let lineEnd = after + (closing ? 2 : 0);
    while (body[lineEnd] === 0x20 || body[lineEnd] === 0x09) lineEnd += 1;
    const line = lineAt(body, lineEnd);
    const endsLine = line.end === lineEnd || (closing && lineEnd === body.length);
    if (!endsLine) continue; // "--boundaryX": content that merely starts like a delimiter
    if (partStart !== -1) {
      // Counted as found, so that a bomb of tiny parts is refused before it costs memory.
      count.parts += 1;
      if (count.parts > maxParts) throw new SwxError('SWX_TOO_LARGE', `message has more than ${maxParts} parts`);
      const breakLength = at >= 2 && body[at - 2] === 0x0d ? 2 : 1;
      ranges.push({ start: partStart, end: at - breakLength });
    }
    if (closing) {
      if (partStart === -1) throw new SwxError('SWX_BAD_REQUEST', `${what}: the closing delimiter --${boundary}-- comes before any part`);
      return ranges;
    }
    partStart = line.next;
  }
  if (partStart === -1) throw new SwxError('SWX_BAD_REQUEST', `${what}: no delimiter line --${boundary} in the body`);
  throw new SwxError('SWX_BAD_REQUEST', `${what}: the multipart never closes (no --${boundary}-- line; truncated?)`);
}

function transferDecode(body: Buffer, encoding: string, what: string): Buffer {
  switch (encoding) {
    case '7bit':
    case '8bit':
    case 'binary':
      return body;
    case 'base64':
      return base64Decode(body, what);
    case 'quoted-printable':
      return quotedPrintableDecode(body, what);
    default:
      throw new SwxError('SWX_BAD_REQUEST', `${what}: Content-Transfer-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported (7bit, 8bit, binary, base64, quoted-printable)`);
  }
}

/** Strict base64: only the alphabet and white space, padding only at the end (Node's decoder would skip any junk). */
function base64Decode(body: Buffer, what: string): Buffer {
  const text = base64Text(body, '', what);
  if (text.length % 4 === 1) throw new SwxError('SWX_BAD_REQUEST', `${what}: the base64 content ends in a lone character`);
  return Buffer.from(text, 'base64');
}

/** `carry` and `bytes` as base64 text without its white space; refused unless all of it is alphabet, then padding. */
export function base64Text(bytes: Buffer, carry: string, what: string): string {
  const text = carry + bytes.toString('latin1').replace(/[ \t\r\n]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new SwxError('SWX_BAD_REQUEST', `${what}: the base64 content holds characters outside the base64 alphabet or misplaced padding`);
  }
  return text;
}

const hexValue = (byte: number | undefined): number => {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
};

/** RFC 2045 6.7: `=XX` octets, `=` at a line end is a soft break, white space before a line end is transport padding. */
function quotedPrintableDecode(body: Buffer, what: string): Buffer {
  const out = Buffer.allocUnsafe(body.length);
  let length = 0;
  let at = 0;
  while (at < body.length) {
    const line = lineAt(body, at);
    let end = line.end === -1 ? body.length : line.end;
    while (end > at && (body[end - 1] === 0x20 || body[end - 1] === 0x09)) end -= 1;
    let soft = false;
    for (let i = at; i < end; i += 1) {
      if (body[i] !== 0x3d) { out[length++] = body[i]!; continue; }
      if (i === end - 1) { soft = true; break; }
      const high = hexValue(body[i + 1]);
      const low = hexValue(body[i + 2]);
      if (high === -1 || low === -1 || i + 2 >= end) throw new SwxError('SWX_BAD_REQUEST', `${what}: quoted-printable "=" not followed by two hex digits`);
      out[length++] = high * 16 + low;
      i += 2;
    }
    if (line.end === -1) break;
    if (!soft) for (let i = line.end; i < line.next; i += 1) out[length++] = body[i]!;
    at = line.next;
  }
  return Buffer.from(out.subarray(0, length));
}

/**
 * The root part and the attachments of a message. For a multipart/related the root is the part its `start` parameter
 * names (RFC 2387), else the first part; for a single-part message the entity itself. Two parts with one Content-ID
 * are refused: a `cid:` reference must resolve to one part only.
 */
export function messageParts(entity: MimePart): MessageParts {
  if (!entity.parts) return { root: entity, attachments: [] };
  const start = entity.contentType.parameters.start;
  const seen = new Set<string>();
  for (const part of entity.parts) {
    if (part.contentId === undefined) continue;
    if (seen.has(part.contentId)) throw new SwxError('SWX_BAD_REQUEST', `two parts have Content-ID <${part.contentId}>`);
    seen.add(part.contentId);
  }
  let root = entity.parts[0]!;
  if (start !== undefined && entity.contentType.subtype === 'related') {
    const id = bareContentId(start);
    const named = entity.parts.find((part) => part.contentId === id);
    if (!named) throw new SwxError('SWX_BAD_REQUEST', `the multipart/related start parameter names <${id}>, which no part has`);
    root = named;
  }
  const attachments = entity.parts
    .filter((part) => part !== root)
    .map((part) => ({ contentId: part.contentId ?? '', headers: part.headers, body: part.body }));
  return { root, attachments };
}
