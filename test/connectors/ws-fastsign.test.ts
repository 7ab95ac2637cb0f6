// The signer for envelopes the hub writes itself (connectors/ws/soap.ts writeSignedEnvelope: canonical text, no parse) held
// to the reference and to outside verifiers. Generated answers, faults and requests (SOAP 1.1 and 1.2, ECDSA P-256 and
// RSA, records with unicode, characters XML cannot carry, awkward keys) must be accepted by xmlsec1, by zeep's
// verify_envelope and by both of our verifiers, and their digests must be those signSoap (xml-crypto) computes for the
// same Body, Timestamp and q:Context: the canonical bytes are identical. Tampered copies must be refused by all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorCodes, SwxError, type ErrorCode } from '../../engine/errors.ts';
import { initPki, loadPki } from '../../engine/pki/index.ts';
import { checkWsSecurity, signSoap, verifyXml, verifyXmlReference, wsuNamespace } from '../../engine/trust/index.ts';
import { queryNamespace, soapNamespaces, type SoapVersion } from '../../connectors/ws/contract.ts';
import { answerXml, contextXml, queryXml } from '../../connectors/ws/messages.ts';
import { faultXml, readSoap, soapContentType, writeSignedEnvelope, type SignedHeader, type SoapSigner } from '../../connectors/ws/soap.ts';
import { keyValueFits } from '../../engine/query.ts';
import { tempDir } from '../helpers/hub.ts';

const dir = tempDir('ws-fastsign');
const signers = {} as Record<'ecdsa' | 'rsa', SoapSigner & { certFile: string }>;

test.before(async () => {
  for (const alg of ['ecdsa', 'rsa'] as const) {
    const pkiDir = join(dir, alg);
    await initPki(pkiDir, { agencies: [], alg });
    const { hubSign } = await loadPki(pkiDir);
    const certFile = join(dir, `${alg}.pem`);
    writeFileSync(certFile, hubSign.certPem);
    signers[alg] = { keyPem: hubSign.keyPem, certPem: hubSign.certPem, certFile };
  }
});

/** mulberry32: the same cases on every run, so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What c14n escapes differently in text and attributes, line ends, CJK, astral characters, and what XML cannot carry
// (controls, U+FFFE, lone surrogates: escaped="true" / escaped-key="true", or U+FFFD where escapeXml replaces them).
const alphabet = [...'ab Z09-_.:/', '&', '<', '>', '"', "'", '\t', '\n', '\r', '\r\n', ']]>', '&amp;', '&gt;', 'é', 'ß', '海關', '報單', '😀', '\u{1F1F9}\u{1F1FC}',
  '\u0001', '\u001F', '\uFFFE', '\uD800', '\uDFFF', '\u2028', '\u0085', '\u00A0', '\uFEFF', '\\', '\\u0001'];

function text(random: () => number, max = 12): string {
  let out = '';
  for (let n = Math.floor(random() * max); n > 0; n--) out += alphabet[Math.floor(random() * alphabet.length)];
  return out;
}

/** A query key value: drawn from the same alphabet, but only what the query contract allows (keyValueFits). */
function keyText(random: () => number, max: number): string {
  for (;;) {
    const drawn = text(random, max);
    if (keyValueFits(drawn)) return drawn;
  }
}

function value(random: () => number, depth: number): unknown {
  const pick = random();
  if (depth > 2 || pick < 0.3) return text(random);
  if (pick < 0.4) return null;
  if (pick < 0.5) return random() < 0.5;
  if (pick < 0.6) return [0, -1.5, 1e21, 12345678901234, 3.14][Math.floor(random() * 5)];
  if (pick < 0.75) return Array.from({ length: Math.floor(random() * 4) }, () => value(random, depth + 1));
  return record(random, depth + 1);
}

function record(random: () => number, depth = 0): Record<string, unknown> {
  return Object.fromEntries(Array.from({ length: Math.floor(random() * 6) }, (_, i) => [`${text(random, 8)}${i}`, value(random, depth)]));
}

const codes = Object.keys(errorCodes) as ErrorCode[];

interface Case {
  name: string;
  version: SoapVersion;
  alg: 'ecdsa' | 'rsa';
  body: string;
  headers: SignedHeader[];
}

