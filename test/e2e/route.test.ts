// A hub as agencies see it: signed messages in over mutual TLS, delivered to the receiver with a signed receipt,
// every step evidenced; every kind of bad input refused with its own code and an evidence record.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Agent } from 'node:https';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { contentDigest } from '../../engine/httpsig.ts';
import { initPki, issueAgency } from '../../engine/pki/index.ts';
import { AgencyClient, type ReceivedAnswer } from '../../connectors/rest/agency.ts';
import { signXml } from '../../engine/trust/xmldsig.ts';
import { addAgency, addService, assertChained, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { rawPost, type RawTls } from '../helpers/raw.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let tfda: TestAgency;

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_MAX_BODY_BYTES: String(256 * 1024), SWX_MAX_STREAMED_BODY_BYTES: String(256 * 1024), SWX_INLINE_PAYLOAD_BYTES: String(16 * 1024) } });
  customs = await addAgency(hub, 'CUSTOMS');
  boft = await addAgency(hub, 'BOFT');
  tfda = await addAgency(hub, 'TFDA');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT', 'TFDA']);
});

test.after(async () => {
  for (const agency of [customs, boft, tfda]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

const declaration = JSON.stringify({ declarationNo: 'AA/BE/13/101/00001', type: 'G1', value: 125000 });

test('a signed message reaches the receiver once, with its receipt and every stage evidenced', async () => {
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'import-declaration', contentType: 'application/json', body: Buffer.from(declaration) });
  assert.is(answer.status, 202);
  const id = String(answer.body.id);
  assert.is(answer.headers['swx-message-id'], id);
  assert.ok(answer.signed, 'the 202 is the hub\'s signed receipt, checked against the hub signing certificate');
  assert.throws(() => customs.client.checkReceipt({ ...answer, text: answer.text.replace(id, `${id}x`) }), /Content-Digest/);
  assert.throws(() => customs.client.checkReceipt(answer, 'ANOTHER-MESSAGE'), /not this one/);
  await waitFor('the message in BOFT inbox', () => existsSync(join(boft.inboxDir, `${id}.json`)), 15_000);
  assert.is(readFileSync(join(boft.inboxDir, `${id}.bin`), 'utf8'), declaration);
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assert.is(entry.from, 'CUSTOMS');
  assert.is(entry.service, 'customs.declaration');
  const rows = await evidenceOf(hub, id, ['received', 'verified', 'routed', 'delivered']);
  const stages = rows.map((row) => row.stage);
  for (const stage of ['received', 'verified', 'routed', 'delivered']) assert.ok(stages.includes(stage), `evidence has ${stage}: ${stages}`);
  const received = rows.find((row) => row.stage === 'received');
  assert.is(Buffer.from(received.raw, 'base64').toString('utf8'), declaration, 'received evidence keeps the raw bytes');
  const delivered = rows.find((row) => row.stage === 'delivered');
  assert.match(Buffer.from(delivered.raw, 'base64').toString('utf8'), /signature-input: sig1=/, 'delivered evidence keeps the signed receipt');
  const chained = await assertChained(hub);
  assert.ok(rows.every((row) => chained.some((record) => record.message_id === row.message_id && record.stage === row.stage)), 'the message\'s records are in the chain');
});

test('a sender-chosen id sent twice is accepted idempotently and delivered once', async () => {
  const message = { to: 'TFDA', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from(declaration), messageId: 'CUSTOMS-2026-000001' };
  const first = await customs.client.send(message);
  const second = await customs.client.send(message);
  assert.is(first.status, 202);
  assert.is(second.status, 202);
  assert.is(second.body.duplicate, true);
  await waitFor('delivery', () => existsSync(join(tfda.inboxDir, 'CUSTOMS-2026-000001.json')), 15_000);
  const rows = await evidenceOf(hub, 'CUSTOMS-2026-000001', ['routed', 'duplicate']);
  assert.is(rows.filter((row) => row.stage === 'routed').length, 1);
  assert.is(rows.filter((row) => row.stage === 'duplicate').length, 1);
});

test('a payload over the inline limit travels through the Object Store and arrives intact', async () => {
  const big = Buffer.alloc(200 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) % 256;
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/octet-stream', body: big });
  assert.is(answer.status, 202);
  const id = String(answer.body.id);
  await waitFor('the large message in BOFT inbox', () => existsSync(join(boft.inboxDir, `${id}.json`)), 15_000);
  assert.ok(readFileSync(join(boft.inboxDir, `${id}.bin`)).equals(big));
  const received = (await evidenceOf(hub, id, ['received', 'delivered'])).find((row) => row.stage === 'received');
  assert.is(received.raw, '', 'not inline in the evidence row');
  // Streamed in as it arrived (application/octet-stream needs no parsing), under an upload name, its digest in the row.
  assert.match(received.raw_ref, /^swx_payloads\/upload-[0-9a-f-]{36}$/);
  assert.is(received.sha256, createHash('sha256').update(big).digest('hex'));
});

async function expectRefused(answer: ReceivedAnswer, status: number, code: string) {
  assert.is(answer.status, status, `${code}: ${JSON.stringify(answer.body)}`);
  assert.match(String(answer.headers['content-type']), /application\/problem\+json/);
  assert.is(answer.body.code, code);
  // The refusal is the hub's signed word too, naming the id it was evidenced under.
  assert.ok(customs.client.checkReceipt(answer), `${code}: the refusal carries the hub's signature`);
  assert.ok(typeof answer.body.detail === 'string' && answer.body.detail.length > 0);
  const id = String(answer.body.messageId);
  const rows = await evidenceOf(hub, id, 'rejected');
  const rejected = rows.find((row) => row.stage === 'rejected');
  assert.ok(rejected, `evidence of the rejection for ${code}`);
  assert.is(rejected.code, code);
  assert.ok(rows.some((row) => row.stage === 'received'), 'the raw request is evidenced too');
}

/**
 * A refusal before authentication: signed like any other, naming the count of such refusals from this address in this
 * minute that it joins, not evidence of its own (test/e2e/unauthenticated.test.ts reads those counts).
 */
function expectCounted(answer: ReceivedAnswer, code: string) {
  assert.is(answer.status, 401, `${code}: ${JSON.stringify(answer.body)}`);
  assert.is(answer.body.code, code);
  assert.ok(customs.client.checkReceipt(answer), `${code}: the refusal carries the hub's signature`);
  assert.match(String(answer.body.messageId), new RegExp(`^refused:\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:${code}:127\\.0\\.0\\.1$`));
}

const rawSend = (headers: Record<string, string>, body: Buffer, tls: RawTls & { chunked?: boolean }) =>
  rawPost(`https://localhost:${hub.agencyPort}/v1/messages`, headers, body, tls);

const customsTls = () => ({ cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem });

const message = (to = 'BOFT', service = 'customs.declaration') => ({ to, service, contentType: 'application/json', body: Buffer.from(declaration) });

test('no client certificate: 401 SWX_AUTH_REQUIRED', async () => {
  const headers = customs.client.signedHeaders(message());
  expectCounted(await rawSend(headers, Buffer.from(declaration), { ca: customs.credentials.caPem }), 'SWX_AUTH_REQUIRED');
});

test('a certificate from another CA, or one not registered: 401 SWX_AUTH_UNKNOWN_CERT', async () => {
  const stranger = tempDir('stranger');
  await initPki(stranger, { agencies: ['BOFT'] });
  const other = await issueAgency(stranger, 'BOFT');
  const foreign = new AgencyClient(`https://localhost:${hub.agencyPort}`, { certPem: other.certPem, keyPem: other.keyPem, caPem: customs.credentials.caPem });
  expectCounted(await foreign.send(message('TFDA')), 'SWX_AUTH_UNKNOWN_CERT');
  foreign.close();
});

test('missing signature: 401 SWX_SIG_MISSING', async () => {
  const headers = customs.client.signedHeaders(message());
  delete headers.signature;
  delete headers['signature-input'];
  await expectRefused(await rawSend(headers, Buffer.from(declaration), customsTls()), 401, 'SWX_SIG_MISSING');
});

test('a signature over other header values: 401 SWX_SIG_INVALID', async () => {
  const headers = customs.client.signedHeaders(message());
  headers['swx-to'] = 'TFDA';
  await expectRefused(await rawSend(headers, Buffer.from(declaration), customsTls()), 401, 'SWX_SIG_INVALID');
});

test('a Swx-* header added after signing: 401 SWX_SIG_INVALID (the signature must cover every Swx-* header present)', async () => {
  for (const [name, value] of [['swx-message-id', 'INJECTED-0001'], ['swx-action', 'cancel-declaration']] as const) {
    const headers = customs.client.signedHeaders(message());
    headers[name] = value;
    const answer = await rawSend(headers, Buffer.from(declaration), customsTls());
    await expectRefused(answer, 401, 'SWX_SIG_INVALID');
    assert.match(String(answer.body.detail), new RegExp(`does not cover required component ${name}`));
    if (name === 'swx-message-id') assert.is.not(answer.body.messageId, value, 'an unauthenticated id never names evidence');
  }
});

test('a malformed envelope header: 400 SWX_BAD_REQUEST naming the header', async () => {
  const cases: [string, string][] = [
    ['swx-action', 'import-d\xe9claration'],
    ['swx-conversation-id', 'c'.repeat(300)],
    ['swx-message-id', 'has space'],
    ['swx-ref-to', 'x/y'],
    ['swx-to', 'boft'],
    ['swx-service', 'Customs Declaration'],
    ['content-type', `application/${'x'.repeat(200)}`],
  ];
  for (const [name, value] of cases) {
    const headers = customs.client.signedHeaders(message());
    headers[name] = value;
    const answer = await rawSend(headers, Buffer.from(declaration), customsTls());
    await expectRefused(answer, 400, 'SWX_BAD_REQUEST');
    assert.match(String(answer.body.detail), new RegExp(`^header ${name} must be`), name);
  }
});

test('disabling a partner takes effect on its open keep-alive connection: 401 SWX_AUTH_UNKNOWN_CERT', async () => {
  const nta = await addAgency(hub, 'NTA', { receiver: false });
  await addService(hub, 'nta.notice', ['NTA'], ['BOFT']);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, cert: nta.credentials.certPem, key: nta.credentials.keyPem, ca: nta.credentials.caPem });
  const send = () => {
    const body = Buffer.from('{"notice":1}');
    return rawSend(nta.client.signedHeaders({ to: 'BOFT', service: 'nta.notice', contentType: 'application/json', body }), body, { agent });
  };
  try {
    assert.is((await send()).status, 202);
    const disabled = await hub.admin('PUT', '/api/partners/NTA', { name: 'NTA', certificates: [nta.credential.certPem], enabled: false });
    assert.is(disabled.status, 200);
    const refused = await send();
    assert.ok(refused.reused, 'the second request went over the same TLS connection');
    expectCounted(refused, 'SWX_AUTH_UNKNOWN_CERT');
  } finally {
    agent.destroy();
    nta.client.close();
  }
});

