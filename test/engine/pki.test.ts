// `swx pki init` as an operator would use it, checked with the stock tools agencies will use: openssl and a TLS handshake.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { SwxError } from '../../engine/errors.ts';
import {
  initPki,
  issueAgency,
  listAgencies,
  loadCredential,
  loadPki,
  revoke,
  thumbprint,
  type Credential,
  type KeyAlg,
  type PkiSummary,
} from '../../engine/pki/index.ts';
import { cleanEnv, swxBin } from '../helpers/hub.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-pki-'));
const agencies = ['CUSTOMS', 'BOFT', 'COA-DAI'];
const leaves = ['hub-sign', 'hub-tls', 'tsa', ...agencies.map((id) => `agencies/${id}`)];
const dirs: Record<KeyAlg, string> = { ecdsa: join(root, 'ecdsa', 'pki'), rsa: join(root, 'rsa', 'pki') };
const summaries: Partial<Record<KeyAlg, PkiSummary>> = {};

/** Runs openssl; stdout and stderr together, as an operator would read them. */
function openssl(args: string[], cwd?: string): { ok: boolean; out: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd });
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}` };
}

function ext(dir: string, leaf: string, name: string): string {
  return openssl(['x509', '-in', join(dir, leaf, 'cert.pem'), '-noout', '-ext', name]).out;
}

async function rejects(run: () => Promise<unknown>, code: string): Promise<SwxError> {
  try {
    await run();
  } catch (error) {
    assert.instance(error, SwxError);
    assert.is((error as SwxError).code, code);
    return error as SwxError;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

/** One mutual-TLS handshake: the server requires a client certificate, both sides verify against `ca`. */
async function handshake(server: Credential, client: Credential, ca: string, target: { host: string; servername?: string }) {
  const srv = tls.createServer({ key: server.keyPem, cert: server.chainPem, ca, requestCert: true, rejectUnauthorized: true });
  const seen = new Promise<{ ok: true; peer: string } | { ok: false; error: string }>((resolve) => {
    srv.on('secureConnection', (socket) => {
      const peer = socket.getPeerCertificate().subject.CN as string;
      resolve({ ok: true, peer });
      socket.end('hello');
    });
    srv.on('tlsClientError', (error) => resolve({ ok: false, error: error.message }));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  const socket = tls.connect({
    host: target.host,
    port,
    ...(target.servername ? { servername: target.servername } : {}),
    ca,
    key: client.keyPem,
    cert: client.chainPem,
    rejectUnauthorized: true,
  });
  const clientSide = new Promise<{ authorized: boolean; data: string; error?: string }>((resolve) => {
    let data = '';
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => resolve({ authorized: socket.authorized, data }));
    socket.on('error', (error) => resolve({ authorized: false, data, error: error.message }));
  });
  const [serverSide, clientResult] = await Promise.all([seen, clientSide]);
  socket.destroy();
  srv.close();
  return { server: serverSide, client: clientResult };
}

test.after(() => rmSync(root, { recursive: true, force: true }));

for (const alg of ['ecdsa', 'rsa'] as const) {
  const dir = dirs[alg];

  test(`${alg}: initPki writes the CA, hub, TSA and agency credentials, keys 0600`, async () => {
    const summary = await initPki(dir, { agencies, alg, hubName: 'swx test hub', hosts: ['hub.example.test', '192.0.2.10'] });
    summaries[alg] = summary;
    for (const folder of ['ca', ...leaves]) {
      for (const file of ['cert.pem', 'key.pem', 'chain.pem']) assert.ok(existsSync(join(dir, folder, file)), `${folder}/${file}`);
      const key = join(dir, folder, 'key.pem');
      assert.is(statSync(key).mode & 0o777, 0o600, `${folder}/key.pem mode`);
      assert.match(readFileSync(key, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8');
    }
    assert.ok(existsSync(join(dir, 'crl.pem')));
    assert.ok(summary.ca.created && summary.agencies.CUSTOMS!.created);
    assert.is(summary.ca.alg, alg);
    assert.is(summary.agencies['COA-DAI']!.subject, 'O=swx demo, CN=COA-DAI');
    assert.equal(await listAgencies(dir), ['BOFT', 'COA-DAI', 'CUSTOMS']);
  });

  test(`${alg}: openssl verify accepts every leaf against the CA and the CRL`, () => {
    for (const leaf of leaves) {
      const { ok, out } = openssl(['verify', '-x509_strict', '-CAfile', 'ca/cert.pem', '-CRLfile', 'crl.pem', '-crl_check', `${leaf}/cert.pem`], dir);
      assert.ok(ok, out);
      assert.is(out.trim(), `${leaf}/cert.pem: OK`);
    }
  });

  test(`${alg}: each certificate passes the openssl purpose its role needs`, () => {
    const purposes: [string, string][] = [
      ['hub-tls', 'sslserver'],
      ['hub-tls', 'sslclient'],
      ['tsa', 'timestampsign'],
      ['hub-sign', 'smimesign'],
      ...agencies.flatMap((id): [string, string][] => [[`agencies/${id}`, 'sslclient'], [`agencies/${id}`, 'sslserver'], [`agencies/${id}`, 'smimesign']]),
    ];
    for (const [leaf, purpose] of purposes) {
      const { ok, out } = openssl(['verify', '-purpose', purpose, '-CAfile', 'ca/cert.pem', `${leaf}/cert.pem`], dir);
      assert.ok(ok, `${leaf} as ${purpose}: ${out}`);
    }
  });

  test(`${alg}: extensions — CA constraints, TSA time stamping (critical), agency client auth, key identifiers`, () => {
    assert.match(ext(dir, 'ca', 'basicConstraints'), /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(ext(dir, 'ca', 'keyUsage'), /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const caKeyId = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(ext(dir, 'ca', 'subjectKeyIdentifier'))?.[1];
    assert.ok(caKeyId, 'CA has a subjectKeyIdentifier');

    const tsa = ext(dir, 'tsa', 'extendedKeyUsage');
    assert.match(tsa, /Extended Key Usage: critical\s+Time Stamping\s*$/);

    for (const id of agencies) {
      const leaf = `agencies/${id}`;
      assert.match(ext(dir, leaf, 'extendedKeyUsage'), /TLS Web Client Authentication/);
      assert.match(ext(dir, leaf, 'extendedKeyUsage'), /TLS Web Server Authentication/);
      const usage = ext(dir, leaf, 'keyUsage');
      assert.match(usage, /critical\s+Digital Signature/);
      assert.is(/Key Encipherment/.test(usage), alg === 'rsa', `keyEncipherment only for RSA: ${usage}`);
      assert.match(ext(dir, leaf, 'subjectAltName'), /DNS:localhost, IP Address:127\.0\.0\.1/);
      assert.is(openssl(['x509', '-in', join(dir, leaf, 'cert.pem'), '-noout', '-subject']).out, `subject=O = swx demo, CN = ${id}\n`);
    }

    for (const leaf of leaves) {
      assert.match(ext(dir, leaf, 'authorityKeyIdentifier'), new RegExp(caKeyId!));
      assert.match(ext(dir, leaf, 'subjectKeyIdentifier'), /Subject Key Identifier:\s+[0-9A-F:]+/);
      const serial = openssl(['x509', '-in', join(dir, leaf, 'cert.pem'), '-noout', '-serial']).out.trim();
      assert.match(serial, /^serial=[0-7][0-9A-F]{31}$/, `16-byte positive serial: ${serial}`);
    }

    const san = ext(dir, 'hub-tls', 'subjectAltName');
    for (const name of ['DNS:hub.example.test', 'IP Address:192.0.2.10', 'DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) {
      assert.ok(san.includes(name), `${name} in ${san}`);
    }
  });

  test(`${alg}: the CRL verifies against the CA with openssl crl`, () => {
    const { ok, out } = openssl(['crl', '-in', 'crl.pem', '-CAfile', 'ca/cert.pem', '-noout'], dir);
    assert.ok(ok, out);
    assert.match(out, /verify OK/);
    const text = openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], dir).out;
    assert.match(text, /No Revoked Certificates/);
    assert.match(text, /CRL Number:\s+1\b/);
  });

  test(`${alg}: hub TLS server and an agency client complete a mutual TLS handshake`, async () => {
    const pki = await loadPki(dir);
    const customs = loadCredential(join(dir, 'agencies/CUSTOMS/cert.pem'), join(dir, 'agencies/CUSTOMS/key.pem'));
    for (const target of [{ host: '127.0.0.1', servername: 'localhost' }, { host: '127.0.0.1' }]) {
      const result = await handshake(pki.hubTls, customs, pki.ca.certPem, target);
      assert.equal(result.server, { ok: true, peer: 'CUSTOMS' }, JSON.stringify(result));
      assert.equal(result.client, { authorized: true, data: 'hello' });
    }
    // The other direction the PKI promises: an agency runs a TLS receiver and the hub connects as client.
    const receiver = await handshake(customs, pki.hubTls, pki.ca.certPem, { host: '127.0.0.1', servername: 'localhost' });
    assert.equal(receiver.server, { ok: true, peer: 'swx test hub TLS' });
  });

  test(`${alg}: thumbprint is the base64url SHA-256 openssl prints as the fingerprint`, () => {
    for (const leaf of ['ca', ...leaves]) {
      const certPath = join(dir, leaf, 'cert.pem');
      const printed = openssl(['x509', '-in', certPath, '-noout', '-fingerprint', '-sha256']).out;
      const hex = /Fingerprint=([0-9A-F:]+)/i.exec(printed)![1]!.replace(/:/g, '');
      const expected = Buffer.from(hex, 'hex').toString('base64url');
      const credential = loadCredential(certPath, join(dir, leaf, 'key.pem'));
      assert.is(credential.thumbprint, expected, leaf);
      assert.is(thumbprint(credential.chainPem), expected, `${leaf}: first certificate of the chain`);
      const der = spawnSync('openssl', ['x509', '-in', certPath, '-outform', 'DER']).stdout;
      assert.is(thumbprint(new Uint8Array(der)), expected, `${leaf}: DER input`);
    }
    const summary = summaries[alg]!;
    assert.is(summary.agencies.BOFT!.thumbprint, thumbprint(readFileSync(join(dir, 'agencies/BOFT/cert.pem'), 'utf8')));
  });

  test(`${alg}: an agency signature checks with stock openssl cms -verify`, () => {
    const data = join(dir, '..', 'message.txt');
    const signed = join(dir, '..', 'message.p7s');
    writeFileSync(data, 'declaration 42');
    const sign = openssl(['cms', '-sign', '-binary', '-in', data, '-signer', 'agencies/BOFT/cert.pem', '-inkey', 'agencies/BOFT/key.pem', '-outform', 'DER', '-out', signed], dir);
    assert.ok(sign.ok, sign.out);
    const verify = openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', signed, '-content', data, '-CAfile', 'ca/cert.pem', '-out', '/dev/null'], dir);
    assert.ok(verify.ok, verify.out);
    assert.match(verify.out, /Verification successful/);
  });
}

test('a certificate from another deployment is refused in the TLS handshake', async () => {
  const hub = await loadPki(dirs.ecdsa);
  const stranger = loadCredential(join(dirs.rsa, 'agencies/CUSTOMS/cert.pem'), join(dirs.rsa, 'agencies/CUSTOMS/key.pem'));
  const result = await handshake(hub.hubTls, stranger, hub.ca.certPem, { host: '127.0.0.1', servername: 'localhost' });
  // Node's server drops the connection once the client certificate fails verification; nothing reaches the client.
  assert.is(result.server.ok, false, JSON.stringify(result));
  assert.is(result.client.data, '');
});

test('two initPki racing on a fresh folder end with one consistent PKI', async () => {
  const dir = join(root, 'race', 'pki');
  const [a, b] = await Promise.all([initPki(dir, { agencies: ['CUSTOMS'] }), initPki(dir, { agencies: ['CUSTOMS'] })]);
  assert.is(a.ca.thumbprint, b.ca.thumbprint);
  assert.is(a.agencies.CUSTOMS!.thumbprint, b.agencies.CUSTOMS!.thumbprint);
  for (const leaf of ['hub-sign', 'hub-tls', 'tsa', 'agencies/CUSTOMS']) {
    assert.ok(openssl(['verify', '-CAfile', 'ca/cert.pem', `${leaf}/cert.pem`], dir).ok, leaf);
    loadCredential(join(dir, leaf, 'cert.pem'), join(dir, leaf, 'key.pem'));
  }
});

test('a second initPki keeps the CA and every existing key, and adds a new agency under the same CA', async () => {
  const dir = dirs.ecdsa;
  const before = summaries.ecdsa!;
  const caKey = readFileSync(join(dir, 'ca/key.pem'), 'utf8');
  const customsKey = readFileSync(join(dir, 'agencies/CUSTOMS/key.pem'), 'utf8');
  const crl = readFileSync(join(dir, 'crl.pem'), 'utf8');

  const again = await initPki(dir, { agencies: [...agencies, 'MOF'], alg: 'rsa', hubName: 'another name' });
  assert.is(again.ca.thumbprint, before.ca.thumbprint);
  assert.is(again.ca.alg, 'ecdsa', 'kept CA keeps its algorithm');
  assert.not.ok(again.ca.created);
  assert.is(again.hubTls.thumbprint, before.hubTls.thumbprint);
  assert.is(again.agencies.CUSTOMS!.thumbprint, before.agencies.CUSTOMS!.thumbprint);
  assert.not.ok(again.agencies.CUSTOMS!.created);
  assert.ok(again.agencies.MOF!.created);
  assert.not.ok(again.crlCreated);
  assert.is(readFileSync(join(dir, 'ca/key.pem'), 'utf8'), caKey);
  assert.is(readFileSync(join(dir, 'agencies/CUSTOMS/key.pem'), 'utf8'), customsKey);
  assert.is(readFileSync(join(dir, 'crl.pem'), 'utf8'), crl);
  assert.ok(openssl(['verify', '-CAfile', 'ca/cert.pem', 'agencies/MOF/cert.pem'], dir).ok);
});

test('issueAgency returns the existing credential, and issues new ones with the CA key algorithm', async () => {
  const dir = dirs.ecdsa;
  const existing = await issueAgency(dir, 'CUSTOMS', { alg: 'rsa' });
  assert.is(existing.thumbprint, summaries.ecdsa!.agencies.CUSTOMS!.thumbprint);
  assert.is(existing.chainPem, readFileSync(join(dir, 'agencies/CUSTOMS/chain.pem'), 'utf8'));
  assert.ok(existing.chainPem.endsWith(readFileSync(join(dir, 'ca/cert.pem'), 'utf8')), 'chain = cert + CA');

  const fresh = await issueAgency(dir, 'MOT');
  assert.match(openssl(['x509', '-in', fresh.certPath, '-noout', '-text']).out, /id-ecPublicKey/);
  const rsa = await issueAgency(dir, 'MOH', { alg: 'rsa' });
  assert.match(openssl(['x509', '-in', rsa.certPath, '-noout', '-text']).out, /rsaEncryption/);
  assert.ok(openssl(['verify', '-CAfile', 'ca/cert.pem', rsa.certPath], dir).ok);
});

test('explicit dates make an expired agency certificate that openssl refuses', async () => {
  const dir = dirs.ecdsa;
  const expired = await issueAgency(dir, 'OLD-AGENCY', { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z') });
  const { ok, out } = openssl(['verify', '-CAfile', 'ca/cert.pem', expired.certPath], dir);
  assert.not.ok(ok);
  assert.match(out, /certificate has expired/);
  await rejects(() => issueAgency(dir, 'NEW-AGENCY', { notBefore: new Date('2030-01-01'), notAfter: new Date('2029-01-01') }), 'SWX_BAD_REQUEST');
});

test('bad agency ids are refused before anything is written', async () => {
  const dir = join(root, 'refused', 'pki');
  for (const id of ['../x', '..', 'customs', 'A', 'X/Y', 'CUSTOMS/../../etc', '', 'BOFT ', '-BOFT', `A${'B'.repeat(32)}`]) {
    const error = await rejects(() => initPki(dir, { agencies: ['CUSTOMS', id] }), 'SWX_BAD_REQUEST');
    assert.match(error.message, /agency id/);
    await rejects(() => issueAgency(dirs.ecdsa, id), 'SWX_BAD_REQUEST');
  }
  assert.not.ok(existsSync(dir), 'nothing written for a refused init');
  assert.not.ok(existsSync(join(dirs.ecdsa, 'x')) || existsSync(join(dirs.ecdsa, 'agencies', 'x')));
  await rejects(() => initPki(dir, { agencies: [], alg: 'dsa' as KeyAlg }), 'SWX_BAD_REQUEST');
  await rejects(() => initPki(dir, { agencies: [], hosts: ['bad host/name'] }), 'SWX_BAD_REQUEST');
  await rejects(() => initPki(dir, { agencies: [], validityDays: 0 }), 'SWX_BAD_REQUEST');
});

test('revoke adds the serial to a re-signed CRL; openssl then refuses the certificate', async () => {
  const dir = dirs.rsa;
  const serial = openssl(['x509', '-in', 'agencies/COA-DAI/cert.pem', '-noout', '-serial'], dir).out.trim().replace('serial=', '');
  const { crlPem } = await revoke(dir, serial, 'keyCompromise');
  assert.is(readFileSync(join(dir, 'crl.pem'), 'utf8'), crlPem);
  assert.match(openssl(['crl', '-in', 'crl.pem', '-CAfile', 'ca/cert.pem', '-noout'], dir).out, /verify OK/);
  const text = openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], dir).out;
  assert.match(text, new RegExp(`Serial Number: ${serial}`));
  assert.match(text, /Key Compromise/);
  assert.match(text, /CRL Number:\s+2\b/);

  const revoked = openssl(['verify', '-CAfile', 'ca/cert.pem', '-CRLfile', 'crl.pem', '-crl_check', 'agencies/COA-DAI/cert.pem'], dir);
  assert.not.ok(revoked.ok);
  assert.match(revoked.out, /certificate revoked/);
  assert.ok(openssl(['verify', '-CAfile', 'ca/cert.pem', '-CRLfile', 'crl.pem', '-crl_check', 'agencies/BOFT/cert.pem'], dir).ok);

  // Same serial again, written the way openssl prints it with colons: nothing changes.
  const again = await revoke(dir, serial.toLowerCase().replace(/(..)(?!$)/g, '$1:'));
  assert.is(again.crlPem, crlPem);
  // A second serial keeps the first entry.
  const boft = openssl(['x509', '-in', 'agencies/BOFT/cert.pem', '-noout', '-serial'], dir).out.trim().replace('serial=', '');
  await revoke(dir, boft);
  const both = openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], dir).out;
  assert.match(both, new RegExp(serial));
  assert.match(both, new RegExp(boft));
  await rejects(() => revoke(dir, 'not-hex'), 'SWX_BAD_REQUEST');
  // init keeps a current CRL, revocations included.
  const kept = await initPki(dir, { agencies: [], alg: 'rsa' });
  assert.not.ok(kept.crlCreated);
});

test('initPki re-signs a CRL that is about to lapse, keeping its number sequence (CRL made by openssl ca)', async () => {
  const dir = dirs.ecdsa;
  const work = join(root, 'openssl-ca');
  mkdirSync(work);
  writeFileSync(join(work, 'index.txt'), '');
  writeFileSync(join(work, 'crlnumber'), '05\n');
  writeFileSync(join(work, 'ca.cnf'), `[ca]\ndefault_ca = demo\n[demo]\ndatabase = ${work}/index.txt\ncrlnumber = ${work}/crlnumber\ndefault_md = sha256\n`);
  const made = openssl(['ca', '-batch', '-gencrl', '-config', join(work, 'ca.cnf'), '-keyfile', 'ca/key.pem', '-cert', 'ca/cert.pem', '-crlhours', '1', '-out', 'crl.pem'], dir);
  assert.ok(made.ok, made.out);
  const summary = await initPki(dir, { agencies: [] });
  assert.ok(summary.crlCreated, 're-signed');
  const text = openssl(['crl', '-in', 'crl.pem', '-CAfile', 'ca/cert.pem', '-noout', '-text'], dir).out;
  assert.match(text, /verify OK/);
  assert.match(text, /CRL Number:\s+6\b/);
  const nextUpdate = new Date(/Next Update: (.+)/.exec(text)![1]!);
  assert.ok(nextUpdate.getTime() - Date.now() > 20 * 24 * 3600 * 1000, `next update ${nextUpdate.toISOString()}`);
});

test('loadPki and loadCredential refuse a missing PKI and a key that is not the certificate\'s', async () => {
  await rejects(() => loadPki(join(root, 'nowhere')), 'SWX_INTERNAL');
  const dir = dirs.ecdsa;
  let thrown: unknown;
  try {
    loadCredential(join(dir, 'agencies/CUSTOMS/cert.pem'), join(dir, 'agencies/BOFT/key.pem'));
  } catch (error) {
    thrown = error;
  }
  assert.instance(thrown, SwxError);
  assert.match((thrown as SwxError).message, /does not belong to certificate/);
  await rejects(() => issueAgency(join(root, 'nowhere'), 'CUSTOMS'), 'SWX_INTERNAL');
});

// ------------------------------------------------------------------ `swx pki` as an operator types it

const cliData = join(root, 'cli');
const cliPki = join(cliData, 'pki');

/** Runs `swx …`; a failure is an answer too (exit code and stderr), not an exception. */
async function swx(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [swxBin, ...args], { env: { ...cleanEnv(), ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function swxJson(args: string[], env: NodeJS.ProcessEnv = {}): Promise<any> {
  const answer = await swx(args, env);
  assert.is(answer.code, 0, `swx ${args.join(' ')}: ${answer.stderr}`);
  return JSON.parse(answer.stdout);
}

const serialOf = (path: string) => openssl(['x509', '-in', path, '-noout', '-serial']).out.trim().replace('serial=', '').toLowerCase();

test('swx pki --help (also after a subcommand) describes init, issue, revoke, import and crl with their options', async () => {
  for (const args of [['pki', '--help'], ['pki', 'revoke', '--help'], ['pki', 'import', '--help']]) {
    const { code, stdout } = await swx(args);
    assert.is(code, 0);
    for (const line of [/^ {2}init \[--agencies/m, /^ {2}issue NAME \[--profile agency\|signing\|tls-client\|tls-server\|tsa\]/m, /^ {2}revoke AGENCY \| --serial HEX \| --cert FILE \[--reason/m,
      /^ {2}import FILE --anchor \| --intermediate \| --agency ID/m, /^ {2}crl \[--refresh\]/m]) assert.match(stdout, line);
  }
  const wrong = await swx(['pki', 'revoke', '--data', cliData]);
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /usage: |swx pki <init/);
});

test('swx pki issue: profiles, key algorithm, validity and the CRL distribution point, as openssl reads them', async () => {
  await swxJson(['pki', 'init', '--data', cliData, '--agencies', 'CUSTOMS,BOFT']);
  assert.match(ext(cliPki, 'agencies/CUSTOMS', 'crlDistributionPoints'), /URI:http:\/\/localhost:7480\/pki\/crl/, 'default: the ops port of this folder');
  const server = await swxJson(['pki', 'issue', 'PORTAL', '--profile', 'tls-server', '--alg', 'rsa', '--days', '10', '--hosts', 'portal.example.test', '--data', cliData],
    { SWX_CRL_URL: 'http://crl.example.test/swx.crl' });
  assert.is(server.certPath, join(cliPki, 'issued/tls-server/PORTAL/cert.pem'));
  const text = openssl(['x509', '-in', server.certPath, '-noout', '-text']).out;
  assert.match(text, /rsaEncryption/);
  assert.match(text, /URI:http:\/\/crl\.example\.test\/swx\.crl/);
  assert.match(text, /DNS:portal\.example\.test/);
  assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
  const days = (Date.parse(server.notAfter) - Date.now()) / 86_400_000;
  assert.ok(days > 9.9 && days <= 10, `valid ${days} days`);
  assert.ok(openssl(['verify', '-purpose', 'sslserver', '-CAfile', 'ca/cert.pem', server.certPath], cliPki).ok);
  assert.not.ok(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'ca/cert.pem', server.certPath], cliPki).ok);
  const tsa = await swxJson(['pki', 'issue', 'STAMPER', '--profile', 'tsa', '--data', cliData]);
  assert.ok(openssl(['verify', '-purpose', 'timestampsign', '-CAfile', 'ca/cert.pem', tsa.certPath], cliPki).ok);

  for (const [args, pattern] of [
    [['pki', 'issue', 'X1', '--profile', 'ca'], /SWX_BAD_REQUEST: profile "ca"/],
    [['pki', 'issue', 'bad/id'], /SWX_BAD_REQUEST: agency id/],
    [['pki', 'issue', 'X2', '--days', 'many'], /SWX_BAD_REQUEST: validityDays/],
    [['pki', 'issue', 'X3', '--alg', 'dsa'], /SWX_BAD_REQUEST: key algorithm/],
  ] as const) {
    const refused = await swx([...args, '--data', cliData]);
    assert.is(refused.code, 1, args.join(' '));
    assert.match(refused.stderr, pattern);
  }
  assert.not.ok(existsSync(join(cliPki, 'issued/ca')), 'nothing written for a refused issue');
});

test('swx pki issue --renew and swx pki revoke by agency, serial and file; openssl -crl_check refuses exactly those', async () => {
  const first = serialOf(join(cliPki, 'agencies/BOFT/cert.pem'));
  const renewed = await swxJson(['pki', 'issue', 'BOFT', '--renew', '--data', cliData]);
  assert.is.not(renewed.serial, first);
  assert.ok(existsSync(join(cliPki, 'agencies/BOFT/retired', first, 'cert.pem')), 'the old certificate is kept');
  assert.is(serialOf(join(cliPki, 'agencies/BOFT/retired', first, 'cert.pem')), first);

  const byAgency = await swxJson(['pki', 'revoke', 'CUSTOMS', '--reason', 'keyCompromise', '--data', cliData]);
  assert.is(byAgency.serial, serialOf(join(cliPki, 'agencies/CUSTOMS/cert.pem')));
  const bySerial = await swxJson(['pki', 'revoke', '--serial', first.toUpperCase().replace(/(..)(?!$)/g, '$1:'), '--reason', 'superseded', '--data', cliData]);
  assert.is(bySerial.serial, first);
  const byFile = await swxJson(['pki', 'revoke', '--cert', join(cliPki, 'issued/tls-server/PORTAL/cert.pem'), '--data', cliData]);
  assert.is(byFile.crlNumber, '4');
  const again = await swxJson(['pki', 'revoke', 'CUSTOMS', '--data', cliData]);
  assert.is(again.already, true);

  const text = openssl(['crl', '-in', 'crl.pem', '-CAfile', 'ca/cert.pem', '-noout', '-text'], cliPki).out;
  assert.match(text, /verify OK/);
  assert.match(text, /Key Compromise[\s\S]*Superseded/);
  const crlCheck = (leaf: string) => openssl(['verify', '-CAfile', 'ca/cert.pem', '-CRLfile', 'crl.pem', '-crl_check', leaf], cliPki);
  for (const leaf of ['agencies/CUSTOMS/cert.pem', `agencies/BOFT/retired/${first}/cert.pem`, 'issued/tls-server/PORTAL/cert.pem']) assert.match(crlCheck(leaf).out, /certificate revoked/, leaf);
  assert.ok(crlCheck('agencies/BOFT/cert.pem').ok, 'the renewed certificate is not revoked');

  const stranger = await swx(['pki', 'revoke', '--cert', join(dirs.rsa, 'agencies/CUSTOMS/cert.pem'), '--data', cliData]);
  assert.match(stranger.stderr, /SWX_BAD_REQUEST: .*was not issued by this CA/);
  const badReason = await swx(['pki', 'revoke', 'BOFT', '--reason', 'sleepy', '--data', cliData]);
  assert.match(badReason.stderr, /SWX_BAD_REQUEST: revocation reason "sleepy"/);
  const twoTargets = await swx(['pki', 'revoke', 'BOFT', '--serial', '01', '--data', cliData]);
  assert.is(twoTargets.code, 1);
  assert.ok(crlCheck('agencies/BOFT/cert.pem').ok, 'refused commands revoked nothing');
});

test('swx pki crl shows what openssl crl -text shows; --refresh re-signs with the next number and a fresh nextUpdate', async () => {
  const before = await swxJson(['pki', 'crl', '--data', cliData]);
  const own = before.crls[0];
  const text = openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], cliPki).out;
  assert.is(own.crlNumber, /CRL Number:\s+(\d+)/.exec(text)![1]);
  assert.equal(own.entries.map((entry: any) => entry.serial.toUpperCase()).sort(), [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]).sort());
  assert.is(own.state, 'current');
  assert.is(before.distributionPoint, 'http://localhost:7480/pki/crl');
  const after = await swxJson(['pki', 'crl', '--refresh', '--data', cliData]);
  assert.is(after.crls[0].crlNumber, String(Number(own.crlNumber) + 1));
  assert.equal(after.crls[0].entries, own.entries);
  const next = /Next Update: (.+)/.exec(openssl(['crl', '-in', 'crl.pem', '-CAfile', 'ca/cert.pem', '-noout', '-text'], cliPki).out)![1]!;
  assert.is(new Date(next).toISOString(), after.crls[0].nextUpdate);
});

test('swx pki import: an outside CA as anchor, then its agency certificate, validated; refusals name their code', async () => {
  const work = join(root, 'outside-cli');
  mkdirSync(work);
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  assert.ok(openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/O=Outside/CN=Outside CA', '-days', '30', ...caExt], work).ok);
  const leaf = (name: string, extensions: string) => {
    writeFileSync(join(work, `${name}.ext`), extensions);
    assert.ok(openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-subj', `/O=Outside/CN=${name}`, '-out', `${name}.csr`], work).ok);
    const made = openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '20', '-extfile', `${name}.ext`, '-out', `${name}.pem`], work);
    assert.ok(made.ok, made.out);
    return join(work, `${name}.pem`);
  };
  const good = leaf('MOE', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const wrong = leaf('MOW', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=serverAuth\n');

  const untrusted = await swx(['pki', 'import', good, '--agency', 'MOE', '--data', cliData]);
  assert.match(untrusted.stderr, /SWX_CERT_UNTRUSTED: agency certificate O=Outside, CN=MOE/);
  assert.match((await swx(['pki', 'import', good, '--anchor', '--data', cliData])).stderr, /SWX_CERT_USAGE: an anchor must be a CA certificate/);

  const anchor = await swxJson(['pki', 'import', join(work, 'ca.pem'), '--anchor', '--data', cliData]);
  const anchorPath = anchor.imported[0].path;
  assert.is(readFileSync(anchorPath, 'utf8'), readFileSync(join(work, 'ca.pem'), 'utf8'));
  const agency = await swxJson(['pki', 'import', good, '--agency', 'MOE', '--data', cliData]);
  assert.equal(agency.purposes, ['agency-signing', 'tls-client']);
  assert.ok(openssl(['verify', '-CAfile', anchorPath, '-purpose', 'sslclient', join(cliPki, 'partners/MOE/cert.pem')]).ok, 'openssl agrees');
  assert.is(agency.imported[0].thumbprint, thumbprint(readFileSync(good, 'utf8')));
  const refused = await swx(['pki', 'import', wrong, '--agency', 'MOW', '--data', cliData]);
  assert.match(refused.stderr, /SWX_CERT_USAGE: agency certificate O=Outside, CN=MOW: .*not issued for signing/);
  assert.not.ok(openssl(['verify', '-CAfile', anchorPath, '-purpose', 'sslclient', wrong]).ok, 'openssl refuses it too');
  assert.not.ok(existsSync(join(cliPki, 'partners/MOW')));
});

test.run();
