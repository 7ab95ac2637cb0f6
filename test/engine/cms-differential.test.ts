// The fast CMS path against pkijs (the reference) on the same inputs: conformance files, messages signed by swx and
// by `openssl cms`, and mutations of them (every single-bit flip, every truncation, length octets re-encoded, BER
// indefinite lengths, swapped certificates, wrong signer identifiers). A fast path may never change a verdict.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki } from '../../engine/pki/index.ts';
import { signCms, verifyCms, verifyCmsFast, verifyCmsReference, type CmsVerdict, type VerifyCmsOptions } from '../../engine/trust/cms.ts';
import { context, Der, encode, readDer, tags } from '../../engine/trust/der.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-cms-diff-'));
const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const fixture = (path: string) => readFileSync(join(conformance, path));
const fixtureText = (path: string) => readFileSync(join(conformance, path), 'utf8');

function openssl(args: string[], cwd = root): { ok: boolean; out: string } {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}` };
}

interface Credential { certPem: string; keyPem: string; certPath: string; keyPath: string }
interface World { ca: string; ecdsa: Credential; rsa: Credential; other: Credential; chain: Credential & { anchor: string; intermediatePem: string } }
let world: World | undefined;

/** Two swx PKIs (ECDSA, RSA) and an openssl-made root → intermediate → P-384 leaf chain. */
async function setup(): Promise<World> {
  if (world) return world;
  await initPki(join(root, 'ecdsa'), { agencies: ['CUSTOMS', 'BOFT'] });
  await initPki(join(root, 'rsa'), { agencies: ['BSMI'], alg: 'rsa' });
  const credential = (dir: string): Credential => ({
    certPath: join(dir, 'cert.pem'),
    keyPath: join(dir, 'key.pem'),
    certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
  });
  const chain = join(root, 'chain');
  spawnSync('mkdir', ['-p', chain]);
  writeFileSync(join(chain, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  writeFileSync(join(chain, 'leaf.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  const steps = [
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'root.key', '-subj', '/O=diff/CN=Diff Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.pem'],
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'int.key', '-subj', '/O=diff/CN=Diff Intermediate', '-out', 'int.csr'],
    ['x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-days', '30', '-extfile', 'ca.ext', '-out', 'int.pem'],
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'key.pem', '-subj', '/O=diff/CN=Diff Leaf', '-out', 'leaf.csr'],
    ['x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key', '-days', '30', '-extfile', 'leaf.ext', '-out', 'cert.pem'],
  ];
  for (const step of steps) {
    const made = openssl(step, chain);
    assert.ok(made.ok, made.out);
  }
  world = {
    ca: readFileSync(join(root, 'ecdsa/ca/cert.pem'), 'utf8'),
    ecdsa: credential(join(root, 'ecdsa/agencies/CUSTOMS')),
    other: credential(join(root, 'ecdsa/agencies/BOFT')),
    rsa: { ...credential(join(root, 'rsa/agencies/BSMI')) },
    chain: { ...credential(chain), anchor: readFileSync(join(chain, 'root.pem'), 'utf8'), intermediatePem: readFileSync(join(chain, 'int.pem'), 'utf8') },
  };
  return world;
}

const rsaCa = () => readFileSync(join(root, 'rsa/ca/cert.pem'), 'utf8');

/**
 * What the two paths must agree on: always valid, code and the certificate's standing; for an accepted message the
 * whole verdict: who, when, what, and the words.
 */
function summary(verdict: CmsVerdict): Record<string, unknown> {
  if (!verdict.valid) return { valid: verdict.valid, code: verdict.code, certificate: verdict.certificate?.status };
  return {
    valid: true,
    code: verdict.code,
    detail: verdict.detail,
    kind: verdict.kind,
    signer: verdict.signer,
    signedAt: verdict.signedAt,
    // Judged at the same instant only when the options name one.
    certificate: [verdict.certificate?.status, verdict.certificate?.trust, verdict.certificate?.detail],
    weak: verdict.weak,
    algorithms: verdict.algorithms,
    detached: verdict.detached,
    content: verdict.content?.toString('base64'),
  };
}

interface Tally { decided: number; deferred: number }

/** Runs both paths and verifyCms (what callers get); returns the common verdict. */
async function agree(der: Buffer, options: VerifyCmsOptions, label: string): Promise<CmsVerdict> {
  const fast = verifyCmsFast(der, options);
  const reference = await verifyCmsReference(der, options);
  if (fast) assert.equal(summary(fast), summary(reference), `${label}: fast ${fast.code} (${fast.detail}) vs pkijs ${reference.code} (${reference.detail})`);
  assert.equal(summary(await verifyCms(der, options)), summary(reference), `${label}: verifyCms vs pkijs`);
  return reference;
}

// ---------------------------------------------------------------- conformance files (../shared/conformance/INDEX.md)

test('CMS_A / CMS_A_ATTIME: asn1crypto cms-signed.der, expired now and valid at 2020-01-01, on both paths', async () => {
  const der = fixture('asn1crypto/cms-signed.der');
  const options = { trustedCertsPem: [fixtureText('asn1crypto/keys/test.crt')] };
  assert.ok(verifyCmsFast(der, options), 'the fast path decides the conformance message itself');
  assert.is((await agree(der, options, 'CMS_A')).code, 'SWX_CERT_EXPIRED');
  assert.is((await agree(der, { ...options, at: new Date('2020-01-01T00:00:00Z') }, 'CMS_A_ATTIME')).code, 'SWX_OK');
});

/** A TimeStampResp's token, cut out by openssl (`ts -reply -token_out`), the way INDEX.md made its derived file. */
function tokenOf(responsePath: string, name: string): Buffer {
  const out = join(root, `${name}.token.der`);
  const cut = openssl(['ts', '-reply', '-in', join(conformance, responsePath), '-token_out', '-out', out]);
  assert.ok(cut.ok, cut.out);
  return readFileSync(out);
}

test('TS_TT_CMS and the rfc3161-client tokens read as plain CMS give the same verdict on both paths', async () => {
  const chain = { trustedCertsPem: [fixtureText('rfc3161-client/test_tsa/ts_chain.pem')] };
  const token = fixture('rfc3161-client/_derived/test_tsa.response.token.der');
  assert.ok(verifyCmsFast(token, chain));
  assert.is((await agree(token, chain, 'TS_TT_CMS')).code, 'SWX_OK');
  // Injected certificates (GHSA-3xxc-pwj6-jgrj): the signer is still the one the SignerInfo names.
  const injected = await agree(tokenOf('rfc3161-client/test_tsa/response-injected-certs.tsr', 'injected'), chain, 'TS_TT_INJ');
  assert.is(injected.code, 'SWX_OK');
  assert.match(injected.signer!.subject, /Test TSA Timestamping/);
  // This token leaves its certificate out (certReq false): as CMS it has no signer until the TSA certificate (the
  // first of ts_chain.pem) is pinned.
  const expired = tokenOf('rfc3161-client/sigstore.mock/response-expired.tsr', 'expired');
  const mockChain = fixtureText('rfc3161-client/sigstore.mock/ts_chain.pem');
  const mock = { trustedCertsPem: [mockChain] };
  assert.is((await agree(expired, mock, 'TS_SM_EXP without its certificate')).code, 'SWX_CERT_UNTRUSTED');
  assert.is((await agree(expired, { ...mock, pinnedCertPem: mockChain }, 'TS_SM_EXP')).code, 'SWX_CERT_EXPIRED');
  assert.is((await agree(expired, { ...mock, pinnedCertPem: mockChain, at: new Date(1675209601 * 1000) }, 'TS_SM_ATTIME')).code, 'SWX_OK');
});

// ---------------------------------------------------------------- generated messages

interface Sample { name: string; der: Buffer; options: VerifyCmsOptions; opensslAccepts?: boolean }

const payload = Buffer.from('<declaration id="D-7">differential</declaration>\n');

async function swxSamples(): Promise<Sample[]> {
  const { ca, ecdsa, rsa, chain } = await setup();
  const samples: Sample[] = [];
  for (const [name, credential, anchor] of [['ecdsa', ecdsa, ca], ['rsa', rsa, rsaCa()]] as const) {
    for (const detached of [false, true]) {
      samples.push({
        name: `swx ${name} ${detached ? 'detached' : 'attached'}`,
        der: await signCms({ data: payload, certPem: credential.certPem, keyPem: credential.keyPem, detached }),
        options: { trustedCertsPem: [anchor], ...(detached ? { data: payload } : {}) },
      });
    }
  }
  samples.push({
    name: 'swx P-384 leaf with its intermediate',
    der: await signCms({ data: payload, certPem: chain.certPem, keyPem: chain.keyPem, chainPem: chain.intermediatePem }),
    options: { trustedCertsPem: [chain.anchor] },
  });
  samples.push({
    name: 'swx P-384 leaf without its intermediate',
    der: await signCms({ data: payload, certPem: chain.certPem, keyPem: chain.keyPem }),
    options: { trustedCertsPem: [chain.anchor] },
  });
  return samples;
}

async function opensslSamples(): Promise<Sample[]> {
  const { ca, ecdsa, rsa, chain } = await setup();
  writeFileSync(join(root, 'payload.bin'), payload);
  const variants: [string, Credential, string, string[]][] = [
    ['ecdsa default attributes', ecdsa, ca, []],
    ['ecdsa -nosmimecap', ecdsa, ca, ['-nosmimecap']],
    ['ecdsa -noattr', ecdsa, ca, ['-noattr']],
    ['ecdsa -md sha384', ecdsa, ca, ['-md', 'sha384']],
    ['ecdsa -md sha512 -keyid', ecdsa, ca, ['-md', 'sha512', '-keyid']],
    ['ecdsa -stream (BER, indefinite lengths)', ecdsa, ca, ['-stream']],
    ['rsa default attributes', rsa, rsaCa(), []],
    ['rsa -md sha512', rsa, rsaCa(), ['-md', 'sha512']],
    ['rsa -keyid -nosmimecap', rsa, rsaCa(), ['-keyid', '-nosmimecap']],
    ['rsa -noattr', rsa, rsaCa(), ['-noattr']],
    ['P-384 chain -certfile intermediate', chain, chain.anchor, ['-certfile', join(root, 'chain/int.pem')]],
  ];
  const samples: Sample[] = [];
  for (const [name, credential, anchor, extra] of variants) {
    for (const detached of [false, true]) {
      const out = join(root, `openssl-${samples.length}.der`);
      const signed = openssl(['cms', '-sign', '-binary', '-outform', 'DER', '-in', 'payload.bin', '-signer', credential.certPath, '-inkey', credential.keyPath, ...(detached ? [] : ['-nodetach']), ...extra, '-out', out]);
      assert.ok(signed.ok, signed.out);
      writeFileSync(join(root, 'anchor.pem'), anchor);
      const checked = openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', out, '-CAfile', 'anchor.pem', ...(detached ? ['-content', 'payload.bin'] : []), '-out', '/dev/null']);
      samples.push({ name: `openssl ${name} ${detached ? 'detached' : 'attached'}`, der: readFileSync(out), options: { trustedCertsPem: [anchor], ...(detached ? { data: payload } : {}) }, opensslAccepts: checked.ok });
    }
  }
  return samples;
}

test('messages signed by swx and by openssl cms: same verdicts, openssl agrees, the fast path decides the DER ones', async () => {
  const samples = [...(await swxSamples()), ...(await opensslSamples())];
  for (const sample of samples) {
    const verdict = await agree(sample.der, sample.options, sample.name);
    const fast = verifyCmsFast(sample.der, sample.options);
    if (/-stream/.test(sample.name)) assert.is(fast, undefined, `${sample.name}: BER is the reference's`);
    else if (/-noattr/.test(sample.name)) assert.equal([fast, verdict.code], [undefined, 'SWX_BAD_REQUEST'], `${sample.name}: no signed attributes is refused by policy`);
    else if (/without its intermediate/.test(sample.name)) assert.is(verdict.code, 'SWX_CERT_UNTRUSTED');
    else {
      assert.ok(fast, `${sample.name}: the fast path covers it`);
      assert.is(verdict.code, 'SWX_OK', `${sample.name}: ${verdict.detail}`);
    }
    if (sample.opensslAccepts !== undefined && !/-noattr/.test(sample.name)) assert.is(verdict.valid, sample.opensslAccepts, `${sample.name}: openssl cms -verify says ${sample.opensslAccepts}`);
  }
});

