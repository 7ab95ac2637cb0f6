// The connection test of a partner (POST /api/partners/:partner/test, `swx partner test`) against real endpoints: an
// agency's HTTPS receiver that asks for the hub's client certificate, a closed port, and a real sshd whose host key is
// pinned right or wrong; operators only, audited.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startSshd, type Sshd } from '../../app/sshd.ts';
import { hubClientKey } from '../../connectors/sftp/client/index.ts';
import { issueCertificate } from '../../engine/pki/index.ts';
import { consoleRequest, roleTokens } from '../helpers/console.ts';
import { addAgency, freePort, startHubProcess, swxCommand, tempDir, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import type { Role } from '../../dashboards/users.ts';

let hub: HubProcess;
let tokens: Record<Role, string>;
let customs: TestAgency;
let sshd: Sshd;

const probe = (role: Role, partner: string) => consoleRequest(hub, 'POST', `/api/partners/${partner}/test`, { bearer: tokens[role] });

/** Registers a partner of its own certificate with these endpoints. */
async function register(id: string, endpoints: Record<string, unknown>): Promise<void> {
  const { certPem } = await issueCertificate(join(hub.dataDir, 'pki'), id);
  const answer = await hub.admin('PUT', `/api/partners/${id}`, { name: id, certificates: [certPem], endpoints });
  assert.is(answer.status, 200, JSON.stringify(answer.body));
}

test.before(async () => {
  hub = await startHubProcess();
  tokens = await roleTokens(hub);
  customs = await addAgency(hub, 'CUSTOMS');
  // The hub's client key as the running hub would make it; the agency's sshd authorizes its public half.
  sshd = await startSshd(join(tempDir('partner-test'), 'sshd'), [hubClientKey(hub.dataDir, 'hub').publicKey]);
});

test.after(async () => {
  await customs?.receiver?.close();
  await sshd?.stop();
  await hub?.stop();
});

test('a live HTTPS receiver: the TLS handshake with the hub\'s client certificate succeeds and names the peer', async () => {
  const answer = await probe('operator', 'CUSTOMS');
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.body.partner, 'CUSTOMS');
  const rest = answer.body.results.find((result: any) => result.protocol === 'rest');
  assert.ok(rest, JSON.stringify(answer.body));
  assert.is(rest.ok, true, rest.detail);
  assert.match(rest.detail, /CN=/);
  assert.match(rest.detail, /valid .+ to .+/);
  assert.type(rest.ms, 'number');

  const cli = await swxCommand(['partner', 'test', 'CUSTOMS', '--data', hub.dataDir], { SWX_OPS_PORT: String(hub.opsPort) });
  assert.is(cli.code, 0, cli.stderr);
  assert.is(JSON.parse(cli.stdout).results.find((result: any) => result.protocol === 'rest').ok, true);

  const audit = await consoleRequest(hub, 'GET', '/api/audit?limit=10000', { bearer: tokens.auditor });
  const entries = audit.body.filter((row: any) => row.action === 'POST /api/partners/:partner/test' && row.target === 'partners/CUSTOMS/test');
  assert.ok(entries.length >= 1, 'the test is in the audit log');
  assert.is(JSON.parse(entries[0].after).partner, 'CUSTOMS');

  for (const role of ['auditor', 'analyst', 'admin'] as const) assert.is((await probe(role, 'CUSTOMS')).status, 403, role);
  assert.is((await probe('operator', 'NOBODY')).status, 404);
});

test('a closed port: not ok, and the detail says the connection was refused', async () => {
  const closed = await freePort();
  await register('CLOSED', { rest: { url: `https://127.0.0.1:${closed}/inbox` } });
  const answer = await probe('operator', 'CLOSED');
  assert.is(answer.status, 200, answer.text);
  const [rest] = answer.body.results;
  assert.is(rest.ok, false);
  assert.match(rest.detail, new RegExp(`127\\.0\\.0\\.1:${closed}: ECONNREFUSED`));

  const cli = await swxCommand(['partner', 'test', 'CLOSED', '--data', hub.dataDir], { SWX_OPS_PORT: String(hub.opsPort) });
  assert.is(cli.code, 1, 'a failed test is a failed command');
});

test('an SFTP server of the partner\'s: logged in with the pinned host key; refused with a wrong one', async () => {
  const remote = { host: '127.0.0.1', port: sshd.port, user: sshd.user, inboxDir: join(sshd.root, 'inbox') };
  await register('SFTPOK', { sftp: { remote: { ...remote, hostKeyFingerprint: sshd.fingerprint } } });
  const right = await probe('operator', 'SFTPOK');
  assert.is(right.status, 200, right.text);
  assert.equal(right.body.results.map((result: any) => [result.protocol, result.ok]), [['sftp', true]], JSON.stringify(right.body));
  assert.ok(right.body.results[0].detail.includes(sshd.fingerprint));

  const wrongKey = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
  await register('SFTPWRONG', { sftp: { remote: { ...remote, hostKeyFingerprint: wrongKey } } });
  const wrong = await probe('operator', 'SFTPWRONG');
  assert.is(wrong.body.results[0].ok, false);
  assert.ok(wrong.body.results[0].detail.includes(sshd.fingerprint), wrong.body.results[0].detail);
  assert.ok(wrong.body.results[0].detail.includes(wrongKey), wrong.body.results[0].detail);
});

test.run();
