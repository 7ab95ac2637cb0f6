// The swx command as its users type it: help, partner and service admin, send and sign (with real curl), and the dead-letter list and resend.
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPki } from '../../engine/pki/index.ts';
import { startAgencyReceiver } from '../../connectors/rest/agency.ts';
import { addAgency, freePort, startHubProcess, swxCommand, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';


const run = promisify(execFile);
const swx = swxCommand;

test('swx --help lists every command with a one-line description', async () => {
  const { code, stdout } = await swx(['--help']);
  assert.is(code, 0);
  for (const command of ['start', 'demo', 'send', 'sign', 'pki', 'partner', 'catalogue', 'service', 'dlq', 'evidence']) {
    assert.match(stdout, new RegExp(`^  ${command} +\\S.+$`, 'm'), command);
  }
});

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let admin: NodeJS.ProcessEnv;

test('swx partner and service commands manage the registry of a running hub', async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_BACKOFF_MS: '100,200' } });
  // The operator token comes from the hub's data folder, as for an operator on the hub's machine.
  admin = { SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}`, SWX_DATA: hub.dataDir };
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  // A certificate of its own: registering CUSTOMS's would make it authenticate as NTA.
  const issued = await swx(['pki', 'issue', 'NTA', '--data', hub.dataDir]);
  assert.is(issued.code, 0, issued.stderr);
  const ntaCert = JSON.parse(issued.stdout).certPath as string;
  const added = await swx(['partner', 'add', '--id', 'NTA', '--name', 'National Treasury Administration', '--cert', ntaCert], admin);
  assert.is(added.code, 0, added.stderr);
  assert.is(JSON.parse(added.stdout).id, 'NTA');
  const listed = JSON.parse((await swx(['partner', 'list'], admin)).stdout);
  assert.equal(listed.map((p: { id: string }) => p.id), ['BOFT', 'CUSTOMS', 'NTA']);
  assert.is(JSON.parse((await swx(['partner', 'show', 'BOFT'], admin)).stdout).endpoints.rest.url, `https://localhost:${boft.receiver!.port}/inbox`);
  await swx(['partner', 'add', '--id', 'NTA', '--name', 'NTA renamed', '--cert', ntaCert], admin);
  const history = JSON.parse((await swx(['partner', 'history', 'NTA'], admin)).stdout);
  assert.equal(history.map((h: { value: { name: string } }) => h.value.name), ['National Treasury Administration', 'NTA renamed']);
  const bad = await swx(['partner', 'add', '--id', '../x', '--name', 'x', '--cert', customs.credential.certPath], admin);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /SWX_BAD_REQUEST/);
  const service = await swx(['service', 'add', '--id', 'customs.declaration', '--name', 'Declarations', '--from', 'CUSTOMS', '--to', 'BOFT'], admin);
  assert.is(service.code, 0, service.stderr);
  assert.is(JSON.parse((await swx(['service', 'list'], admin)).stdout)[0].id, 'customs.declaration');
});

test('swx topic and swx channel manage topics and channels: add, list, join, leave, history, resend', async () => {
  const run = async (args: string[]) => {
    const result = await swx(args, admin);
    assert.is(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  const topic = await run(['topic', 'add', '--id', 'rice-inspection', '--name', 'Imported rice failing inspection', '--name-zh', '進口稻米檢驗不合格', '--notifiers', 'CUSTOMS', '--receivers', 'BOFT,NTA']);
  assert.equal([topic.notifiers, topic.receivers, topic.twoWay], [['CUSTOMS'], ['BOFT', 'NTA'], false]);
  assert.equal((await run(['topic', 'list'])).map((t: { id: string }) => t.id), ['rice-inspection']);
  await run(['channel', 'add', '--id', 'tariff-data', '--name', 'Tariff data', '--dataset', 'tariff data', '--providers', 'CUSTOMS', '--requesters', 'BOFT']);
  assert.equal((await run(['channel', 'join', 'tariff-data', 'NTA'])).requesters, ['BOFT', 'NTA']);
  assert.equal((await run(['channel', 'leave', 'tariff-data', 'BOFT'])).requesters, ['NTA']);
  assert.is((await run(['channel', 'history', 'tariff-data'])).length, 3);
  assert.equal(await run(['channel', 'resend', 'tariff-data', '--to', 'NTA', '--since', '2026-01-01T00:00:00Z']), { channel: 'tariff-data', requester: 'NTA', since: '2026-01-01T00:00:00Z', resent: 0 });
  const unknown = await swx(['channel', 'join', 'tariff-data', 'NOBODY'], admin);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /SWX_NOT_FOUND/);
  await run(['topic', 'remove', 'rice-inspection']);
  assert.equal(await run(['topic', 'list']), []);
});

test('swx operator commands send the hub token from --data, SWX_DATA or SWX_ADMIN_TOKEN, and are refused without it', async () => {
  const url = { SWX_ADMIN_URL: admin.SWX_ADMIN_URL };
  const ids = (result: { stdout: string }) => JSON.parse(result.stdout).map((p: { id: string }) => p.id);
  assert.ok(ids(await swx(['partner', 'list', '--data', hub.dataDir], url)).includes('NTA'));
  assert.ok(ids(await swx(['partner', 'list'], { ...url, SWX_ADMIN_TOKEN: await hub.token() })).includes('NTA'));
  const none = await swx(['dlq', 'list', '--data', tempDir('no-token')], url);
  assert.is(none.code, 1);
  assert.match(none.stderr, /no operator token: .*ops-token does not exist/);
  const wrong = await swx(['evidence', 'list'], { ...url, SWX_ADMIN_TOKEN: 'x'.repeat(43) });
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /SWX_OPS_UNAUTHORIZED/);
});

