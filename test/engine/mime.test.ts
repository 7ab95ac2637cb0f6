// MIME, mail and HTTP capture parsing, judged by independent parsers: the conformance captures split into exactly the
// parts Python's email module extracted (INDEX.md `_derived` files), generated messages decode as Python's email module
// decodes them, HTTP framing as Node's own HTTP parser reads it; hostile inputs get SWX_BAD_REQUEST / SWX_TOO_LARGE.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SwxError } from '../../engine/errors.ts';
import { defaultMimeLimits, headerlessMultipart, messageParts, parseEntity, parseHttpMessage, type MimePart } from '../../engine/mime/index.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const fixture = (path: string) => readFileSync(join(conformance, path));

function refusal(parse: () => unknown): SwxError {
  try {
    parse();
  } catch (error) {
    if (error instanceof SwxError) return error;
    throw new assert.Assertion({ message: `threw ${(error as Error)?.name}: ${(error as Error)?.message}, not an SwxError`, generated: false, operator: 'refusal', expects: 'SwxError', actual: error });
  }
  throw new assert.Assertion({ message: 'parsed; expected a refusal', generated: false, operator: 'refusal', expects: 'SwxError', actual: 'parsed' });
}

const crlf = (text: string) => Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');

// ---------------------------------------------------------------- the conformance captures

test('the navikt ebMS 2.0 SMTP mail splits into the SOAP root (chosen by start) and the CMS attachment', () => {
  const { root, attachments } = messageParts(parseEntity(fixture('navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg')));
  assert.is(root.contentId, 'ZTTPT8UKUKU4.U2O3MHW7UL03@speare.no');
  assert.ok(root.body.equals(fixture('navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part1.soap.xml')));
  assert.is(attachments.length, 1);
  assert.is(attachments[0]!.contentId, '3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no');
  assert.is(attachments[0]!.headers['content-disposition'], 'attachment; filename="20e5962b-49a8-4050-8113-733819913183.p7m"');
  assert.ok(attachments[0]!.body.equals(fixture('navikt-ebxml-processor/_derived/2023_08_29T12_56_58_328.msg.part2.attachment.bin')));
});

test('the navikt acknowledgment mail is one base64 text/xml body', () => {
  const entity = parseEntity(fixture('navikt-ebxml-processor/INBOX/acknowledgment.eml'));
  const { root, attachments } = messageParts(entity);
  assert.is(entity.headers.subject, 'ebXml acknowledgment');
  assert.is(root.contentType.parameters.charset, 'utf-8');
  assert.is(attachments.length, 0);
  assert.ok(root.body.equals(fixture('navikt-ebxml-processor/_derived/acknowledgment.eml.part1.soap.xml')));
});

test('the Hermes HTTP capture (LF line ends, stale Content-Length) yields its request line, SOAP part and payload', () => {
  const message = parseHttpMessage(fixture('hermes/test1.msg'));
  assert.equal(message.startLine, { kind: 'request', method: 'POST', target: '/corvus/httpd/ebms/inbound', version: 'HTTP/1.1' });
  assert.is(message.headers.soapaction, '"ebXML"');
  assert.is(message.framing, 'to-end');
  const { root, attachments } = messageParts(message.entity);
  assert.is(root.contentId, 'soappart');
  assert.ok(root.body.equals(fixture('hermes/_derived/test1.msg.part1.soap.xml')));
  assert.equal(attachments.map((a) => a.contentId), ['Payload-0']);
  assert.ok(attachments[0]!.body.equals(fixture('hermes/_derived/test1.msg.part2.attachment.bin')));
});

