// A hub as agencies see it: signed messages in over mutual TLS, delivered to the receiver with a signed receipt,
// every step evidenced; every kind of bad input refused with its own code and an evidence record.
import { request } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { contentDigest } from '../../engine/httpsig.ts';
import { initPki, issueAgency } from '../../engine/pki/index.ts';
import { AgencyClient } from '../../connectors/rest/agency.ts';
import { addAgency, addService, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let tfda: TestAgency;

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_MAX_BODY_BYTES: String(256 * 1024) } });
  customs = await addAgency(hub, 'CUSTOMS');
  boft = await addAgency(hub, 'BOFT');
  tfda = await addAgency(hub, 'TFDA');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT', 'TFDA']);
});

test.after(async () => {
  for (const agency of [customs, boft, tfda]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

const declaration = JSON.stringify({ declarationNo: 'AA/BE/13/101/0001', type: 'G1', value: 125000 });

test('a signed message reaches the receiver once, with its receipt and every stage evidenced', async () => {
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'import-declaration', contentType: 'application/json', body: Buffer.from(declaration) });
  assert.is(answer.status, 202);
  const id = String(answer.body.id);
  assert.is(answer.headers['swx-message-id'], id);
  await waitFor('the message in BOFT inbox', () => existsSync(join(boft.inboxDir, `${id}.json`)), 15_000);
  assert.is(readFileSync(join(boft.inboxDir, `${id}.bin`), 'utf8'), declaration);
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${id}.json`), 'utf8'));
  assert.is(entry.from, 'CUSTOMS');
  assert.is(entry.service, 'customs.declaration');
  const rows = await evidenceOf(hub, id, 'delivered');
  const stages = rows.map((row) => row.stage);
  for (const stage of ['received', 'verified', 'routed', 'delivered']) assert.ok(stages.includes(stage), `evidence has ${stage}: ${stages}`);
  const received = rows.find((row) => row.stage === 'received');
  assert.is(Buffer.from(received.raw, 'base64').toString('utf8'), declaration, 'received evidence keeps the raw bytes');
  const delivered = rows.find((row) => row.stage === 'delivered');
  assert.match(Buffer.from(delivered.raw, 'base64').toString('utf8'), /signature-input: sig1=/, 'delivered evidence keeps the signed receipt');
  assert.ok(rows.every((row) => /^[0-9a-f]{64}$/.test(row.record_hash) && (Number(row.chain) === 0 ? row.prev_hash === '' : /^[0-9a-f]{64}$/.test(row.prev_hash))),
    'each record is chained to the one before it');
});

test('a sender-chosen id sent twice is accepted idempotently and delivered once', async () => {
  const message = { to: 'TFDA', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from(declaration), messageId: 'CUSTOMS-2026-000001' };
  const first = await customs.client.send(message);
  const second = await customs.client.send(message);
  assert.is(first.status, 202);
  assert.is(second.status, 202);
  assert.is(second.body.duplicate, true);
  await waitFor('delivery', () => existsSync(join(tfda.inboxDir, 'CUSTOMS-2026-000001.json')), 15_000);
  const rows = await evidenceOf(hub, 'CUSTOMS-2026-000001', 'duplicate');
  assert.is(rows.filter((row) => row.stage === 'routed').length, 1);
  assert.is(rows.filter((row) => row.stage === 'duplicate').length, 1);
});

async function expectRefused(answer: { status: number; body: Record<string, unknown>; headers: Record<string, unknown> }, status: number, code: string) {
  assert.is(answer.status, status, `${code}: ${JSON.stringify(answer.body)}`);
  assert.match(String(answer.headers['content-type']), /application\/problem\+json/);
  assert.is(answer.body.code, code);
  assert.ok(typeof answer.body.detail === 'string' && answer.body.detail.length > 0);
  const id = String(answer.body.messageId);
  const rows = await evidenceOf(hub, id, 'rejected');
  const rejected = rows.find((row) => row.stage === 'rejected');
  assert.ok(rejected, `evidence of the rejection for ${code}`);
  assert.is(rejected.code, code);
  assert.ok(rows.some((row) => row.stage === 'received'), 'the raw request is evidenced too');
}

/** Sends raw bytes with the given headers and TLS identity, bypassing the client's signing. */
function rawSend(headers: Record<string, string>, body: Buffer, tls: { cert?: string; key?: string; ca: string }) {
  return new Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request(`https://localhost:${hub.agencyPort}/v1/messages`, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const message = (to = 'BOFT', service = 'customs.declaration') => ({ to, service, contentType: 'application/json', body: Buffer.from(declaration) });

test('no client certificate: 401 SWX_AUTH_REQUIRED', async () => {
  const headers = customs.client.signedHeaders(message());
  await expectRefused(await rawSend(headers, Buffer.from(declaration), { ca: customs.credentials.caPem }), 401, 'SWX_AUTH_REQUIRED');
});

test('a certificate from another CA, or one not registered: 401 SWX_AUTH_UNKNOWN_CERT', async () => {
  const stranger = tempDir('stranger');
  await initPki(stranger, { agencies: ['BOFT'] });
  const other = await issueAgency(stranger, 'BOFT');
  const foreign = new AgencyClient(`https://localhost:${hub.agencyPort}`, { certPem: other.certPem, keyPem: other.keyPem, caPem: customs.credentials.caPem });
  await expectRefused(await foreign.send(message('TFDA')), 401, 'SWX_AUTH_UNKNOWN_CERT');
  foreign.close();
});

test('missing signature: 401 SWX_SIG_MISSING', async () => {
  const headers = customs.client.signedHeaders(message());
  delete headers.signature;
  delete headers['signature-input'];
  await expectRefused(await rawSend(headers, Buffer.from(declaration), { cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem }), 401, 'SWX_SIG_MISSING');
});

test('a signature over other header values: 401 SWX_SIG_INVALID', async () => {
  const headers = customs.client.signedHeaders(message());
  headers['swx-to'] = 'TFDA';
  await expectRefused(await rawSend(headers, Buffer.from(declaration), { cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem }), 401, 'SWX_SIG_INVALID');
});

test("signed with another agency's key over this agency's connection: 401 SWX_SIG_KEY_MISMATCH", async () => {
  const headers = tfda.client.signedHeaders(message());
  await expectRefused(await rawSend(headers, Buffer.from(declaration), { cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem }), 401, 'SWX_SIG_KEY_MISMATCH');
});

test('a body that does not match its signed Content-Digest: 400 SWX_DIGEST_MISMATCH', async () => {
  const headers = customs.client.signedHeaders(message());
  const tampered = Buffer.from(declaration.replace('125000', '1'));
  assert.is.not(contentDigest(tampered), headers['content-digest']);
  await expectRefused(await rawSend(headers, tampered, { cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem }), 400, 'SWX_DIGEST_MISMATCH');
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

test('a body declared JSON that is not: 400 SWX_BAD_REQUEST', async () => {
  await expectRefused(await customs.client.send({ ...message(), body: Buffer.from('{"declarationNo": ') }), 400, 'SWX_BAD_REQUEST');
});

test('after all that the hub still serves, and the operator API refuses malformed JSON with a problem', async () => {
  const health = await hub.admin('GET', '/healthz');
  assert.is(health.status, 200);
  const response = await fetch(`http://127.0.0.1:${hub.opsPort}/api/partners/XYZ`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name": ' });
  assert.is(response.status, 400);
  assert.is((await response.json()).code, 'SWX_BAD_REQUEST');
  const answer = await customs.client.send(message('TFDA'));
  assert.is(answer.status, 202);
});

test('metrics count messages by stage and outcome', async () => {
  const text = await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`).then((r) => r.text());
  assert.match(text, /swx_messages_total\{stage="received",outcome="accepted",code=""\} \d+/);
  assert.match(text, /swx_messages_total\{stage="received",outcome="rejected",code="SWX_ACL_DENIED"\} 1/);
  assert.match(text, /swx_delivery_latency_seconds_bucket/);
});

test.run();