// ---------------------------------------------------------------- mutations

/** Re-encodes `root` with `target` replaced by `bytes`, every enclosing length recomputed. */
function replaced(node: Der, target: Der, bytes: Buffer): Buffer {
  if (node === target) return bytes;
  if (!node.constructed || target.start < node.valueStart || target.end > node.end) return node.bytes;
  return encode(node.tag, ...node.children.map((child) => replaced(child, target, bytes)));
}

function* walk(node: Der): Generator<Der> {
  yield node;
  for (const child of node.children) yield* walk(child);
}

/** The element at a path of child indexes. */
const at = (node: Der, ...path: number[]) => path.reduce((current, index) => current.children[index]!, node);

/** SignedData's fields by position in a message from signCms: version, digests, encap, certificates, signerInfos. */
function parts(der: Buffer) {
  const message = readDer(der);
  const signedData = at(message, 1, 0);
  const signerInfo = at(signedData, 4, 0);
  return { message, signedData, certificates: at(signedData, 3), signerInfo, sid: signerInfo.children[1]! };
}

/**
 * Flips bits of a message and holds every verdict the fast path gives to the reference's. Where the fast path does
 * not decide, verifyCms is the reference itself, so only the decided flips need the (slow) reference run.
 */
async function flips(name: string, der: Buffer, options: VerifyCmsOptions, bits: Iterable<number>): Promise<void> {
  const tally: Tally = { decided: 0, deferred: 0 };
  let tried = 0;
  for (const bit of bits) {
    tried += 1;
    const mutated = Buffer.from(der);
    mutated[bit >> 3]! ^= 0x80 >> (bit & 7);
    const fast = verifyCmsFast(mutated, options);
    if (!fast) {
      tally.deferred += 1;
      continue;
    }
    tally.decided += 1;
    const reference = await verifyCmsReference(mutated, options);
    assert.equal(summary(fast), summary(reference), `${name}, bit ${bit}: fast ${fast.code} (${fast.detail}) vs pkijs ${reference.code} (${reference.detail})`);
  }
  console.log(`  ${name}: ${tried} flips, the fast path decided ${tally.decided} (each as pkijs did), left ${tally.deferred} to pkijs`);
  assert.ok(tally.decided > tried / 3, `${name}: the fast path decides a good share of the flips itself`);
}

