import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isInnerList, parseDictionary, serializeInnerList } from 'structured-headers';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  checkContentDigest,
  contentDigest,
  HttpSigError,
  readCanonicalInput,
  sign,
  signatureBase,
  verify,
  type HttpMessage,
  type HttpSigReason,
  type SigAlg,
  type VerifyOptions,
} from '../../engine/httpsig.ts';

// RFC 9421 Appendix B.1.3 and B.1.4 test keys.
const eccP256Private = createPrivateKey(`-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49
AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM
4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END EC PRIVATE KEY-----`);
const eccP256Public = createPublicKey(`-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----`);
const ed25519Private = createPrivateKey(`-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----`);
const ed25519Public = createPublicKey(`-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----`);

const RFC_CREATED = 1618884473;

/** The RFC 9421 Appendix B.2 test-request. */
function testRequest(): HttpMessage {
  return {
    method: 'POST',
    targetUri: 'https://example.com/foo?param=Value&Pet=dog',
    headers: {
      host: 'example.com',
      date: 'Tue, 20 Apr 2021 02:07:55 GMT',
      'content-type': 'application/json',
      'content-digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
      'content-length': '18',
    },
  };
}

function reasonOf(fn: () => unknown): HttpSigReason | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpSigError) return error.reason;
    throw error;
  }
  return undefined;
}

// ---- Content-Digest (RFC 9530) ----

test('contentDigest reproduces the RFC 9530 example', () => {
  const body = new TextEncoder().encode('{"hello": "world"}\n');
  assert.is(contentDigest(body), 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:');
  assert.ok(checkContentDigest('sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:', body));
});

test('checkContentDigest accepts sha-512 (RFC 9421 test-request) and ignores unknown algorithms', () => {
  const body = new TextEncoder().encode('{"hello": "world"}');
  const header = testRequest().headers['content-digest'] as string;
  assert.ok(checkContentDigest(header, body));
  assert.ok(checkContentDigest(`md5=:AAAA:, ${header}`, body));
});

test('checkContentDigest is false when absent, mismatched, malformed or unusable', () => {
  const body = new TextEncoder().encode('{"hello": "world"}\n');
  const good = contentDigest(body);
  assert.not.ok(checkContentDigest(undefined, body));
  assert.not.ok(checkContentDigest('', body));
  assert.not.ok(checkContentDigest(good, new TextEncoder().encode('{"hello": "world!"}\n')));
  assert.not.ok(checkContentDigest('sha-256=RK/0qy18', body));
  assert.not.ok(checkContentDigest('sha-256="RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg="', body));
  assert.not.ok(checkContentDigest('md5=:AAAA:', body));
  // Every recognised member must match, not just one.
  assert.not.ok(checkContentDigest(`${good}, sha-512=:AAAA:`, body));
});

// ---- RFC 9421 Appendix B ----

const B26_BASE = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@method": POST',
  '"@path": /foo',
  '"@authority": example.com',
  '"content-type": application/json',
  '"content-length": 18',
  '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
].join('\n');

test('RFC 9421 B.2.6: ed25519 signing reproduces the signature base and value', () => {
  const message = testRequest();
  const headers = sign(message, {
    key: ed25519Private,
    keyId: 'test-key-ed25519',
    alg: 'ed25519',
    components: ['date', '@method', '@path', '@authority', 'content-type', 'content-length'],
    created: RFC_CREATED,
    label: 'sig-b26',
  });
  assert.is(
    headers['signature-input'],
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
  );
  assert.is(
    headers.signature,
    'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:',
  );
  assert.is(signatureBase(message, headers['signature-input']), B26_BASE);

  const verified = verify(
    { ...message, headers: { ...message.headers, ...headers } },
    { key: () => ({ key: ed25519Public, alg: 'ed25519' }), required: ['@method', '@path', '@authority'], maxSkewSeconds: 300, now: RFC_CREATED + 10 },
  );
  assert.is(verified.keyId, 'test-key-ed25519');
  assert.is(verified.label, 'sig-b26');
  assert.equal(verified.covered, ['date', '@method', '@path', '@authority', 'content-type', 'content-length']);
});