test('the Holodeck AS4 captures (headers only, body recorded de-chunked) yield the envelope bytes', () => {
  for (const name of ['dataport1-mustunderstand.as4in', 'dataport1.as4in']) {
    const message = parseHttpMessage(fixture(`phase4/verify/${name}`));
    assert.is(message.startLine, undefined);
    assert.is(message.framing, 'decoded-capture');
    assert.is(message.headers.server, 'HolodeckB2B/4.1');
    const { root, attachments } = messageParts(message.entity);
    assert.is(`${root.contentType.type}/${root.contentType.subtype}`, 'application/soap+xml');
    assert.is(attachments.length, 0);
    assert.ok(root.body.equals(fixture(`phase4/_derived/${name}.envelope.xml`)), name);
  }
});

// ---------------------------------------------------------------- generated messages, decoded by Python's email module too

const binary = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 73 + 11) % 256));
const base64Lines = (bytes: Buffer) => bytes.toString('base64').replace(/.{1,76}/g, '$&\n');

const generated: Record<string, Buffer> = {
  'multipart/related with start, base64, quoted-printable, preamble, epilogue, transport padding': crlf(`MIME-Version: 1.0
Content-Type: multipart/related;
 boundary="=_b 'q' (1):?";
\tstart="<root@x>"; type="text/xml"; x-note="say \\"hi\\";"

preamble text, ignored
--=_b 'q' (1):?\t 
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64
Content-ID: <bin@x>

${base64Lines(binary)}
--=_b 'q' (1):?
Content-Type: text/xml; charset=utf-8
Content-Transfer-Encoding: quoted-printable
Content-ID: <root@x>

<a>caf=C3=A9 soft=
break, tab=09
=3D end</a>
--=_b 'q' (1):?--
epilogue, ignored
`),
  'nested multipart/mixed inside multipart/related, 8bit and binary, LF line ends': Buffer.from(`Content-Type: multipart/related; boundary=outer; start=first@x

--outer
Content-Type: text/xml
Content-ID: first@x
Content-Transfer-Encoding: 8bit

<r>ünïcödé</r>
--outer
Content-Type: multipart/mixed; boundary="inner"
Content-ID: <nest@x>

--inner
Content-Type: text/plain

one
--inner
Content-Type: text/plain
Content-Transfer-Encoding: binary

two
--inner--
--outer--
`, 'utf8'),
  'a part without header fields and one whose content mentions the boundary': crlf(`Content-Type: multipart/mixed; boundary=b

--b

no headers here
--b
Content-Type: text/plain

--bX is not a delimiter, nor is -- b
--b--`),
};

