// The payloads of a received SOAP-with-attachments message too large to hold (AS4, ebMS 2.0): each MIME part streams
// into the Object Store as it arrives, through what its protocol does to it on the way (decryption, inflation), its
// digests for the signature taken from the octets the signature covers. One payload is stored as it is; several are
// written as one payload package (mime/package.ts) in the order the message names them, as they arrive: a part that
// comes before its turn is spooled to the Object Store and copied in when its turn comes. Nothing of a part is held
// whole; the signature is judged over those digests once the body has ended, and a message that fails (truncated,
// not decrypting, not inflating, not parsing, refused) leaves nothing stored. Going out, a stored package is read
// through for its parts' digests, then sent part by part from the store (storedPackage).
import { Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SwxError } from './errors.ts';
import { defaultMimeLimits, packagedFields, packageStream, readMultipart, type PackageStream, type PartToPackage, type StreamedPart } from './mime/index.ts';
import type { Payloads, StoredPayload } from './payloads.ts';
import { attachmentDigester, type AttachmentDigests, type XmlAttachment } from './trust/index.ts';

/** A payload part as it arrives, made ready by its protocol. */
export interface ArrivingPart {
  /** The part's headers as the signature is judged over them (its plaintext's, where it came encrypted). */
  headers: Record<string, string>;
  /** The payload as kept (decrypted, inflated), its digests taken as it is read. */
  body: Readable;
  digests(): AttachmentDigests;
  /** The payload as a package part, and its Content-Type when it is the message's one payload. */
  packaged: Omit<PartToPackage, 'body'>;
}

/** A payload the message names, in package order: carried in a MIME part, or held in the envelope. */
export type ExpectedPayload = { contentId: string } | { held: PartToPackage };

export interface StreamedPayloadsOptions {
  payloads: Payloads;
  /** The most the payloads may come to in all (inflated). */
  maxBytes: number;
  /** Readies a MIME part the message names as it arrives. */
  arrive(part: StreamedPart & { contentId: string }): ArrivingPart;
  /** The protocol's refusal for a payload whose part never came. */
  missing(contentId: string): Error;
  /** The protocol's own form of a failure while a part passed (its sender's fault, say), or the error as it is. */
  fault?(error: unknown): unknown;
}

/** How a body reader hands on the parts of a body too large to hold as they arrive. */
export interface StreamedParts {
  /** The largest body, streamed parts included; what is held stays within the reader's own limit. */
  maxBytes: number;
  /** A part beside the envelope, the envelope read before it: the attachment as the signature is judged over it (its
   *  digests, no body) once its body has streamed through, or undefined to have it held. */
  take(envelope: Buffer, part: StreamedPart): Promise<XmlAttachment | undefined>;
}

/**
 * The payloads of a body that may stream, made of its envelope by `open` when its first part beside the envelope comes
 * (undefined from `open`: the parts are held). `take` is the body reader's StreamedParts.take.
 */
export class ArrivingPayloads {
  private payloads: StreamedPayloads | null | undefined;

  constructor(private readonly open: (envelope: Buffer) => Promise<StreamedPayloads | undefined> | StreamedPayloads | undefined) {}

  readonly take = async (envelope: Buffer, part: StreamedPart): Promise<XmlAttachment | undefined> => {
    if (this.payloads === undefined) this.payloads = (await this.open(envelope)) ?? null;
    return this.payloads?.take(part);
  };

  /** Once the body has been read: the payload stored, or undefined when nothing streamed. */
  async finish(): Promise<StoredPayloads | undefined> {
    return this.payloads ? this.payloads.finish() : undefined;
  }

  /** A message refused: whatever streamed of it is removed. */
  async abort(): Promise<void> {
    await this.payloads?.abort();
  }
}

/** The message's payload once its body has been read: in the Object Store, with its Content-Type. */
export interface StoredPayloads {
  stored: StoredPayload;
  contentType: string;
}

/** One payload's place in the package: its content once it has come, whether written straight or spooled first. */
interface Slot {
  expected: ExpectedPayload;
  packaged?: Omit<PartToPackage, 'body'>;
  content: Promise<PartToPackage>;
  arrive(part: PartToPackage): void;
  fail(error: Error): void;
}

