// Certificate validation as the hub applies it — path to an anchor, validity, key usage per purpose, revocation by the
// hub CA's CRL, by CRLs fetched from distribution points (cache, refresh, grace) and by OCSP — judged against
// `openssl verify` on the same certificates and lists, with an outside CA run by `openssl ca` and `openssl ocsp`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { metricsRegistry } from '../../engine/metrics.ts';
import { importCertificates, initPki, issueCertificate, revokeCertificate, TrustStore, type TrustSettings } from '../../engine/pki/index.ts';
import { SwxError } from '../../engine/errors.ts';
import { certificate, type ParsedCert } from '../../engine/trust/certs.ts';
import { buildPath, type Purpose } from '../../engine/trust/path.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-revocation-'));
const pki = join(root, 'pki');
const outside = join(root, 'outside');
const hour = 3_600_000;
const settings: TrustSettings = { graceSeconds: 3_600, failOpen: false, ocsp: false, maxAgeSeconds: 7_200, fetchTimeoutMs: 2_000 };

function openssl(args: string[], cwd = outside): { ok: boolean; out: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd });
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}` };
}

function must(args: string[], cwd?: string): string {
  const result = openssl(args, cwd);
  assert.ok(result.ok, `openssl ${args.join(' ')}: ${result.out}`);
  return result.out;
}

/** The clock every store under test reads: real time plus an offset the tests move forward. */
let offset = 0;
const now = () => Date.now() + offset;

/** The distribution point server: path -> body (undefined: 404); `down` makes it refuse every request. */
const served = new Map<string, Buffer>();
let down = false;
let dpServer: Server;
let dpPort = 0;
let ocspPort = 0;
const responders: ChildProcess[] = [];

const file = (name: string) => join(outside, name);
const pem = (name: string) => readFileSync(file(name), 'utf8');

/** Issues an outside leaf with `openssl ca` and the named extension section; returns its certificate file. */
function outsideLeaf(name: string, section: string): string {
  must(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-subj', `/O=Outside/CN=${name}`, '-out', `${name}.csr`]);
  must(['ca', '-batch', '-config', 'ca.cnf', '-extensions', section, '-in', `${name}.csr`, '-out', `${name}.pem`, '-notext']);
  return `${name}.pem`;
}

function publishCrl(path = '/outside.crl', hours = 1): Buffer {
  must(['ca', '-config', 'ca.cnf', '-gencrl', '-crlhours', String(hours), '-crlexts', 'crl_ext', '-out', 'crl.pem']);
  must(['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der']);
  const der = readFileSync(file('crl.der'));
  served.set(path, der);
  return der;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `openssl ocsp` as the responder for the outside CA, signing with `signer`; resolves once it listens. */
async function startResponder(signer: string, port: number): Promise<{ proc: ChildProcess; output: () => string }> {
  const proc = spawn('openssl', ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', `${signer}.pem`, '-rkey', `${signer}.key`, '-CA', 'ca.pem', '-text', '-ignore_err'], { cwd: outside });
  responders.push(proc);
  let out = '';
  proc.stdout!.on('data', (chunk) => { out += chunk; });
  proc.stderr!.on('data', (chunk) => { out += chunk; });
  const deadline = Date.now() + 10_000;
  while (!/waiting for OCSP client connections/.test(out)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`openssl ocsp did not start: ${out}`);
    await sleep(50);
  }
  return { proc, output: () => out };
}

async function refused(run: Promise<unknown>, code: string): Promise<SwxError> {
  try {
    await run;
  } catch (error) {
    assert.instance(error, SwxError);
    assert.is((error as SwxError).code, code, (error as Error).message);
    return error as SwxError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

let store: TrustStore;
const cert = (path: string) => certificate(readFileSync(path, 'utf8'));

test.before(async () => {
  dpServer = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (down) { res.socket?.destroy(); return; }
    if (!body) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(body);
  });
  dpServer.listen(0, '127.0.0.1');
  await once(dpServer, 'listening');
  dpPort = (dpServer.address() as AddressInfo).port;
  ocspPort = await freePort();

  await initPki(pki, { agencies: ['CUSTOMS', 'BOFT'], hosts: ['hub.example.test'] });
  mkdirSync(join(outside, 'newcerts'), { recursive: true });
  writeFileSync(file('index.txt'), '');
  writeFileSync(file('serial'), '1000\n');
  writeFileSync(file('crlnumber'), '1000\n');
  const dp = (path: string) => `crlDistributionPoints = URI:http://127.0.0.1:${dpPort}${path}`;
  const leaf = 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth,emailProtection';
  writeFileSync(file('ca.cnf'), [
    '[ca]', 'default_ca = outside',
    '[outside]', `dir = ${outside}`, 'database = $dir/index.txt', 'new_certs_dir = $dir/newcerts', 'serial = $dir/serial',
    'crlnumber = $dir/crlnumber', 'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'default_md = sha256',
    'policy = anything', 'unique_subject = no', 'default_days = 30',
    '[anything]', 'organizationName = optional', 'commonName = supplied',
    '[leaf_crl]', leaf, dp('/outside.crl'),
    '[leaf_evil]', leaf, dp('/evil.crl'),
    '[leaf_junk]', leaf, dp('/junk.crl'),
    '[leaf_ocsp]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth',
    `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${ocspPort}`,
    '[ocsp_signer]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = critical,OCSPSigning',
    '[odd_critical]', leaf, dp('/outside.crl'), '1.3.6.1.4.1.61000.99 = critical,ASN1:NULL',
    '[crl_ext]', 'authorityKeyIdentifier = keyid:always',
  ].join('\n'));
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  must(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/O=Outside/CN=Outside Root', '-days', '365', ...caExt]);
  // Same name, another key: its CRLs claim to be the outside CA's and must not be believed.
  mkdirSync(join(outside, 'impostor'));
  must(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'impostor/ca.key', '-out', 'impostor/ca.pem', '-subj', '/O=Outside/CN=Outside Root', '-days', '365', ...caExt]);
  for (const name of ['alpha', 'bravo']) outsideLeaf(name, 'leaf_crl');
  outsideLeaf('evil', 'leaf_evil');
  outsideLeaf('junk', 'leaf_junk');
  outsideLeaf('odd', 'odd_critical');
  for (const name of ['ocsp-good', 'ocsp-revoked']) outsideLeaf(name, 'leaf_ocsp');
  outsideLeaf('responder', 'ocsp_signer');
  must(['ca', '-config', 'ca.cnf', '-revoke', 'ocsp-revoked.pem', '-crl_reason', 'keyCompromise']);
  publishCrl();
  writeFileSync(file('impostor.cnf'), readFileSync(file('ca.cnf'), 'utf8').replace('certificate = $dir/ca.pem', 'certificate = $dir/impostor/ca.pem').replace('private_key = $dir/ca.key', 'private_key = $dir/impostor/ca.key'));
  must(['ca', '-config', 'impostor.cnf', '-gencrl', '-crlhours', '1', '-out', 'impostor-crl.pem']);
  must(['crl', '-in', 'impostor-crl.pem', '-outform', 'DER', '-out', 'evil.der']);
  served.set('/evil.crl', readFileSync(file('evil.der')));
  served.set('/junk.crl', Buffer.from('this is not a certificate revocation list'));

  const imported = await importCertificates(pki, pem('ca.pem'), { as: 'anchor' }, settings);
  assert.is(imported.imported.length, 1);
  store = await TrustStore.open(pki, settings, { now });
});

