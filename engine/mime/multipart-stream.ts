// A multipart body (SOAP with Attachments, RFC 2387) read as it arrives: parts come one at a time, each body a stream
// that is transfer-decoded on the way, so an attachment of any size costs only the chunks in flight.
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SwxError } from '../errors.ts';
import { base64Text, boundaryOf, describePart } from './entity.ts';
import { bareContentId, lineAt, parseHeaderBlock, parseMediaType, type Headers, type MediaType } from './headers.ts';
import { defaultMimeLimits, type MimeLimits } from './limits.ts';

export interface StreamedPart {
  /** Lower-case names. */
  headers: Headers;
  /** From Content-Type; text/plain when absent (RFC 2045). */
  contentType: MediaType;
  /** Content-ID without its angle brackets; absent when the part has none. */
  contentId?: string;
  /** The part the `start` parameter of a multipart/related names, else the first part. */
  root: boolean;
  /** The content after Content-Transfer-Encoding decoding; to be read to its end (or left) before the next part. */
  body: Readable;
}

const CR = 0x0d;

/**
 * Yields the parts of a multipart body of the given Content-Type. The source is pulled only as the caller reads: a
 * part's body is a stream over the source itself, and asking for the next part first drains what is left of it.
 * A malformed or truncated body is an SwxError (SWX_BAD_REQUEST, SWX_TOO_LARGE), thrown by the iteration or emitted
 * by the body stream it arises in. `limits.maxBytes` bounds the body as received.
 */
export async function* readMultipart(source: AsyncIterable<Uint8Array>, contentType: string, limits: MimeLimits = defaultMimeLimits): AsyncGenerator<StreamedPart> {
  const media = parseMediaType(contentType, 'message Content-Type');
  if (media.type !== 'multipart') throw new SwxError('SWX_BAD_REQUEST', `message Content-Type ${media.type}/${media.subtype} is not a multipart`);
  const start = media.subtype === 'related' && media.parameters.start !== undefined ? bareContentId(media.parameters.start) : undefined;
  const body = new MultipartSource(source[Symbol.asyncIterator](), boundaryOf(media, 'message'), limits);
  // The preamble is dropped, chunk by chunk.
  for await (const _ of body.section('message')) void _;
  if (body.closing) throw new SwxError('SWX_BAD_REQUEST', `message: the closing delimiter --${body.boundary}-- comes before any part`);
  const seen = new Set<string>();
  let rootSeen = false;
  for (let index = 1; !body.closing; index += 1) {
    if (index > limits.maxParts) throw new SwxError('SWX_TOO_LARGE', `message has more than ${limits.maxParts} parts`);
    const what = `part ${index}`;
    const headers = await body.headerBlock(`${what} headers`);
    const { contentType: partType, contentId, encoding } = describePart(headers, what);
    if (contentId !== undefined) {
      if (seen.has(contentId)) throw new SwxError('SWX_BAD_REQUEST', `two parts have Content-ID <${contentId}>`);
      seen.add(contentId);
    }
    const root: boolean = !rootSeen && (start === undefined || contentId === start);
    rootSeen ||= root;
    const content = Readable.from(decoded(body.section(what), encoding, what), { objectMode: false });
    yield { headers, contentType: partType, ...(contentId === undefined ? {} : { contentId }), root, body: content };
    // What the caller left of the body is read and dropped: the next part starts after it.
    await finished(content.resume());
  }
  if (!rootSeen) throw new SwxError('SWX_BAD_REQUEST', `the multipart/related start parameter names <${start}>, which no part has`);
  await body.drain();
}

function decoded(content: AsyncGenerator<Buffer>, encoding: string, what: string): AsyncGenerator<Buffer> {
  switch (encoding) {
    case '7bit':
    case '8bit':
    case 'binary':
      return content;
    case 'base64':
      return base64Decoded(content, what);
    default:
      throw new SwxError('SWX_BAD_REQUEST', `${what}: Content-Transfer-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported when streaming (7bit, 8bit, binary, base64)`);
  }
}

/** Decodes whole 4-character groups as they arrive; a group cut by a chunk edge or a line break waits for its rest. */
async function* base64Decoded(content: AsyncGenerator<Buffer>, what: string): AsyncGenerator<Buffer> {
  let carry = '';
  for await (const chunk of content) {
    const text = base64Text(chunk, carry, what);
    const padding = text.indexOf('=');
    // Padding ends the content: what follows it may only be more padding, which base64Text checks as it comes.
    const whole = (padding === -1 ? text.length : padding) & ~3;
    if (whole > 0) yield Buffer.from(text.slice(0, whole), 'base64');
    carry = text.slice(whole);
  }
  if (carry.length % 4 === 1) throw new SwxError('SWX_BAD_REQUEST', `${what}: the base64 content ends in a lone character`);
  if (carry.length > 0) yield Buffer.from(carry, 'base64');
}

/** The body as it arrives, cut at delimiter lines `--boundary` (RFC 2046 5.1.1); the line break before one is its own. */
class MultipartSource {
  /** Bytes pulled and not yet handed on: at most a header block, or the tail that may begin a delimiter. */
  private pending: Buffer;
  private received = 0;
  private ended = false;
  private readonly delimiter: Buffer;
  /** Set by the last section: its delimiter was the closing one. */
  closing = false;