test('an agency certificate outside its validity period: 401 SWX_CERT_EXPIRED', async () => {
  const day = 24 * 3600 * 1000;
  const old = await issueAgency(join(hub.dataDir, 'pki'), 'OLD-AGENCY', { notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) });
  const registered = await hub.admin('PUT', '/api/partners/OLD-AGENCY', { name: 'Expired', certificates: [old.certPem] });
  assert.is(registered.status, 200);
  const client = new AgencyClient(`https://localhost:${hub.agencyPort}`, { certPem: old.certPem, keyPem: old.keyPem, caPem: customs.credentials.caPem });
  try {
    const answer = await client.send(message());
    await expectRefused(answer, 401, 'SWX_CERT_EXPIRED');
    assert.match(String(answer.body.detail), /OLD-AGENCY/);
  } finally {
    client.close();
  }
});

test("signed with another agency's key over this agency's connection: 401 SWX_SIG_KEY_MISMATCH", async () => {
  const headers = tfda.client.signedHeaders(message());
  await expectRefused(await rawSend(headers, Buffer.from(declaration), customsTls()), 401, 'SWX_SIG_KEY_MISMATCH');
});

test('a body that does not match its signed Content-Digest: 400 SWX_DIGEST_MISMATCH', async () => {
  const headers = customs.client.signedHeaders(message());
  const tampered = Buffer.from(declaration.replace('125000', '1'));
  assert.is.not(contentDigest(tampered), headers['content-digest']);
  await expectRefused(await rawSend(headers, tampered, customsTls()), 400, 'SWX_DIGEST_MISMATCH');
});

