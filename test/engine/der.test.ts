// The strict DER reader and writer, judged by openssl: the element tree of real certificates and CMS messages is
// the one `openssl asn1parse` prints, values read and written match what openssl encodes, and every way of not being
// DER (or of being hostile) is refused with a DerError, never another exception.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bitsOf, context, Der, DerError, encode, encodeGeneralizedTime, encodeOid, encodeSetOf, encodeTime, encodeUnsigned, oidOf, readDer, smallIntegerOf, tags, timeOf, unsignedOf,
} from '../../engine/trust/der.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-der-'));
const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const pemDer = (path: string) => new X509Certificate(readFileSync(join(conformance, path))).raw;

function openssl(args: string[]): string {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  assert.is(result.status, 0, result.stderr);
  return result.stdout;
}

/** What `openssl asn1parse` prints for each element: offset, depth, header length, length, constructed. */
function asn1parse(path: string): string[] {
  return openssl(['asn1parse', '-inform', 'DER', '-in', path])
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const match = /^\s*(\d+):d=(\d+)\s+hl=(\d+)\s+l=\s*(\d+)\s+(cons|prim)/.exec(line)!;
      return `${match[1]} d=${match[2]} hl=${match[3]} l=${match[4]} ${match[5]}`;
    });
}

function* walk(node: Der, depth = 0): Generator<[Der, number]> {
  yield [node, depth];
  for (const child of node.children) yield* walk(child, depth + 1);
}

const elements = (node: Der) => [...walk(node)].map(([n, depth]) => `${n.start} d=${depth} hl=${n.valueStart - n.start} l=${n.end - n.valueStart} ${n.constructed ? 'cons' : 'prim'}`);

/** DER built from the element tree alone; for strict DER it is the input again. */
const reencoded = (node: Der): Buffer => (node.constructed ? encode(node.tag, ...node.children.map(reencoded)) : node.bytes);

/** A DER value made by `openssl asn1parse -genstr`. */
function generated(spec: string): Buffer {
  const out = join(root, 'generated.der');
  openssl(['asn1parse', '-genstr', spec, '-noout', '-out', out]);
  return readFileSync(out);
}

const refused = (input: Buffer, why: RegExp) => {
  try {
    readDer(input);
  } catch (error) {
    assert.instance(error, DerError);
    assert.match((error as Error).message, why);
    return;
  }
  assert.unreachable(`accepted ${input.toString('hex').slice(0, 80)}`);
};

test('real certificates and a CMS message: the same elements as openssl asn1parse, and the same bytes back', () => {
  const files = [
    ['asn1crypto/cms-signed.der', readFileSync(join(conformance, 'asn1crypto/cms-signed.der'))],
    ['asn1crypto/keys/test.crt', pemDer('asn1crypto/keys/test.crt')],
    ['rfc3161-client/test_tsa/ts_chain.pem', pemDer('rfc3161-client/test_tsa/ts_chain.pem')],
    ['rfc3161-client/_derived/test_tsa.response.token.der', readFileSync(join(conformance, 'rfc3161-client/_derived/test_tsa.response.token.der'))],
  ] as const;
  for (const [name, der] of files) {
    const path = join(root, 'input.der');
    writeFileSync(path, der);
    const tree = readDer(der);
    assert.equal(elements(tree), asn1parse(path), name);
    assert.ok(reencoded(tree).equals(der), `${name}: re-encoded`);
  }
});

