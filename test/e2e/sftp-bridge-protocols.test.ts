// Protocol bridging from the hub's SFTP server to every way a requester receives: files a provider uploads with
// OpenSSH's sftp into outbox/<channel>/ (the detached signature, then NAME.part renamed to NAME) reach each requester of
// the channel once, by its own protocol: REST push, the REST pull inbox, SFTP push into its own sshd, SFTP pull from the
// hub's inbox/, an AS4 MSH and an ebMS 2.0 MSH (each on its own endpoint and PartyId). A small file travels inline and
// one over limits.inlinePayloadBytes from the Object Store. Every leg is judged by the bytes the requester kept (their
// SHA-256 the uploaded file's) and by its delivered evidence, whose receipt is that protocol's own.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startAs4Gateway, startEbms2Gateway, type Gateway } from '../../app/demo-gateways.ts';
import { startSshd, type Sshd } from '../../app/sshd.ts';
import { swxServiceType } from '../../connectors/ebms2/index.ts';
import { hubClientKey } from '../../connectors/sftp/client/index.ts';
import { issueAgency, loadPki, thumbprint, type Credential } from '../../engine/pki/index.ts';
import { addAgency, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { SftpAgencySide } from '../helpers/sftp.ts';

const channel = 'port-calls';
const service = `exchange.${channel}`;
const inlineLimit = 64 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const gatewayParty = (id: string) => ({ id: `${id.toLowerCase()}-gw`, type: 'urn:example:party' });

let hub: HubProcess;
let side: SftpAgencySide;
let customs: TestAgency;
let customsKey: string;
/** REST push, with its reference receiver. */
let boft: TestAgency;
/** REST pull: it collects from its inbox at the hub. */
let afa: TestAgency;
/** SFTP pull: it collects from inbox/ on the hub's SFTP server. */
let mpb: TestAgency;
let mpbKey: string;
/** SFTP push: the hub writes into its own sshd. */
let ports: Credential;
let portsServer: Sshd;
let portsInbox: string;
/** AS4 and ebMS 2.0: an MSH each, receiving from the hub. */
let fa: Credential;
let boca: Credential;
let faGateway: Gateway;
let bocaGateway: Gateway;
let caPem: string;
const requesters = ['BOFT', 'AFA', 'MPB', 'PORTS', 'FA', 'BOCA'];

/** Each requester's kept files: the SHA-256 of what it stored, by message id, and how often each arrived. */
const kept = new Map(requesters.map((id) => [id, new Map<string, { sha256: string; times: number }>()]));
const keep = (requester: string, id: string, bytes: Buffer | string) => {
  const got = kept.get(requester)!;
  const digest = typeof bytes === 'string' ? bytes : sha256(bytes);
  got.set(id, { sha256: digest, times: (got.get(id)?.times ?? 0) + 1 });
};

/** The uploads: a small CSV carried inline, and bytes over the inline limit kept in the Object Store. */
const files = [
  { name: 'calls-0001.csv', content: Buffer.from('vessel,port,eta\nEVER GIVEN,KHH,2026-12-08T06:00Z\nYM WELLNESS,TPE,2026-12-08T09:30Z\n') },
  { name: 'manifest-0002.bin', content: randomBytes(inlineLimit * 5 + 123) },
];
const uploaded = new Map<string, string>();

test.before(async () => {
  const dataDir = tempDir('sftp-bridge-protocols');
  // An RSA signing key, as eDelivery AS4 1.x and ebMS 2.0's RSA-SHA256 ask; the hub's PartyIds in its ebMS 2.0 agreements: it sends to BOCA's MSH.
  writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ connectors: { ebms2: { partyIds: [{ id: 'swx-hub', type: 'urn:swx:hub' }] } } }));
  hub = await startHubProcess({ dataDir, env: { SWX_PKI_ALG: 'rsa', SWX_INLINE_PAYLOAD_BYTES: String(inlineLimit) } });
  const pkiDir = join(hub.dataDir, 'pki');
  const pki = await loadPki(pkiDir);
  caPem = pki.ca.certPem;
  side = new SftpAgencySide(hub);

  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  customsKey = side.sshKey('customs');
  await side.register('CUSTOMS', customsKey);
  boft = await addAgency(hub, 'BOFT', { onMessage: (entry) => keep('BOFT', entry.id, entry.sha256) });
  afa = await addAgency(hub, 'AFA', { receive: 'pull' });
  mpb = await addAgency(hub, 'MPB', { receive: 'pull' });
  mpbKey = side.sshKey('mpb');
  await side.register('MPB', mpbKey);

  const put = async (id: string, entry: Record<string, unknown>) => {
    const answer = await hub.admin('PUT', `/api/partners/${id}`, entry);
    assert.is(answer.status, 200, `${id}: ${JSON.stringify(answer.body)}`);
  };
  // PORTS's own SFTP server, which authorizes the hub's client key.
  ports = await issueAgency(pkiDir, 'PORTS');
  portsServer = await startSshd(tempDir('sftp-bridge-ports'), [hubClientKey(hub.dataDir, 'hub').publicKey]);
  portsInbox = join(portsServer.root, 'inbox');
  mkdirSync(portsInbox, { recursive: true });
  await put('PORTS', {
    name: 'Port authority (own SFTP server)', certificates: [ports.certPem],
    endpoints: { sftp: { remote: { host: '127.0.0.1', port: portsServer.port, user: portsServer.user, hostKeyFingerprint: portsServer.fingerprint, inboxDir: portsInbox } } },
  });

  fa = await issueAgency(pkiDir, 'FA', { alg: 'rsa' });
  faGateway = await startAs4Gateway({ id: 'FA', certPem: fa.certPem, keyPem: fa.keyPem, caPem, hubSignCertPem: pki.hubSign.certPem, inboxDir: join(hub.dataDir, 'fa-msh'), onMessage: (entry) => keep('FA', entry.id, entry.sha256) });
  await put('FA', {
    name: 'Fisheries Agency (AS4 MSH)', certificates: [fa.certPem],
    endpoints: { as4: {
      url: `https://localhost:${faGateway.port}/as4`, partyIds: [gatewayParty('FA')],
      // An SFTP upload's action is deliver.
      services: [{ service: `urn:example:${service}`, actions: ['deliver'], swx: service }],
      security: { sign: true, encrypt: false },
    } },
  });

  boca = await issueAgency(pkiDir, 'BOCA', { alg: 'rsa' });
  bocaGateway = await startEbms2Gateway({ id: 'BOCA', certPem: boca.certPem, keyPem: boca.keyPem, caPem, hubSignCertPem: pki.hubSign.certPem, inboxDir: join(hub.dataDir, 'boca-msh'), onMessage: (entry) => keep('BOCA', entry.id, entry.sha256) });
  const url = `https://localhost:${bocaGateway.port}/msh`;
  await put('BOCA', {
    name: 'Bureau of Consular Affairs (ebMS 2.0 MSH)', certificates: [boca.certPem],
    endpoints: { ebms2: {
      cpaId: 'swx-boca', partyIds: [gatewayParty('BOCA')], roles: ['exchange'], url, defaultChannel: 'https',
      channels: { https: {
        transport: 'HTTP', url, syncReplyMode: 'mshSignalsOnly', ackRequested: 'always', ackSignatureRequested: 'always', duplicateElimination: 'always',
        reliability: { retries: 3, retryIntervalMs: 2000, persistDurationMs: 24 * 3600 * 1000 },
        signature: { algorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', weak: false },
      } },
      services: [{ service, type: swxServiceType, role: 'exchange', canSend: [], canReceive: [{ action: 'deliver', channels: ['https'] }] }],
    } },
  });

  const registered = await hub.admin('PUT', `/api/channels/${channel}`, { name: 'Port calls', dataset: 'port-calls', providers: ['CUSTOMS'], requesters });
  assert.is(registered.status, 200, JSON.stringify(registered.body));
});