function cases(count: number): Case[] {
  const random = prng(0x5157);
  return Array.from({ length: count }, (_, i) => {
    const version: SoapVersion = i % 2 ? '1.2' : '1.1';
    const alg = Math.floor(i / 2) % 2 ? 'rsa' : 'ecdsa';
    const kind = ['answer', 'fault', 'request', 'not-found'][Math.floor(i / 4) % 4]!;
    const base = { name: `${kind} ${i} (SOAP ${version}, ${alg})`, version, alg } as const;
    if (kind === 'fault') {
      const error = new SwxError(codes[Math.floor(random() * codes.length)]!, text(random, 40));
      return { ...base, body: faultXml(version, error, random() < 0.5 ? `msg-${i}` : undefined), headers: [] };
    }
    if (kind === 'request') {
      const context = contextXml({ queryId: text(random), dataset: 'import-declaration-sea', asker: text(random, 4) });
      const keys = { declarationNo: keyText(random, 14), ubn: keyText(random, 8) };
      return { ...base, body: queryXml({ ...(random() < 0.5 ? { provider: keyText(random, 6) } : {}), keys }), headers: [context] };
    }
    const found = kind === 'answer';
    return {
      ...base,
      body: answerXml({ queryId: text(random), dataset: text(random, 8), provider: 'CUSTOMS', found, answeredAt: new Date().toISOString(), ...(found ? { record: record(random) } : {}) }),
      headers: [],
    };
  });
}

/** DigestValue by Reference URI. */
function digests(envelope: string): Map<string, string> {
  return new Map([...envelope.matchAll(/<ds:Reference URI="#([^"]+)">[\s\S]*?<ds:DigestValue>([^<]+)<\/ds:DigestValue>/g)].map((m) => [m[1]!, m[2]!]));
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64');
/** The one element of `envelope` that opens with `open` (our own writing: text never holds a raw <). */
const element = (envelope: string, open: string, close: string) => new RegExp(`${open}[\\s\\S]*?${close}`).exec(envelope)![0];
const idOf = (markup: string) => /wsu:Id="([^"]+)"/.exec(markup)![1]!;

const xmlsecIds = ['--id-attr:Id', `${soapNamespaces['1.1']}:Body`, '--id-attr:Id', `${soapNamespaces['1.2']}:Body`, '--id-attr:Id', `${wsuNamespace}:Timestamp`, '--id-attr:Id', `${queryNamespace}:Context`];

function xmlsec(file: string, certFile: string): { ok: boolean; detail: string } {
  const run = spawnSync('xmlsec1', ['--verify', '--pubkey-cert-pem', certFile, ...xmlsecIds, file], { encoding: 'utf8' });
  return { ok: run.status === 0 && /^OK$/m.test(run.stderr), detail: run.stderr.slice(0, 400) };
}

// zeep's own verify_envelope (lxml + python-xmlsec), as a zeep client judges the hub's answers; one process for all.
const zeepVerify = `
import json, sys
from lxml import etree
from zeep.wsse.signature import verify_envelope
from zeep.exceptions import SignatureVerificationFailed
out = []
for job in json.load(sys.stdin):
    try:
        verify_envelope(etree.parse(job["file"]).getroot(), job["cert"])
        out.append("valid")
    except SignatureVerificationFailed:
        out.append("invalid")
print(json.dumps(out))
`;

function zeep(jobs: { file: string; cert: string }[]): string[] {
  const run = spawnSync('/usr/bin/python3', ['-c', zeepVerify], { input: JSON.stringify(jobs), encoding: 'utf8', timeout: 60_000 });
  assert.is(run.status, 0, `zeep: ${run.stderr}`);
  return JSON.parse(run.stdout) as string[];
}

/** A copy with one signed character changed: the first text of the Body's payload gets an x in front. */
const tamper = (envelope: string) => envelope.replace(/(<soap:Body [^>]*><[^>]*>(?:<[^>]*>)*)/, '$1x');

