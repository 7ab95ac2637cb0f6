// Revocation on running hubs, as an operator and agencies meet it: a send succeeds, `swx pki revoke` of the agency,
// the next sends are refused with SWX_CERT_REVOKED and evidence — on this hub and on a second one sharing the NATS —
// the hub's CRL distribution point convinces `openssl verify -crl_download`, a certificate used for what it was not
// issued for gets SWX_CERT_USAGE, and an outside CA's CRL that cannot be refreshed ends in SWX_CERT_REVOCATION_UNKNOWN.
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgencyClient, type HubAnswer } from '../../connectors/rest/agency.ts';
import { addAgency, addService, cleanEnv, evidenceOf, startHubProcess, swxBin, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

const run = promisify(execFile);
const graceSeconds = 6;

let hub: HubProcess;
let second: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let customsViaSecond: AgencyClient;
const clients: AgencyClient[] = [];

async function swx(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [swxBin, ...args], { env: { ...cleanEnv(), ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function openssl(args: string[], cwd: string): { ok: boolean; out: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd });
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}` };
}

const declaration = (n: number) => ({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from(JSON.stringify({ declarationNo: `AA/BE/13/101/${n}` })) });

/** A refusal as the agency sees it, and the evidence the hub archived for it. */
async function expectRefused(answer: HubAnswer, status: number, code: string): Promise<void> {
  assert.is(answer.status, status, JSON.stringify(answer.body));
  assert.is(answer.body.code, code);
  const rows = await evidenceOf(hub, String(answer.body.messageId), 'rejected');
  const rejected = rows.find((row) => row.stage === 'rejected');
  assert.ok(rejected, `evidence of the ${code} refusal`);
  assert.is(rejected.code, code);
  assert.ok(rows.some((row) => row.stage === 'received'), 'the raw request is evidenced too');
}

test.before(async () => {
  // Query limits low enough to show that the two processes share them (no other test here asks queries).
  const queryLimit = { SWX_QUERY_RATE: '0.01', SWX_QUERY_BURST: '2' };
  hub = await startHubProcess({ env: { SWX_CRL_GRACE_SECONDS: String(graceSeconds), ...queryLimit } });
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  await addService(hub, 'customs.declaration', ['CUSTOMS', 'SIGNER', 'OUTSIDER', 'MOF'], ['BOFT']);
  // A second hub process of the same deployment: the same PKI, its own data folder, the first one's NATS.
  const secondDir = tempDir('hub-second');
  cpSync(join(hub.dataDir, 'pki'), join(secondDir, 'pki'), { recursive: true });
  second = await startHubProcess({ dataDir: secondDir, env: { SWX_NATS_URL: `nats://127.0.0.1:${hub.natsPort}`, SWX_ARCHIVE: 'off', ...queryLimit } });
  customsViaSecond = new AgencyClient(`https://localhost:${second.agencyPort}`, customs.credentials);
});

test.after(async () => {
  for (const client of [...clients, customsViaSecond]) client?.close();
  customs?.client.close();
  boft?.client.close();
  await boft?.receiver?.close();
  await second?.stop();
  await hub?.stop();
});