test.after(async () => {
  for (const agency of [customs, boft, afa, mpb]) { agency?.client.close(); await agency?.receiver?.close(); }
  await faGateway?.close();
  await bocaGateway?.close();
  await hub?.stop();
  await portsServer?.stop();
});

/** Takes what waits in AFA's inbox at the hub over REST until `ids` are kept: each downloaded, checked and acknowledged. */
async function collectByRest(ids: string[]): Promise<void> {
  await waitFor('AFA collected every item over REST', async () => {
    const { messages } = await afa.client.inbox({ max: 10, wait: 1 });
    for (const message of messages) {
      const file = join(afa.inboxDir, `${message.id.replace(/[^A-Za-z0-9_.-]/g, '_')}.bin`);
      mkdirSync(afa.inboxDir, { recursive: true });
      await afa.client.download(message, file);
      keep('AFA', message.id, readFileSync(file));
      await afa.client.acknowledge([message]);
    }
    return ids.every((id) => kept.get('AFA')!.has(id));
  }, 60_000);
}

/** Takes what waits in MPB's inbox/ on the hub's SFTP server with OpenSSH's sftp: fetched, checked with sha256sum, signed back. */
async function collectBySftp(ids: string[]): Promise<void> {
  await waitFor('MPB collected every item over SFTP', async () => {
    const listing = await side.sftp('MPB', mpbKey, ['ls -1 /inbox']);
    assert.is(listing.code, 0, listing.out);
    for (const [, name] of listing.out.matchAll(/^(?:\/inbox\/)?(CUSTOMS\.sftp:[A-Za-z0-9_-]+)\.json$/gm)) {
      const fetched = await side.sftp('MPB', mpbKey, ['cd /inbox', `get ${name}`, `get ${name}.json`, `get ${name}.sha256`]);
      assert.is(fetched.code, 0, fetched.out);
      assert.is(spawnSync('sha256sum', ['-c', `${name}.sha256`], { cwd: side.work }).status, 0, `sha256sum -c accepts ${name}`);
      const facts = JSON.parse(readFileSync(join(side.work, `${name}.json`), 'utf8'));
      keep('MPB', facts.id, readFileSync(join(side.work, name!)));
      side.sign(mpb, join(side.work, name!));
      const acknowledged = await side.sftp('MPB', mpbKey, ['cd /inbox', `put ${name}.p7s`]);
      assert.is(acknowledged.code, 0, acknowledged.out);
    }
    return ids.every((id) => kept.get('MPB')!.has(id));
  }, 60_000);
}