test('RFC 9421 B.2.4: verifies the ecdsa-p256-sha256 response signature', () => {
  const response: HttpMessage = {
    status: 200,
    headers: {
      date: 'Tue, 20 Apr 2021 02:07:56 GMT',
      'content-type': 'application/json',
      'content-digest': 'sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
      'content-length': '23',
      'signature-input': 'sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
      signature: 'sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:',
    },
  };
  const keys: VerifyOptions['key'] = (keyId) => (keyId === 'test-key-ecc-p256' ? { key: eccP256Public, alg: 'ecdsa-p256-sha256' } : undefined);
  const verified = verify(response, { key: keys, required: ['@status', 'content-digest'], maxSkewSeconds: 60, now: RFC_CREATED });
  assert.is(verified.alg, 'ecdsa-p256-sha256');
  assert.is(verified.created, RFC_CREATED);
  assert.ok(checkContentDigest(response.headers['content-digest'] as string, new TextEncoder().encode('{"message": "good dog"}')));

  const tampered = { ...response, status: 201 };
  assert.is(reasonOf(() => verify(tampered, { key: keys, required: [], maxSkewSeconds: 60, now: RFC_CREATED })), 'invalid');
});

// ---- Round trips ----

function keyPair(alg: SigAlg): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (alg) {
    case 'ecdsa-p256-sha256':
      return { privateKey: eccP256Private, publicKey: eccP256Public };
    case 'ecdsa-p384-sha384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'rsa-pss-sha512':
    case 'rsa-v1_5-sha256':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'ed25519':
      return { privateKey: ed25519Private, publicKey: ed25519Public };
  }
}

const NOW = 1_700_000_000;
const body = new TextEncoder().encode('{"service":"population-register","id":42}');

function agencyRequest(): HttpMessage {
  return {
    method: 'POST',
    targetUri: 'https://hub.swx.example/v1/exchange/population-register?trace=abc',
    headers: { 'content-type': 'application/json', 'content-digest': contentDigest(body), 'x-swx-conversation': 'c-1' },
  };
}

const REQUIRED = ['@method', '@target-uri', 'content-digest'];

function signed(alg: SigAlg, privateKey: KeyObject, extra: Partial<Parameters<typeof sign>[1]> = {}): HttpMessage {
  const message = agencyRequest();
  const headers = sign(message, {
    key: privateKey,
    keyId: `agency-${alg}`,
    alg,
    components: ['@method', '@target-uri', 'content-type', 'content-digest'],
    created: NOW,
    ...extra,
  });
  return { ...message, headers: { ...message.headers, ...headers } };
}

for (const alg of ['ecdsa-p256-sha256', 'ecdsa-p384-sha384', 'rsa-pss-sha512', 'rsa-v1_5-sha256', 'ed25519'] as const) {
  test(`round trip: ${alg}`, () => {
    const { privateKey, publicKey } = keyPair(alg);
    const message = signed(alg, privateKey, { includeAlg: true, nonce: 'n-1', tag: 'swx' });
    let seen: [string, string | undefined] | undefined;
    const verified = verify(message, {
      key: (keyId, claimed) => {
        seen = [keyId, claimed];
        return { key: publicKey, alg };
      },
      required: REQUIRED,
      maxSkewSeconds: 300,
      now: NOW + 5,
    });
    assert.equal(seen, [`agency-${alg}`, alg]);
    assert.is(verified.alg, alg);
    assert.is(verified.nonce, 'n-1');
    assert.is(verified.tag, 'swx');
    assert.is(verified.signatureInput, message.headers['signature-input']);
    assert.is(verified.signature, message.headers['signature']);
  });
}

// ---- Rejections ----

const p256Keys: VerifyOptions['key'] = (keyId) =>
  keyId === 'agency-ecdsa-p256-sha256' ? { key: eccP256Public, alg: 'ecdsa-p256-sha256' } : undefined;