/** A payload the package can take without waiting on a part still to come. */
const isThere = (slot: Slot) => 'held' in slot.expected || slot.packaged !== undefined;

/**
 * The digests of a part's octets taken as they pass (attachmentDigester; SHA-1 too when asked): XML that does not
 * parse fails the stream.
 */
export function digesting(headers: Record<string, string>, source: Readable, options: { sha1?: boolean } = {}): { body: Readable; digests(): AttachmentDigests } {
  const digester = attachmentDigester(headers, options);
  let digests: AttachmentDigests | undefined;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        digester.update(chunk);
        done(null, chunk);
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      try {
        digests = digester.digests();
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
  source.on('error', (error) => body.destroy(error));
  source.pipe(body);
  return { body, digests: () => digests! };
}

export class StreamedPayloads {
  private readonly slots: Slot[];
  private readonly written: PackageStream | undefined;
  /** The Object Store write of the one part, or of the package: settled once the body has ended or failed. */
  private stored: Promise<StoredPayload> | undefined;
  private readonly spooled: StoredPayload[] = [];

  constructor(expected: readonly ExpectedPayload[], private readonly options: StreamedPayloadsOptions) {
    this.slots = expected.map((named) => {
      let arrive!: (part: PartToPackage) => void;
      let fail!: (error: Error) => void;
      const content = new Promise<PartToPackage>((resolve, reject) => { arrive = resolve; fail = reject; });
      content.catch(() => undefined);
      return { expected: named, content, arrive, fail };
    });
    if (this.slots.length > 1) {
      this.written = packageStream(this.packageParts());
      this.stored = this.keep(this.written.body);
    }
  }

  /**
   * A MIME part beside the envelope as it arrives: the attachment as the signature is judged over it (its digests, no
   * body) once its body has passed, or undefined when the message does not name it (it is held, and judged so).
   */
  async take(part: StreamedPart): Promise<XmlAttachment | undefined> {
    const contentId = part.contentId;
    const index = this.slots.findIndex((slot) => !slot.packaged && 'contentId' in slot.expected && slot.expected.contentId === contentId);
    if (index < 0 || contentId === undefined) return undefined;
    const slot = this.slots[index]!;
    const arriving = this.options.arrive({ ...part, contentId });
    slot.packaged = arriving.packaged;
    if (!this.written) {
      this.stored = this.keep(arriving.body);
      await this.stored;
    } else if (this.slots.slice(0, index).every(isThere)) {
      // Every payload before it is there: the package takes this one as it arrives. It has passed once its stream has
      // ended; a package that fails first (too large, the store) fails it too.
      slot.arrive({ ...arriving.packaged, body: arriving.body });
      await Promise.race([finished(arriving.body), this.stored!.then(() => undefined)]).catch((error: unknown) => { throw this.fault(error); });
    } else {
      const spool = await this.keep(arriving.body);
      this.spooled.push(spool);
      slot.arrive({ ...arriving.packaged, body: this.options.payloads.stream({ payloadRef: spool.payloadRef, sha256: spool.sha256, id: contentId }) });
    }
    return { contentId, headers: arriving.headers, body: Buffer.alloc(0), digests: arriving.digests() };
  }

  /** Once the body has been read: the payload stored; the protocol's refusal for a payload whose part never came. */
  async finish(): Promise<StoredPayloads> {
    const missing = this.slots.find((slot) => !isThere(slot));
    if (missing || !this.stored) {
      await this.abort();
      throw this.options.missing(missing && 'contentId' in missing.expected ? missing.expected.contentId : '');
    }
    const stored = await this.stored;
    await this.discardSpooled();
    return { stored, contentType: this.written ? this.written.contentType() : this.slots[0]!.packaged!.contentType };
  }

  /** A message refused while its body was read or after: whatever was stored of it is removed. */
  async abort(): Promise<void> {
    const refused = new SwxError('SWX_BAD_REQUEST', 'the message was refused');
    for (const slot of this.slots) slot.fail(refused);
    this.written?.body.destroy(refused);
    const stored = await this.stored?.catch(() => undefined);
    if (stored) await this.options.payloads.discard(stored);
    await this.discardSpooled();
  }

  /** The payloads in order, each as soon as it is there: one the envelope holds at once, a part when it comes. */
  private async *packageParts(): AsyncGenerator<PartToPackage> {
    for (const slot of this.slots) yield 'held' in slot.expected ? slot.expected.held : await slot.content;
  }

  /** Writes a stream to the Object Store, within the most the payloads may come to. */
  private keep(body: Readable): Promise<StoredPayload> {
    let total = 0;
    const maxBytes = this.options.maxBytes;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        total += chunk.length;
        if (total > maxBytes) done(new SwxError('SWX_TOO_LARGE', `the payloads come to more than ${maxBytes} bytes, the most this hub takes`));
        else done(null, chunk);
      },
    });
    body.on('error', (error) => counted.destroy(error));
    const stored = this.options.payloads.receive(body.pipe(counted), []).catch((error: unknown) => { throw this.fault(error); });
    // Awaited by take, finish or abort, whichever comes; never left to reject unheard.
    stored.catch(() => undefined);
    return stored;
  }

  private fault(error: unknown): unknown {
    return this.options.fault ? this.options.fault(error) : error;
  }

  private async discardSpooled(): Promise<void> {
    for (const spool of this.spooled.splice(0)) await this.options.payloads.discard(spool).catch(() => undefined);
  }
}

