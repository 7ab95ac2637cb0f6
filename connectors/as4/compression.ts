// AS4 payload compression (AS4 profile 3.1): a part is gzipped as it streams, sent as application/gzip with its own
// type in PartProperty MimeType and CompressionType=application/gzip, and inflated as it streams on receipt, within a
// cap on size and on ratio so that a compression bomb stops as soon as it passes either, never inflated whole.
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { EbmsError } from './errors.ts';
import { SwxError } from '../../engine/errors.ts';
import type { PartInfo } from './model.ts';

export const gzipType = 'application/gzip';
const gzipTypes = new Set([gzipType, 'application/x-gzip']);

const mediaType = (contentType: string) => contentType.split(';')[0]!.trim().toLowerCase();

/** False for a part already compressed: gzip already, or a CompressionType already named. */
export function mayCompress(part: { contentType: string; compressionType?: string }): boolean {
  return !gzipTypes.has(mediaType(part.contentType)) && part.compressionType === undefined;
}

/** The part's content gzipped as it is read (zlib runs off the event loop, on libuv's pool). */
export function compress(source: AsyncIterable<Uint8Array> | Buffer): Readable {
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : Readable.from(source);
  const gzip = createGzip();
  input.on('error', (error) => gzip.destroy(error));
  return input.pipe(gzip);
}

export interface InflateLimits {
  /** The most a part may inflate to. */
  maxBytes: number;
  /** The most inflated bytes per compressed byte read, once past `ratioFloorBytes`. */
  maxRatio: number;
  /** Inflated size below which the ratio is not judged (a small document of one repeated byte is not a bomb). */
  ratioFloorBytes: number;
}

// 64 MiB: the hub's largest message read whole; 200:1 is beyond any real document (XML gzips about 10-20:1).
export const defaultInflateLimits: InflateLimits = { maxBytes: 64 * 1024 * 1024, maxRatio: 200, ratioFloorBytes: 1024 * 1024 };

/**
 * The payload of a compressed part, inflated as the caller reads. EBMS:0303 (DecompressionFailure) for a part whose
 * PartInfo names another compression or no MimeType, for data that is not gzip, and for one that inflates past
 * `limits` (stopped within one zlib chunk of the cap, the rest never inflated).
 */
export async function* decompress(source: AsyncIterable<Uint8Array>, part: Pick<PartInfo, 'compressionType' | 'mimeType' | 'href'>, limits: InflateLimits = defaultInflateLimits): AsyncGenerator<Buffer> {
  const name = part.href ? `part ${part.href.slice(0, 120)}` : 'the part';
  if (!part.compressionType || !gzipTypes.has(part.compressionType.toLowerCase())) {
    throw new EbmsError('EBMS:0303', `${name}: CompressionType ${JSON.stringify(part.compressionType ?? '')} is not ${gzipType}, the one compression AS4 defines`);
  }
  if (!part.mimeType) throw new EbmsError('EBMS:0303', `${name} is compressed but its PartProperties name no MimeType for the payload inside`);
  let read = 0;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      read += chunk.length;
      yield chunk;
    }
  }
  const input = Readable.from(counted());
  const gunzip = createGunzip();
  input.on('error', (error) => gunzip.destroy(error));
  input.pipe(gunzip);
  let inflated = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      inflated += chunk.length;
      if (inflated > limits.maxBytes) {
        throw new EbmsError('EBMS:0303', `${name} inflates past ${limits.maxBytes} bytes (from ${read} compressed bytes read so far): refused as a compression bomb`);
      }
      if (inflated > limits.ratioFloorBytes && inflated > limits.maxRatio * read) {
        throw new EbmsError('EBMS:0303', `${name} inflates past ${limits.maxRatio} times its compressed size (${inflated} bytes from ${read}): refused as a compression bomb`);
      }
      yield chunk;
    }
  } catch (error) {
    // The source's own failure (a part cut short, a ciphertext that does not authenticate) is its own, not gzip's.
    if (error instanceof EbmsError || error instanceof SwxError) throw error;
    throw new EbmsError('EBMS:0303', `${name} cannot be inflated as gzip: ${(error as Error).message}`, { cause: error });
  } finally {
    gunzip.destroy();
    input.destroy();
  }
}