const options: VerifyOptions = { key: p256Keys, required: REQUIRED, maxSkewSeconds: 300, now: NOW };

test('a tampered covered header or URI is invalid', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private);
  const header = { ...message, headers: { ...message.headers, 'content-digest': contentDigest(new Uint8Array([1])) } };
  assert.is(reasonOf(() => verify(header, options)), 'invalid');
  const uri = { ...message, targetUri: 'https://hub.swx.example/v1/exchange/population-register?trace=abd' };
  assert.is(reasonOf(() => verify(uri, options)), 'invalid');
  const signature = { ...message, headers: { ...message.headers, signature: 'sig1=:AAAA:' } };
  assert.is(reasonOf(() => verify(signature, options)), 'invalid');
  const params = { ...message, headers: { ...message.headers, 'signature-input': (message.headers['signature-input'] as string).replace(`created=${NOW}`, `created=${NOW + 1}`) } };
  assert.is(reasonOf(() => verify(params, options)), 'invalid');
  // An uncovered header may change freely.
  const free = { ...message, headers: { ...message.headers, 'x-swx-conversation': 'c-2' } };
  assert.ok(verify(free, options));
});

test('a required component that is not covered is not-covered', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private, { components: ['@method', '@target-uri', 'content-type'] });
  assert.is(reasonOf(() => verify(message, options)), 'not-covered');
  // `;req` on a field is a different component from the field itself.
  assert.is(reasonOf(() => verify(signed('ecdsa-p256-sha256', eccP256Private), { ...options, required: ['content-type;req'] })), 'not-covered');
});

test('created outside the skew is expired or future; expires is honoured', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private);
  assert.is(reasonOf(() => verify(message, { ...options, now: NOW + 301 })), 'expired');
  assert.is(reasonOf(() => verify(message, { ...options, now: NOW - 301 })), 'future');
  assert.ok(verify(message, { ...options, now: NOW + 300 }));
  const expiring = signed('ecdsa-p256-sha256', eccP256Private, { expires: NOW + 60 });
  assert.is(verify(expiring, { ...options, now: NOW + 60 }).expires, NOW + 60);
  assert.is(reasonOf(() => verify(expiring, { ...options, now: NOW + 61 })), 'expired');
});

test('created is required', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private);
  const input = (message.headers['signature-input'] as string).replace(`;created=${NOW}`, '');
  assert.is(reasonOf(() => verify({ ...message, headers: { ...message.headers, 'signature-input': input } }, options)), 'malformed');
});

test('an unknown keyid is unknown-key, whether the resolver returns nothing or throws', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private, { keyId: 'nobody' });
  assert.is(reasonOf(() => verify(message, options)), 'unknown-key');
  const throwing: VerifyOptions['key'] = () => {
    throw new Error('no partner has this certificate');
  };
  assert.is(reasonOf(() => verify(message, { ...options, key: throwing })), 'unknown-key');
});

test('a key unfit for its algorithm is refused; an alg parameter that contradicts the key is invalid', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private, { includeAlg: true });
  assert.is(reasonOf(() => verify(message, { ...options, key: () => ({ key: ed25519Public, alg: 'ecdsa-p256-sha256' }) })), 'unknown-key');
  assert.is(reasonOf(() => verify(message, { ...options, key: () => ({ key: ed25519Public, alg: 'ed25519' }) })), 'invalid');
  assert.is(reasonOf(() => sign(agencyRequest(), { key: ed25519Private, keyId: 'k', alg: 'ecdsa-p384-sha384', components: [] })), 'unknown-key');
});

