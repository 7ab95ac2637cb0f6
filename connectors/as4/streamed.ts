// The payloads of a received message too large to hold: each MIME part streams into the Object Store as it arrives,
// decrypted on the way where it came encrypted and inflated where it came compressed (within the bomb caps), its digests
// for the signature taken from the octets the signature covers (the plaintext, before inflation; XML canonicalized as it
// passes). One payload is stored as it is; several are written as one package (package.ts) in PartInfo order as they
// arrive, a part that comes before its turn spooled to the Object Store and copied in when its turn comes. Nothing of a
// part is held whole; the signature is judged over those digests once the body has ended, and a message that fails
// (truncated, not decrypting, not inflating, not parsing) leaves nothing stored.
import { Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SwxError } from '../../engine/errors.ts';
import { packageStream, type PackageStream, type PartToPackage, type StreamedPart } from '../../engine/mime/index.ts';
import type { Payloads, StoredPayload } from '../../engine/payloads.ts';
import { attachmentDigester, type AttachmentDigests, type PartDecryption, type XmlAttachment } from '../../engine/trust/index.ts';
import { decompress } from './compression.ts';
import { EbmsError } from './errors.ts';
import type { As4Message, PartInfo } from './model.ts';
import { bodyPayload, packagedPart, payloadType } from './package.ts';

/** The caps on inflation: as for a payload held (inbound.ts), up to the largest body streamed. */
export const inflateCaps = (maxBytes: number) => ({ maxBytes, maxRatio: 200, ratioFloorBytes: Math.min(maxBytes, 1024 * 1024) });

/** The message's payload once its body has been read: in the Object Store, with its media type. */
export interface StoredPayloads {
  stored: StoredPayload;
  contentType: string;
}

/** A payload part as it passes: its plaintext digested and inflated, its digests once the stream has ended. */
interface PassingPart {
  info: PartInfo;
  attachment: Pick<XmlAttachment, 'contentId' | 'headers'>;
  body: Readable;
  digests(): AttachmentDigests;
}

/** One PartInfo's place in the package: its content once it has come, whether written straight or spooled first. */
interface Slot {
  info: PartInfo;
  /** The part's headers once it has come (its plaintext's Content-Type where it came encrypted). */
  headers?: Record<string, string>;
  content: Promise<PartToPackage>;
  arrive(part: PartToPackage): void;
  fail(error: Error): void;
}

/** A payload the package can take without waiting on a part still to come. */
const isThere = (slot: Slot) => slot.info.location.kind === 'body' || slot.headers !== undefined;

export class StreamedPayloads {
  private readonly slots: Slot[];
  private readonly written: PackageStream | undefined;
  /** The Object Store write of the one part, or of the package: settled once the body has ended or failed. */
  private stored: Promise<StoredPayload> | undefined;
  private readonly spooled: StoredPayload[] = [];
  private readonly messageId: string;

  constructor(private readonly message: As4Message, private readonly payloads: Payloads, private readonly maxBytes: number, private readonly decryption?: PartDecryption) {
    const user = message.message;
    if (user.kind !== 'user') throw new SwxError('SWX_INTERNAL', 'a signal carries no payloads');
    this.messageId = user.messageInfo.messageId;
    this.slots = user.parts.map((info) => {
      let arrive!: (part: PartToPackage) => void;
      let fail!: (error: Error) => void;
      const content = new Promise<PartToPackage>((resolve, reject) => { arrive = resolve; fail = reject; });
      content.catch(() => undefined);
      return { info, content, arrive, fail };
    });
    if (this.slots.length > 1) {
      this.written = packageStream(this.packageParts());
      this.stored = this.keep(this.written.body);
    }
  }

  /**
   * A MIME part beside the envelope as it arrives: the attachment as the signature is judged over it (its digests, no
   * body) once its body has passed, or undefined when no PartInfo names it (it is held, and the message refused).
   */
  async take(part: StreamedPart): Promise<XmlAttachment | undefined> {
    const index = this.slots.findIndex((slot) => !slot.headers && slot.info.location.kind === 'attachment' && slot.info.location.contentId === part.contentId);
    if (index < 0 || part.contentId === undefined) return undefined;
    const slot = this.slots[index]!;
    const passing = this.pass(part, slot.info);
    slot.headers = passing.attachment.headers;
    if (!this.written) {
      this.stored = this.keep(passing.body);
      await this.stored;
    } else if (this.slots.slice(0, index).every(isThere)) {
      // Every part before it is there: the package takes this one as it arrives.
      slot.arrive(packagedPart(slot.info, payloadType(slot.info, passing.attachment), passing.body));
      // The part has passed once its stream has ended; a package that fails first (too large, the store) fails it too.
      await Promise.race([finished(passing.body), this.stored!.then(() => undefined)]).catch((error: unknown) => { throw this.fault(error); });
    } else {
      const spool = await this.keep(passing.body);
      this.spooled.push(spool);
      slot.arrive(packagedPart(slot.info, payloadType(slot.info, passing.attachment), this.payloads.stream({ payloadRef: spool.payloadRef, sha256: spool.sha256, id: this.messageId })));
    }
    return { ...passing.attachment, body: Buffer.alloc(0), digests: passing.digests() };
  }