test('certificate fields read as node:crypto reads them: serial, validity, public key bits', () => {
  for (const path of ['asn1crypto/keys/test.crt', 'rfc3161-client/test_tsa/ts_chain.pem', 'xmlsec/keys/cacert.pem']) {
    const der = pemDer(path);
    const x509 = new X509Certificate(der);
    const tbs = readDer(der).child(0, tags.sequence, 'tbs');
    const first = tbs.children[0]!.tag === context(0, true) ? 1 : 0;
    assert.is(unsignedOf(tbs.children[first]!).toString('hex').toUpperCase().replace(/^0+(?=.)/, ''), x509.serialNumber.replace(/^0+(?=.)/, ''), path);
    const validity = tbs.children[first + 3]!;
    assert.is(timeOf(validity.children[0]!).getTime(), Date.parse(x509.validFrom), path);
    assert.is(timeOf(validity.children[1]!).getTime(), Date.parse(x509.validTo), path);
    const spki = tbs.children[first + 5]!;
    assert.ok(spki.bytes.equals(x509.publicKey.export({ type: 'spki', format: 'der' })), `${path}: SubjectPublicKeyInfo`);
    assert.ok(bitsOf(spki.children[1]!).length > 0);
  }
});

test('values: OIDs, INTEGERs and times read and written as openssl encodes them', () => {
  for (const dotted of ['1.2.840.113549.1.1.11', '2.5.29.37', '1.3.6.1.4.1.57264.2', '2.25.306173280733763100431957801722990301386', '0.9.2342.19200300.100.1.25', '2.999.3']) {
    const der = generated(`OID:${dotted}`);
    assert.ok(encodeOid(dotted).equals(der), `encode ${dotted}`);
    assert.is(oidOf(readDer(der)), dotted);
  }
  for (const [value, hex] of [[0n, '00'], [1n, '01'], [0x7fn, '7f'], [0x80n, '0080'], [0xffffn, '00ffff'], [2n ** 64n, '010000000000000000']] as const) {
    const der = generated(`INTEGER:0x${value.toString(16)}`);
    assert.ok(encodeUnsigned(value).equals(der), `encode ${value}`);
    assert.ok(encodeUnsigned(Buffer.from(`0000${hex}`, 'hex')).equals(der), `encode bytes ${hex}`);
    assert.is(unsignedOf(readDer(der)).toString('hex'), hex.replace(/^00(?=..)/, ''));
  }
  assert.is(smallIntegerOf(readDer(generated('INTEGER:3'))), 3);
  assert.throws(() => unsignedOf(readDer(generated('INTEGER:-129'))), /negative/);

  const times: [string, string][] = [
    ['UTCTIME:491231235959Z', '2049-12-31T23:59:59.000Z'],
    ['UTCTIME:500101000000Z', '1950-01-01T00:00:00.000Z'],
    ['GENERALIZEDTIME:20261127101112.345Z', '2026-11-27T10:11:12.345Z'],
    ['GENERALIZEDTIME:20500101000000Z', '2050-01-01T00:00:00.000Z'],
    ['GENERALIZEDTIME:20240229120000.5Z', '2024-02-29T12:00:00.500Z'],
  ];
  for (const [spec, iso] of times) assert.is(timeOf(readDer(generated(spec))).toISOString(), iso, spec);
  assert.ok(encodeGeneralizedTime(new Date('2026-11-27T10:11:12.345Z')).equals(generated('GENERALIZEDTIME:20261127101112.345Z')));
  assert.ok(encodeGeneralizedTime(new Date('2026-11-27T10:11:12.300Z')).equals(generated('GENERALIZEDTIME:20261127101112.3Z')));
  assert.ok(encodeGeneralizedTime(new Date('2026-11-27T10:11:12.000Z')).equals(generated('GENERALIZEDTIME:20261127101112Z')));
  assert.ok(encodeTime(new Date('2049-12-31T23:59:59Z')).equals(generated('UTCTIME:491231235959Z')));
  assert.ok(encodeTime(new Date('2050-01-01T00:00:00Z')).equals(generated('GENERALIZEDTIME:20500101000000Z')));
});

test('a SET OF is written in the order of its encodings (X.690 11.6), as openssl orders it', () => {
  const elements = [encodeOid('2.5.4.3'), encode(tags.integer, Buffer.from([5])), encode(tags.octetString, Buffer.from('zz')), encode(tags.integer, Buffer.from([1]))];
  const set = encodeSetOf(elements);
  assert.equal(readDer(set).children.map((child) => child.bytes.toString('hex')), ['020101', '020105', '04027a7a', '0603550403']);
  assert.ok(encode(tags.sequence).equals(Buffer.from([0x30, 0x00])));
});

