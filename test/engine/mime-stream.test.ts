// Multipart/related bodies read and written as streams: what the writer produces the reader gives back byte for byte,
// however the body is cut into chunks; every MIME message of the conformance captures splits into the parts the
// whole-body parser finds; hostile bodies get SWX_BAD_REQUEST / SWX_TOO_LARGE; a 64 MiB attachment passes through
// without the process holding it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SwxError } from '../../engine/errors.ts';
import {
  defaultMimeLimits, entityOf, messageParts, parseHttpMessage, readMultipart, writeMultipart, type MimeLimits, type StreamedPart,
} from '../../engine/mime/index.ts';

const MiB = 1024 * 1024;
const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));

let seed = 11;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

/** The bytes in chunks of `size()` bytes each. */
async function* inChunks(bytes: Buffer, size: () => number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length;) {
    const length = Math.max(1, size());
    yield bytes.subarray(at, at + length);
    at += length;
  }
}
const oneByte = () => 1;
// Mostly small chunks, now and then a large one: delimiters and base64 groups land across every kind of edge.
const mixed = () => (random() < 0.5 ? 1 + Math.floor(random() * 8) : Math.floor(2 ** (random() * 17)));

type ReadPart = Omit<StreamedPart, 'body'> & { bytes: Buffer };

async function readAll(source: AsyncIterable<Uint8Array>, contentType: string, limits?: MimeLimits): Promise<ReadPart[]> {
  const parts: ReadPart[] = [];
  for await (const { body, ...part } of readMultipart(source, contentType, limits)) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    parts.push({ ...part, bytes: Buffer.concat(chunks) });
  }
  return parts;
}

async function refusal(read: () => Promise<unknown>): Promise<SwxError> {
  try {
    await read();
  } catch (error) {
    if (error instanceof SwxError) return error;
    throw new assert.Assertion({ message: `threw ${(error as Error)?.name}: ${(error as Error)?.message}, not an SwxError`, generated: false, operator: 'refusal', expects: 'SwxError', actual: error });
  }
  throw new assert.Assertion({ message: 'read; expected a refusal', generated: false, operator: 'refusal', expects: 'SwxError', actual: 'read' });
}