test('the two hub processes count each other, and each enforces half of a per-asker query limit', async () => {
  const processes = async (of: HubProcess) => Number(/^swx_hub_processes (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${of.opsPort}/metrics`)).text())?.[1]);
  await waitFor('both hubs to count two processes', async () => (await processes(hub)) === 2 && (await processes(second)) === 2, 20_000);
  // A burst of 2 for the whole hub is 1 per process: the second query in a row is refused by the limit (the first
  // passes it, then the catalogue refuses it, as CUSTOMS may not ask this dataset).
  const ask = () => customs.client.query('import-declaration-sea', { declarationNo: 'AA12345678' });
  assert.is((await ask()).body.code, 'SWX_ACL_DENIED');
  assert.is((await ask()).body.code, 'SWX_RATE_LIMITED');
});

test('a send succeeds; after `swx pki revoke` the next sends are refused with SWX_CERT_REVOKED on both hub processes', async () => {
  assert.is((await customs.client.send(declaration(1))).status, 202);
  await waitFor('the second hub to know CUSTOMS', async () => (await customsViaSecond.send(declaration(2))).status === 202, 15_000);

  const revoked = await swx(['pki', 'revoke', 'CUSTOMS', '--reason', 'keyCompromise', '--data', hub.dataDir]);
  assert.is(revoked.code, 0, revoked.stderr);
  const done = Date.now();
  const result = JSON.parse(revoked.stdout);
  assert.is(result.serial, openssl(['x509', '-in', 'agencies/CUSTOMS/cert.pem', '-noout', '-serial'], join(hub.dataDir, 'pki')).out.trim().replace('serial=', '').toLowerCase());

  let refused: HubAnswer | undefined;
  await waitFor('the revocation to reach the hub', async () => (refused = await customs.client.send(declaration(3))).status !== 202, 15_000);
  const firstHub = Date.now() - done;
  await expectRefused(refused!, 401, 'SWX_CERT_REVOKED');
  assert.match(String(refused!.body.detail), /CUSTOMS.*revoked on .*keyCompromise/);

  let refusedBySecond: HubAnswer | undefined;
  await waitFor('the revocation to reach the second hub', async () => (refusedBySecond = await customsViaSecond.send(declaration(4))).status !== 202, 15_000);
  const secondHub = Date.now() - done;
  await expectRefused(refusedBySecond!, 401, 'SWX_CERT_REVOKED');
  // The second process holds a copy of the CA: it keeps the newest list in its own folder too, as openssl reads it.
  await waitFor('the second folder to hold the new CRL', () => openssl(['crl', '-in', 'pki/crl.pem', '-noout', '-text'], second.dataDir).out.includes(result.serial.toUpperCase()), 5_000);
  assert.match(openssl(['verify', '-CAfile', 'pki/ca/cert.pem', '-CRLfile', 'pki/crl.pem', '-crl_check', 'pki/agencies/CUSTOMS/cert.pem'], second.dataDir).out, /certificate revoked/);
  console.log(`revocation in force ${firstHub} ms (same folder) and ${secondHub} ms (second process, via NATS) after \`swx pki revoke\` returned`);

  // The hub's distribution point serves the list the refusal came from; openssl reads it and agrees.
  const crl = Buffer.from(await (await fetch(`http://127.0.0.1:${hub.opsPort}/pki/crl`)).arrayBuffer());
  writeFileSync(join(hub.dataDir, 'served.crl'), crl);
  const text = openssl(['crl', '-inform', 'DER', '-in', 'served.crl', '-CAfile', 'pki/ca/cert.pem', '-noout', '-text'], hub.dataDir);
  assert.match(text.out, /verify OK/);
  assert.match(text.out, new RegExp(`Serial Number: ${result.serial.toUpperCase()}[\\s\\S]*Key Compromise`));
});

test('a receipt signed with a revoked receiver certificate is not accepted: the delivery ends SWX_RECEIPT_INVALID, evidenced', async () => {
  const own = await startHubProcess({ env: { SWX_DELIVERY_MAX_ATTEMPTS: '1' } });
  const sender = await addAgency(own, 'CUSTOMS', { receiver: false });
  const receiver = await addAgency(own, 'BOFT');
  try {
    await addService(own, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
    const before = await sender.client.send(declaration(20));
    assert.is(before.status, 202);
    await evidenceOf(own, String(before.body.id), 'delivered');
    // The receiver's own certificate is revoked; it keeps answering, signing receipts with the revoked key.
    assert.is((await swx(['pki', 'revoke', 'BOFT', '--reason', 'keyCompromise', '--data', own.dataDir])).code, 0);
    // Until the revocation reaches the hub (about a second) a message may still be delivered: send until one is not.
    let rows: any[] = [];
    const settled = (list: any[]) => list.some((row) => row.stage === 'delivered' || row.stage === 'dead_lettered');
    await waitFor('a delivery whose receipt is refused', async () => {
      const answer = await sender.client.send(declaration(21));
      if (answer.status !== 202) return false;
      await waitFor('the delivery to settle', async () => settled(rows = (await own.admin('GET', `/api/evidence?messageId=${answer.body.id}`)).body), 15_000);
      return rows.some((row) => row.stage === 'dead_lettered');
    }, 45_000);
    const dead = rows.find((row) => row.stage === 'dead_lettered');
    assert.is(dead.code, 'SWX_RECEIPT_INVALID');
    assert.match(dead.detail, /SWX_CERT_REVOKED/);
    assert.not.ok(rows.some((row) => row.stage === 'delivered'), 'no delivered evidence rests on a revoked key');
  } finally {
    sender.client.close();
    receiver.client.close();
    await receiver.receiver?.close();
    await own.stop();
  }
});

test('openssl verify -crl_download fetches the CRL from the distribution point in a certificate `swx pki issue` made', async () => {
  const env = { SWX_OPS_PORT: String(hub.opsPort) };
  const issued = await swx(['pki', 'issue', 'NTA', '--data', hub.dataDir], env);
  assert.is(issued.code, 0, issued.stderr);
  const pki = join(hub.dataDir, 'pki');
  assert.match(openssl(['x509', '-in', 'agencies/NTA/cert.pem', '-noout', '-ext', 'crlDistributionPoints'], pki).out, new RegExp(`URI:http://localhost:${hub.opsPort}/pki/crl`));
  const before = openssl(['verify', '-crl_download', '-crl_check', '-CAfile', 'ca/cert.pem', 'agencies/NTA/cert.pem'], pki);
  assert.ok(before.ok, before.out);
  assert.is((await swx(['pki', 'revoke', 'NTA', '--data', hub.dataDir], env)).code, 0);
  await waitFor('the distribution point to serve the new CRL', () => !openssl(['verify', '-crl_download', '-crl_check', '-CAfile', 'ca/cert.pem', 'agencies/NTA/cert.pem'], pki).ok, 15_000);
  assert.match(openssl(['verify', '-crl_download', '-crl_check', '-CAfile', 'ca/cert.pem', 'agencies/NTA/cert.pem'], pki).out, /certificate revoked/);
});

/** Sends over TLS with one certificate and the signature of another, as an agency that keeps the two apart. */
function sendSplit(tls: { certPem: string; keyPem: string }, signing: AgencyClient, n: number): Promise<HubAnswer> {
  const message = declaration(n);
  const headers = signing.signedHeaders(message);
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hub.agencyPort}/v1/messages`, {
      method: 'POST', cert: tls.certPem, key: tls.keyPem, ca: customs.credentials.caPem, headers: { ...headers, 'content-length': String(message.body.length) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(message.body);
  });
}

test('separate TLS and signing certificates: revoking the signing one refuses the next message, naming it', async () => {
  const issue = async (profile: string) => {
    const issued = await swx(['pki', 'issue', 'MOF', '--profile', profile, '--data', hub.dataDir]);
    assert.is(issued.code, 0, issued.stderr);
    const { certPath, keyPath } = JSON.parse(issued.stdout);
    return { certPath, certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
  };
  const tls = await issue('tls-client');
  const signing = await issue('signing');
  assert.is((await hub.admin('PUT', '/api/partners/MOF', { name: 'Ministry of Finance', certificates: [tls.certPem, signing.certPem] })).status, 200);
  const signer = new AgencyClient(`https://localhost:${hub.agencyPort}`, { ...signing, caPem: customs.credentials.caPem });
  clients.push(signer);
  assert.is((await sendSplit(tls, signer, 11)).status, 202);
  assert.is((await swx(['pki', 'revoke', '--cert', signing.certPath, '--data', hub.dataDir])).code, 0);
  let refused: HubAnswer | undefined;
  await waitFor('the revocation to reach the hub', async () => (refused = await sendSplit(tls, signer, 12)).status !== 202, 15_000);
  await expectRefused(refused!, 401, 'SWX_CERT_REVOKED');
  assert.match(String(refused!.body.detail), /^the signing certificate .* of MOF: /);
});

