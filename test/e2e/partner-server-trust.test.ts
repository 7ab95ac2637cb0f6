// Deliveries to partners whose HTTPS servers another CA certified (a commercial CA, a national PKI): refused under the
// hub's own CA, the evidence naming the TLS failure, retried and dead-lettered as any refusal; delivered once the
// partner's endpoint names that CA in tls.serverCa; refused again with a wrong pin. The same trust for AS4 and for the
// connection test. A real hub process, real TLS servers, the foreign CA made by openssl.
import { createServer, type Server } from 'node:https';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen } from '../../engine/http.ts';
import { issueCertificate, loadPki } from '../../engine/pki/index.ts';
import { writeAs4Settings } from '../helpers/as4.ts';
import { foreignServerCertificate, type ForeignServer } from '../helpers/foreign-ca.ts';
import { addAgency, addService, evidenceOf, startHubProcess, tempDir, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
let customs: TestAgency;
let foreignAgency: TestAgency;
let foreign: ForeignServer;
let msh: Server;
let mshPort = 0;
const mshRequests: string[] = [];

const send = async (id: string, to: string) => {
  const answer = await customs.client.send({ to, service: 'customs.declaration', messageId: id, contentType: 'application/json', body: Buffer.from('{"declarationNo":"1"}') });
  assert.is(answer.status, 202, answer.text);
  return String(answer.body.id);
};

const registerRest = async (tls?: Record<string, unknown>) => {
  const current = (await hub.admin('GET', '/api/partners/FOREIGN')).body;
  const put = await hub.admin('PUT', '/api/partners/FOREIGN', { ...current, endpoints: { rest: { url: current.endpoints.rest.url, ...(tls ? { tls } : {}) } } });
  assert.is(put.status, 200, JSON.stringify(put.body));
};

const probe = async (partner: string) => (await hub.admin('POST', `/api/partners/${partner}/test`)).body.results[0];

test.before(async () => {
  const dir = tempDir('partner-server-trust');
  writeAs4Settings(dir, 'SWXHUB');
  hub = await startHubProcess({ dataDir: dir, env: { SWX_PKI_ALG: 'rsa', SWX_DELIVERY_MAX_ATTEMPTS: '2', SWX_DELIVERY_BACKOFF_MS: '300' } });
  foreign = foreignServerCertificate(join(dir, 'partner-pki'));
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  foreignAgency = await addAgency(hub, 'FOREIGN', { serverTls: { certPem: foreign.certPem, keyPem: foreign.keyPem } });
  // A partner MSH that asks for the hub's client certificate (its CA) and answers every request 503.
  const pki = await loadPki(join(dir, 'pki'));
  msh = createServer({ key: foreign.keyPem, cert: foreign.certPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    mshRequests.push(String(req.headers['content-type']));
    req.resume().on('end', () => { res.statusCode = 503; res.end(); });
  });
  mshPort = await listen(msh, 0, '127.0.0.1');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['FOREIGN', 'MSH']);
});

test.after(async () => {
  await foreignAgency?.receiver?.close();
  if (msh) await close(msh);
  await hub?.stop();
});

test('REST: refused under the hub\'s CA with the TLS failure in the evidence, dead-lettered as any refusal; delivered with tls.serverCa', async () => {
  const refusedId = await send('TRUST-0001', 'FOREIGN');
  const rows = await evidenceOf(hub, refusedId, ['dead_lettered'], 30_000);
  const failed = rows.filter((row) => row.stage === 'delivery_failed');
  assert.ok(failed.length >= 1, rows.map((row) => row.stage).join());
  for (const row of [...failed, ...rows.filter((r) => r.stage === 'dead_lettered')]) {
    assert.is(row.code, 'SWX_CERT_UNTRUSTED', row.detail);
    assert.match(row.detail, /TLS handshake refused, the server certificate is not trusted/);
  }
  assert.is(foreignAgency.receiver!.deliveries, 0, 'no request reached the server');
  const refusedProbe = await probe('FOREIGN');
  assert.not.ok(refusedProbe.ok);
  assert.match(refusedProbe.detail, /TLS handshake refused/);

  await registerRest({ serverCa: foreign.caPem });
  const deliveredId = await send('TRUST-0002', 'FOREIGN');
  const delivered = await evidenceOf(hub, deliveredId, ['delivered'], 30_000);
  assert.ok(delivered.some((row) => row.stage === 'delivered'), delivered.map((row) => `${row.stage} ${row.detail}`).join('\n'));
  assert.ok(existsSync(join(foreignAgency.inboxDir, `${deliveredId}.json`)));
  const trustedProbe = await probe('FOREIGN');
  assert.ok(trustedProbe.ok, trustedProbe.detail);
  assert.match(trustedProbe.detail, /CN=msh\.partner\.test/);
});