test('a service the sender may not use: 403 SWX_ACL_DENIED', async () => {
  await expectRefused(await boft.client.send(message('TFDA')), 403, 'SWX_ACL_DENIED');
});

test('an unknown receiver: 404 SWX_UNKNOWN_RECEIVER; an unknown service: 404 SWX_UNKNOWN_SERVICE', async () => {
  await expectRefused(await customs.client.send(message('NOBODY')), 404, 'SWX_UNKNOWN_RECEIVER');
  await expectRefused(await customs.client.send(message('BOFT', 'no.such-service')), 404, 'SWX_UNKNOWN_SERVICE');
});

test('an oversized body: 413 SWX_TOO_LARGE', async () => {
  const big = Buffer.alloc(300 * 1024, 0x41);
  await expectRefused(await customs.client.send({ to: 'BOFT', service: 'customs.declaration', body: big }), 413, 'SWX_TOO_LARGE');
});

test('an oversized chunked body (no Content-Length): the 413 SWX_TOO_LARGE reply, then the connection closes', async () => {
  const big = Buffer.alloc(300 * 1024, 0x41);
  const headers = customs.client.signedHeaders({ to: 'BOFT', service: 'customs.declaration', body: big });
  const answer = await rawSend(headers, big, { ...customsTls(), chunked: true });
  assert.is(answer.headers['connection'], 'close');
  await expectRefused(answer, 413, 'SWX_TOO_LARGE');
});