async function bytesOf(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------- memory (first, before other tests leave garbage behind)

const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

test('a 64 MiB attachment streams from the writer through the reader to a hashing consumer without the process holding it', async () => {
  const size = 64 * MiB;
  // Chunks taken in turn from a few fixed blocks: the source allocates nothing, so what the process grows is the
  // writer's and reader's own doing (a fresh buffer per chunk would leave up to the GC's slack in garbage).
  const blocks = Array.from({ length: 5 }, () => randomBytes(256 * 1024));
  const sent = createHash('sha256');
  async function* attachment(): AsyncGenerator<Buffer> {
    for (let index = 0; index * 256 * 1024 < size; index += 1) {
      const chunk = blocks[index % blocks.length]!;
      sent.update(chunk);
      yield chunk;
    }
  }
  const before = kib('VmRSS');
  writeFileSync('/proc/self/clear_refs', '5'); // VmHWM from here holds this test's peak alone
  const { contentType, body } = writeMultipart(soapRoot, [{ contentId: 'bulk@swx', contentType: 'application/octet-stream', body: attachment }]);
  const received = createHash('sha256');
  let length = 0;
  for await (const part of readMultipart(body, contentType, { ...defaultMimeLimits, maxBytes: 2 * size })) {
    for await (const chunk of part.body) {
      if (part.root) continue;
      received.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
  }
  const grown = kib('VmHWM') - before;
  console.log(`a ${size / MiB} MiB attachment streamed through: peak RSS grew ${(grown / MiB).toFixed(1)} MiB`);
  assert.is(length, size);
  assert.is(received.digest('hex'), sent.digest('hex'));
  assert.ok(grown < size / 4, `peak RSS grew ${(grown / MiB).toFixed(1)} MiB`);
});

// ---------------------------------------------------------------- writer → reader

const envelope = Buffer.from('<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body/></S:Envelope>');
const soapRoot = { contentId: 'root.ebms@swx', contentType: 'application/soap+xml; charset=utf-8', body: envelope };

async function roundTrip(sizes: number[], chunk: () => number) {
  const payloads = sizes.map((size) => randomBytes(size));
  const attachments = payloads.map((body, index) => ({ contentId: `p${index}@swx`, contentType: 'application/octet-stream', body: () => Readable.from([body]) }));
  const written = writeMultipart(soapRoot, attachments);
  const body = await bytesOf(written.body);
  const parts = await readAll(inChunks(body, chunk), written.contentType);
  assert.equal(parts.map((part) => part.contentId), ['root.ebms@swx', ...sizes.map((_, index) => `p${index}@swx`)]);
  assert.equal(parts.map((part) => part.root), [true, ...sizes.map(() => false)]);
  assert.ok(parts[0]!.bytes.equals(envelope));
  assert.is(parts[0]!.headers['content-type'], 'application/soap+xml; charset=utf-8');
  payloads.forEach((payload, index) => assert.ok(parts[index + 1]!.bytes.equals(payload), `attachment of ${payload.length} bytes`));
  // The whole-body parser reads the same message.
  const whole = messageParts(entityOf({ 'content-type': written.contentType }, body, { ...defaultMimeLimits, maxBytes: 128 * MiB }));
  assert.ok(whole.root.body.equals(envelope));
  assert.equal(whole.attachments.map((a) => a.body.length), sizes);
  return { written, body };
}

test('attachments of 0, 1 and 5,000 bytes come back intact when the body arrives one byte at a time', async () => {
  const { written } = await roundTrip([0, 1, 5000], oneByte);
  assert.match(written.contentType, /^multipart\/related; boundary="=_swx_[A-Za-z0-9_-]{24}"; type="application\/soap\+xml"; start="<root\.ebms@swx>"$/);
});

test('attachments of 0, 1 byte, 1 MiB and 3 MiB come back intact in chunks of random sizes, 1 byte and up', async () => {
  for (let run = 0; run < 3; run += 1) await roundTrip([0, 1, MiB, 3 * MiB], mixed);
});

test('the writer writes binary parts, Content-IDs in angle brackets and a fresh boundary every time', async () => {
  const first = writeMultipart(soapRoot, [{ contentId: 'a@b', contentType: 'text/plain', body: Buffer.from('x') }]);
  const second = writeMultipart(soapRoot, []);
  assert.is.not(first.contentType.match(/boundary="([^"]+)"/)![1], second.contentType.match(/boundary="([^"]+)"/)![1]);
  const text = (await bytesOf(first.body)).toString('latin1');
  assert.match(text, /\r\nContent-Type: text\/plain\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <a@b>\r\n\r\nx\r\n--=_swx_[^\r\n]+--\r\n$/);
});

test('the writer refuses a Content-ID or Content-Type that could forge header fields, and two parts with one Content-ID', () => {
  const attempts: [() => unknown, RegExp][] = [
    [() => writeMultipart({ ...soapRoot, contentId: 'a>\r\nX-Evil: 1' }, []), /Content-ID/],
    [() => writeMultipart({ ...soapRoot, contentId: '<a@b>' }, []), /Content-ID/],
    [() => writeMultipart({ ...soapRoot, contentType: 'text/xml\r\nX-Evil: 1' }, []), /line break/],
    [() => writeMultipart(soapRoot, [{ contentId: 'root.ebms@swx', contentType: 'text/plain', body: Buffer.alloc(0) }]), /two parts/],
  ];
  for (const [write, detail] of attempts) {
    try {
      write();
      assert.unreachable('written');
    } catch (error) {
      assert.instance(error, SwxError);
      assert.is((error as SwxError).code, 'SWX_BAD_REQUEST');
      assert.match((error as SwxError).message, detail);
    }
  }
});

test('a part the caller leaves unread is skipped: the next part still starts where it should', async () => {
  const { contentType, body } = writeMultipart(soapRoot, [
    { contentId: 'big@swx', contentType: 'application/octet-stream', body: randomBytes(MiB) },
    { contentId: 'last@swx', contentType: 'text/plain', body: Buffer.from('last') },
  ]);
  const seen: string[] = [];
  for await (const part of readMultipart(body, contentType)) {
    if (part.contentId === 'last@swx') seen.push((await bytesOf(part.body)).toString());
    else seen.push(part.contentId!);
  }
  assert.equal(seen, ['root.ebms@swx', 'big@swx', 'last']);
});

// ---------------------------------------------------------------- base64, preamble, folding, LF line ends, start

const binary = randomBytes(3001);
const base64Lines = (bytes: Buffer, eol: string) => bytes.toString('base64').replace(/.{1,76}/g, `$&${eol}`);
const handWritten = (eol: string) => Buffer.from([
  'preamble, dropped',
  '--b  ',
  'Content-Type:application/octet-stream',
  'Content-Transfer-Encoding: base64',
  'Content-ID:',
  '  <bin@x>',
  '',
  base64Lines(binary, eol),
  '--b',
  'Content-Type: text/xml',
  'Content-ID: <root@x>',
  '',
  '<r>--b is not a delimiter, --bb neither</r>',
  '--bb',
  '--b--',
  'epilogue, dropped',
].join(eol), 'latin1');

test('base64 parts decode across chunk edges and line breaks; start names the root; lenient where senders are', async () => {
  for (const eol of ['\r\n', '\n']) {
    const message = handWritten(eol);
    const contentType = 'multipart/related; boundary=b; start="<root@x>"; type="text/xml"';
    const whole = messageParts(entityOf({ 'content-type': contentType }, message));
    for (const chunk of [oneByte, mixed]) {
      const parts = await readAll(inChunks(message, chunk), contentType);
      assert.equal(parts.map((part) => [part.contentId, part.root]), [['bin@x', false], ['root@x', true]]);
      assert.ok(parts[0]!.bytes.equals(binary));
      assert.ok(parts[1]!.bytes.equals(whole.root.body), JSON.stringify(parts[1]!.bytes.toString()));
      assert.equal(parts[0]!.headers, whole.attachments[0]!.headers);
    }
  }
});

// ---------------------------------------------------------------- the conformance captures, against the whole-body parser

function messageFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === '_derived' ? [] : messageFiles(path);
    return /\.(msg|eml|as4in)$/.test(name) ? [path] : [];
  });
}