  constructor(private readonly source: AsyncIterator<Uint8Array>, readonly boundary: string, private readonly limits: MimeLimits) {
    this.delimiter = Buffer.from(`\n--${boundary}`, 'latin1');
    // A delimiter may open the body, with no line break before it.
    this.pending = Buffer.from('\n');
  }

  /** The next chunk of the source; undefined at its end. */
  private async next(): Promise<Buffer | undefined> {
    if (this.ended) return undefined;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return undefined;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.received += chunk.length;
    if (this.received > this.limits.maxBytes) throw new SwxError('SWX_TOO_LARGE', `message body exceeds ${this.limits.maxBytes} bytes`);
    return chunk;
  }

  private async pull(): Promise<boolean> {
    const chunk = await this.next();
    if (chunk !== undefined) this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return chunk !== undefined;
  }

  /** The content up to the next delimiter line, which it consumes; a body that ends first is truncated. */
  async *section(what: string): AsyncGenerator<Buffer> {
    let from = 0;
    for (;;) {
      const at = this.pending.indexOf(this.delimiter, from);
      if (at === -1) {
        // Everything but a tail that may hold the start of a delimiter (and the CR before it) can go.
        const cut = this.pending.length - this.delimiter.length;
        if (cut > 0) {
          yield this.pending.subarray(0, cut);
          this.pending = this.pending.subarray(cut);
        }
        from = 0;
        const chunk = await this.next();
        if (chunk === undefined) throw new SwxError('SWX_BAD_REQUEST', `${what}: the multipart never closes (no --${this.boundary}-- line; truncated?)`);
        // Unless a delimiter (or the CR before one) starts in the tail, the tail is content and the chunk is scanned
        // where it lies: an attachment's bytes are not copied on the way.
        const first = Buffer.concat([this.pending, chunk.subarray(0, this.delimiter.length)]).indexOf(this.delimiter);
        if (chunk.length >= this.delimiter.length && (first === -1 || first > this.pending.length)) {
          if (this.pending.length > 0) yield this.pending;
          this.pending = chunk;
        } else {
          this.pending = Buffer.concat([this.pending, chunk]);
        }
        continue;
      }
      const line = this.delimiterLine(at + this.delimiter.length);
      if ((line === 'more' ? this.pending.length : line === 'no' ? at : line.next) - at > this.limits.maxHeaderBytes) {
        throw new SwxError('SWX_TOO_LARGE', `${what}: a delimiter line exceeds ${this.limits.maxHeaderBytes} bytes`);
      }
      if (line === 'more') {
        await this.pull();
        continue;
      }
      if (line === 'no') {
        // "--boundaryX": content that merely starts like a delimiter.
        from = at + 1;
        continue;
      }
      const end = at > 0 && this.pending[at - 1] === CR ? at - 1 : at;
      if (end > 0) yield this.pending.subarray(0, end);
      this.pending = this.pending.subarray(line.next);
      this.closing = line.closing;
      return;
    }
  }

  /** After `--boundary` at `at`: `--` for the closing one, then optional white space and the line end. */
  private delimiterLine(at: number): { closing: boolean; next: number } | 'more' | 'no' {
    const bytes = this.pending;
    const more = this.ended ? 'no' : 'more';
    const closing = bytes[at] === 0x2d && bytes[at + 1] === 0x2d;
    if (bytes[at] === 0x2d && at + 1 >= bytes.length) return more;
    let end = at + (closing ? 2 : 0);
    while (bytes[end] === 0x20 || bytes[end] === 0x09) end += 1;
    if (end >= bytes.length) return closing && this.ended ? { closing, next: end } : more;
    const line = lineAt(bytes, end);
    if (line.end === -1) return bytes[end] === CR && end + 1 === bytes.length ? more : 'no';
    return line.end === end ? { closing, next: line.next } : 'no';
  }

  /** The header block that opens a part, up to and including its blank line. */
  async headerBlock(what: string): Promise<Headers> {
    let scanned = 0;
    for (;;) {
      for (let line = lineAt(this.pending, scanned); line.end !== -1; line = lineAt(this.pending, scanned)) {
        if (line.end === scanned) {
          const block = parseHeaderBlock(this.pending, 0, this.limits, what);
          this.pending = this.pending.subarray(block.bodyStart);
          return block.headers;
        }
        scanned = line.next;
      }
      if (this.pending.length > this.limits.maxHeaderBytes) throw new SwxError('SWX_TOO_LARGE', `${what} exceed ${this.limits.maxHeaderBytes} bytes`);
      if (!(await this.pull())) throw new SwxError('SWX_BAD_REQUEST', `${what} end without the blank line that separates them from the body (truncated?)`);
    }
  }

  /** What follows the closing delimiter, read to its end and dropped, so that the sender's whole message is taken. */
  async drain(): Promise<void> {
    do this.pending = Buffer.alloc(0);
    while (await this.pull());
  }
}