test('missing or malformed signature fields', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private);
  assert.is(reasonOf(() => verify(agencyRequest(), options)), 'missing');
  assert.is(reasonOf(() => verify(message, { ...options, label: 'sig2' })), 'missing');
  const noSig = { ...message, headers: { ...message.headers, signature: 'other=:AAAA:' } };
  assert.is(reasonOf(() => verify(noSig, options)), 'missing');
  const broken = { ...message, headers: { ...message.headers, 'signature-input': 'sig1=("@method"' } };
  assert.is(reasonOf(() => verify(broken, options)), 'malformed');
  const upper = { ...message, headers: { ...message.headers, 'signature-input': `sig1=("@method" "Content-Type");created=${NOW};keyid="k"` } };
  assert.is(reasonOf(() => verify(upper, { ...options, required: [] })), 'malformed');
});

test('a covered component absent from the message is absent-component', () => {
  const message = signed('ecdsa-p256-sha256', eccP256Private, { components: ['@method', '@target-uri', 'content-digest', 'x-swx-conversation'] });
  const { 'x-swx-conversation': _dropped, ...rest } = message.headers;
  assert.is(reasonOf(() => verify({ ...message, headers: rest }, options)), 'absent-component');
  assert.is(reasonOf(() => sign(agencyRequest(), { key: eccP256Private, keyId: 'k', alg: 'ecdsa-p256-sha256', components: ['digest'] })), 'absent-component');
});

test('the label selects one of several signatures', () => {
  const first = signed('ecdsa-p256-sha256', eccP256Private);
  const second = sign(agencyRequest(), { key: ed25519Private, keyId: 'proxy', alg: 'ed25519', components: ['@method'], created: NOW, label: 'proxy' });
  const both: HttpMessage = {
    ...first,
    headers: {
      ...first.headers,
      'signature-input': [first.headers['signature-input'] as string, second['signature-input']],
      signature: `${first.headers['signature'] as string}, ${second.signature}`,
    },
  };
  assert.is(verify(both, options).keyId, 'agency-ecdsa-p256-sha256');
  const proxy = verify(both, { key: () => ({ key: ed25519Public, alg: 'ed25519' }), required: ['@method'], maxSkewSeconds: 300, now: NOW, label: 'proxy' });
  assert.is(proxy.keyId, 'proxy');
});

// ---- Signature base details ----

function baseLines(message: HttpMessage, components: string[]): string[] {
  const headers = sign(message, { key: ed25519Private, keyId: 'k', alg: 'ed25519', components, created: NOW });
  return signatureBase(message, headers['signature-input']).split('\n').slice(0, -1);
}

test('derived components follow RFC 9421 §2.2', () => {
  const message: HttpMessage = { method: 'GET', targetUri: 'HTTPS://User@WWW.Example.COM:443/a/b%2Fc?x=1&y=', headers: {} };
  assert.equal(baseLines(message, ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query']), [
    '"@method": GET',
    '"@target-uri": HTTPS://User@WWW.Example.COM:443/a/b%2Fc?x=1&y=',
    '"@authority": www.example.com',
    '"@scheme": https',
    '"@request-target": /a/b%2Fc?x=1&y=',
    '"@path": /a/b%2Fc',
    '"@query": ?x=1&y=',
  ]);
  const bare: HttpMessage = { method: 'GET', targetUri: 'http://example.com:8080', headers: {} };
  assert.equal(baseLines(bare, ['@authority', '@path', '@query', '@request-target']), [
    '"@authority": example.com:8080',
    '"@path": /',
    '"@query": ?',
    '"@request-target": /',
  ]);
  assert.equal(baseLines({ ...bare, targetUri: 'http://Example.com:80/x' }, ['@authority']), ['"@authority": example.com']);
});

test('@query-param decodes and re-encodes as RFC 9421 §2.2.8 shows; repeated names are refused', () => {
  const message: HttpMessage = {
    method: 'GET',
    targetUri: 'https://www.example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something&qux=',
    headers: {},
  };
  assert.equal(baseLines(message, ['@query-param;name="var"', '@query-param;name="bar"', '"@query-param";name="fa%C3%A7ade%22%3A%20"', '@query-param;name="qux"']), [
    '"@query-param";name="var": this%20is%20a%20big%0Amultiline%20value',
    '"@query-param";name="bar": with%20plus%20whitespace',
    '"@query-param";name="fa%C3%A7ade%22%3A%20": something',
    '"@query-param";name="qux": ',
  ]);
  const repeated = { ...message, targetUri: 'https://www.example.com/?a=1&a=2' };
  assert.is(reasonOf(() => baseLines(repeated, ['@query-param;name="a"'])), 'malformed');
});