  /** Once the body has been read: the payload stored, or EBMS:0011 for a PartInfo whose part never came. */
  async finish(): Promise<StoredPayloads> {
    const missing = this.slots.find((slot) => !isThere(slot));
    if (missing || !this.stored) {
      await this.abort();
      const contentId = missing?.info.location.kind === 'attachment' ? missing.info.location.contentId : '';
      throw new EbmsError('EBMS:0011', `PartInfo href cid:${contentId.slice(0, 120)}: the message has no MIME part with that Content-ID`, { refToMessageInError: this.messageId });
    }
    const stored = await this.stored;
    await this.discardSpooled();
    const contentType = this.written ? this.written.contentType() : payloadType(this.slots[0]!.info, { headers: this.slots[0]!.headers! });
    return { stored, contentType };
  }

  /** A message refused while its body was read or after: whatever was stored of it is removed. */
  async abort(): Promise<void> {
    const refused = new SwxError('SWX_BAD_REQUEST', 'the message was refused');
    for (const slot of this.slots) slot.fail(refused);
    this.written?.body.destroy(refused);
    const stored = await this.stored?.catch(() => undefined);
    if (stored) await this.payloads.discard(stored);
    await this.discardSpooled();
  }

  /** The payloads in PartInfo order, each as soon as it is there: a Body payload at once, an attachment when it comes. */
  private async *packageParts(): AsyncGenerator<PartToPackage> {
    for (const slot of this.slots) {
      if (slot.info.location.kind === 'body') {
        const { payload, contentType } = bodyPayload(slot.info, this.message);
        yield packagedPart(slot.info, contentType, payload);
      } else {
        yield await slot.content;
      }
    }
  }

  /** Writes a stream to the Object Store, the whole package within the largest body streamed. */
  private keep(body: Readable): Promise<StoredPayload> {
    let total = 0;
    const maxBytes = this.maxBytes;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        total += chunk.length;
        if (total > maxBytes) done(new SwxError('SWX_TOO_LARGE', `the payloads come to more than ${maxBytes} bytes, the most this hub takes`));
        else done(null, chunk);
      },
    });
    body.on('error', (error) => counted.destroy(error));
    const stored = this.payloads.receive(body.pipe(counted), []).catch((error: unknown) => { throw this.fault(error); });
    // Awaited by take, finish or abort, whichever comes; never left to reject unheard.
    stored.catch(() => undefined);
    return stored;
  }

  /** The part's plaintext (decrypted where it came encrypted), digested as it passes, then inflated where compressed. */
  private pass(part: StreamedPart, info: PartInfo): PassingPart {
    const contentId = part.contentId!;
    const encrypted = this.decryption?.parts.find((named) => named.contentId === contentId);
    const headers = encrypted ? { ...part.headers, 'content-type': encrypted.mimeType ?? 'application/octet-stream' } : part.headers;
    const plaintext = encrypted && this.decryption
      ? this.decryption.open({ contentId, contentType: part.headers['content-type'] ?? 'application/octet-stream', body: part.body }).body
      : part.body;
    const digester = attachmentDigester(headers);
    let digests: AttachmentDigests | undefined;
    const digested = new Transform({
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
    plaintext.on('error', (error) => digested.destroy(error));
    plaintext.pipe(digested);
    const body = info.compressionType ? Readable.from(decompress(digested, info, inflateCaps(this.maxBytes)), { objectMode: false }) : digested;
    return { info, attachment: { contentId, headers }, body, digests: () => digests! };
  }

  /**
   * What the sender sent cannot be inflated within the caps: its fault (4xx), as for a payload held. Any other failure
   * (a body cut short or malformed, a ciphertext that does not authenticate) the body reader names.
   */
  private fault(error: unknown): unknown {
    if (error instanceof EbmsError && error.code === 'EBMS:0303' && !error.swxCode) return new EbmsError(error.code, error.detail, { refToMessageInError: this.messageId, faultCode: 'Sender', swxCode: 'SWX_TOO_LARGE' });
    return error;
  }

  private async discardSpooled(): Promise<void> {
    for (const spool of this.spooled.splice(0)) await this.payloads.discard(spool).catch(() => undefined);
  }
}
