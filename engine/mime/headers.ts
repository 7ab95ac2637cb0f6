// Header blocks (RFC 5322 / RFC 9112 field syntax, with folding) and media types with parameters (RFC 2045).
// Shared by MIME entities, mail and HTTP captures; every input is hostile, so a malformed block is an SwxError.
import { SwxError } from '../errors.ts';
import type { MimeLimits } from './limits.ts';

/** Field values by lower-case field name; a repeated field's values are joined with ", ". */
export type Headers = Record<string, string>;

export interface HeaderBlock {
  headers: Headers;
  /** Offset of the first body byte, after the blank line. */
  bodyStart: number;
  /** The block used bare LF line ends (a capture whose line ends were rewritten). */
  bareLf: boolean;
}

export interface MediaType {
  /** Lower case, e.g. "multipart". */
  type: string;
  /** Lower case, e.g. "related". */
  subtype: string;
  /** By lower-case parameter name, values unquoted. */
  parameters: Record<string, string>;
}

const LF = 0x0a;
const CR = 0x0d;

// A field repeated with two values would let two readers of the same message see two different framings or parts.
const singleFields = new Set(['content-type', 'content-transfer-encoding', 'content-id', 'content-length', 'transfer-encoding', 'content-encoding', 'mime-version']);

// RFC 5322 ftext: printable US-ASCII except ':' (HTTP field names are a subset).
const fieldName = /^[!-9;-~]+$/;

/** The line starting at `start`: its end (before CR LF or LF) and where the next line begins; -1 when no LF follows. */
export function lineAt(bytes: Buffer, start: number): { end: number; next: number; crlf: boolean } {
  const lf = bytes.indexOf(LF, start);
  if (lf === -1) return { end: -1, next: -1, crlf: false };
  const crlf = lf > start && bytes[lf - 1] === CR;
  return { end: crlf ? lf - 1 : lf, next: lf + 1, crlf };
}

/**
 * Reads the header block at `start` up to and including its blank line. Folded lines (starting with SP or HT) are
 * unfolded; names are lower-cased. `what` names the block in errors ("mail headers", "part 3 headers").
 */
export function parseHeaderBlock(bytes: Buffer, start: number, limits: MimeLimits, what: string): HeaderBlock {
  const headers: Headers = Object.create(null);
  const lines: string[] = [];
  let offset = start;
  let bareLf = false;
  for (;;) {
    const line = lineAt(bytes, offset);
    if (line.end === -1) throw new SwxError('SWX_BAD_REQUEST', `${what} end without the blank line that separates them from the body (truncated?)`);
    if (line.next - start > limits.maxHeaderBytes) throw new SwxError('SWX_TOO_LARGE', `${what} exceed ${limits.maxHeaderBytes} bytes`);
    if (!line.crlf) bareLf = true;
    const lineStart = offset;
    offset = line.next;
    if (line.end === lineStart) break;
    const text = bytes.toString('utf8', lineStart, line.end);
    if (text[0] === ' ' || text[0] === '\t') {
      if (lines.length === 0) throw new SwxError('SWX_BAD_REQUEST', `${what} start with a continuation line`);
      lines[lines.length - 1] += text;
    } else {
      if (lines.length >= limits.maxHeaderFields) throw new SwxError('SWX_TOO_LARGE', `${what} have more than ${limits.maxHeaderFields} fields`);
      lines.push(text);
    }
  }
  for (const field of lines) {
    const colon = field.indexOf(':');
    const name = colon > 0 ? field.slice(0, colon) : '';
    if (!fieldName.test(name)) throw new SwxError('SWX_BAD_REQUEST', `${what}: ${JSON.stringify(field.slice(0, 80))} is not a header field (name: value)`);
    const key = name.toLowerCase();
    const value = field.slice(colon + 1).trim();
    if (key in headers) {
      if (singleFields.has(key)) throw new SwxError('SWX_BAD_REQUEST', `${what}: ${name} appears more than once`);
      headers[key] += `, ${value}`;
    } else {
      headers[key] = value;
    }
  }
  return { headers, bodyStart: offset, bareLf };
}

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const unquotedValue = /[^;\s]*/y;

/**
 * Parses `type/subtype; name=value; name="quoted \" value"`. Unquoted values may hold any character but `;` and
 * white space (senders write `start=<id@host>` unquoted). A repeated parameter is refused: two boundaries or two
 * roots would make the message mean two things.
 */
export function parseMediaType(value: string, what: string): MediaType {
  const semicolon = value.indexOf(';');
  const essence = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  const [type, subtype, extra] = essence.split('/');
  if (!type || !subtype || extra !== undefined || !token.test(type) || !token.test(subtype)) {
    throw new SwxError('SWX_BAD_REQUEST', `${what}: ${JSON.stringify(value.slice(0, 80))} is not a media type (type/subtype)`);
  }
  const parameters: Record<string, string> = Object.create(null);
  let at = semicolon === -1 ? value.length : semicolon + 1;
  while (at < value.length) {
    at = skipSpace(value, at);
    if (value[at] === ';') { at += 1; continue; }
    if (at >= value.length) break;
    const equals = value.indexOf('=', at);
    const name = (equals === -1 ? '' : value.slice(at, equals)).trim().toLowerCase();
    if (!token.test(name)) throw new SwxError('SWX_BAD_REQUEST', `${what}: a parameter of ${essence} has no name=value form`);
    at = skipSpace(value, equals + 1);
    let parameter: string;
    if (value[at] === '"') {
      ({ text: parameter, end: at } = quotedString(value, at, what));
    } else {
      unquotedValue.lastIndex = at;
      parameter = unquotedValue.exec(value)![0];
      at += parameter.length;
    }
    if (name in parameters) throw new SwxError('SWX_BAD_REQUEST', `${what}: parameter ${name} appears more than once`);
    parameters[name] = parameter;
    at = skipSpace(value, at);
    if (at < value.length && value[at] !== ';') throw new SwxError('SWX_BAD_REQUEST', `${what}: unexpected text after parameter ${name}`);
  }
  return { type, subtype, parameters };
}

function skipSpace(value: string, at: number): number {
  while (at < value.length && (value[at] === ' ' || value[at] === '\t')) at += 1;
  return at;
}

function quotedString(value: string, open: number, what: string): { text: string; end: number } {
  let text = '';
  for (let at = open + 1; at < value.length; at += 1) {
    const char = value[at]!;
    if (char === '"') return { text, end: at + 1 };
    if (char === '\\' && at + 1 < value.length) at += 1;
    text += value[at];
  }
  throw new SwxError('SWX_BAD_REQUEST', `${what}: a quoted parameter value is not closed`);
}

/** A Content-ID or `start` value without its angle brackets: "<a@b>" and "a@b" name the same part. */
export function bareContentId(value: string): string {
  const trimmed = value.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1).trim() : trimmed;
}

/** A `cid:` URL naming a part by its Content-ID (RFC 2392), as XMLDSig references and ebMS manifests write it. */
export function cidUrl(contentId: string): string {
  return `cid:${encodeURIComponent(contentId).replace(/%40/g, '@')}`;
}