function* range(from: number, to: number, step = 1): Generator<number> {
  for (let bit = from; bit < to; bit += step) yield bit;
}

test('single-bit flips of two ECDSA messages (every bit of one): same verdict on both paths', async () => {
  const { ca, ecdsa } = await setup();
  const small = Buffer.from('flip me');
  const attached = await signCms({ data: small, certPem: ecdsa.certPem, keyPem: ecdsa.keyPem });
  await flips('swx ecdsa attached', attached, { trustedCertsPem: [ca] }, range(0, attached.length * 8));
  // openssl: signer named by key identifier, SHA-384, smimeCapabilities among the signed attributes.
  writeFileSync(join(root, 'small.bin'), small);
  const made = openssl(['cms', '-sign', '-binary', '-outform', 'DER', '-in', 'small.bin', '-signer', ecdsa.certPath, '-inkey', ecdsa.keyPath, '-keyid', '-md', 'sha384', '-out', 'keyid.der']);
  assert.ok(made.ok, made.out);
  // Its certificate is the one flipped bit by bit above: here every bit outside it, one per byte inside.
  const detached = readFileSync(join(root, 'keyid.der'));
  await flips('openssl ecdsa detached -keyid -md sha384', detached, { trustedCertsPem: [ca], data: small }, aroundCertificate(detached));
});