test('header fields: values trimmed and joined, dictionary members, byte sequences; no line breaks', () => {
  const message: HttpMessage = {
    method: 'GET',
    targetUri: 'https://example.com/',
    headers: {
      'cache-control': ['  max-age=60 ', 'must-revalidate'],
      'x-empty': '',
      'content-digest': 'sha-256=:AAAA:,  sha-512=:BBBB:',
    },
  };
  assert.equal(baseLines(message, ['cache-control', 'x-empty', 'content-digest;key="sha-512"', 'content-digest;sf', 'cache-control;bs']), [
    '"cache-control": max-age=60, must-revalidate',
    '"x-empty": ',
    '"content-digest";key="sha-512": :BBBB:',
    '"content-digest";sf: sha-256=:AAAA:, sha-512=:BBBB:',
    '"cache-control";bs: :bWF4LWFnZT02MA==:, :bXVzdC1yZXZhbGlkYXRl:',
  ]);
  const injected = { ...message, headers: { 'x-evil': 'a\n"@method": POST' } };
  assert.is(reasonOf(() => baseLines(injected, ['x-evil'])), 'malformed');
  assert.is(reasonOf(() => baseLines(message, ['cache-control', 'cache-control'])), 'malformed');
  assert.is(reasonOf(() => baseLines(message, ['@signature-params'])), 'malformed');
  assert.is(reasonOf(() => baseLines(message, ['cache-control;tr'])), 'malformed');
});

test('response signing with @status and ;req components of the request', () => {
  const request = signed('ecdsa-p256-sha256', eccP256Private);
  const responseBody = new TextEncoder().encode('{"accepted":true}');
  const response: HttpMessage = {
    status: 202,
    headers: { 'content-type': 'application/json', 'content-digest': contentDigest(responseBody) },
    request,
  };
  const components = ['@status', 'content-digest', '@method;req', '@target-uri;req', 'content-digest;req', 'signature;req;key="sig1"'];
  const headers = sign(response, { key: ed25519Private, keyId: 'hub', alg: 'ed25519', components, created: NOW });
  const lines = signatureBase(response, headers['signature-input']).split('\n');
  assert.equal(lines.slice(0, 5), [
    '"@status": 202',
    `"content-digest": ${contentDigest(responseBody)}`,
    '"@method";req: POST',
    '"@target-uri";req: https://hub.swx.example/v1/exchange/population-register?trace=abc',
    `"content-digest";req: ${contentDigest(body)}`,
  ]);
  assert.is(lines[5], `"signature";req;key="sig1": ${(request.headers['signature'] as string).slice('sig1='.length)}`);

  const signedResponse = { ...response, headers: { ...response.headers, ...headers } };
  const hubKey: VerifyOptions['key'] = () => ({ key: ed25519Public, alg: 'ed25519' });
  const verified = verify(signedResponse, { key: hubKey, required: ['@status', 'content-digest', 'content-digest;req', '"@method";req'], maxSkewSeconds: 60, now: NOW });
  assert.equal(verified.covered, ['@status', 'content-digest', '@method;req', '@target-uri;req', 'content-digest;req', 'signature;req;key="sig1"']);

  // The response is bound to its request: another request fails.
  const otherRequest = { ...request, method: 'PUT' };
  assert.is(reasonOf(() => verify({ ...signedResponse, request: otherRequest }, { key: hubKey, required: [], maxSkewSeconds: 60, now: NOW })), 'invalid');
  const { request: _r, ...withoutRequest } = signedResponse;
  assert.is(reasonOf(() => verify(withoutRequest, { key: hubKey, required: [], maxSkewSeconds: 60, now: NOW })), 'absent-component');
});