/** A part of a stored payload package, as a read through the package found it. */
export interface StoredPackagePart extends Omit<PartToPackage, 'body'> {
  size: number;
  /** For the hub's signature over it. */
  digests: AttachmentDigests;
}

/** A payload package in the Object Store, to be sent as its parts without holding any of them. */
export interface StoredPackage {
  parts: StoredPackagePart[];
  /** Each part's body in order, read afresh from the store for one send: each is to be read to its end before the next. */
  bodies(): (() => AsyncIterable<Uint8Array>)[];
}

/**
 * Reads a stored payload package through once for what its parts are, their sizes and digests (SHA-1 too when asked).
 * SWX_BAD_REQUEST for a body that is no package, or whose start part is not its first (as a package this hub writes
 * always begins): such a package is split only when it can be held.
 */
export async function storedPackage(contentType: string, open: () => Readable, options: { sha1?: boolean } = {}): Promise<StoredPackage> {
  const limits = { ...defaultMimeLimits, maxBytes: Number.MAX_SAFE_INTEGER };
  const parts: StoredPackagePart[] = [];
  const seen = new Set<string>();
  for await (const part of readMultipart(open(), contentType, limits)) {
    if (part.root !== (parts.length === 0)) throw new SwxError('SWX_BAD_REQUEST', 'the package\'s start part is not its first part');
    const fields = packagedFields(part.headers, part.contentId, parts.length, parts.length);
    if (seen.has(fields.contentId)) throw new SwxError('SWX_BAD_REQUEST', `two parts of the package have Content-ID <${fields.contentId.slice(0, 80)}>`);
    seen.add(fields.contentId);
    const digester = attachmentDigester({ 'content-type': fields.contentType }, options);
    let size = 0;
    for await (const chunk of part.body) {
      size += chunk.length;
      digester.update(chunk);
    }
    parts.push({ ...fields, size, digests: digester.digests() });
  }
  if (parts.length === 0) throw new SwxError('SWX_BAD_REQUEST', 'a payload package holds at least one part');
  return {
    parts,
    bodies() {
      let reader: AsyncIterator<StreamedPart> | undefined;
      return parts.map((expected) => async function* () {
        reader ??= readMultipart(open(), contentType, limits)[Symbol.asyncIterator]();
        const next = await reader.next();
        if (next.done || (next.value.contentId ?? expected.contentId) !== expected.contentId) throw new SwxError('SWX_INTERNAL', `the stored package no longer holds part <${expected.contentId.slice(0, 80)}> where it did`);
        yield* next.value.body;
      });
    },
  };
}