test('not DER: each rule is a refusal with its reason', () => {
  const cases: [string, RegExp][] = [
    ['3080020101 0000', /indefinite length/],
    ['308103020101', /long form for a short length/],
    ['30820003020101', /leading zero octet|long form/],
    ['3085000000000300', /length field too long/],
    ['020101 00', /bytes after the element/],
    ['3003020101 05', /bytes after the element/],
    ['300402010', /truncated|runs past/],
    ['30', /truncated element header/],
    ['3005020101', /runs past its container/],
    ['1f2201 00', /high tag numbers/],
    ['2403040161', /must be primitive/],
    ['010101', /BOOLEAN/],
    ['0101ff01', /BOOLEAN|bytes after/],
    ['02020001', /shortest form/],
    ['0202ff80', /shortest form/],
    ['0200', /empty INTEGER/],
    ['030201ff', /non-zero unused bits/],
    ['030108', /unused-bits count/],
    ['050100', /NULL with contents/],
    ['06028001', /leading zero/],
    ['060188', /ends inside/],
    ['0c02c328', /not valid UTF-8/],
    ['1e03000000', /odd length/],
    ['170d3236303233303030303030305a', /does not exist/], // 30 February
    ['170b323630323031303030305a', /not in its DER form/], // no seconds
    ['180f32303236303130313030303030302b', /not in its DER form/], // no Z
    ['181332303236303130313030303030302e3130305a', /not in its DER form/], // trailing zero in the fraction
    ['0900', /not supported/], // REAL
  ];
  for (const [hex, why] of cases) refused(Buffer.from(hex.replace(/\s/g, ''), 'hex'), why);
});

test('hostile sizes: nesting, element count and input size are bounded', () => {
  let nested: Buffer = Buffer.alloc(0);
  for (let i = 0; i < 40; i++) nested = encode(tags.sequence, nested);
  refused(nested, /nested too deeply/);
  const flat = encode(tags.sequence, Buffer.alloc(100_001 * 2).fill(Buffer.from([0x05, 0x00])));
  refused(flat, /too many elements/);
  assert.throws(() => readDer(encode(tags.octetString, Buffer.alloc(2000)), { limits: { maxDepth: 32, maxNodes: 10, maxBytes: 1000 } }), /exceeds 1000/);
  assert.throws(() => readDer('not a buffer' as unknown as Buffer), (error: unknown) => error instanceof DerError);
});

test('opaque elements are bounded but not read, and counted once', () => {
  const der = readFileSync(join(conformance, 'asn1crypto/cms-signed.der'));
  const full = { elements: 0 };
  readDer(der, { tally: full });
  const tally = { elements: 0 };
  // The certificates of a SignedData: ContentInfo, [0], SignedData, [0], certificate.
  const tree = readDer(der, { opaque: (tag, depth, parentTag) => depth === 4 && parentTag === context(0, true) && tag === tags.sequence, tally });
  const certificate = tree.children[1]!.children[0]!.children[3]!.children[0]!;
  assert.equal([certificate.constructed, certificate.children.length], [true, 0]);
  assert.equal(elements(readDer(certificate.bytes)).length + tally.elements - 1, full.elements);
});

test('every single-byte change of a certificate: the same bytes back, or a DerError; nothing else', () => {
  const der = pemDer('rfc3161-client/test_tsa/ts_chain.pem');
  let read = 0;
  for (let at = 0; at < der.length; at++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const mutated = Buffer.from(der);
      mutated[at]! ^= mask;
      let tree: Der;
      try {
        tree = readDer(mutated);
      } catch (error) {
        assert.instance(error, DerError, `byte ${at} ^ ${mask}: ${(error as Error).message}`);
        continue;
      }
      read += 1;
      assert.ok(reencoded(tree).equals(mutated), `byte ${at} ^ ${mask}: read, but not what was given`);
    }
  }
  assert.ok(read > der.length, `${read} changed certificates still DER`);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
