// HTTP/1.1 messages as captured (RFC 9112): an optional start line, the header block, and the body de-chunked or
// delimited by Content-Length; the body is then read as a MIME entity under the message's own Content-Type.
import { SwxError } from '../errors.ts';
import { entityOf, type MimePart } from './entity.ts';
import { lineAt, parseHeaderBlock, type Headers } from './headers.ts';
import { defaultMimeLimits, type MimeLimits } from './limits.ts';

export type StartLine =
  | { kind: 'request'; method: string; target: string; version: string }
  | { kind: 'response'; version: string; status: number; reason: string };

export interface HttpMessage {
  /** Absent when the capture begins with the header fields (some tools record only those). */
  startLine?: StartLine;
  headers: Headers;
  /**
   * How the body was delimited: `chunked` (de-chunked here), `content-length`, `to-end` (no framing header, or a capture
   * whose line ends were rewritten to LF, which invalidates Content-Length), or `decoded-capture` (Transfer-Encoding
   * says chunked but the capture holds the body already de-chunked, as capture tools record it).
   */
  framing: 'chunked' | 'content-length' | 'to-end' | 'decoded-capture';
  /** The body after transfer decoding; `entity.body` is its content after Content-Transfer-Encoding, if any. */
  body: Buffer;
  entity: MimePart;
}

const requestLine = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/\d\.\d)$/;
const statusLine = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/;
const chunkSizeLine = /^([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?$/;

/** True when the bytes begin with an HTTP/1.x request or status line. */
export function startsWithStartLine(bytes: Buffer): boolean {
  const line = lineAt(bytes.subarray(0, 8192), 0);
  if (line.end === -1) return false;
  const text = bytes.toString('latin1', 0, line.end);
  return requestLine.test(text) || statusLine.test(text);
}

/** Parses an HTTP request or response capture; CR LF or bare LF line ends. Throws SWX_BAD_REQUEST / SWX_TOO_LARGE. */
export function parseHttpMessage(bytes: Buffer, limits: MimeLimits = defaultMimeLimits): HttpMessage {
  if (bytes.length > limits.maxBytes) throw new SwxError('SWX_TOO_LARGE', `message of ${bytes.length} bytes exceeds ${limits.maxBytes}`);
  let headerStart = 0;
  let startLine: StartLine | undefined;
  if (startsWithStartLine(bytes)) {
    const line = lineAt(bytes, 0);
    const text = bytes.toString('latin1', 0, line.end);
    const request = requestLine.exec(text);
    const status = statusLine.exec(text);
    startLine = request
      ? { kind: 'request', method: request[1]!, target: request[2]!, version: request[3]! }
      : { kind: 'response', version: status![1]!, status: Number(status![2]), reason: status![3] ?? '' };
    headerStart = line.next;
  }
  const block = parseHeaderBlock(bytes, headerStart, limits, 'HTTP headers');
  const { headers } = block;
  const rest = bytes.subarray(block.bodyStart);
  const coding = headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') throw new SwxError('SWX_BAD_REQUEST', `HTTP Content-Encoding ${JSON.stringify(coding.slice(0, 40))} is not supported`);

  let framing: HttpMessage['framing'];
  let body: Buffer;
  const transfer = headers['transfer-encoding']?.trim().toLowerCase();
  if (transfer !== undefined) {
    // Both headers at once is the classic request-smuggling shape: two readers would cut the body differently.
    if (headers['content-length'] !== undefined) throw new SwxError('SWX_BAD_REQUEST', 'HTTP message has both Transfer-Encoding and Content-Length');
    if (transfer !== 'chunked') throw new SwxError('SWX_BAD_REQUEST', `HTTP Transfer-Encoding ${JSON.stringify(transfer.slice(0, 40))} is not supported (chunked only)`);
    const first = lineAt(rest, 0);
    if (first.end !== -1 && chunkSizeLine.test(rest.toString('latin1', 0, Math.min(first.end, 200)))) {
      framing = 'chunked';
      body = dechunk(rest, limits);
    } else {
      framing = 'decoded-capture';
      body = rest;
    }
  } else if (headers['content-length'] !== undefined && !block.bareLf) {
    const declared = headers['content-length'].trim();
    if (!/^\d{1,15}$/.test(declared)) throw new SwxError('SWX_BAD_REQUEST', `HTTP Content-Length ${JSON.stringify(declared.slice(0, 40))} is not a number`);
    const length = Number(declared);
    if (rest.length < length) throw new SwxError('SWX_BAD_REQUEST', `HTTP body is ${rest.length} bytes, Content-Length says ${length} (truncated)`);
    if (rest.length > length) throw new SwxError('SWX_BAD_REQUEST', `${rest.length - length} bytes follow the ${length}-byte body Content-Length announces`);
    framing = 'content-length';
    body = rest;
  } else {
    framing = 'to-end';
    body = rest;
  }
  return { ...(startLine ? { startLine } : {}), headers, framing, body, entity: entityOf(headers, body, limits) };
}

/** RFC 9112 7.1: size line, data, line end, ..., a zero-size chunk, optional trailer fields, a blank line. */
function dechunk(rest: Buffer, limits: MimeLimits): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  let at = 0;
  for (;;) {
    const line = lineAt(rest, at);
    if (line.end === -1) throw new SwxError('SWX_BAD_REQUEST', 'chunked HTTP body ends inside a chunk-size line (truncated)');
    const size = chunkSizeLine.exec(rest.toString('latin1', at, Math.min(line.end, at + 200)));
    if (!size) throw new SwxError('SWX_BAD_REQUEST', `chunked HTTP body: ${JSON.stringify(rest.toString('latin1', at, Math.min(line.end, at + 40)))} is not a chunk size`);
    const length = parseInt(size[1]!, 16);
    at = line.next;
    if (length === 0) break;
    total += length;
    if (total > limits.maxBytes) throw new SwxError('SWX_TOO_LARGE', `chunked HTTP body exceeds ${limits.maxBytes} bytes`);
    if (at + length > rest.length) throw new SwxError('SWX_BAD_REQUEST', `chunked HTTP body ends inside a ${length}-byte chunk (truncated)`);
    chunks.push(rest.subarray(at, at + length));
    at += length;
    const end = lineAt(rest, at);
    if (end.end !== at) throw new SwxError('SWX_BAD_REQUEST', 'chunked HTTP body: a chunk is not followed by a line end where its size says it ends');
    at = end.next;
  }
  // Trailer fields are not part of the content; they only need to be well-formed and end with the blank line.
  const trailer = parseHeaderBlock(rest, at, limits, 'HTTP trailer fields');
  if (trailer.bodyStart < rest.length) throw new SwxError('SWX_BAD_REQUEST', `${rest.length - trailer.bodyStart} bytes follow the chunked HTTP body`);
  return Buffer.concat(chunks, total);
}