test('every AS4 and ebMS 2.0 MIME message of the conformance captures gives the parts the whole-body parser gives', async () => {
  const files = ['phase4', 'navikt-ebxml-processor', 'hermes'].flatMap((dir) => messageFiles(join(conformance, dir)));
  assert.ok(files.length >= 5, `${files.length} message files`);
  let multipart = 0;
  for (const file of files) {
    const name = relative(conformance, file);
    // A mail reads as an HTTP capture without a start line or framing: its header block, then its body to the end.
    const { headers, body } = parseHttpMessage(readFileSync(file));
    const whole = messageParts(entityOf(headers, body));
    const contentType = headers['content-type']!;
    if (!/^\s*multipart\//i.test(contentType)) {
      const error = await refusal(() => readAll(inChunks(body, mixed), contentType));
      assert.match(error.message, /is not a multipart/, name);
      continue;
    }
    multipart += 1;
    for (const chunk of [oneByte, mixed, () => body.length]) {
      const parts = await readAll(inChunks(body, chunk), contentType);
      const root = parts.find((part) => part.root)!;
      assert.equal(root.headers, whole.root.headers, name);
      assert.is(root.contentId, whole.root.contentId, name);
      assert.ok(root.bytes.equals(whole.root.body), `${name}: root bytes`);
      const attachments = parts.filter((part) => !part.root);
      assert.equal(attachments.map((a) => [a.contentId, a.headers]), whole.attachments.map((a) => [a.contentId, a.headers]), name);
      attachments.forEach((a, index) => assert.ok(a.bytes.equals(whole.attachments[index]!.body), `${name}: attachment ${index + 1} bytes`));
    }
  }
  assert.ok(multipart >= 2, `${multipart} multipart messages`);
});

// ---------------------------------------------------------------- hostile bodies

const related = (parts: string, extra = '') => ({ contentType: `multipart/related; boundary=b${extra}`, body: Buffer.from(parts.replace(/\r?\n/g, '\r\n'), 'latin1') });
const part = (id: string, body = '<x/>') => `--b\nContent-Type: text/xml\nContent-ID: <${id}>\n\n${body}\n`;
const complete = related(`${part('a')}${part('b', 'payload')}--b--\n`);

