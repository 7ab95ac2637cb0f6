// AS4 compression: payloads gzipped and inflated as streams, compressed parts never compressed again, and compression
// bombs — an endless one among them — stopped with EBMS:0303 as soon as they pass the ratio or the absolute cap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { compress, decompress, EbmsError, gzipType, mayCompress, type InflateLimits } from '../../connectors/as4/index.ts';

const part = { compressionType: gzipType, mimeType: 'application/xml', href: 'cid:p@test' };

async function* chunks(total: number, make: (index: number) => Buffer): AsyncGenerator<Buffer> {
  for (let index = 0, sent = 0; sent < total; index += 1) {
    const chunk = make(index).subarray(0, total - sent);
    sent += chunk.length;
    yield chunk;
  }
}

/** Reads a decompression to its end or its refusal; counts what was handed out. */
async function drain(source: AsyncIterable<Uint8Array>, limits?: InflateLimits, info = part): Promise<{ bytes: number; error?: EbmsError }> {
  let bytes = 0;
  try {
    for await (const chunk of decompress(source, info, limits)) bytes += chunk.length;
    return { bytes };
  } catch (error) {
    assert.instance(error, EbmsError);
    return { bytes, error: error as EbmsError };
  }
}

test('a payload gzipped as it streams and inflated as it streams comes back byte for byte', async () => {
  const seed = randomBytes(4096);
  const text = (index: number) => Buffer.from(`<line n="${index}">${seed.toString('hex', 0, 64 + (index % 100))}</line>\n`);
  const original: Buffer[] = [];
  const source = chunks(6 * 1024 * 1024, (index) => { const chunk = text(index); original.push(chunk); return chunk; });
  const zipped: Buffer[] = [];
  for await (const chunk of compress(source)) zipped.push(chunk);
  const compressed = Buffer.concat(zipped);
  assert.ok(gunzipSync(compressed).equals(Buffer.concat(original).subarray(0, 6 * 1024 * 1024)), 'zlib reads what compress wrote');
  const inflated: Buffer[] = [];
  for await (const chunk of decompress(Readable.from([compressed]), part)) inflated.push(chunk);
  assert.ok(Buffer.concat(inflated).equals(gunzipSync(compressed)));
});

test('a part already compressed is never compressed again', () => {
  assert.is(mayCompress({ contentType: 'application/xml' }), true);
  assert.is(mayCompress({ contentType: 'text/plain; charset=utf-8' }), true);
  assert.is(mayCompress({ contentType: 'application/gzip' }), false);
  assert.is(mayCompress({ contentType: 'Application/GZIP; name=x' }), false);
  assert.is(mayCompress({ contentType: 'application/x-gzip' }), false);
  assert.is(mayCompress({ contentType: 'application/octet-stream', compressionType: gzipType }), false);
});

test('an endless compression bomb is stopped at the ratio cap', async () => {
  // Zeros gzipped as they are asked for: the bomb has no end, so the test ends only if inflation stops.
  const zeros = new Readable({ read() { this.push(Buffer.alloc(64 * 1024)); } });
  const bomb = zeros.pipe(createGzip());
  const limits = { maxBytes: 1024 * 1024 * 1024, maxRatio: 100, ratioFloorBytes: 1024 * 1024 };
  const { bytes, error } = await drain(bomb, limits);
  zeros.destroy();
  assert.is(error?.code, 'EBMS:0303');
  assert.is(error?.shortDescription, 'DecompressionFailure');
  assert.match(error!.detail, /cid:p@test inflates past 100 times its compressed size .*compression bomb/);
  // Zeros gzip about 1000:1, so the ratio is passed as soon as the floor is: 1 MiB handed out (measured), not more.
  assert.ok(bytes <= 2 * 1024 * 1024, `${bytes} bytes inflated before the stop`);
});

test('a bomb under the ratio is stopped at the absolute cap, nothing past it handed out', async () => {
  const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024));
  const limits = { maxBytes: 2 * 1024 * 1024, maxRatio: 1e9, ratioFloorBytes: 0 };
  const { bytes, error } = await drain(Readable.from([bomb]), limits);
  assert.is(error?.code, 'EBMS:0303');
  assert.match(error!.detail, /inflates past 2097152 bytes/);
  assert.ok(bytes <= limits.maxBytes, `${bytes} bytes handed out`);
});

test('a part that is not gzip, names another compression or no MimeType is EBMS:0303', async () => {
  const notGzip = await drain(Readable.from([Buffer.from('plain text, not gzip')]));
  assert.is(notGzip.error?.code, 'EBMS:0303');
  assert.match(notGzip.error!.detail, /cannot be inflated as gzip/);
  const truncated = gzipSync(randomBytes(100_000)).subarray(0, 50_000);
  assert.is((await drain(Readable.from([truncated]))).error?.code, 'EBMS:0303');
  const other = await drain(Readable.from([gzipSync('x')]), undefined, { ...part, compressionType: 'application/zstd' });
  assert.match(other.error!.detail, /application\/zstd.* is not application\/gzip/);
  const noType = await drain(Readable.from([gzipSync('x')]), undefined, { compressionType: gzipType, href: 'cid:p@test' } as typeof part);
  assert.match(noType.error!.detail, /no MimeType/);
});

test.run();