/** Every bit outside the first certificate, one bit per byte (rotating through the bit positions) inside it. */
function aroundCertificate(der: Buffer): number[] {
  const cert = parts(der).certificates.children[0]!;
  return [...range(0, cert.start * 8), ...range(cert.start * 8, cert.end * 8, 9), ...range(cert.end * 8, der.length * 8)];
}

test('single-bit flips of an RSA detached message: every bit outside its certificate, one per byte inside', async () => {
  const { rsa } = await setup();
  const small = Buffer.from('flip me');
  const der = await signCms({ data: small, certPem: rsa.certPem, keyPem: rsa.keyPem, detached: true });
  await flips('swx rsa detached', der, { trustedCertsPem: [rsaCa()], data: small }, aroundCertificate(der));
});

test('truncations at every length, appended bytes, and length octets re-encoded: same verdicts', async () => {
  const { ca, ecdsa } = await setup();
  const der = await signCms({ data: payload, certPem: ecdsa.certPem, keyPem: ecdsa.keyPem });
  const options = { trustedCertsPem: [ca] };
  for (let cut = 0; cut < der.length; cut++) {
    assert.is((await agree(der.subarray(0, cut), options, `cut at ${cut}`)).valid, false);
  }
  for (const tail of [Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([0x30, 0x00])]) await agree(Buffer.concat([der, tail]), options, 'appended');

  const message = readDer(der);
  let variants = 0;
  for (const node of walk(message)) {
    const value = node.value;
    const header = (tag: number, length: Buffer) => Buffer.concat([Buffer.from([tag]), length]);
    const lengths = [
      value.length < 0x80 ? Buffer.from([0x81, value.length]) : undefined, // long form for a short length
      Buffer.from([0x82, value.length >> 8, value.length & 0xff]), // one octet more than needed (or exact)
      Buffer.from([0x84, 0, 0, value.length >> 8, value.length & 0xff]), // leading zero octets
      value.length > 0 ? Buffer.from(value.length - 1 < 0x80 ? [value.length - 1] : [0x82, (value.length - 1) >> 8, (value.length - 1) & 0xff]) : undefined, // one short
    ];
    for (const length of lengths) {
      if (!length) continue;
      variants += 1;
      await agree(replaced(message, node, Buffer.concat([header(node.tag, length), value])), options, `length of element at ${node.start} as ${length.toString('hex')}`);
    }
    if (node.constructed) {
      // BER indefinite length: valid for pkijs, not DER, so the fast path must leave it to the reference.
      const indefinite = replaced(message, node, Buffer.concat([Buffer.from([node.tag, 0x80]), value, Buffer.from([0, 0])]));
      variants += 1;
      assert.is(verifyCmsFast(indefinite, options), undefined);
      await agree(indefinite, options, `indefinite length at ${node.start}`);
    }
  }
  assert.ok(variants > 100, `${variants} length variants`);
});