test('a certificate issued for signing only, used as the TLS client certificate: 401 SWX_CERT_USAGE with evidence', async () => {
  const issued = await swx(['pki', 'issue', 'SIGNER', '--profile', 'signing', '--data', hub.dataDir]);
  assert.is(issued.code, 0, issued.stderr);
  const { certPath, keyPath } = JSON.parse(issued.stdout);
  const certPem = readFileSync(certPath, 'utf8');
  assert.not.ok(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'pki/ca/cert.pem', certPath], hub.dataDir).ok, 'openssl refuses it as a TLS client too');
  assert.is((await hub.admin('PUT', '/api/partners/SIGNER', { name: 'Signing only', certificates: [certPem] })).status, 200);
  const client = new AgencyClient(`https://localhost:${hub.agencyPort}`, { certPem, keyPem: readFileSync(keyPath, 'utf8'), caPem: customs.credentials.caPem });
  clients.push(client);
  const answer = await client.send(declaration(5));
  await expectRefused(answer, 401, 'SWX_CERT_USAGE');
  assert.match(String(answer.body.detail), /TLS client certificate .* of SIGNER: .*not issued for TLS client authentication/);
});

test('an outside CA imported with `swx pki import`: its agency is served while its CRL is current or within grace, then 503 SWX_CERT_REVOCATION_UNKNOWN', async () => {
  const work = tempDir('outside-ca');
  let down = false;
  let crl = Buffer.alloc(0);
  const server: Server = createServer((_req, res) => { if (down) res.socket?.destroy(); else res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as AddressInfo).port;
    mkdirSync(join(work, 'newcerts'));
    writeFileSync(join(work, 'index.txt'), '');
    writeFileSync(join(work, 'serial'), '2000\n');
    writeFileSync(join(work, 'crlnumber'), '01\n');
    writeFileSync(join(work, 'ca.cnf'), [
      '[ca]', 'default_ca = outside', '[outside]', `dir = ${work}`, 'database = $dir/index.txt', 'new_certs_dir = $dir/newcerts',
      'serial = $dir/serial', 'crlnumber = $dir/crlnumber', 'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'default_md = sha256',
      'policy = anything', 'default_days = 30', '[anything]', 'organizationName = optional', 'commonName = supplied',
      '[agency]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth,emailProtection',
      `crlDistributionPoints = URI:http://127.0.0.1:${port}/outside.crl`,
    ].join('\n'));
    const must = (args: string[]) => { const result = openssl(args, work); assert.ok(result.ok, result.out); };
    must(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/O=Ministry of Outside/CN=Outside Root', '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    must(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'agency.key', '-subj', '/O=Ministry of Outside/CN=OUTSIDER', '-out', 'agency.csr']);
    must(['ca', '-batch', '-config', 'ca.cnf', '-extensions', 'agency', '-in', 'agency.csr', '-out', 'agency.pem', '-notext']);

    // Until the CA is imported the agency is refused as untrusted; the import is validated and picked up by the hub.
    const certPem = readFileSync(join(work, 'agency.pem'), 'utf8');
    assert.is((await hub.admin('PUT', '/api/partners/OUTSIDER', { name: 'Outside agency', certificates: [certPem] })).status, 200);
    const client = new AgencyClient(`https://localhost:${hub.agencyPort}`, { certPem, keyPem: readFileSync(join(work, 'agency.key'), 'utf8'), caPem: customs.credentials.caPem });
    clients.push(client);
    await expectRefused(await client.send(declaration(6)), 401, 'SWX_CERT_UNTRUSTED');
    const imported = await swx(['pki', 'import', join(work, 'ca.pem'), '--anchor', '--data', hub.dataDir]);
    assert.is(imported.code, 0, imported.stderr);
    assert.is(JSON.parse(imported.stdout).imported[0].subject, 'O=Ministry of Outside, CN=Outside Root');

    // A CRL current for 12 seconds; the hub fetches it at the first send from this agency.
    must(['ca', '-config', 'ca.cnf', '-gencrl', '-crlsec', '12', '-out', 'crl.pem']);
    must(['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der']);
    crl = readFileSync(join(work, 'crl.der'));
    const nextUpdate = new Date(openssl(['crl', '-in', 'crl.pem', '-noout', '-nextupdate'], work).out.trim().replace('nextUpdate=', '')).getTime();
    assert.ok(nextUpdate > Date.now(), 'CRL current');
    await waitFor('the hub to trust the imported CA', async () => (await client.send(declaration(7))).status === 202, 10_000);
    down = true;

    await sleep(Math.max(0, nextUpdate + 1_500 - Date.now()));
    const stale = await client.send(declaration(8));
    assert.is(stale.status, 202, `within the grace period: ${JSON.stringify(stale.body)}`);
    const metrics = await (await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`)).text();
    const seconds = Number(new RegExp(`swx_crl_stale_seconds\\{crl="http://127\\.0\\.0\\.1:${port}/outside\\.crl"\\} (\\d+)`).exec(metrics)?.[1]);
    assert.ok(seconds >= 1, `stale gauge set: ${seconds}`);

    await sleep(Math.max(0, nextUpdate + (graceSeconds + 1.5) * 1000 - Date.now()));
    const unknown = await client.send(declaration(9));
    await expectRefused(unknown, 503, 'SWX_CERT_REVOCATION_UNKNOWN');
    assert.match(String(unknown.body.detail), /grace period of 6 s is over/);
    assert.match(hub.output(), /CRL past its nextUpdate and not refreshed: serving it within the grace period/);
    assert.match(hub.output(), /CRL past its grace period and not refreshed/);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('`swx pki crl` shows the hub CRL with both revocations and the outside CRL past its grace period, as openssl reads them', async () => {
  // The command reads the folder's settings as the hub does: the same grace period.
  const status = await swx(['pki', 'crl', '--data', hub.dataDir], { SWX_CRL_GRACE_SECONDS: String(graceSeconds) });
  assert.is(status.code, 0, status.stderr);
  const { crls } = JSON.parse(status.stdout);
  const own = crls.find((info: any) => info.source.startsWith('hub CA'));
  const text = openssl(['crl', '-in', 'pki/crl.pem', '-noout', '-text'], hub.dataDir).out;
  assert.is(own.crlNumber, /CRL Number:\s+(\d+)/.exec(text)?.[1]);
  assert.is(own.entries.length, [...text.matchAll(/Serial Number: /g)].length);
  assert.is(own.entries.length, 3, 'CUSTOMS, NTA and the signing certificate of MOF');
  assert.is(own.state, 'current');
  const outside = crls.find((info: any) => info.source.endsWith('/outside.crl'));
  assert.is(outside.state, 'expired');
  assert.ok(outside.lastError, 'the failed refresh is on record');
});

test.run();