test('a body declared JSON that is not: 400 SWX_BAD_REQUEST', async () => {
  await expectRefused(await customs.client.send({ ...message(), body: Buffer.from('{"declarationNo": ') }), 400, 'SWX_BAD_REQUEST');
});

test('the operator API wants its token, JSON bodies and one of its own names as Host; health and metrics stay open', async () => {
  const api = `http://127.0.0.1:${hub.opsPort}/api/partners`;
  for (const authorization of [undefined, 'Bearer wrong-token-wrong-token-wrong-token-wrong', `Basic ${await hub.token()}`]) {
    const response = await fetch(api, { headers: authorization ? { authorization } : {} });
    assert.is(response.status, 401, String(authorization));
    assert.is((await response.json()).code, 'SWX_OPS_UNAUTHORIZED');
    assert.match(String(response.headers.get('www-authenticate')), /^Bearer/);
  }
  const authorization = `Bearer ${await hub.token()}`;
  assert.is((await fetch(api, { headers: { authorization } })).status, 200);
  const plain = await fetch(`${api}/CSRF`, { method: 'PUT', headers: { authorization, 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'x', certificates: [customs.credential.certPem] }) });
  assert.is(plain.status, 400);
  assert.match((await plain.json()).detail, /application\/json/);
  assert.is((await hub.admin('GET', '/api/partners/CSRF')).status, 404, 'the text/plain PUT changed nothing');
  // fetch will not set Host; a DNS-rebinding page would send its own name.
  const withHost = (host: string) => new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: hub.opsPort, path: '/api/partners', headers: { host: `${host}:${hub.opsPort}`, authorization } }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
  const rebound = await withHost('evil.example');
  assert.is(rebound.status, 400);
  assert.match(rebound.body.detail, /^Host/);
  assert.is((await withHost('localhost')).status, 200);
  for (const open of ['/healthz', '/readyz', '/metrics']) assert.is((await fetch(`http://127.0.0.1:${hub.opsPort}${open}`)).status, 200, open);
});

test('after all that the hub still serves, and the operator API refuses malformed JSON with a problem', async () => {
  const health = await hub.admin('GET', '/healthz');
  assert.is(health.status, 200);
  const response = await fetch(`http://127.0.0.1:${hub.opsPort}/api/partners/XYZ`, {
    method: 'PUT', headers: { authorization: `Bearer ${await hub.token()}`, 'content-type': 'application/json' }, body: '{"name": ',
  });
  assert.is(response.status, 400);
  assert.is((await response.json()).code, 'SWX_BAD_REQUEST');
  const answer = await customs.client.send(message('TFDA'));
  assert.is(answer.status, 202);
});

test('evidence is listed by a stage the hub knows; any other stage is 400 SWX_BAD_REQUEST', async () => {
  const delivered = await hub.admin('GET', '/api/evidence?stage=delivered');
  assert.is(delivered.status, 200);
  assert.ok(delivered.body.length > 0 && delivered.body.every((row: any) => row.stage === 'delivered'));
  assert.is((await hub.admin('GET', '/api/evidence?stage=redelivered')).status, 200);
  const unknown = await hub.admin('GET', '/api/evidence?stage=delivered%27%20OR%201%3D1');
  assert.is(unknown.status, 400);
  assert.is(unknown.body.code, 'SWX_BAD_REQUEST');
});