test('swapped certificates and wrong signer identifiers: same verdicts, and never the wrong signer', async () => {
  const { ca, ecdsa, other, rsa } = await setup();
  const der = await signCms({ data: payload, certPem: ecdsa.certPem, keyPem: ecdsa.keyPem, chainPem: ca });
  const { message, certificates, sid } = parts(der);
  const options = { trustedCertsPem: [ca] };
  const certDer = (pem: string) => readDer(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
  const otherCert = certDer(other.certPem);
  const rsaCert = certDer(rsa.certPem);
  const signerCert = certificates.children[0]!;
  const caCert = certificates.children[1]!;
  const cases: [string, Buffer, string][] = [
    // Another certificate of the same CA where the signer's was: no certificate matches the identifier.
    ['signer certificate replaced', replaced(message, signerCert, otherCert.bytes), 'SWX_CERT_UNTRUSTED'],
    // The identifier names a certificate the message carries, but not the key that signed.
    ['sid names the CA certificate', replaced(message, sid, encode(tags.sequence, at(caCert, 0, 3).bytes, at(caCert, 0, 1).bytes)), 'SWX_SIG_INVALID'],
    ['sid names an absent certificate', replaced(message, sid, encode(tags.sequence, at(otherCert, 0, 3).bytes, at(otherCert, 0, 1).bytes)), 'SWX_CERT_UNTRUSTED'],
    ['sid names the signer by key identifier (version left at 1)', replaced(message, sid, encode(context(0, false), Buffer.alloc(20, 1))), 'SWX_BAD_REQUEST'],
    ['certificates in the other order', replaced(message, certificates, encode(context(0, true), caCert.bytes, signerCert.bytes)), 'SWX_OK'],
    ['an RSA certificate of another PKI added first', replaced(message, certificates, encode(context(0, true), rsaCert.bytes, signerCert.bytes, caCert.bytes)), 'SWX_OK'],
    ['no certificates', replaced(message, certificates, encode(context(0, true))), 'SWX_CERT_UNTRUSTED'],
  ];
  for (const [name, mutated, code] of cases) {
    const verdict = await agree(mutated, options, name);
    assert.is(verdict.code, code, `${name}: ${verdict.detail}`);
    if (verdict.valid) assert.match(verdict.signer!.subject, /CN=CUSTOMS/);
  }
  // Pinning: the message without certificates is checked against the partner's registered one, on both paths.
  const bare = cases.find(([name]) => name === 'no certificates')![1];
  assert.is((await agree(bare, { ...options, pinnedCertPem: ecdsa.certPem }, 'pinned stands in')).code, 'SWX_OK');
  assert.is((await agree(bare, { ...options, pinnedCertPem: other.certPem }, 'pinned other')).code, 'SWX_CERT_UNTRUSTED');
  assert.is((await agree(der, { ...options, pinnedCertPem: other.certPem }, 'pinned mismatch')).code, 'SWX_SIG_KEY_MISMATCH');
  assert.is((await agree(der, { ...options, pinnedCertPem: 'no pem' }, 'pinned unreadable')).code, 'SWX_BAD_REQUEST');
});

test('options: wrong detached data, data given to an attached message, foreign anchors, other times', async () => {
  const { ca, ecdsa, chain } = await setup();
  const attached = await signCms({ data: payload, certPem: ecdsa.certPem, keyPem: ecdsa.keyPem });
  const detached = await signCms({ data: payload, certPem: ecdsa.certPem, keyPem: ecdsa.keyPem, detached: true });
  const cases: [string, Buffer, VerifyCmsOptions, string][] = [
    ['detached without data', detached, { trustedCertsPem: [ca] }, 'SWX_BAD_REQUEST'],
    ['detached with empty data', detached, { trustedCertsPem: [ca], data: Buffer.alloc(0) }, 'SWX_BAD_REQUEST'],
    ['detached with other data', detached, { trustedCertsPem: [ca], data: Buffer.from('other') }, 'SWX_DIGEST_MISMATCH'],
    ['attached with other data', attached, { data: Buffer.from('other') }, 'SWX_DIGEST_MISMATCH'],
    ['attached with its own data', attached, { data: payload }, 'SWX_OK'],
    ['foreign anchor', attached, { trustedCertsPem: [chain.anchor] }, 'SWX_CERT_UNTRUSTED'],
    ['before the certificates existed', attached, { trustedCertsPem: [ca], at: new Date('2001-01-01') }, 'SWX_CERT_EXPIRED'],
    ['no anchors: validity only', attached, {}, 'SWX_OK'],
  ];
  for (const [name, der, options, code] of cases) assert.is((await agree(der, options, name)).code, code, name);
  // The path cache must not carry a verdict to an instant at which a certificate is no longer valid.
  assert.is((await agree(attached, { trustedCertsPem: [ca] }, 'now')).code, 'SWX_OK');
  assert.is((await agree(attached, { trustedCertsPem: [ca], at: new Date('2200-01-01') }, 'far future')).code, 'SWX_CERT_EXPIRED');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