test.after(async () => {
  for (const proc of responders) proc.kill();
  await new Promise((resolve) => dpServer?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

test('the certificate cache parses each certificate once, whatever form it comes in', () => {
  const text = readFileSync(join(pki, 'agencies/CUSTOMS/cert.pem'), 'utf8');
  const parsed = certificate(text);
  assert.is(certificate(text), parsed);
  assert.is(certificate(parsed.der), parsed);
  assert.is(certificate(parsed.x509), parsed);
  assert.is(parsed.publicKey, certificate(text).publicKey, 'one KeyObject per certificate');
  const printed = must(['x509', '-in', 'agencies/CUSTOMS/cert.pem', '-noout', '-fingerprint', '-sha256', '-serial'], pki);
  assert.is(parsed.thumbprint, Buffer.from(/Fingerprint=([0-9A-F:]+)/.exec(printed)![1]!.replace(/:/g, ''), 'hex').toString('base64url'));
  assert.is(parsed.serial, /serial=([0-9A-F]+)/.exec(printed)![1]!.toLowerCase().replace(/^0+/, ''));
  assert.equal([...parsed.keyUsage!], ['digitalSignature']);
  assert.equal(parsed.extKeyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.4']);
  assert.equal(cert(file('alpha.pem')).crlUrls, [`http://127.0.0.1:${dpPort}/outside.crl`]);
  assert.equal(cert(file('ocsp-good.pem')).ocspUrls, [`http://127.0.0.1:${ocspPort}`]);
  try {
    certificate(Buffer.from('not a certificate'));
    assert.unreachable('garbage parsed');
  } catch (error) {
    assert.is((error as SwxError).code, 'SWX_BAD_REQUEST');
  }
});

test('purposes agree with openssl verify -purpose for every certificate the hub PKI makes', async () => {
  await issueCertificate(pki, 'SIGNER', { profile: 'signing' });
  await issueCertificate(pki, 'CLIENT', { profile: 'tls-client' });
  await issueCertificate(pki, 'SERVER', { profile: 'tls-server' });
  const leaves = ['hub-sign', 'hub-tls', 'tsa', 'agencies/CUSTOMS', 'issued/signing/SIGNER', 'issued/tls-client/CLIENT', 'issued/tls-server/SERVER'];
  const purposes: [Purpose, string][] = [['tls-client', 'sslclient'], ['tls-server', 'sslserver'], ['tsa', 'timestampsign']];
  let refusals = 0;
  for (const leaf of leaves) {
    for (const [purpose, opensslPurpose] of purposes) {
      const ours = await store.check(cert(join(pki, leaf, 'cert.pem')), purpose);
      const theirs = openssl(['verify', '-purpose', opensslPurpose, '-CAfile', 'ca/cert.pem', `${leaf}/cert.pem`], pki);
      assert.is(ours === undefined, theirs.ok, `${leaf} as ${purpose}: ours ${JSON.stringify(ours)}, openssl ${theirs.out}`);
      if (ours) { assert.is(ours.code, 'SWX_CERT_USAGE'); refusals += 1; }
    }
  }
  assert.ok(refusals >= 10, `a real share of refusals (${refusals})`);
  // Signing needs digitalSignature or nonRepudiation; every leaf here has one, the CA has neither.
  assert.is(await store.check(cert(join(pki, 'issued/signing/SIGNER/cert.pem')), 'agency-signing'), undefined);
  assert.is((await store.check(cert(join(pki, 'ca/cert.pem')), 'agency-signing'))?.code, 'SWX_CERT_USAGE');
  assert.is(await store.check(cert(join(pki, 'ca/cert.pem')), 'ca'), undefined);
});

test('paths: another CA, expiry, an issuer that is no CA and an unknown critical extension are refused like openssl does', async () => {
  const stranger = join(root, 'stranger');
  await initPki(stranger, { agencies: ['CUSTOMS'] });
  assert.is((await store.check(cert(join(stranger, 'agencies/CUSTOMS/cert.pem')), 'tls-client'))?.code, 'SWX_CERT_UNTRUSTED');
  assert.not.ok(openssl(['verify', '-CAfile', join(pki, 'ca/cert.pem'), join(stranger, 'agencies/CUSTOMS/cert.pem')]).ok);

  const old = await issueCertificate(pki, 'OLD', { notBefore: new Date(Date.now() - 40 * 24 * hour), notAfter: new Date(Date.now() - 24 * hour) });
  const expired = await store.check(certificate(old.certPem), 'tls-client');
  assert.is(expired?.code, 'SWX_CERT_EXPIRED');
  assert.match(openssl(['verify', '-CAfile', 'ca/cert.pem', old.certPath], pki).out, /certificate has expired/);
  // Validity is judged at the instant given (a signing time): inside the agency certificate's two years, and after.
  const customsCert = cert(join(pki, 'agencies/CUSTOMS/cert.pem'));
  assert.is(await store.check(customsCert, 'tls-client', Date.now() + 400 * 24 * hour), undefined);
  assert.is((await store.check(customsCert, 'tls-client', Date.now() + 800 * 24 * hour))?.code, 'SWX_CERT_EXPIRED');

  // A certificate "issued" by an agency certificate with the agency's key.
  must(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue.key', '-subj', '/O=swx demo/CN=ROGUE', '-out', 'rogue.csr']);
  writeFileSync(file('rogue.ext'), 'keyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n');
  must(['x509', '-req', '-in', 'rogue.csr', '-CA', join(pki, 'agencies/CUSTOMS/cert.pem'), '-CAkey', join(pki, 'agencies/CUSTOMS/key.pem'), '-CAcreateserial', '-days', '5', '-extfile', 'rogue.ext', '-out', 'rogue.pem']);
  const customs = cert(join(pki, 'agencies/CUSTOMS/cert.pem'));
  const rogue = await store.check(cert(file('rogue.pem')), 'tls-client', now(), [customs]);
  assert.is(rogue?.code, 'SWX_CERT_USAGE', JSON.stringify(rogue));
  assert.match(rogue!.detail, /not allowed to issue/);
  assert.match(openssl(['verify', '-CAfile', join(pki, 'ca/cert.pem'), '-untrusted', join(pki, 'agencies/CUSTOMS/cert.pem'), 'rogue.pem']).out, /invalid CA certificate/);
  await refused(importCertificates(pki, pem('rogue.pem') + readFileSync(join(pki, 'agencies/CUSTOMS/cert.pem'), 'utf8'), { as: 'agency', id: 'ROGUE' }, settings), 'SWX_CERT_USAGE');

  const odd = await store.check(cert(file('odd.pem')), 'tls-client');
  assert.is(odd?.code, 'SWX_CERT_UNTRUSTED');
  assert.match(odd!.detail, /critical extension 1\.3\.6\.1\.4\.1\.61000\.99/);
  assert.match(openssl(['verify', '-CAfile', 'ca.pem', 'odd.pem']).out, /unhandled critical extension/);

  const path = buildPath(cert(join(pki, 'agencies/BOFT/cert.pem')), [], [cert(join(pki, 'ca/cert.pem'))], Date.now());
  assert.ok('path' in path && path.path.length === 2);
});

test('the hub CA CRL: swx pki revoke reaches a running store on its next look at the folder; openssl agrees', async () => {
  const boft = cert(join(pki, 'agencies/BOFT/cert.pem'));
  assert.is(await store.check(boft, 'tls-client'), undefined);
  const revoked = await revokeCertificate(pki, { agency: 'BOFT' }, 'affiliationChanged');
  assert.is(revoked.serial, boft.serial);
  assert.is(await store.check(boft, 'tls-client'), undefined, 'not yet looked at the folder');
  await store.reload();
  const refusal = await store.check(boft, 'agency-signing');
  assert.is(refusal?.code, 'SWX_CERT_REVOKED');
  assert.match(refusal!.detail, /affiliationChanged/);
  const status = await store.status(boft, 'tls-client');
  assert.is(status.status, 'revoked', 'the certificate part of a SignatureVerdict says the same');
  assert.is(status.trust, 'chain');
  assert.is((await store.status(cert(join(pki, 'agencies/CUSTOMS/cert.pem')), 'tls-client')).status, 'valid');
  assert.match(openssl(['verify', '-CAfile', 'ca/cert.pem', '-CRLfile', 'crl.pem', '-crl_check', 'agencies/BOFT/cert.pem'], pki).out, /certificate revoked/);
  assert.is(await store.check(cert(join(pki, 'agencies/CUSTOMS/cert.pem')), 'tls-client'), undefined);
  assert.ok(openssl(['verify', '-CAfile', 'ca/cert.pem', '-CRLfile', 'crl.pem', '-crl_check', 'agencies/CUSTOMS/cert.pem'], pki).ok);
  // A certificate of another CA cannot be revoked here.
  await refused(revokeCertificate(pki, { certPem: pem('alpha.pem') }), 'SWX_BAD_REQUEST');
});

test('an outside CRL is fetched, verified, cached, refreshed ahead of nextUpdate, and matches openssl -crl_check', async () => {
  const alpha = cert(file('alpha.pem'));
  assert.is(await store.check(alpha, 'tls-client'), undefined);
  assert.ok(openssl(['verify', '-CAfile', 'ca.pem', '-CRLfile', 'crl.pem', '-crl_check', 'alpha.pem']).ok);

  must(['ca', '-config', 'ca.cnf', '-revoke', 'alpha.pem', '-crl_reason', 'superseded']);
  publishCrl();
  assert.is(await store.check(alpha, 'tls-client'), undefined, 'the cached list serves until it is due');
  // 80 % of the list's hour has passed: the next look refreshes in the background, the sweep waits for it.
  offset = 49 * 60_000;
  await store.check(alpha, 'tls-client');
  await store.revocation.sweep();
  const refusal = await store.check(alpha, 'tls-client');
  assert.is(refusal?.code, 'SWX_CERT_REVOKED', JSON.stringify(refusal));
  assert.match(refusal!.detail, new RegExp(`superseded.*127\\.0\\.0\\.1:${dpPort}/outside\\.crl`));
  assert.match(openssl(['verify', '-CAfile', 'ca.pem', '-CRLfile', 'crl.pem', '-crl_check', 'alpha.pem']).out, /certificate revoked/);
  assert.is(await store.check(cert(file('bravo.pem')), 'tls-client'), undefined);
  assert.ok(openssl(['verify', '-CAfile', 'ca.pem', '-CRLfile', 'crl.pem', '-crl_check', 'bravo.pem']).ok);
});

test('a CRL that cannot be refreshed serves through the grace period (gauge), then revocation is unknown; fail-open accepts', async () => {
  down = true;
  const bravo = cert(file('bravo.pem'));
  // The list of the last test lapses an hour after it was made; half an hour later it is stale, within the grace hour.
  offset = 90 * 60_000;
  await store.revocation.sweep();
  assert.is(await store.check(bravo, 'tls-client'), undefined);
  const stale = (await metricsRegistry.getSingleMetricAsString('swx_crl_stale_seconds'));
  const seconds = Number(new RegExp(`swx_crl_stale_seconds\\{crl="http://127\\.0\\.0\\.1:${dpPort}/outside\\.crl"\\} (\\d+)`).exec(stale)?.[1]);
  assert.ok(seconds >= 1_500 && seconds <= 1_900, stale);
  const listed = store.crlStatus().find((info) => info.source.endsWith('/outside.crl'));
  assert.is(listed?.state, 'stale');
  assert.ok(listed?.lastError, 'the failed refresh is on record');
  assert.is(listed?.entries.length, 2, 'alpha and ocsp-revoked');

  offset = 130 * 60_000;
  const unknown = await store.check(bravo, 'tls-client');
  assert.is(unknown?.code, 'SWX_CERT_REVOCATION_UNKNOWN', JSON.stringify(unknown));
  assert.match(unknown!.detail, /grace period of 3600 s is over/);
  assert.match(openssl(['verify', '-CAfile', 'ca.pem', '-CRLfile', 'crl.pem', '-crl_check', '-attime', String(Math.floor(now() / 1000)), 'bravo.pem']).out, /CRL has expired/);

  const lenient = await TrustStore.open(pki, { ...settings, failOpen: true }, { now });
  const before = Number(/swx_revocation_fail_open_total (\d+)/.exec(await metricsRegistry.getSingleMetricAsString('swx_revocation_fail_open_total'))?.[1] ?? 0);
  assert.is(await lenient.check(bravo, 'tls-client'), undefined);
  const after = Number(/swx_revocation_fail_open_total (\d+)/.exec(await metricsRegistry.getSingleMetricAsString('swx_revocation_fail_open_total'))?.[1]);
  assert.is(after, before + 1);
  // Still revoked is still revoked: fail-open concerns only an unknown status.
  offset = 60 * 60_000;
  assert.is((await lenient.check(cert(file('alpha.pem')), 'tls-client'))?.code, 'SWX_CERT_REVOKED');
});

test('after a restart the data folder cache answers while the distribution point is down', async () => {
  offset = 55 * 60_000;
  const restarted = await TrustStore.open(pki, settings, { now });
  assert.is((await restarted.check(cert(file('alpha.pem')), 'tls-client'))?.code, 'SWX_CERT_REVOKED');
  assert.is(await restarted.check(cert(file('bravo.pem')), 'tls-client'), undefined);
  down = false;
  offset = 0;
});

test('a CRL signed by another key, or bytes that are no CRL, give SWX_CERT_REVOCATION_UNKNOWN, never "good"', async () => {
  const evil = await store.check(cert(file('evil.pem')), 'tls-client');
  assert.is(evil?.code, 'SWX_CERT_REVOCATION_UNKNOWN');
  assert.match(evil!.detail, /signature does not verify/);
  assert.match(openssl(['crl', '-in', 'impostor-crl.pem', '-CAfile', 'ca.pem', '-noout']).out, /verify failure/);
  const junk = await store.check(cert(file('junk.pem')), 'tls-client');
  assert.is(junk?.code, 'SWX_CERT_REVOCATION_UNKNOWN');
  assert.match(junk!.detail, /not a DER CRL/);
});

test('OCSP against openssl ocsp: good, revoked, nonce echoed; a responder without OCSPSigning is not believed', async () => {
  const responder = await startResponder('responder', ocspPort);
  const ocsp = await TrustStore.open(pki, { ...settings, ocsp: true }, { now });
  assert.is(await ocsp.check(cert(file('ocsp-good.pem')), 'tls-client'), undefined);
  const revoked = await ocsp.check(cert(file('ocsp-revoked.pem')), 'tls-client');
  assert.is(revoked?.code, 'SWX_CERT_REVOKED', JSON.stringify(revoked));
  assert.match(revoked!.detail, new RegExp(`keyCompromise.*OCSP http://127\\.0\\.0\\.1:${ocspPort}`));
  await sleep(200);
  assert.match(responder.output(), /OCSP Nonce/, 'the request carried a nonce');
  // openssl's own client sees the same statuses from the same responder.
  const client = openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'ocsp-good.pem', '-cert', 'ocsp-revoked.pem', '-url', `http://127.0.0.1:${ocspPort}`, '-CAfile', 'ca.pem']);
  assert.match(client.out, /ocsp-good\.pem: good/);
  assert.match(client.out, /ocsp-revoked\.pem: revoked/);
  responder.proc.kill();
  await once(responder.proc, 'exit');

  // The same responder port, now answering with bravo's key: a certificate of the CA, but not one for OCSP.
  await startResponder('bravo', ocspPort);
  const fresh = await TrustStore.open(pki, { ...settings, ocsp: true }, { now });
  const unauthorised = await fresh.check(cert(file('ocsp-good.pem')), 'tls-client');
  assert.is(unauthorised?.code, 'SWX_CERT_REVOCATION_UNKNOWN', JSON.stringify(unauthorised));
  assert.match(unauthorised!.detail, /lacks the OCSPSigning/);
  assert.not.ok(openssl(['ocsp', '-issuer', 'ca.pem', '-cert', 'ocsp-good.pem', '-url', `http://127.0.0.1:${ocspPort}`, '-CAfile', 'ca.pem']).out.includes('Response verify OK'));
});

test('import: an agency certificate of a trusted outside CA is validated and written; a non-CA anchor is refused', async () => {
  const result = await importCertificates(pki, pem('bravo.pem'), { as: 'agency', id: 'BRAVO' }, settings);
  assert.equal(result.purposes, ['agency-signing', 'tls-client']);
  assert.is(readFileSync(join(pki, 'partners/BRAVO/cert.pem'), 'utf8').trim(), pem('bravo.pem').trim());
  await refused(importCertificates(pki, pem('alpha.pem'), { as: 'agency', id: 'ALPHA' }, settings), 'SWX_CERT_REVOKED');
  await refused(importCertificates(pki, pem('bravo.pem'), { as: 'anchor' }, settings), 'SWX_CERT_USAGE');
  const stranger = readFileSync(join(root, 'stranger/ca/cert.pem'), 'utf8');
  await refused(importCertificates(pki, stranger, { as: 'intermediate' }, settings), 'SWX_CERT_UNTRUSTED');
  await refused(importCertificates(pki, 'no certificate here', { as: 'anchor' }, settings), 'SWX_BAD_REQUEST');
  const anchors = store.list().anchors.map((anchor: ParsedCert) => anchor.subject);
  assert.ok(anchors.includes('O=Outside, CN=Outside Root') && anchors.includes('O=swx demo, CN=swx hub Root CA'), anchors.join('; '));
});

test.run();
