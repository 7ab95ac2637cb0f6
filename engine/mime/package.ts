// A payload package: the several payloads of one message (an AS4 UserMessage's parts, an ebMS 2.0 message's Manifest
// references) carried as the one payload of an swx envelope, a multipart/related body (RFC 2387) whose parts keep their
// Content-ID, media type and protocol attributes as part header fields. The AS4 and ebMS 2.0 connectors write it on the
// way in and split it again on the way out; REST and SFTP deliver it as it is.
import { Readable } from 'node:stream';
import { SwxError } from '../errors.ts';
import { entityOf, headerlessMultipart } from './entity.ts';
import { parseMediaType } from './headers.ts';
import { defaultMimeLimits, type MimeLimits } from './limits.ts';
import { closingDelimiter, delimited, multipartBoundary, partFields, relatedContentType } from './multipart-write.ts';

/** An AS4 PartProperty carried by a package part: `Part-Property: name=value;type=t`, each percent-encoded (UTF-8). */
export interface PackagedProperty { name: string; value: string; type?: string }

export interface PackagedPart {
  /** Without angle brackets. */
  contentId: string;
  /** The payload's own media type, parameters (charset) included: a part that came compressed is held inflated. */
  contentType: string;
  /** The AS4 PartProperties beside MimeType, CompressionType and CharacterSet, which Content-Type says. */
  properties: PackagedProperty[];
  /** The ebMS 2.0 Manifest Reference's xlink:role, as `Part-Role` (percent-encoded). */
  role?: string;
  body: Buffer;
}

/** Whether an envelope's content type is that of a package: multipart/related, whatever its parameters. */
export const isPackage = (contentType: string) => /^\s*multipart\/related\s*(;|$)/i.test(contentType);

const encode = encodeURIComponent;

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text.trim());
  } catch {
    throw new SwxError('SWX_BAD_REQUEST', `${what}: ${JSON.stringify(text.slice(0, 80))} is not percent-encoded UTF-8`);
  }
}

/** A part to write into a package: its body whole, or streamed as it is written. */
export type PartToPackage = Omit<PackagedPart, 'body'> & { body: Buffer | AsyncIterable<Uint8Array> };

export interface PackageStream {
  body: Readable;
  /** The package's Content-Type, once its first part (the start part) has been written. */
  contentType(): string;
}

/**
 * The package of the parts as they come, the first its start part, with a fresh boundary: a part is asked for only once
 * the one before it has been written, and its body streams through, so a package of any size holds only what is in
 * flight. The body fails (SWX_BAD_REQUEST) on a repeated Content-ID or no part at all.
 */
