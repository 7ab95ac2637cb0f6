// Byte streams read in pieces of the reader's choosing (a sealed segment, a header), and byte ranges served from them:
// shared by the sealed form of stored payloads (keyring.ts) and the payload reader (payloads.ts).

/** Bytes start..end of a stream, both inclusive as in HTTP Range; without end, to the stream's end. */
export interface ByteRange {
  start: number;
  end?: number;
}

/** Throws a RangeError for a range no stream could serve (negative, or ending before it starts). */
export function checkRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new RangeError(`byte range ${start}-${end ?? ''} is not a range of bytes`);
  }
}

/**
 * Reads a byte stream in pieces of the size asked for, pulling from its source only what that needs: it never holds
 * more than the piece asked for plus one chunk of the source.
 */
export class ByteReader {
  private readonly source: AsyncIterator<Uint8Array>;
  private chunks: Buffer[] = [];
  private held = 0;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.source = source[Symbol.asyncIterator]();
  }

  private async fill(bytes: number): Promise<void> {
    while (this.held < bytes && !this.ended) {
      const { done, value } = await this.source.next();
      if (done) { this.ended = true; break; }
      if (value.length === 0) continue;
      this.chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      this.held += value.length;
    }
  }

  /** Up to `bytes` bytes, without taking them: fewer only where the stream ends. */
  async peek(bytes: number): Promise<Buffer> {
    await this.fill(bytes);
    if (this.chunks.length > 1 && this.chunks[0]!.length < bytes) this.chunks = [Buffer.concat(this.chunks, this.held)];
    return this.chunks[0]?.subarray(0, bytes) ?? Buffer.alloc(0);
  }

  /** The next `bytes` bytes: fewer only where the stream ends. */
  async take(bytes: number): Promise<Buffer> {
    const piece = await this.peek(bytes);
    const first = this.chunks[0];
    if (first) {
      if (piece.length === first.length) this.chunks.shift(); else this.chunks[0] = first.subarray(piece.length);
      this.held -= piece.length;
    }
    return piece;
  }

  /** Whether any bytes follow. */
  async more(): Promise<boolean> {
    await this.fill(1);
    return this.held > 0;
  }

  /** Everything not yet taken, as it arrives. */
  async *rest(): AsyncGenerator<Buffer> {
    while (await this.more()) yield await this.take(this.chunks[0]!.length);
  }

  /** Stops reading the source (it is told it is not wanted any more). */
  async close(): Promise<void> {
    this.chunks = [];
    this.held = 0;
    if (!this.ended) await this.source.return?.();
    this.ended = true;
  }
}

/**
 * The bytes of `range` from a stream whose first byte is at `offset` of the whole; pulls no further than the range's
 * end, then lets the source go.
 */
export async function* sliced(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, range: ByteRange, offset = 0): AsyncGenerator<Buffer> {
  const last = range.end ?? Infinity;
  let at = offset;
  for await (const chunk of source) {
    const from = Math.max(range.start - at, 0);
    const to = Math.min(last + 1 - at, chunk.length);
    if (to > from) yield Buffer.from(chunk.buffer, chunk.byteOffset + from, to - from);
    at += chunk.length;
    if (at > last) return;
  }
}
