// The agency toolkit's servers when the code behind them fails: a REST provider whose answer throws (synchronously
// or not) and a receiver that cannot keep a message each answer that request with a signed error, and keep serving.
// The hub's side is played by raw requests signed with the hub's key, as the hub's outbound connector signs them.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { algorithmFor, checkContentDigest, contentDigest, sign, verify } from '../../engine/httpsig.ts';
import { initPki, issueAgency, loadPki, thumbprint, type Credential } from '../../engine/pki/index.ts';
import { startAgencyReceiver, startRestProvider, type AgencyReceiver, type RestProvider } from '../../connectors/rest/agency.ts';
import { envelopeHeaders, providerRequestComponents, receiptComponents, requestComponents } from '../../connectors/rest/contract.ts';
import { tempDir } from '../helpers/hub.ts';

const dir = tempDir('rest-agency');
const pkiDir = join(dir, 'pki');
let pki: Awaited<ReturnType<typeof loadPki>>;
let agency: Credential;
let provider: RestProvider;
let receiver: AgencyReceiver;
const inboxDir = join(dir, 'inbox');
let calls = 0;

test.before(async () => {
  await initPki(pkiDir, { agencies: ['NIA'], alg: 'ecdsa' });
  pki = await loadPki(pkiDir);
  agency = await issueAgency(pkiDir, 'NIA');
  const credentials = { certPem: agency.certPem, keyPem: agency.keyPem, caPem: pki.ca.certPem, hubSignCertPem: pki.hubSign.certPem };
  provider = await startRestProvider({
    ...credentials, port: 0,
    answer(_dataset, keys) {
      calls++;
      if (keys.passportNo === 'SYNC') throw new RangeError('a synchronous throw in the provider\'s code');
      if (keys.passportNo === 'ASYNC') return Promise.reject(new Error('a rejection in the provider\'s code'));
      if (keys.passportNo === 'ODD') throw 'a thrown string'; // eslint-disable-line no-throw-literal
      return { passportNo: keys.passportNo };
    },
  });
  receiver = await startAgencyReceiver({ ...credentials, port: 0, inboxDir });
});

test.after(async () => {
  await provider?.close();
  await receiver?.close();
});

/** A POST as the hub makes it: signed with the hub's key over `components`, with the agency's TLS trust. */
function hubPost(port: number, path: string, headers: Record<string, string>, components: string[], body: Buffer) {
  const url = `https://localhost:${port}${path}`;
  const key = createPrivateKey(pki.hubSign.keyPem);
  const alg = algorithmFor(new X509Certificate(pki.hubSign.certPem).publicKey)!;
  const all = { 'content-type': 'application/json', 'content-digest': contentDigest(body), ...headers };
  Object.assign(all, sign({ method: 'POST', targetUri: url, headers: all }, { key, alg, keyId: pki.hubSign.thumbprint, components }));
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
    const req = request(url, {
      method: 'POST', headers: { ...all, 'content-length': String(body.length) },
      cert: pki.hubTls.certPem, key: pki.hubTls.keyPem, ca: pki.ca.certPem,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The answer is signed by the agency over status, content type, digest and the id it names. */
function assertSignedByAgency(answer: { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }, id: string): void {
  const agencyKey = new X509Certificate(agency.certPem).publicKey;
  const verified = verify({ status: answer.status, headers: answer.headers }, {
    required: receiptComponents,
    maxSkewSeconds: 60,
    key: (keyId, declared) => (keyId === thumbprint(agency.certPem) ? { key: agencyKey, alg: algorithmFor(agencyKey, declared)! } : undefined),
  });
  assert.is(verified.keyId, thumbprint(agency.certPem));
  assert.is(answer.headers[envelopeHeaders.messageId], id);
  assert.ok(checkContentDigest(String(answer.headers['content-digest']), answer.body));
}

const query = (id: string, passportNo: string) => hubPost(provider.port, '/query',
  { [envelopeHeaders.messageId]: id, 'swx-from': 'CUSTOMS' }, providerRequestComponents,
  Buffer.from(JSON.stringify({ queryId: id, dataset: 'inbound-passenger', asker: 'CUSTOMS', keys: { passportNo, arrivalDate: '2026-11-27' } })));

test('a REST provider whose answer throws synchronously, rejects, or throws a non-Error answers a signed 500, and keeps answering', async () => {
  for (const [passportNo, text] of [['SYNC', /synchronous throw/], ['ASYNC', /rejection/], ['ODD', /a thrown string/]] as const) {
    const id = `q-${passportNo}`;
    const answer = await query(id, passportNo);
    assert.is(answer.status, 500, answer.body.toString());
    assertSignedByAgency(answer, id);
    assert.match(JSON.parse(answer.body.toString()).error, text);
  }
  const ok = await query('q-ok', 'A1234567');
  assert.is(ok.status, 200);
  assertSignedByAgency(ok, 'q-ok');
  assert.equal(JSON.parse(ok.body.toString()), { found: true, record: { passportNo: 'A1234567' } });
  assert.is(calls, 4);
});

test('a receiver that cannot keep a message answers a signed 500 for it, and keeps the next one', async () => {
  const deliver = (id: string) => {
    const headers = { [envelopeHeaders.messageId]: id, 'swx-to': 'NIA', 'swx-service': 'customs.declaration', 'swx-from': 'CUSTOMS' };
    return hubPost(receiver.port, '/inbox', headers, requestComponents(headers), Buffer.from('{"declarationNo":"AA/BE/13/101/00001"}'));
  };
  rmSync(inboxDir, { recursive: true, force: true });
  const failed = await deliver('m-lost-folder');
  assert.is(failed.status, 500, failed.body.toString());
  assertSignedByAgency(failed, 'm-lost-folder');
  assert.match(JSON.parse(failed.body.toString()).error, /^the receiver failed: .*ENOENT/);
  mkdirSync(inboxDir, { recursive: true });
  const kept = await deliver('m-kept');
  assert.is(kept.status, 200, kept.body.toString());
  assertSignedByAgency(kept, 'm-kept');
});

test.run();