test('the canonical Signature-Input reader reads what the general parser reads, and leaves it everything else', () => {
  // mulberry32: the same cases on every run.
  let seed = 9421;
  const random = () => { seed = (seed + 0x6d2b79f5) | 0; let t = Math.imul(seed ^ (seed >>> 15), 1 | seed); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const strings = ['@method', '@target-uri', 'content-digest', 'swx-message-id', 'a b', 'x"y', 'back\\slash', 'tab\there', 'é', ''];
  const keys = ['req', 'sf', 'key', 'bs', 'name', 'created', 'keyid', 'nonce', 'Upper', '*star', '9nine'];
  const values = ['', '="v"', '="' + pick(strings) + '"', '=1618884473', '=007', '=0', '=-1', '=?1', '=?0', '=tok', '=1.5', '=:AAE=:', '=1234567890123456'];
  const params = () => Array.from({ length: Math.floor(random() * 4) }, () => `;${pick(keys)}${pick(values)}`).join('');
  const item = () => `"${pick(strings)}"${params()}`;
  let canonical = 0;
  for (let i = 0; i < 20000; i++) {
    const items = Array.from({ length: Math.floor(random() * 5) }, item).join(pick([' ', ' ', ' ', '  ', '']));
    const header = `${pick(['sig1', 'sig-b21', 'Sig', '*x'])}=${pick(['(', '(', ' ('])}${items})${params()}${pick(['', '', '', ', sig2=()', ' '])}`;
    const fast = readCanonicalInput(header);
    let general: ReturnType<typeof parseDictionary> | undefined;
    try { general = parseDictionary(header); } catch { general = undefined; }
    if (!fast) continue;
    canonical++;
    assert.ok(general, `the general parser refuses what the canonical reader read: ${header}`);
    assert.is(general!.size, 1, header);
    const [label, member] = [...general!][0]!;
    assert.ok(isInnerList(member), header);
    assert.is(fast.label, label, header);
    assert.equal(fast.items, member[0].map(([name, itemParams]) => [name, itemParams]), header);
    assert.equal(fast.params, member[1], header);
    assert.is(fast.serialized, serializeInnerList(member), header);
  }
  assert.ok(canonical > 300, `only ${canonical} of the cases were canonical`);
});

test('a signer writes Signature-Input as RFC 8941 serialises it, whatever its parameter values hold', () => {
  const { privateKey } = keyPair('ecdsa-p256-sha256');
  for (const nonce of ['abc', 'a b', 'quote"d', 'back\\slash', '']) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const out = sign({ method: 'POST', targetUri: 'https://hub.example/v1/query/x', headers }, {
      key: privateKey, keyId: `key "${nonce}"`, alg: 'ecdsa-p256-sha256', components: ['@method', 'content-type'], nonce, created: 1_700_000_000,
    });
    const member = parseDictionary(out['signature-input']).get('sig1')!;
    assert.ok(isInnerList(member));
    assert.is(out['signature-input'], `sig1=${serializeInnerList(member)}`, nonce);
    assert.is(member[1].get('nonce'), nonce);
  }
});

test('Signature and Content-Digest in canonical form are read as the general parser reads them', () => {
  const body = Buffer.from('{"keys":{"declarationNo":"AA12345678"}}');
  const digest = contentDigest(body);
  assert.ok(checkContentDigest(digest, body));
  assert.not.ok(checkContentDigest(digest, Buffer.from('other')));
  const sha512 = `sha-512=:${createHash('sha512').update(body).digest('base64')}:`;
  assert.ok(checkContentDigest(sha512, body));
  assert.ok(checkContentDigest(`${digest}, ${sha512}`, body), 'two members: the general parser checks both');
  assert.not.ok(checkContentDigest(`${digest}, sha-512=:${createHash('sha512').update('other').digest('base64')}:`, body));
  assert.not.ok(checkContentDigest('md5=:AAAA:', body), 'an unknown algorithm alone checks nothing');
});

test.run();