/** Python's reading of a message: every leaf part's Content-ID and decoded payload, depth first. */
function pythonLeaves(message: Buffer): { cid: string; body: string }[] {
  const script = [
    'import sys, json, base64, email',
    'm = email.message_from_bytes(sys.stdin.buffer.read())',
    'out = [{"cid": (p.get("Content-ID") or "").strip().strip("<>"), "body": base64.b64encode(p.get_payload(decode=True) or b"").decode()} for p in m.walk() if not p.is_multipart()]',
    'print(json.dumps(out))',
  ].join('\n');
  const run = spawnSync('/usr/bin/python3', ['-c', script], { input: message, encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

function ourLeaves(part: MimePart): { cid: string; body: string }[] {
  if (part.parts) return part.parts.flatMap(ourLeaves);
  return [{ cid: part.contentId ?? '', body: part.body.toString('base64') }];
}

for (const [name, message] of Object.entries(generated)) {
  test(`generated: ${name} — same parts and bytes as Python's email module`, () => {
    const ours = ourLeaves(parseEntity(message));
    assert.ok(ours.length >= 2);
    assert.equal(ours, pythonLeaves(message));
  });
}

test('start selects the root whatever its position or brackets; the rest are attachments in order', () => {
  const first = messageParts(parseEntity(generated['multipart/related with start, base64, quoted-printable, preamble, epilogue, transport padding']!));
  assert.is(first.root.contentId, 'root@x');
  assert.is(first.root.body.toString('utf8'), '<a>café softbreak, tab\t\r\n= end</a>');
  assert.equal(first.attachments.map((a) => a.contentId), ['bin@x']);
  assert.ok(first.attachments[0]!.body.equals(binary));
  const nested = messageParts(parseEntity(generated['nested multipart/mixed inside multipart/related, 8bit and binary, LF line ends']!));
  assert.is(nested.root.contentId, 'first@x');
  assert.equal(nested.attachments.map((a) => a.contentId), ['nest@x']);
});

test('quoted-printable drops white space a transport added at line ends (RFC 2045 6.7; Python keeps it)', () => {
  const entity = parseEntity(crlf('Content-Transfer-Encoding: quoted-printable\n\nline one  \t\nline=20\ntwo=\n'));
  assert.is(entity.body.toString('latin1'), 'line one\r\nline \r\ntwo');
});

// ---------------------------------------------------------------- HTTP framing, as Node's HTTP parser reads it

async function nodeReads(request: Buffer): Promise<Buffer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => { res.end(); server.emit('body', Buffer.concat(chunks)); });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.end(request);
  socket.on('data', () => {});
  const [body] = await once(server, 'body');
  socket.destroy();
  server.close();
  return body as Buffer;
}

const soapBody = '<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body>x</S:Body></S:Envelope>';
const chunked = Buffer.concat([
  crlf('POST /as4 HTTP/1.1\nHost: hub\nContent-Type: application/soap+xml\nTransfer-Encoding: chunked\n\n'),
  Buffer.from(`1a;ext=1\r\n${soapBody.slice(0, 26)}\r\n${(soapBody.length - 26).toString(16)}\r\n${soapBody.slice(26)}\r\n0\r\nX-Trailer: t\r\n\r\n`, 'latin1'),
]);
const withLength = crlf(`POST /as4 HTTP/1.1\nHost: hub\nContent-Type: application/soap+xml\nContent-Length: ${soapBody.length}\n\n${soapBody}`);

test('chunked and Content-Length requests give the body Node reads', async () => {
  for (const request of [chunked, withLength]) {
    const message = parseHttpMessage(request);
    assert.ok(message.body.equals(await nodeReads(request)));
    assert.is(message.body.toString('latin1'), soapBody);
    assert.is(messageParts(message.entity).root.body.toString('latin1'), soapBody);
  }
  assert.is(parseHttpMessage(chunked).framing, 'chunked');
  assert.is(parseHttpMessage(withLength).framing, 'content-length');
  const response = parseHttpMessage(crlf(`HTTP/1.1 200 OK\nContent-Type: text/xml\n\n<ok/>`));
  assert.equal(response.startLine, { kind: 'response', version: 'HTTP/1.1', status: 200, reason: 'OK' });
});

// ---------------------------------------------------------------- hostile input

const related = (parts: string, extra = '') => crlf(`Content-Type: multipart/related; boundary=b${extra}\n\n${parts}`);
const part = (id: string, body = '<x/>') => `--b\nContent-Type: text/xml\nContent-ID: <${id}>\n\n${body}\n`;

/** A multipart holding a multipart holding ... `depth` deep, every one well-formed and closed. */
const nested = (depth: number): string => (depth === 0 ? 'Content-Type: text/plain\n\nx' : `Content-Type: multipart/mixed; boundary=n${depth}\n\n--n${depth}\n${nested(depth - 1)}\n--n${depth}--`);

const hostile: [string, () => unknown, string, RegExp][] = [
  ['headers cut before the blank line', () => parseEntity(crlf('Content-Type: text/xml\nContent-ID: <a>')), 'SWX_BAD_REQUEST', /blank line/],
  ['a multipart that never closes', () => parseEntity(related(part('a') + part('b'))), 'SWX_BAD_REQUEST', /never closes/],
  ['a multipart cut inside a part header', () => parseEntity(related(`${part('a')}--b\nContent-Type: te`)), 'SWX_BAD_REQUEST', /never closes/],
  ['a multipart body without any delimiter', () => parseEntity(related('just text\n')), 'SWX_BAD_REQUEST', /no delimiter/],
  ['a multipart without a boundary', () => parseEntity(crlf('Content-Type: multipart/related\n\n--b--\n')), 'SWX_BAD_REQUEST', /boundary/],
  ['a 71-character boundary', () => parseEntity(crlf(`Content-Type: multipart/mixed; boundary=${'x'.repeat(71)}\n\n`)), 'SWX_BAD_REQUEST', /boundary of 1-70/],
  ['10,000 parts', () => parseEntity(related(`${part('p').repeat(10_000)}--b--\n`)), 'SWX_TOO_LARGE', /more than 1000 parts/],
  ['multiparts nested 9 deep', () => parseEntity(crlf(nested(9))), 'SWX_TOO_LARGE', /nested deeper than 8/],
  ['a header block over 64 KiB', () => parseEntity(crlf(`X-Big: ${'a'.repeat(70_000)}\n\nbody`)), 'SWX_TOO_LARGE', /exceed 65536 bytes/],
  ['300 header fields', () => parseEntity(crlf(`${'X-F: 1\n'.repeat(300)}\nbody`)), 'SWX_TOO_LARGE', /more than 256 fields/],
  ['a message over maxBytes', () => parseEntity(Buffer.alloc(1025, 0x61), { ...defaultMimeLimits, maxBytes: 1024 }), 'SWX_TOO_LARGE', /exceeds 1024/],
  ['two Content-Type fields', () => parseEntity(crlf('Content-Type: text/xml\nContent-Type: multipart/related; boundary=b\n\n<x/>')), 'SWX_BAD_REQUEST', /more than once/],
  ['two boundary parameters', () => parseEntity(crlf('Content-Type: multipart/related; boundary=a; boundary=b\n\n')), 'SWX_BAD_REQUEST', /boundary appears more than once/],
  ['two parts with one Content-ID', () => messageParts(parseEntity(related(`${part('a')}${part('a')}--b--\n`))), 'SWX_BAD_REQUEST', /two parts have Content-ID <a>/],
  ['a start naming no part', () => messageParts(parseEntity(related(`${part('a')}--b--\n`, '; start="<zz>"'))), 'SWX_BAD_REQUEST', /names <zz>/],
  ['base64 with junk characters', () => parseEntity(crlf('Content-Transfer-Encoding: base64\n\nQUJD*RA==\n')), 'SWX_BAD_REQUEST', /base64 alphabet/],
  ['quoted-printable with a bare "="', () => parseEntity(crlf('Content-Transfer-Encoding: quoted-printable\n\na=Zb\n')), 'SWX_BAD_REQUEST', /two hex digits/],
  ['an unknown transfer encoding', () => parseEntity(crlf('Content-Transfer-Encoding: x-uuencode\n\nbegin\n')), 'SWX_BAD_REQUEST', /not supported/],
  ['a base64-encoded multipart', () => parseEntity(crlf('Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n--b--\n')), 'SWX_BAD_REQUEST', /multipart with Content-Transfer-Encoding/],
  ['a line that is not a field', () => parseEntity(crlf('Content-Type: text/xml\nnot a field\n\nx')), 'SWX_BAD_REQUEST', /not a header field/],
  ['a continuation line first', () => parseEntity(crlf(' folded: x\n\nx')), 'SWX_BAD_REQUEST', /continuation line/],
  ['an unclosed quoted parameter', () => parseEntity(crlf('Content-Type: multipart/mixed; boundary="b\n\n')), 'SWX_BAD_REQUEST', /not closed/],
  ['a media type without subtype', () => parseEntity(crlf('Content-Type: text\n\nx')), 'SWX_BAD_REQUEST', /not a media type/],
  ['HTTP body shorter than Content-Length', () => parseHttpMessage(withLength.subarray(0, withLength.length - 5)), 'SWX_BAD_REQUEST', /truncated/],
  ['HTTP bytes after Content-Length', () => parseHttpMessage(Buffer.concat([withLength, Buffer.from('GET / HTTP/1.1\r\n\r\n')])), 'SWX_BAD_REQUEST', /follow the/],
  ['HTTP chunked body cut in a chunk', () => parseHttpMessage(chunked.subarray(0, chunked.length - 60)), 'SWX_BAD_REQUEST', /truncated/],
  ['HTTP chunked body without its last chunk', () => parseHttpMessage(chunked.subarray(0, chunked.indexOf('0\r\nX-Trailer'))), 'SWX_BAD_REQUEST', /truncated/],
  ['HTTP with Transfer-Encoding and Content-Length', () => parseHttpMessage(crlf('POST / HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 3\n\n0\n\n')), 'SWX_BAD_REQUEST', /both/],
  ['HTTP with gzip transfer coding', () => parseHttpMessage(crlf('POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n0\n\n')), 'SWX_BAD_REQUEST', /chunked only/],
  ['HTTP with Content-Encoding', () => parseHttpMessage(crlf('POST / HTTP/1.1\nContent-Encoding: gzip\nContent-Length: 0\n\n')), 'SWX_BAD_REQUEST', /Content-Encoding/],
];

for (const [name, parse, code, detail] of hostile) {
  test(`hostile: ${name} → ${code}`, () => {
    const error = refusal(parse);
    assert.is(error.code, code, error.message);
    assert.match(error.message, detail);
  });
}

test('every truncation and byte flip of the real captures parses or is refused with a code, never a crash', () => {
  let refused = 0;
  let parsed = 0;
  const captures: [string, (bytes: Buffer) => unknown][] = [
    ['navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg', (bytes) => messageParts(parseEntity(bytes))],
    ['hermes/test1.msg', (bytes) => messageParts(parseHttpMessage(bytes).entity)],
  ];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const [path, parse] of captures) {
    const original = fixture(path);
    const variants: Buffer[] = [];
    for (let cut = 0; cut < original.length; cut += 61) variants.push(original.subarray(0, cut));
    for (let i = 0; i < 300; i += 1) {
      const copy = Buffer.from(original);
      for (let flips = 0; flips < 3; flips += 1) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      variants.push(copy);
    }
    for (const bytes of variants) {
      try {
        parse(bytes);
        parsed += 1;
      } catch (error) {
        assert.instance(error, SwxError, `${path}: ${(error as Error)?.stack}`);
        assert.ok(['SWX_BAD_REQUEST', 'SWX_TOO_LARGE'].includes((error as SwxError).code));
        refused += 1;
      }
    }
  }
  // Truncations of a multipart mostly lose the closing delimiter; most byte flips land in base64 or text and still parse.
  assert.ok(refused > 100, `refused ${refused}`);
  assert.ok(parsed > 100, `parsed ${parsed}`);
});

test('a multipart body logged without its headers is read with the boundary of its first line; anything else is not one', () => {
  const body = Buffer.from('\r\n--b1\r\nContent-ID: <root>\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--b1\r\nContent-ID: <p>\r\n\r\nxyz\r\n--b1--\r\n');
  const parts = messageParts(headerlessMultipart(body)!);
  assert.is(parts.root.contentId, 'root');
  assert.equal(parts.attachments.map((part) => [part.contentId, part.body.toString()]), [['p', 'xyz']]);
  assert.is(headerlessMultipart(Buffer.from('Content-Type: text/xml\r\n\r\n<a/>')), undefined);
  assert.is(headerlessMultipart(Buffer.from('--"quoted"\r\n\r\nx\r\n--"quoted"--\r\n')), undefined, 'a quote is no boundary character');
  assert.is(headerlessMultipart(Buffer.from(`--${'b'.repeat(71)}\r\n\r\nx`)), undefined, 'boundaries are at most 70 characters');
  assert.throws(() => headerlessMultipart(Buffer.from('--b1\r\n\r\nx\r\n')), (error: unknown) => error instanceof SwxError, 'a body without its closing delimiter is refused as any multipart is');
});

test.run();
