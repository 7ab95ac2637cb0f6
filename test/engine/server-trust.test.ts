// A partner's HTTPS server whose certificate another CA issued (a commercial CA, a national PKI), called as deliveries
// and the connection test call it: refused under the hub's CA alone with an error that names the TLS failure; reached
// with the partner's CA as tls.serverCa and with the right pin; refused with a wrong pin. The setting is checked when
// it is registered (PEM, CA certificate, pin form). Judged over real TLS servers, openssl making the foreign CA.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import type { Server } from 'node:https';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, postHttps } from '../../engine/http.ts';
import { initPki, loadPki } from '../../engine/pki/index.ts';
import { probeHttps } from '../../engine/probe.ts';
import { describeTransportFailure, PartnerAgents, serverTrust, type ServerTrust } from '../../engine/server-trust.ts';
import { foreignServerCertificate, type ForeignServer } from '../helpers/foreign-ca.ts';
import { tempDir } from '../helpers/hub.ts';

let hub: { key: string; cert: string; ca: string[] };
let foreign: ForeignServer;
let server: Server;
let url: string;
let agents: PartnerAgents;
let requests = 0;

const trust = (setting: Record<string, unknown>): ServerTrust => serverTrust.parse(setting);
const post = (setting: ServerTrust | undefined) => postHttps(url, { agent: agents.for('PARTNER', setting), headers: { 'content-length': '2' } }, Buffer.from('{}'), 1024);
const failure = (setting: ServerTrust | undefined): Promise<string> => post(setting).then(
  (answer) => { throw new Error(`the handshake was not refused: HTTP ${answer.status}`); },
  (error: Error) => describeTransportFailure(error),
);

test.before(async () => {
  const dir = tempDir('server-trust');
  await initPki(join(dir, 'hub'), { agencies: [], alg: 'rsa' });
  const pki = await loadPki(join(dir, 'hub'));
  hub = { key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: [pki.ca.certPem] };
  foreign = foreignServerCertificate(join(dir, 'partner'));
  server = createServer({ key: foreign.keyPem, cert: foreign.certPem }, (req, res) => {
    requests++;
    req.resume().on('end', () => res.end('ok'));
  });
  url = `https://localhost:${await listen(server, 0, '127.0.0.1')}/msh`;
  agents = new PartnerAgents(hub, 4);
});

test.after(async () => {
  agents?.close();
  if (server) await close(server);
});

test('under the hub\'s CA alone, a server of another CA is refused before any request, and the error says it is the TLS trust', async () => {
  const detail = await failure(undefined);
  assert.match(detail, /^TLS handshake refused, the server certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY): /);
  assert.match(detail, /tls\.serverCa/);
  // Node's bundled roots do not hold a private CA either.
  assert.match(await failure(trust({ systemCa: true })), /not trusted/);
  assert.is(requests, 0);
});

test('with the partner\'s CA as tls.serverCa the request is made; the hub\'s CA is then not trusted at that endpoint', async () => {
  const answer = await post(trust({ serverCa: foreign.caPem }));
  assert.is(answer.status, 200);
  assert.is(answer.body.toString(), 'ok');
  assert.is(requests, 1);
  const probe = await probeHttps(url, hub, trust({ serverCa: foreign.caPem }));
  assert.ok(probe.ok, probe.detail);
  assert.match(probe.detail, /CN=msh\.partner\.test/);
  const refused = await probeHttps(url, hub, undefined);
  assert.not.ok(refused.ok);
  assert.match(refused.detail, /TLS handshake refused, the server certificate is not trusted/);
});

test('a pin of the server certificate: the right one passes (written as openssl prints it), a wrong one is refused naming the fingerprint', async () => {
  const fingerprint = new X509Certificate(foreign.certPem).fingerprint256;
  const printed = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: foreign.certPem }).toString().trim().replace(/^.*=/, '');
  assert.is(printed, fingerprint);
  assert.is((await post(trust({ serverCa: foreign.caPem, pinSha256: [printed] }))).status, 200);
  const wrong = `${'00'.repeat(31)}01`;
  const detail = await failure(trust({ serverCa: foreign.caPem, pinSha256: [wrong] }));
  assert.match(detail, /ERR_TLS_CERT_PIN_MISMATCH/);
  assert.ok(detail.includes(fingerprint.replace(/:/g, '').toLowerCase()), detail);
  const probe = await probeHttps(url, hub, trust({ serverCa: foreign.caPem, pinSha256: [wrong] }));
  assert.not.ok(probe.ok);
  assert.match(probe.detail, /is not one of the endpoint's tls\.pinSha256/);
  // A pin does not stand in for the chain: the certificate must still chain to a trusted CA.
  assert.match(await failure(trust({ pinSha256: [printed] })), /not trusted/);
});

test('the setting is checked as registered: a PEM that parses, CA certificates only, pins of SHA-256 form', () => {
  const refusal = (setting: Record<string, unknown>) => {
    const parsed = serverTrust.safeParse(setting);
    assert.not.ok(parsed.success, JSON.stringify(setting).slice(0, 80));
    return parsed.error!.issues[0]!.message;
  };
  assert.match(refusal({ serverCa: 'not a certificate' }), /serverCa holds no PEM certificate/);
  assert.match(refusal({ serverCa: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' }), /serverCa certificate 1 does not parse/);
  assert.match(refusal({ serverCa: `${foreign.caPem}${foreign.certPem}` }), /serverCa certificate 2 \(CN=msh\.partner\.test\) is not a CA certificate/);
  assert.match(refusal({ pinSha256: ['abc'] }), /SHA-256 fingerprint/);
  assert.match(refusal({ serverCa: foreign.caPem, verify: false }), /Unrecognized key/);
  assert.equal(trust({ pinSha256: [new X509Certificate(foreign.certPem).fingerprint256] }).pinSha256, [new X509Certificate(foreign.certPem).fingerprint256.replace(/:/g, '').toLowerCase()]);
  assert.equal(trust({ serverCa: `${hub.ca[0]}${foreign.caPem}` }).systemCa, false);
});

test.run();
