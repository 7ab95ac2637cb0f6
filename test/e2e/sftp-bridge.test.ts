// Protocol bridging over an agency's own SFTP server (a real OpenSSH sshd): a REST agency's message is pushed into
// the SFTP agency's inbox folder, and a signed file the SFTP agency drops in its outbox folder is collected by the hub
// and reaches a REST agency; each leg is evidenced, and each message arrives exactly once. An outbox poller that cannot
// reach its agency's server makes the connector unhealthy in /readyz and swx_connector_healthy until it can.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { InboxEntry } from '../../connectors/rest/agency.ts';
import { hubClientKey } from '../../connectors/sftp/client/index.ts';
import { signCms } from '../../engine/trust/index.ts';
import { issueAgency } from '../../engine/pki/index.ts';
import { addAgency, addService, evidenceOf, freePort, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { startSshd, type Sshd } from '../../app/sshd.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
const arrivals: InboxEntry[] = [];
let sshd: Sshd;
let ports: { certPem: string; keyPem: string };
let inbox: string;
let outbox: string;

test.before(async () => {
  hub = await startHubProcess();
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT', { onMessage: (entry) => arrivals.push(entry) });
  // The hub's client key is made once under its data folder; the agency authorizes its public half.
  const hubKey = hubClientKey(hub.dataDir, 'hub');
  sshd = await startSshd(tempDir('swx-sftp-bridge-'), [hubKey.publicKey]);
  inbox = join(sshd.root, 'inbox');
  outbox = join(sshd.root, 'outbox');
  mkdirSync(inbox, { recursive: true });
  mkdirSync(join(outbox, 'ports.manifest', 'BOFT'), { recursive: true });
  ports = await issueAgency(join(hub.dataDir, 'pki'), 'PORTS');
  const registered = await hub.admin('PUT', '/api/partners/PORTS', {
    name: 'Port authority (own SFTP server)',
    certificates: [ports.certPem],
    endpoints: { sftp: { remote: { host: '127.0.0.1', port: sshd.port, user: sshd.user, hostKeyFingerprint: sshd.fingerprint, inboxDir: inbox, outboxDir: outbox, pollIntervalMs: 500 } } },
  });
  assert.is(registered.status, 200, JSON.stringify(registered.body));
  await addService(hub, 'customs.clearance', ['CUSTOMS'], ['PORTS']);
  await addService(hub, 'ports.manifest', ['PORTS'], ['BOFT']);
});

test.after(async () => {
  customs?.client.close();
  boft?.client.close();
  await boft?.receiver?.close();
  await hub?.stop();
  await sshd?.stop();
});

test('REST in, SFTP out: the message lands once under its final name in the agency\'s inbox folder, with its delivery evidenced', async () => {
  const body = Buffer.from(JSON.stringify({ clearance: 'C-1', vessel: 'EVER GIVEN' }));
  const answer = await customs.client.send({ to: 'PORTS', service: 'customs.clearance', action: 'release', contentType: 'application/json', body });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  const id = answer.body.id as string;
  await waitFor('the file in the inbox folder', () => readdirSync(inbox).some((name) => name.startsWith(id) && !name.endsWith('.part')), 60_000);
  const files = readdirSync(inbox);
  assert.is(files.length, 1, `one file, no temporary left: ${files}`);
  assert.ok(readFileSync(join(inbox, files[0]!)).equals(body), 'byte for byte what CUSTOMS sent');
  const delivered = (await evidenceOf(hub, id, 'delivered')).filter((row) => row.stage === 'delivered');
  assert.is(delivered.length, 1, 'one delivery evidenced');
  assert.is(delivered[0].to_partner, 'PORTS');
});

test('SFTP in, REST out: a signed file in the agency\'s outbox folder is collected, removed once stored, and reaches BOFT once', async () => {
  const content = Buffer.from('<manifest xmlns="urn:example:ports"><vessel>EVER GIVEN</vessel><containers>20</containers></manifest>');
  const folder = join(outbox, 'ports.manifest', 'BOFT');
  writeFileSync(join(folder, 'M-7.xml.p7s'), await signCms({ data: content, certPem: ports.certPem, keyPem: ports.keyPem, detached: true }));
  writeFileSync(join(folder, 'M-7.xml'), content);
  await waitFor('BOFT received the manifest', () => arrivals.length > 0, 60_000);
  await waitFor('the file taken away from the outbox', () => !existsSync(join(folder, 'M-7.xml')) && !existsSync(join(folder, 'M-7.xml.p7s')), 30_000);
  assert.is(arrivals.length, 1, 'delivered once');
  assert.is(boft.receiver!.deliveries, 1, 'one delivery reached BOFT\'s receiver');
  const entry = arrivals[0]!;
  assert.is(entry.from, 'PORTS');
  assert.is(createHash('sha256').update(readFileSync(join(boft.inboxDir, `${entry.id}.bin`))).digest('hex'), createHash('sha256').update(content).digest('hex'), 'the bytes the agency signed');
  const rows = await evidenceOf(hub, entry.id, ['received', 'verified', 'routed', 'delivered']);
  for (const stage of ['received', 'delivered']) assert.is(rows.filter((row) => row.stage === stage).length, 1, `one ${stage} record`);
  assert.is(rows.find((row) => row.stage === 'received').protocol, 'sftp');
});

const readyz = async () => (await fetch(`http://127.0.0.1:${hub.opsPort}/readyz`)).json() as Promise<{ status: string; connectors: Record<string, { ok: boolean; detail?: string }> }>;
const healthy = async () => /swx_connector_healthy\{protocol="sftp"\} (\d)/.exec(await (await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`)).text())?.[1];

test('an outbox poller that cannot reach its agency\'s server shows in /readyz and swx_connector_healthy, and recovers with it', async () => {
  assert.is((await readyz()).connectors.sftp?.ok, true);
  const closed = await freePort(); // nothing listens there
  const remote = { host: '127.0.0.1', port: closed, user: sshd.user, hostKeyFingerprint: sshd.fingerprint, outboxDir: outbox, pollIntervalMs: 300, connectTimeoutMs: 1_000 };
  const { certPem } = await issueAgency(join(hub.dataDir, 'pki'), 'LOST');
  const put = (port: number) => hub.admin('PUT', '/api/partners/LOST', { name: 'Agency whose server is down', certificates: [certPem], endpoints: { sftp: { remote: { ...remote, port } } } });
  const registered = await put(closed);
  assert.is(registered.status, 200, JSON.stringify(registered.body));
  await waitFor('the SFTP connector unhealthy', async () => (await readyz()).connectors.sftp?.ok === false, 20_000);
  const ready = await readyz();
  assert.is(ready.status, 'ready', 'the hub stays ready for its other partners');
  assert.match(ready.connectors.sftp!.detail ?? '', `LOST's outbox at 127.0.0.1:${closed}`);
  assert.is(await healthy(), '0');
  // The agency's server is back (the same sshd): the next listing succeeds and the connector is healthy again.
  assert.is((await put(sshd.port)).status, 200);
  await waitFor('the SFTP connector healthy again', async () => (await readyz()).connectors.sftp?.ok === true, 20_000);
  assert.is(await healthy(), '1');
  assert.is((await hub.admin('DELETE', '/api/partners/LOST')).status, 200);
});

test.run();