test('REST: a wrong pin is refused, naming the pin check; the registry refuses a CA setting that is not a CA', async () => {
  await registerRest({ serverCa: foreign.caPem, pinSha256: ['ab'.repeat(32)] });
  const id = await send('TRUST-0003', 'FOREIGN');
  const rows = await evidenceOf(hub, id, ['delivery_failed'], 30_000);
  const failed = rows.find((row) => row.stage === 'delivery_failed');
  assert.ok(failed, rows.map((row) => row.stage).join());
  assert.is(failed.code, 'SWX_CERT_UNTRUSTED');
  assert.match(failed.detail, /ERR_TLS_CERT_PIN_MISMATCH/);
  const probed = await probe('FOREIGN');
  assert.not.ok(probed.ok);
  assert.match(probed.detail, /tls\.pinSha256/);

  const current = (await hub.admin('GET', '/api/partners/FOREIGN')).body;
  const refused = await hub.admin('PUT', '/api/partners/FOREIGN', { ...current, endpoints: { rest: { url: current.endpoints.rest.url, tls: { serverCa: foreign.certPem } } } });
  assert.is(refused.status, 400);
  assert.match(JSON.stringify(refused.body), /endpoint rest\.tls\.serverCa: serverCa certificate 1 \(CN=msh\.partner\.test\) is not a CA certificate/);
});

test('AS4: the same trust: refused under the hub\'s CA; with tls.serverCa the message reaches the partner\'s MSH', async () => {
  const as4 = (tls?: Record<string, unknown>) => ({
    url: `https://localhost:${mshPort}/as4`, partyIds: [{ id: 'MSH' }], services: [{ service: 'customs.declaration', actions: ['deliver'] }],
    security: { sign: true, encrypt: false }, ...(tls ? { tls } : {}),
  });
  const { certPem } = await issueCertificate(join(hub.dataDir, 'pki'), 'MSH');
  const register = async (tls?: Record<string, unknown>) => {
    const put = await hub.admin('PUT', '/api/partners/MSH', { name: 'a partner MSH', certificates: [certPem], endpoints: { as4: as4(tls) } });
    assert.is(put.status, 200, JSON.stringify(put.body));
  };
  await register();
  const refusedId = await send('TRUST-AS4-1', 'MSH');
  const failed = (await evidenceOf(hub, refusedId, ['delivery_failed'], 30_000)).find((row) => row.stage === 'delivery_failed');
  assert.ok(failed);
  assert.is(failed.code, 'SWX_CERT_UNTRUSTED');
  assert.match(failed.detail, /MSH at https:\/\/localhost:\d+: TLS handshake refused/);
  assert.is(mshRequests.length, 0);
  assert.not.ok((await probe('MSH')).ok);

  await register({ serverCa: foreign.caPem });
  assert.ok((await probe('MSH')).ok);
  await send('TRUST-AS4-2', 'MSH');
  const deadline = Date.now() + 30_000;
  while (mshRequests.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(mshRequests.length > 0, 'the AS4 message reached the MSH');
  assert.match(mshRequests[0]!, /^multipart\/related/);
});

test.run();
