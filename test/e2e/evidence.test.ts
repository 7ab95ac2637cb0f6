// Evidence as an auditor meets it: every record time-stamped (RFC 3161 over Merkle roots), a message's bundle
// exported with `swx evidence export`, checked by `swx evidence verify` and by the stock-tool commands its VERIFY.md
// gives (openssl cms/ts/dgst/verify, sha256sum, python3); tampering caught; a TSA outage degrades, then recovers.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgencyClient } from '../../connectors/rest/agency.ts';
import { verifyBundle } from '../../engine/evidence-bundle.ts';
import { initPki } from '../../engine/pki/index.ts';
import { openStore } from '../../engine/store/index.ts';
import { readTar, writeTar } from '../../engine/tar.ts';
import { exportCheckedBundle, stampedEvidence } from '../helpers/bundle.ts';
import { addAgency, addService, cleanEnv, evidenceOf, freePort, startHubProcess, swxBin, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let fda: TestAgency;
let work: string;

test.before(async () => {
  work = tempDir('evidence');
  hub = await startHubProcess({ env: { SWX_STAMP_INTERVAL_MS: '200' } });
  customs = await addAgency(hub, 'CUSTOMS');
  boft = await addAgency(hub, 'BOFT');
  fda = await addAgency(hub, 'FDA');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  const topic = await hub.admin('PUT', '/api/topics/recall', { name: 'Recalls', notifiers: ['CUSTOMS'], receivers: ['BOFT', 'FDA'] });
  assert.is(topic.status, 200, JSON.stringify(topic.body));
});

test.after(async () => {
  for (const agency of [customs, boft, fda]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

function swx(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [swxBin, ...args], { env: { ...cleanEnv(), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function sendDeclaration(body: string): Promise<string> {
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'import-declaration', contentType: 'application/json', body: Buffer.from(body) });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  return String(answer.body.id);
}

test('every record is time-stamped; the bundle verifies in swx and with the stock tools VERIFY.md names', async () => {
  const declaration = JSON.stringify({ declarationNo: 'AA/BE/13/101/00002', type: 'G1', value: 990 });
  const id = await sendDeclaration(declaration);
  const rows = await stampedEvidence(hub, id, ['received', 'verified', 'routed', 'delivered']);
  assert.ok(rows.every((row) => /^\d+\/\d+:/.test(row.proof) && row.batch_id !== ''), 'each record keeps its block and inclusion proof');

  const { folder, checks, commands } = await exportCheckedBundle(hub, id, ['received', 'delivered']);
  for (const name of ['manifest signed by the hub', 'files match the manifest', 'message bytes', 'received signature', 'delivered signature', 'content-digest covers message.bin']) {
    assert.ok(checks.some((check) => check.check === name && check.ok), `${name}: ${JSON.stringify(checks)}`);
  }
  assert.ok(checks.some((check) => /^time-stamp stamps\//.test(check.check) && check.ok), 'the RFC 3161 token verifies');
  assert.is(readFileSync(join(folder, 'message.bin'), 'utf8'), declaration);
  for (const tool of ['openssl cms -verify', 'sha256sum -c', 'openssl ts -verify', 'python3 check.py', 'openssl dgst', 'openssl verify']) {
    assert.ok(commands.some((command) => command.startsWith(tool)), `VERIFY.md has ${tool}: ${commands.join('\n')}`);
  }
  const digest = commands.find((command) => command.startsWith('openssl dgst -sha256 -binary message.bin'));
  assert.ok(digest, commands.join('\n'));
  const run = spawnSync('sh', ['-c', digest], { cwd: folder, encoding: 'utf8' });
  assert.ok(readFileSync(join(folder, 'signatures/received-base.txt'), 'utf8').includes(`sha-256=:${run.stdout.trim()}:`), 'the content digest the sender signed is the message bytes');
});

test('a notification\'s bundle holds each receiver\'s signed receipt under its own name, and each verifies', async () => {
  const answer = await customs.client.send({ service: 'notify.recall', action: 'alert', contentType: 'application/json', body: Buffer.from('{"lot":"B-77"}') });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  const id = String(answer.body.id);
  await waitFor('both receivers\' receipts', async () => (await evidenceOf(hub, id, ['delivered'])).filter((row) => row.stage === 'delivered').length === 2, 60_000);
  const { folder, checks, commands } = await exportCheckedBundle(hub, id, ['received', 'delivered']);
  assert.is(checks.filter((check) => check.check === 'delivered signature' && check.ok).length, 2, JSON.stringify(checks));
  assert.ok(checks.every((check) => check.ok), JSON.stringify(checks.filter((check) => !check.ok)));
  for (const receiver of ['BOFT', 'FDA']) {
    assert.ok(commands.some((command) => command.startsWith('openssl') && command.includes(`signatures/delivered-${receiver}-`)), commands.join('\n'));
    const cert = readFileSync(join(folder, `signatures/delivered-${receiver}-cert.pem`), 'utf8');
    assert.is(cert, (receiver === 'BOFT' ? boft : fda).credential.certPem, `${receiver}'s receipt is signed with its own certificate`);
  }
});

test('tampering with a bundle is caught by the manifest, its signature and the record hashes', async () => {
  const id = await sendDeclaration(JSON.stringify({ declarationNo: 'AA/BE/13/101/00003' }));
  await stampedEvidence(hub, id, ['received', 'delivered']);
  const answer = await fetch(`http://127.0.0.1:${hub.opsPort}/api/evidence/bundle/${id}`, { headers: { authorization: `Bearer ${await hub.token()}` } });
  assert.is(answer.status, 200);
  const tar = Buffer.from(await answer.arrayBuffer());
  const pinned = { trustedPem: readFileSync(join(hub.dataDir, 'pki/ca/cert.pem'), 'utf8') };
  assert.is((await verifyBundle(tar, pinned)).valid, true);

  const entries = readTar(tar);
  const records = entries.find((entry) => entry.path.endsWith('/records.jsonl'))!;
  const forged = Buffer.from(records.data.toString('utf8').replace('"stage":"delivered"', '"stage":"rejected"'));
  assert.not.equal(forged, records.data);
  const swapped = entries.map((entry) => entry === records ? { ...entry, data: forged } : entry);
  const edited = await verifyBundle(writeTar(swapped), pinned);
  assert.is(edited.valid, false);
  assert.ok(edited.checks.some((check) => check.check === 'file records.jsonl' && !check.ok), 'the manifest catches the edit');
  assert.ok(edited.checks.some((check) => /^record .*\(rejected\)$/.test(check.check) && !check.ok), 'the record hash catches the edit');

  // A forger who also rewrites the manifest cannot re-sign it.
  const manifestPath = entries.find((entry) => entry.path.endsWith('/manifest.sha256'))!.path;
  const manifest = swapped.map((entry) => entry.path === manifestPath ? { ...entry, data: Buffer.from(entry.data.toString().replace(
    /^[0-9a-f]{64}(?=  records\.jsonl$)/m, spawnSync('sha256sum', { input: forged }).stdout.toString().slice(0, 64))) } : entry);
  const resummed = await verifyBundle(writeTar(manifest), pinned);
  assert.ok(resummed.checks.some((check) => check.check === 'manifest signed by the hub' && !check.ok), JSON.stringify(resummed.checks.slice(0, 3)));

  const folder = join(work, 'tampered');
  mkdirSync(folder);
  writeFileSync(join(folder, 'bundle.tar'), writeTar(swapped));
  spawnSync('tar', ['-xf', 'bundle.tar', '--strip-components=1'], { cwd: folder });
  const check = spawnSync('python3', ['check.py'], { cwd: folder, encoding: 'utf8' });
  assert.is(check.status, 1, check.stdout);
  assert.match(check.stdout, /FAIL  record .*\(rejected\)/);

  const other = await verifyBundle(tar, { trustedPem: readFileSync(join(hub.dataDir, 'pki/tsa/cert.pem'), 'utf8') });
  assert.is(other.valid, false, 'pinned to another CA, the bundle does not verify');
});

test('a bundle for an unknown message is a 404 with SWX_NOT_FOUND', async () => {
  const answer = await hub.admin('GET', '/api/evidence/bundle/NO-SUCH-MESSAGE');
  assert.is(answer.status, 404);
  assert.is(answer.body.code, 'SWX_NOT_FOUND');
});

/** An external TSA: `openssl ts -reply` behind HTTP, as a deployment would point the hub at. */
function opensslTsa(pkiDir: string, port: number): Promise<Server> {
  const config = join(pkiDir, 'openssl-tsa.cnf');
  writeFileSync(config, [
    '[ tsa ]', 'default_tsa = outside', '[ outside ]', `dir = ${pkiDir}`, 'serial = $dir/tsaserial',
    'signer_cert = $dir/tsa/cert.pem', 'signer_key = $dir/tsa/key.pem', 'certs = $dir/ca/cert.pem', 'signer_digest = sha256',
    'default_policy = 1.3.6.1.4.1.99999.1', 'digests = sha256', 'accuracy = secs:1', 'ess_cert_id_alg = sha256', '',
  ].join('\n'));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const query = join(pkiDir, `q-${Date.now()}-${Math.random()}.tsq`);
      writeFileSync(query, Buffer.concat(chunks));
      const reply = spawnSync('openssl', ['ts', '-reply', '-config', config, '-queryfile', query]);
      res.writeHead(reply.status === 0 ? 200 : 500, { 'content-type': 'application/timestamp-reply' });
      res.end(reply.stdout);
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

test('a TSA outage: messages accepted within the grace period, refused after it with SWX_TSA_UNAVAILABLE, stamped once it is back', async () => {
  const dataDir = tempDir('tsa-outage');
  await initPki(join(dataDir, 'pki'), { agencies: [] });
  const tsaPort = await freePort();
  const outage = await startHubProcess({
    dataDir,
    env: {
      SWX_STAMP_INTERVAL_MS: '200', SWX_TSA_GRACE_SECONDS: '3', SWX_TSA_URL: `http://127.0.0.1:${tsaPort}/tsa`,
      SWX_TSA_TRUSTED_PEM: join(dataDir, 'pki/ca/cert.pem'), SWX_LOG_LEVEL: 'fatal',
    },
  });
  const sender = await addAgency(outage, 'CUSTOMS', { receiver: false });
  const receiver = await addAgency(outage, 'BOFT');
  await addService(outage, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  let tsa: Server | undefined;
  try {
    const send = () => sender.client.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from('{"n":1}') });
    const first = await send();
    assert.is(first.status, 202, `within the grace period the hub keeps accepting: ${JSON.stringify(first.body)}`);
    let stamping: any;
    await waitFor('the backlog reported', async () => {
      stamping = (await outage.admin('GET', '/api/evidence/stamping')).body;
      return stamping.unstampedRecords > 0 && /failed|ECONNREFUSED/.test(stamping.lastError ?? '');
    }, 10_000);
    assert.is(stamping.tsa, `http://127.0.0.1:${tsaPort}/tsa`);

    await waitFor('the grace period used up', async () => (await fetch(`http://127.0.0.1:${outage.opsPort}/readyz`)).status === 503, 10_000);
    const refused = await send();
    assert.is(refused.status, 503);
    assert.is(refused.body.code, 'SWX_TSA_UNAVAILABLE');
    const rejected = await evidenceOf(outage, String(refused.body.messageId), 'rejected', 10_000);
    assert.ok(rejected.some((row) => row.stage === 'rejected' && row.code === 'SWX_TSA_UNAVAILABLE'), 'the refusal is evidenced (archived, to be stamped later)');
    const metrics = await (await fetch(`http://127.0.0.1:${outage.opsPort}/metrics`)).text();
    assert.match(metrics, /swx_evidence_unstamped_records [1-9]/);
    assert.match(metrics, /swx_tsa_failures_total [1-9]/);

    // The hub stops with its backlog unstamped; the next start, with the TSA back, finds and stamps it.
    await outage.stop();
    tsa = await opensslTsa(join(dataDir, 'pki'), tsaPort);
    await outage.restart();
    await waitFor('the backlog stamped', async () => (await outage.admin('GET', '/api/evidence/stamping')).body.unstampedRecords === 0, 15_000);
    const rows = await stampedEvidence(outage, String(first.body.id), ['received', 'routed']);
    assert.ok(rows.every((row) => row.tsa === `http://127.0.0.1:${tsaPort}/tsa`));
    const again = new AgencyClient(`https://localhost:${outage.agencyPort}`, sender.credentials);
    try {
      const accepted = await again.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from('{"n":2}') });
      assert.is(accepted.status, 202, 'accepting again once the TSA answers');
    } finally {
      again.close();
    }
  } finally {
    sender.client.close();
    receiver.client.close();
    await receiver.receiver?.close();
    tsa?.close();
    await outage.stop();
  }
});

test('evidence bytes and stored payloads are sealed at rest (AES-256-GCM), readable and exportable, across a key rotation', async () => {
  const dataDir = tempDir('sealed');
  const keyring = join(tempDir('keys'), 'evidence-keys.json');
  assert.is((await swx(['keys', 'rotate', '--keyring', keyring, '--id', 'k1'])).code, 0);
  const env = { SWX_STAMP_INTERVAL_MS: '200', SWX_KEYRING: keyring, SWX_INLINE_PAYLOAD_BYTES: '1024' };
  let sealed = await startHubProcess({ dataDir, env });
  const sender = await addAgency(sealed, 'CUSTOMS');
  const receiver = await addAgency(sealed, 'BOFT');
  await addService(sealed, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  const marker = 'CONFIDENTIAL-MANIFEST-7731';
  const small = Buffer.from(`{"note":"${marker}"}`);
  const large = Buffer.from(`{"note":"${marker}","pad":"${'x'.repeat(4096)}"}`);
  const send = async (body: Buffer) => {
    const answer = await sender.client.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body });
    assert.is(answer.status, 202, `${JSON.stringify(answer.body)}\n${sealed.output().slice(-2000)}`);
    return String(answer.body.id);
  };
  try {
    const smallId = await send(small);
    const largeId = await send(large);
    for (const [id, body] of [[smallId, small], [largeId, large]] as const) {
      await stampedEvidence(sealed, id, ['received', 'delivered']);
      const answer = await fetch(`http://127.0.0.1:${sealed.opsPort}/api/evidence/bundle/${id}`, { headers: { authorization: `Bearer ${await sealed.token()}` } });
      const bundle = Buffer.from(await answer.arrayBuffer());
      const verdict = await verifyBundle(bundle, { trustedPem: readFileSync(join(dataDir, 'pki/ca/cert.pem'), 'utf8') });
      assert.ok(verdict.valid, JSON.stringify(verdict.checks.filter((check) => !check.ok)));
      assert.equal(readTar(bundle).find((entry) => entry.path.endsWith('/message.bin'))!.data, body, 'the bundle carries the opened bytes');
    }
    const received = (await evidenceOf(sealed, smallId, 'received')).find((row) => row.stage === 'received');
    assert.equal(Buffer.from(received.raw, 'base64'), small, 'the operator API opens sealed bytes');

    // Rotation: a new current key; what the old one sealed stays readable.
    await sealed.stop();
    assert.is((await swx(['keys', 'rotate', '--keyring', keyring, '--id', 'k2'])).code, 0);
    sealed = await startHubProcess({ dataDir, env, ports: { agency: sealed.agencyPort, ops: sealed.opsPort, nats: sealed.natsPort } });
    const afterId = await send(small);
    await stampedEvidence(sealed, afterId, ['received']);
    for (const id of [smallId, afterId]) {
      const row = (await evidenceOf(sealed, id, 'received')).find((r) => r.stage === 'received');
      assert.equal(Buffer.from(row.raw, 'base64'), small, `message ${id} readable after rotation`);
    }
  } finally {
    sender.client.close();
    receiver.client.close();
    await receiver.receiver?.close();
    await sealed.stop();
  }
  // At rest, with the hub stopped: ClickHouse holds sealed values under the key current at the time.
  const store = await openStore({ dataDir: join(dataDir, 'chdb') });
  try {
    const rows = await store.query<{ raw: string; stage: string }>("SELECT raw, stage FROM evidence WHERE raw != ''");
    assert.ok(rows.length >= 4, `${rows.length} rows with bytes`);
    assert.ok(rows.every((row) => row.raw.startsWith('swx-enc:v1:k1:') || row.raw.startsWith('swx-enc:v1:k2:')), 'every stored raw is sealed');
    assert.ok(rows.some((row) => row.raw.startsWith('swx-enc:v1:k2:')), 'new evidence is sealed under the new key');
  } finally {
    await store.close();
  }
  // The Object Store keeps the large payload sealed: its plaintext appears in no file of the NATS store.
  const grep = spawnSync('grep', ['-rl', marker, join(dataDir, 'nats')], { encoding: 'utf8' });
  const plainFiles = grep.stdout.split('\n').filter(Boolean).filter((file) => !file.includes('SWX_MSG') && !file.includes('SWX_EVIDENCE'));
  assert.equal(plainFiles, [], 'payload blobs hold no plaintext');
});

test.run();