test('metrics count messages by stage and outcome', async () => {
  const text = await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`).then((r) => r.text());
  assert.match(text, /swx_messages_total\{stage="received",outcome="accepted",code=""\} \d+/);
  assert.match(text, /swx_messages_total\{stage="received",outcome="rejected",code="SWX_ACL_DENIED"\} 1/);
  assert.match(text, /swx_delivery_latency_seconds_bucket/);
});

test('a certificate registered to one partner cannot be registered to another', async () => {
  const answer = await hub.admin('PUT', '/api/partners/IMPOSTOR', { name: 'impostor', certificates: [customs.credential.certPem] });
  assert.is(answer.status, 400);
  assert.is(answer.body.code, 'SWX_BAD_REQUEST');
  assert.match(answer.body.detail, /registered to CUSTOMS/);
});

// Signed payloads: the verify stage also checks a CMS or XMLDSig signature inside the body, judged here against what
// openssl signs (CMS) and what swx's signer makes (XML, itself checked against xmlsec1 in the trust tests).
function opensslCms(signer: TestAgency, content: Buffer): Buffer {
  const dir = tempDir('cms');
  const [input, cert, key] = [join(dir, 'in.json'), join(dir, 'cert.pem'), join(dir, 'key.pem')];
  writeFileSync(input, content);
  writeFileSync(cert, signer.credentials.certPem);
  writeFileSync(key, signer.credentials.keyPem);
  const run = spawnSync('openssl', ['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-in', input, '-signer', cert, '-inkey', key, '-md', 'sha256'], { maxBuffer: 1 << 24 });
  assert.is(run.status, 0, String(run.stderr));
  return run.stdout;
}

const signedDeclaration = (signer: TestAgency) => signXml('<Declaration xmlns="urn:example:customs"><No>AA/BE/13/101/00009</No><Value>125000</Value></Declaration>', {
  keyPem: signer.credentials.keyPem, certPem: signer.credentials.certPem,
});

test('signed payloads: a CMS file and an XMLDSig document signed by the sender are delivered, the verified evidence names their signature', async () => {
  for (const [contentType, body, scheme] of [
    ['application/pkcs7-mime', opensslCms(customs, Buffer.from(declaration)), 'cms'],
    ['application/xml', Buffer.from(await signedDeclaration(customs)), 'xmldsig'],
  ] as const) {
    const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', contentType, body });
    assert.is(answer.status, 202, JSON.stringify(answer.body));
    const id = String(answer.body.id);
    const verified = (await evidenceOf(hub, id, ['verified', 'delivered'])).find((row) => row.stage === 'verified');
    const info = JSON.parse(verified.signature);
    assert.is(info.scheme, scheme);
    assert.is(info.certThumbprint, customs.credential.thumbprint);
  }
});

test('signed payloads refused with their own code and evidence: tampered, another agency\'s signature, a signature over part of the document', async () => {
  const cms = opensslCms(customs, Buffer.from(declaration));
  const tampered = Buffer.from(cms);
  const at = tampered.indexOf(Buffer.from('AA/BE'));
  tampered[at] = 'B'.charCodeAt(0);
  const xml = await signedDeclaration(customs);
  const partial = await signXml('<Declaration xmlns="urn:example:customs"><No Id="n1">AA/BE/13/101/00010</No><Value>125000</Value></Declaration>', {
    keyPem: customs.credentials.keyPem, certPem: customs.credentials.certPem, ids: ['n1'],
  });
  // An XPath filter may leave out any element, even one named Signature: not a whole-document signature.
  const filtered = await signXml('<Permit xmlns="urn:example:permits"><No>P-1</No><Approval><Signature>approved by officer Lin</Signature></Approval></Permit>', {
    keyPem: customs.credentials.keyPem, certPem: customs.credentials.certPem,
    xpathFilter: { expression: 'not(ancestor-or-self::p:Signature)', namespaces: { p: 'urn:example:permits' } },
  });
  const cases: [string, string, Buffer, number, string][] = [
    ['XML signature with an XPath filter', 'application/xml', Buffer.from(filtered.replace('officer Lin', 'nobody')), 400, 'SWX_SIG_WRAPPED'],
    ['tampered CMS content', 'application/pkcs7-mime', tampered, 400, 'SWX_DIGEST_MISMATCH'],
    ['CMS signed by BOFT, sent by CUSTOMS', 'application/pkcs7-mime', opensslCms(boft, Buffer.from(declaration)), 401, 'SWX_SIG_KEY_MISMATCH'],
    ['tampered XML', 'application/xml', Buffer.from(xml.replace('125000', '999999')), 400, 'SWX_DIGEST_MISMATCH'],
    ['XML signature over one element only', 'application/xml', Buffer.from(partial), 400, 'SWX_SIG_WRAPPED'],
  ];
  for (const [name, contentType, body, status, code] of cases) {
    const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', contentType, body });
    assert.is(answer.body.code, code, name);
    await expectRefused(answer, status, code);
  }
});

test.run();