const hostile: [string, { contentType: string; body: Buffer }, string, RegExp, MimeLimits?][] = [
  ['a body cut inside a part', { ...complete, body: complete.body.subarray(0, complete.body.indexOf('payload') + 3) }, 'SWX_BAD_REQUEST', /never closes/],
  ['a body cut before the closing delimiter', { ...complete, body: complete.body.subarray(0, complete.body.lastIndexOf('--b--')) }, 'SWX_BAD_REQUEST', /never closes/],
  ['a body cut inside the closing delimiter', { ...complete, body: complete.body.subarray(0, complete.body.lastIndexOf('--b--') + 4) }, 'SWX_BAD_REQUEST', /never closes/],
  ['a body cut after a delimiter line', { ...complete, body: complete.body.subarray(0, complete.body.indexOf('--b', 5) + 5) }, 'SWX_BAD_REQUEST', /blank line.*truncated/],
  ['a body cut inside a part header', related(`${part('a')}--b\nContent-Type: te`), 'SWX_BAD_REQUEST', /blank line.*truncated/],
  ['a body without any delimiter', related('just text\n'), 'SWX_BAD_REQUEST', /never closes/],
  ['a closing delimiter first', related('--b--\n'), 'SWX_BAD_REQUEST', /before any part/],
  ['more parts than the limit', related(`${part('p1')}${part('p2')}${part('p3')}${part('p4')}--b--\n`), 'SWX_TOO_LARGE', /more than 3 parts/, { ...defaultMimeLimits, maxParts: 3 }],
  ['10,000 parts', related(`${Array.from({ length: 10_000 }, (_, i) => part(`p${i}`)).join('')}--b--\n`), 'SWX_TOO_LARGE', /more than 1000 parts/],
  ['a part header block over 64 KiB', related(`--b\nX-Big: ${'a'.repeat(70_000)}\n\nx\n--b--\n`), 'SWX_TOO_LARGE', /part 1 headers exceed 65536 bytes/],
  ['a part header line over 64 KiB without a line end', related(`--b\nX-Big: ${'a'.repeat(70_000)}`), 'SWX_TOO_LARGE', /exceed 65536 bytes/],
  ['a delimiter line padded past 64 KiB', related(`${part('a')}--b${' '.repeat(70_000)}\n--b--\n`), 'SWX_TOO_LARGE', /delimiter line exceeds/],
  ['a body over maxBytes', complete, 'SWX_TOO_LARGE', /exceeds 100 bytes/, { ...defaultMimeLimits, maxBytes: 100 }],
  ['two parts with one Content-ID', related(`${part('a')}${part('a')}--b--\n`), 'SWX_BAD_REQUEST', /two parts have Content-ID <a>/],
  ['a start naming no part', related(`${part('a')}--b--\n`, '; start="<zz>"'), 'SWX_BAD_REQUEST', /names <zz>/],
  ['base64 with junk characters', related('--b\nContent-Transfer-Encoding: base64\n\nQUJD*RA==\n--b--\n'), 'SWX_BAD_REQUEST', /base64 alphabet/],
  ['base64 with text after its padding', related('--b\nContent-Transfer-Encoding: base64\n\nQUI=QUJD\n--b--\n'), 'SWX_BAD_REQUEST', /misplaced padding/],
  ['base64 ending in a lone character', related('--b\nContent-Transfer-Encoding: base64\n\nQUJDR\n--b--\n'), 'SWX_BAD_REQUEST', /lone character/],
  ['an unknown transfer encoding', related('--b\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n--b--\n'), 'SWX_BAD_REQUEST', /not supported/],
  ['a line that is not a field', related('--b\nnot a field\n\nx\n--b--\n'), 'SWX_BAD_REQUEST', /not a header field/],
  ['a multipart without a boundary', { contentType: 'multipart/related', body: Buffer.from('--b--\r\n') }, 'SWX_BAD_REQUEST', /boundary/],
  ['a body that is not a multipart', { contentType: 'application/soap+xml', body: Buffer.from('<x/>') }, 'SWX_BAD_REQUEST', /not a multipart/],
];

for (const [name, { contentType, body }, code, detail, limits] of hostile) {
  test(`hostile: ${name} → ${code}`, async () => {
    for (const chunk of [mixed, () => body.length]) {
      const error = await refusal(() => readAll(inChunks(body, chunk), contentType, limits));
      assert.is(error.code, code, error.message);
      assert.match(error.message, detail);
    }
  });
}

test('every truncation of a written message is refused as truncated, never read as a shorter part', async () => {
  const { contentType, body } = writeMultipart(soapRoot, [{ contentId: 'a@swx', contentType: 'application/octet-stream', body: randomBytes(300) }]);
  const bytes = await bytesOf(body);
  // The last two bytes are the closing delimiter's line end, which a body may end without.
  for (let cut = 0; cut < bytes.length - 2; cut += 1) {
    const error = await refusal(() => readAll(inChunks(bytes.subarray(0, cut), mixed), contentType));
    assert.is(error.code, 'SWX_BAD_REQUEST', error.message);
    assert.match(error.message, /truncated/);
  }
});

test.run();