export function packageStream(parts: AsyncIterable<PartToPackage>): PackageStream {
  const boundary = multipartBoundary();
  let start: PartToPackage | undefined;
  async function* content(): AsyncGenerator<Buffer> {
    const seen = new Set<string>();
    let index = 0;
    for await (const part of parts) {
      if (seen.has(part.contentId)) throw new SwxError('SWX_BAD_REQUEST', `two parts of the package have Content-ID <${part.contentId.slice(0, 80)}>`);
      seen.add(part.contentId);
      start ??= part;
      const fields = {
        ...(part.properties.length ? { 'Part-Property': part.properties.map((p) => `${encode(p.name)}=${encode(p.value)}${p.type === undefined ? '' : `;type=${encode(p.type)}`}`).join(', ') } : {}),
        ...(part.role === undefined ? {} : { 'Part-Role': encode(part.role) }),
      };
      yield delimited(boundary, partFields({ contentId: part.contentId, contentType: part.contentType, fields }, `package part ${index + 1}`), index);
      if (Buffer.isBuffer(part.body)) yield part.body;
      else for await (const chunk of part.body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      index++;
    }
    if (!start) throw new SwxError('SWX_BAD_REQUEST', 'a payload package holds at least one part');
    yield closingDelimiter(boundary);
  }
  return {
    body: Readable.from(content(), { objectMode: false }),
    contentType() {
      if (!start) throw new SwxError('SWX_INTERNAL', 'the package has no start part yet');
      return relatedContentType(boundary, start);
    },
  };
}

/** The package of the parts, the first its start part, with a fresh boundary: its Content-Type and bytes. */
export async function writePackage(parts: readonly PartToPackage[]): Promise<{ contentType: string; body: Buffer }> {
  const written = packageStream((async function* () { yield* parts; })());
  const chunks: Buffer[] = [];
  for await (const chunk of written.body) chunks.push(chunk as Buffer);
  return { contentType: written.contentType(), body: Buffer.concat(chunks) };
}

/** The payloads an envelope's payload stands for: a package's parts, or the payload itself as one part named `contentId`. */
export function payloadParts(contentType: string, body: Buffer, contentId: string): PackagedPart[] {
  return isPackage(contentType) ? readPackage(contentType, body) : [{ contentId, contentType, properties: [], body }];
}

/**
 * The parts of a package, its start part first (RFC 2387: the first part when `start` names none), each transfer
 * decoded. A part without a Content-ID is named `part-N@swx.invalid` by its place. SWX_BAD_REQUEST for a body that is
 * not a multipart/related of the given Content-Type, SWX_TOO_LARGE past the MIME limits.
 */
export function readPackage(contentType: string, body: Buffer, limits: MimeLimits = defaultMimeLimits): PackagedPart[] {
  if (!isPackage(contentType)) throw new SwxError('SWX_BAD_REQUEST', `${JSON.stringify(contentType.slice(0, 80))} is not multipart/related`);
  const entity = entityOf({ 'content-type': contentType }, body, limits);
  const all = entity.parts ?? [];
  const start = entity.contentType.parameters.start;
  const rootIndex = start === undefined ? 0 : all.findIndex((part) => part.contentId === start.trim().replace(/^<|>$/g, '').trim());
  if (rootIndex === -1) throw new SwxError('SWX_BAD_REQUEST', `the package's start parameter names ${start!.slice(0, 80)}, which no part has`);
  const ordered = [all[rootIndex]!, ...all.filter((_part, index) => index !== rootIndex)];
  const seen = new Set<string>();
  return ordered.map((part, index) => {
    const fields = packagedFields(part.headers, part.contentId, all.indexOf(part), index);
    if (seen.has(fields.contentId)) throw new SwxError('SWX_BAD_REQUEST', `two parts of the package have Content-ID <${fields.contentId.slice(0, 80)}>`);
    seen.add(fields.contentId);
    return { ...fields, body: part.body };
  });
}

/**
 * What a package part's header fields say: its Content-ID (a part without one named `part-N@swx.invalid` by its place
 * in the body, `placed`), Content-Type, Part-Property and Part-Role. SWX_BAD_REQUEST for fields that do not read.
 */
export function packagedFields(headers: Readonly<Record<string, string>>, contentId: string | undefined, placed: number, index: number): Omit<PackagedPart, 'body'> {
  const what = `package part ${index + 1}`;
  const type = headers['content-type']?.trim() || 'text/plain; charset=us-ascii';
  parseMediaType(type, `${what} Content-Type`);
  const listed = headers['part-property'];
  const properties = listed === undefined ? [] : listed.split(',').map((item) => {
    const [pair = '', ...parameters] = item.split(';');
    const equals = pair.indexOf('=');
    if (equals < 1) throw new SwxError('SWX_BAD_REQUEST', `${what}: Part-Property ${JSON.stringify(item.slice(0, 80))} is not name=value`);
    const typed = parameters.map((parameter) => /^\s*type=(.*)$/.exec(parameter)?.[1]);
    if (typed.some((value) => value === undefined) || typed.length > 1) throw new SwxError('SWX_BAD_REQUEST', `${what}: Part-Property ${JSON.stringify(item.slice(0, 80))} has a parameter other than one type=`);
    const property: PackagedProperty = { name: decode(pair.slice(0, equals), what), value: decode(pair.slice(equals + 1), what) };
    if (typed[0] !== undefined) property.type = decode(typed[0], what);
    return property;
  });
  const role = headers['part-role'];
  return { contentId: contentId ?? `part-${placed + 1}@swx.invalid`, contentType: type, properties, ...(role === undefined ? {} : { role: decode(role, what) }) };
}

/**
 * The parts of a package kept without its Content-Type (as evidence keeps a payload's bytes): its boundary read from its
 * first line, as a package this hub writes begins. Undefined for bytes that are no such package.
 */
export function readKeptPackage(body: Buffer, limits: MimeLimits = defaultMimeLimits): PackagedPart[] | undefined {
  try {
    const boundary = headerlessMultipart(body, limits)?.contentType.parameters.boundary;
    return boundary === undefined ? undefined : readPackage(`multipart/related; boundary="${boundary}"`, body, limits);
  } catch {
    return undefined;
  }
}
