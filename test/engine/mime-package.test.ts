// Payload packages (several payloads of one message as one multipart/related payload): what swx writes reads back part
// for part and, judged by Python's email module, is a multipart/related whose start part comes first and whose parts
// carry their Content-ID, Content-Type and Part-Property fields; hostile packages get SWX_BAD_REQUEST.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { SwxError } from '../../engine/errors.ts';
import { isPackage, readKeptPackage, readPackage, writePackage, type PackagedPart } from '../../engine/mime/index.ts';
import { propertiesOf, pythonPackageParts } from '../helpers/package.ts';

const parts: PackagedPart[] = [
  { contentId: 'declaration@gw.example', contentType: 'application/xml; charset=UTF-8', properties: [{ name: 'originalFileName', value: 'decl, rev;2=final 報關.xml' }, { name: 'urn:x:kind', value: 'main', type: 'string' }], body: Buffer.from('<Declaration xmlns="urn:x"><No>AA/1</No></Declaration>') },
  { contentId: 'invoice/1@gw.example', contentType: 'application/pdf', properties: [], role: 'http://example.org/roles/invoice', body: Buffer.from([0x25, 0x50, 0x44, 0x46, 0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xff]) },
  { contentId: 'note@gw.example', contentType: 'text/plain', properties: [], body: Buffer.alloc(0) },
];

function refusal(read: () => unknown): SwxError {
  try {
    read();
  } catch (error) {
    if (error instanceof SwxError) return error;
    throw error;
  }
  throw new assert.Assertion({ message: 'read; expected a refusal', generated: false, operator: 'refusal', expects: 'SwxError', actual: 'read' });
}

test('a package reads back part for part: Content-ID, Content-Type, PartProperties (UTF-8, commas, semicolons) and role', async () => {
  const packaged = await writePackage(parts);
  assert.ok(isPackage(packaged.contentType));
  assert.match(packaged.contentType, /^multipart\/related; boundary="[^"]+"; type="application\/xml"; start="<declaration@gw\.example>"$/);
  assert.equal(readPackage(packaged.contentType, packaged.body), parts);
  // Kept without its Content-Type, as evidence keeps it: the boundary is its first line.
  assert.equal(readKeptPackage(packaged.body), parts);
  assert.is(readKeptPackage(Buffer.from('<Declaration/>')), undefined);
});

test('Python\'s email module reads the package: start part first, each part\'s fields and SHA-256 as written', async () => {
  const packaged = await writePackage(parts);
  const read = pythonPackageParts(packaged.contentType, packaged.body);
  assert.is(read.mediaType, 'multipart/related');
  assert.is(read.start, '<declaration@gw.example>');
  assert.equal(read.parts.map((p) => p.contentId), parts.map((p) => p.contentId));
  assert.equal(read.parts.map((p) => p.mediaType), ['application/xml', 'application/pdf', 'text/plain']);
  assert.is(read.parts[0]!.charset, 'UTF-8');
  assert.equal(read.parts.map((p) => p.sha256), parts.map((p) => createHash('sha256').update(p.body).digest('hex')));
  assert.is(read.parts[1]!.role, 'http://example.org/roles/invoice');
  assert.equal(propertiesOf(read.parts[0]!), { originalFileName: 'decl, rev;2=final 報關.xml', 'urn:x:kind': 'main' });
});

test('a package sent by another writer: start chooses the first part, a part without Content-ID is named by its place, base64 is decoded', () => {
  const body = Buffer.from([
    'preamble', '--b1', 'Content-Type: application/pdf', 'Content-Transfer-Encoding: base64', '', Buffer.from('%PDF-1').toString('base64'),
    '--b1', 'Content-Type: application/xml', 'Content-ID: <main@x>', '', '<a/>', '--b1--', '',
  ].join('\r\n'));
  const read = readPackage('multipart/related; boundary=b1; type="application/xml"; start="<main@x>"', body);
  assert.equal(read.map((p) => [p.contentId, p.contentType, p.body.toString('latin1')]), [['main@x', 'application/xml', '<a/>'], ['part-1@swx.invalid', 'application/pdf', '%PDF-1']]);
});

test('hostile packages are refused with SWX_BAD_REQUEST', async () => {
  const packaged = await writePackage(parts);
  const cases: [string, () => unknown][] = [
    ['not multipart/related', () => readPackage('application/xml', packaged.body)],
    ['start naming no part', () => readPackage(packaged.contentType.replace('declaration@gw.example', 'nobody@x'), packaged.body)],
    ['two parts with one Content-ID', () => readPackage(packaged.contentType, Buffer.from(packaged.body.toString('latin1').replace('<note@gw.example>', '<invoice/1@gw.example>'), 'latin1'))],
    ['a Part-Property without name=value', () => readPackage(packaged.contentType, Buffer.from(packaged.body.toString('latin1').replace(/Part-Property: [^\r]*/, 'Part-Property: novalue'), 'latin1'))],
    ['a Part-Property with a stray parameter', () => readPackage(packaged.contentType, Buffer.from(packaged.body.toString('latin1').replace(/Part-Property: [^\r,]*/, 'Part-Property: a=b;evil=1'), 'latin1'))],
    ['a Part-Role that is not percent-encoded UTF-8', () => readPackage(packaged.contentType, Buffer.from(packaged.body.toString('latin1').replace(/Part-Role: [^\r]*/, 'Part-Role: %E4%ZZ'), 'latin1'))],
    ['truncated', () => readPackage(packaged.contentType, packaged.body.subarray(0, packaged.body.length - 20))],
  ];
  for (const [what, read] of cases) assert.is(refusal(read).code, 'SWX_BAD_REQUEST', what);
  // What the hub writes cannot be made to forge a header field.
  await writePackage([{ ...parts[0]!, contentType: 'application/xml\r\nContent-ID: <x>' }]).then(() => assert.unreachable('written'), (error: SwxError) => assert.is(error.code, 'SWX_BAD_REQUEST'));
});

test.run();