test('fast-signed answers, faults and requests verify everywhere, with the digests signSoap computes', async () => {
  const all = cases(48);
  // The generator reaches what jsonToXml writes differently from c14n, and what c14n escapes differently.
  const written = all.map((c) => c.body).join('');
  for (const needle of [/<null[ >]/, / escaped="true"/, / escaped-key="true"/, /key="[^"]*>/, /&#xD;/, /[\uD800-\uDBFF][\uDC00-\uDFFF]/]) {
    assert.match(written, needle, `no generated case holds ${needle}`);
  }
  const files: { file: string; cert: string; tampered: boolean; name: string }[] = [];
  for (const [i, c] of all.entries()) {
    const signer = signers[c.alg];
    const envelope = writeSignedEnvelope(c.version, c.body, signer, c.headers);

    // Our own verifiers, fast path and reference, and the WS-Security check the hub and providers run.
    for (const [which, verify] of [['fast', verifyXml], ['reference', verifyXmlReference]] as const) {
      const verdict = await verify(envelope, { pinnedCertsPem: signer.certPem });
      assert.ok(verdict.valid, `${c.name}: ${which} verifier: ${verdict.code} ${verdict.detail}`);
      assert.is(verdict.algorithms?.signature, c.alg === 'rsa' ? 'RSA-SHA256' : 'ECDSA-SHA256');
    }
    const checked = await checkWsSecurity(readSoap(Buffer.from(envelope), soapContentType(c.version)));
    assert.equal(checked.signature.covered, ['/Envelope/Body', '/Envelope/Header/Security/Timestamp', ...(c.headers.length ? ['/Envelope/Header/Context'] : [])], c.name);

    // The bytes in the envelope are the bytes digested, and xml-crypto canonicalises the parsed elements to them.
    const ours = digests(envelope);
    const body = element(envelope, '<soap:Body ', '</soap:Body>');
    const timestamp = element(envelope, '<wsu:Timestamp ', '</wsu:Timestamp>');
    const context = c.headers[0] ? element(envelope, '<q:Context ', '</q:Context>') : undefined;
    assert.is(ours.get(idOf(body)), sha256(body), `${c.name}: Body digest`);
    assert.is(ours.get(idOf(timestamp)), sha256(timestamp), `${c.name}: Timestamp digest`);
    if (context) assert.is(ours.get(c.headers[0]!.id), sha256(context), `${c.name}: q:Context digest`);
    const created = new Date(/<wsu:Created>([^<]+)</.exec(timestamp)![1]!);
    const unsigned = envelope.replace(element(envelope, '<wsse:Security ', '</wsse:Security>'), '');
    const reference = await signSoap(unsigned, { keyPem: signer.keyPem, certPem: signer.certPem, ids: c.headers.map((block) => block.id), createdAt: created });
    const theirs = digests(reference);
    assert.is(theirs.get(idOf(body)), ours.get(idOf(body)), `${c.name}: signSoap's Body digest`);
    if (context) assert.is(theirs.get(c.headers[0]!.id), ours.get(c.headers[0]!.id), `${c.name}: signSoap's q:Context digest`);
    const theirTimestamp = [...theirs.keys()].find((id) => id.startsWith('TS-'))!;
    assert.is(theirs.get(theirTimestamp), sha256(timestamp.replace(idOf(timestamp), theirTimestamp)), `${c.name}: signSoap's Timestamp digest`);

    const file = join(dir, `case-${i}.xml`);
    writeFileSync(file, envelope);
    files.push({ file, cert: signer.certFile, tampered: false, name: c.name });
    if (i % 6 === 0) {
      const tampered = tamper(envelope);
      assert.is.not(tampered, envelope);
      const verdict = await verifyXml(tampered, { pinnedCertsPem: signer.certPem });
      assert.is(verdict.code, 'SWX_DIGEST_MISMATCH', `${c.name}, tampered`);
      const tamperedFile = join(dir, `case-${i}-tampered.xml`);
      writeFileSync(tamperedFile, tampered);
      files.push({ file: tamperedFile, cert: signer.certFile, tampered: true, name: `${c.name}, tampered` });
    }
  }

  for (const { file, cert, tampered, name } of files) {
    const run = xmlsec(file, cert);
    assert.is(run.ok, !tampered, `xmlsec1 on ${name}: ${run.detail}`);
  }
  const verdicts = zeep(files);
  assert.equal(verdicts, files.map((f) => (f.tampered ? 'invalid' : 'valid')), 'zeep verify_envelope');
});

test('an envelope signed with the wrong certificate named, or with a bad key or id, is refused', async () => {
  const mixed = writeSignedEnvelope('1.1', queryXml({ keys: { k: 'v' } }), { keyPem: signers.ecdsa.keyPem, certPem: signers.rsa.certPem });
  const verdict = await verifyXml(mixed, { pinnedCertsPem: signers.rsa.certPem });
  assert.is(verdict.valid, false);
  const mixedFile = join(dir, 'mixed.xml');
  writeFileSync(mixedFile, mixed);
  assert.is(xmlsec(mixedFile, signers.rsa.certFile).ok, false);

  const refusal = (make: () => unknown) => {
    try { make(); } catch (error) { assert.instance(error, SwxError); return (error as SwxError).code; }
    return 'no error';
  };
  assert.is(refusal(() => writeSignedEnvelope('1.2', queryXml({ keys: { k: 'v' } }), { keyPem: 'not a key', certPem: signers.ecdsa.certPem })), 'SWX_BAD_REQUEST');
  assert.is(refusal(() => writeSignedEnvelope('1.2', queryXml({ keys: { k: 'v' } }), { keyPem: signers.ecdsa.keyPem, certPem: 'no certificate' })), 'SWX_BAD_REQUEST');
  assert.is(refusal(() => writeSignedEnvelope('1.1', queryXml({ keys: { k: 'v' } }), signers.ecdsa, [{ xml: '<x></x>', id: 'a"b' }])), 'SWX_BAD_REQUEST');
  assert.is(refusal(() => writeSignedEnvelope('1.1', queryXml({ keys: { k: 'v' } }), signers.ecdsa, [], 0)), 'SWX_BAD_REQUEST');
});

test.run();