test('swx send and the curl request printed by swx sign are both accepted and delivered', async () => {
  const dir = tempDir('send');
  const file = join(dir, 'decl.json');
  writeFileSync(file, JSON.stringify({ declarationNo: 'AA/BE/13/101/00001' }));
  const creds = ['--cert', customs.credential.certPath, '--key', customs.credential.keyPath, '--ca', join(hub.dataDir, 'pki', 'ca', 'cert.pem')];
  const common = ['--to', 'BOFT', '--service', 'customs.declaration', '--content-type', 'application/json', '--hub', `https://localhost:${hub.agencyPort}`, ...creds];
  const sent = await swx(['send', ...common, file]);
  assert.is(sent.code, 0, sent.stdout + sent.stderr);
  const sentId = JSON.parse(sent.stdout).id;
  const signed = await swx(['sign', ...common, '--id', 'CURL-0001', file]);
  assert.is(signed.code, 0, signed.stderr);
  const curl = signed.stdout.slice(signed.stdout.indexOf('curl ')).replace(/\\\n\s*/g, ' ').trim();
  const { stdout } = await run('bash', ['-c', `${curl} --silent --show-error --write-out '\\n%{http_code}'`]);
  const [body, status] = stdout.trim().split('\n');
  assert.is(status, '202', body);
  assert.is(JSON.parse(body!).id, 'CURL-0001');
  await waitFor('both in the inbox', () => existsSync(join(boft.inboxDir, `${sentId}.json`)) && existsSync(join(boft.inboxDir, 'CURL-0001.json')), 15_000);
});

test('a message the receiver keeps refusing is dead-lettered; swx dlq list shows it and swx dlq resend delivers it', async () => {
  // A receiver of its own making that refuses everything with 422.
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  const tfda = await addAgency(hub, 'TFDA', { receiver: false });
  const refusing = createServer({ cert: tfda.credentials.certPem, key: tfda.credentials.keyPem }, (_req, res) => { res.writeHead(422); res.end('declaration format not supported'); });
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  const refusingPort = (refusing.address() as { port: number }).port;
  const register = (port: number) => hub.admin('PUT', '/api/partners/TFDA', { name: 'TFDA', certificates: [tfda.credentials.certPem], endpoints: { rest: { url: `https://localhost:${port}/inbox` } } });
  await register(refusingPort);
  await hub.admin('PUT', '/api/services/customs.declaration', { name: 'Declarations', rules: [{ from: ['CUSTOMS'], to: ['BOFT', 'TFDA'] }] });
  const answer = await customs.client.send({ to: 'TFDA', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from('{"n":1}'), messageId: 'DLQ-0001' });
  assert.is(answer.status, 202);
  let letters: { seq: number; messageId: string; code: string; reason: string }[] = [];
  await waitFor('the dead letter', async () => {
    letters = JSON.parse((await swx(['dlq', 'list'], admin)).stdout);
    return letters.some((l) => l.messageId === 'DLQ-0001');
  }, 60_000);
  const letter = letters.find((l) => l.messageId === 'DLQ-0001')!;
  assert.is(letter.code, 'SWX_DELIVERY_REJECTED');
  assert.match(letter.reason, /422/);
  refusing.close();
  const receiver = await startAgencyReceiver({ ...tfda.credentials, port: 0, hubSignCertPem: pki.hubSign.certPem, inboxDir: tfda.inboxDir });
  await register(receiver.port);
  const resent = await swx(['dlq', 'resend', String(letter.seq)], admin);
  assert.is(resent.code, 0, resent.stderr);
  await waitFor('the resent message delivered', () => existsSync(join(tfda.inboxDir, 'DLQ-0001.json')), 15_000);
  assert.equal(JSON.parse((await swx(['dlq', 'list'], admin)).stdout).filter((l: { messageId: string }) => l.messageId === 'DLQ-0001'), []);
  const evidence = JSON.parse((await swx(['evidence', 'list', '--message', 'DLQ-0001'], admin)).stdout) as { stage: string }[];
  const stages = evidence.map((row) => row.stage);
  for (const stage of ['received', 'routed', 'delivery_failed', 'dead_lettered', 'resent', 'delivered']) assert.ok(stages.includes(stage), `${stage} in ${stages}`);
  await receiver.close();
  tfda.client.close();
});

test.after(async () => {
  customs?.client.close();
  await boft?.receiver?.close();
  await hub?.stop();
});

test.run();