test('files uploaded into outbox/<channel>/ with OpenSSH\'s sftp reach every requester once, by its own protocol, byte for byte', async () => {
  for (const { name, content } of files) {
    writeFileSync(join(side.work, name), content);
    side.sign(customs, join(side.work, name));
    const sent = await side.sftp('CUSTOMS', customsKey, [
      `cd /outbox/${channel}`, `put ${name}.p7s`, `put ${name} ${name}.part`, `rename ${name}.part ${name}`, `get /receipts/${name}.receipt.json`,
    ]);
    assert.is(sent.code, 0, sent.out);
    const receipt = JSON.parse(readFileSync(join(side.work, `${name}.receipt.json`), 'utf8'));
    assert.is(receipt.sha256, sha256(content), 'the hub\'s receipt names the SHA-256 uploaded');
    assert.is(receipt.service, service);
    uploaded.set(receipt.id, receipt.sha256);
  }
  const ids = [...uploaded.keys()];
  await Promise.all([collectByRest(ids), collectBySftp(ids)]);
  await waitFor('every push requester kept every item', () => ['BOFT', 'FA', 'BOCA'].every((id) => ids.every((item) => kept.get(id)!.has(item))), 60_000)
    .catch(async (error: Error) => { throw new Error(`${error.message}; ${await progress(ids)}`); });
  await waitFor('both files under their final names in PORTS\'s inbox', () => readdirSync(portsInbox).filter((name) => !name.startsWith('.')).length === ids.length, 60_000);
  for (const name of readdirSync(portsInbox)) {
    const id = ids.find((item) => name.startsWith(item));
    assert.ok(id, `${name} is one of the items`);
    keep('PORTS', id!, readFileSync(join(portsInbox, name)));
  }

  for (const id of ids) {
    for (const requester of requesters) {
      const got = kept.get(requester)!.get(id);
      assert.ok(got, `${requester} kept ${id}`);
      assert.is(got!.sha256, uploaded.get(id), `${requester} kept the bytes uploaded as ${id}`);
      assert.is(got!.times, 1, `${requester} took ${id} once`);
    }
    assert.is(boft.receiver!.deliveriesOf(id), 1, `BOFT's receiver was sent ${id} once`);
    assert.is(faGateway.deliveriesOf(id), 1, `FA's MSH was sent ${id} once`);
    assert.is(bocaGateway.deliveriesOf(id), 1, `BOCA's MSH was sent ${id} once`);
  }
  assert.is(readdirSync(portsInbox).length, ids.length, 'no temporary file left on PORTS\'s server');
  const left = await side.sftp('MPB', mpbKey, ['ls -1 /inbox']);
  assert.not.match(left.out, /CUSTOMS\.sftp:/, 'what MPB acknowledged left its inbox/');
  assert.equal((await afa.client.inbox({ wait: 0 })).messages, [], 'nothing left in AFA\'s inbox');
});

/** Where each item is: who kept it, and its evidence per requester, for a failure's message. */
async function progress(ids: string[]): Promise<string> {
  const lines = [];
  for (const id of ids) {
    const rows = await evidenceOf(hub, id, [], 1_000);
    const stages = rows.map((row) => `${row.stage}${row.to_partner ? `>${row.to_partner}` : ''}${row.code ? ` ${row.code}: ${String(row.detail).slice(0, 200)}` : ''}`);
    lines.push(`${id}: kept by ${requesters.filter((requester) => kept.get(requester)!.has(id)).join(', ')}; evidence ${stages.join(' | ')}`);
  }
  return `${lines.join('\n')}\nthe hub said: ${hub.output().slice(-4000)}`;
}

/** The delivered record of `id` to `requester`: exactly one, and no redelivery. */
async function deliveredOnce(id: string, requester: string): Promise<{ raw: string; signature: string }> {
  let rows: any[] = [];
  await waitFor(`the delivered record of ${id} to ${requester}`, async () => {
    rows = (await evidenceOf(hub, id, ['delivered'])).filter((row) => row.to_partner === requester);
    return rows.some((row) => row.stage === 'delivered');
  }, 30_000);
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 1, `one delivered record of ${id} to ${requester}`);
  assert.is(rows.filter((row) => row.stage === 'redelivered').length, 0, `no redelivery of ${id} to ${requester}`);
  return rows.find((row) => row.stage === 'delivered');
}

const text = (raw: string) => Buffer.from(raw, 'base64').toString('utf8');

test('each leg\'s delivered evidence holds that protocol\'s receipt', async () => {
  assert.ok(uploaded.size === files.length, 'the uploads went through');
  for (const [id, digest] of uploaded) {
    const received = (await evidenceOf(hub, id, ['received'])).find((row) => row.stage === 'received');
    assert.is(received?.protocol, 'sftp');

    const rest = await deliveredOnce(id, 'BOFT');
    assert.match(text(rest.raw), /^HTTP 2\d\d\nsignature-input: .*\nsignature: /, 'BOFT\'s receiver\'s signed answer as received');
    assert.is(JSON.parse(rest.signature).keyId, boft.credential.thumbprint, 'signed by BOFT');

    const pulled = await deliveredOnce(id, 'AFA');
    assert.ok(text(pulled.raw).startsWith('POST /v1/inbox/ack\n'), 'AFA\'s signed acknowledgement');
    assert.is(JSON.parse(pulled.signature).keyId, afa.credential.thumbprint);

    const sftpPulled = await deliveredOnce(id, 'MPB');
    assert.match(text(sftpPulled.raw), new RegExp(`^SFTP acknowledgement: MPB uploaded inbox/.*over message ${id.replace(/[.:]/g, '\\$&')} .*SHA-256 ${digest}`));

    // The hub's signed record of the transfer into PORTS's server, judged by openssl against the hub's CA.
    const pushed = await deliveredOnce(id, 'PORTS');
    const { transfer, hubSignature } = JSON.parse(text(pushed.raw));
    assert.is(transfer.sha256, digest);
    assert.is(transfer.hostKey, portsServer.fingerprint, 'the host key it spoke to is the pinned one');
    assert.is(transfer.duplicate, false);
    const signed = join(side.work, `${transfer.file.split('/').pop()}.transfer.p7s`);
    writeFileSync(signed, Buffer.from(hubSignature, 'base64'));
    writeFileSync(join(side.work, 'ca.pem'), caPem);
    const opened = spawnSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', signed, '-CAfile', join(side.work, 'ca.pem'), '-purpose', 'any'], { encoding: 'utf8' });
    assert.is(opened.status, 0, opened.stderr);
    assert.equal(JSON.parse(opened.stdout), transfer, 'the signed record is the one evidenced');

    const as4 = await deliveredOnce(id, 'FA');
    assert.match(text(as4.raw), /<eb:Receipt>.*NonRepudiationInformation/s, 'FA\'s AS4 non-repudiation Receipt');
    const as4Signature = JSON.parse(as4.signature);
    assert.is(as4Signature.scheme, 'xmldsig');
    assert.is(thumbprint(as4Signature.certificate), fa.thumbprint, 'signed by FA\'s registered certificate');

    const ebms2 = await deliveredOnce(id, 'BOCA');
    assert.match(text(ebms2.raw), /<eb:Acknowledgment[^>]*>.*<eb:RefToMessageId>/s, 'BOCA\'s ebMS 2.0 Acknowledgment');
    assert.is(JSON.parse(ebms2.signature).scheme, 'xmldsig');
  }
});

test.run();
