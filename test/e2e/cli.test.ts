// The swx command as its users type it: help, the demo check on a fresh folder (the traffic of every table), partner
// and service admin, send and sign (with real curl), and the dead-letter list and resend.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPki } from '../../engine/pki/index.ts';
import type { Topic } from '../../engine/registry.ts';
import { answer } from '../../app/demo-data.ts';
import { demoAgencies, demoServices, pullAgencies } from '../../app/demo.ts';
import { itemsPerProvider } from '../../app/demo-traffic.ts';
import { table1 } from '../../app/table1.ts';
import { table2 } from '../../app/table2.ts';
import { table3 } from '../../app/table3.ts';
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

test('swx demo --check on a fresh data folder delivers every message, notification and channel item of Tables 2 and 3, and answers a query of every Table 1 dataset', async () => {
  const data = tempDir('demo');
  const env = { SWX_HTTP_PORT: String(await freePort()), SWX_OPS_PORT: String(await freePort()), SWX_NATS_PORT: String(await freePort()), SWX_SFTP_PORT: String(await freePort()), SWX_CONSOLE_PORT: String(await freePort()), SWX_LOG_LEVEL: 'warn' };
  const { code, stdout, stderr } = await swx(['demo', '--check', '--data', data], env);
  assert.is(code, 0, stderr);
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.is(summary.ok, true);
  assert.match(stdout, /^Console: https:\/\/localhost:\d+\/api\/session \(sign in as admin, password [A-Za-z0-9_-]{24};/m);
  // What the tables call for: a notification on every topic and a reply on each two-way one, every provider's items on
  // every channel, each reaching every receiver or requester but its sender.
  const direct = demoServices.flatMap((service) => service.rules.flatMap((rule) => rule.to));
  const twoWay = table2.filter((topic) => topic.twoWay);
  const replier = (topic: Topic) => topic.receivers.find((receiver) => receiver !== topic.notifiers[0])!;
  const items = table3.reduce((sum, channel) => sum + channel.providers.length * itemsPerProvider, 0);
  const deliveries = direct.length
    + table2.reduce((sum, topic) => sum + topic.receivers.filter((receiver) => receiver !== topic.notifiers[0]).length, 0)
    + twoWay.reduce((sum, topic) => sum + topic.notifiers.filter((notifier) => notifier !== replier(topic)).length, 0)
    + table3.reduce((sum, channel) => sum + channel.providers.length * itemsPerProvider * channel.requesters.length, 0);
  assert.is(summary.topics, table2.length);
  assert.is(summary.notifications, table2.length + twoWay.length);
  assert.is(summary.replies, twoWay.length);
  assert.is(summary.channels, table3.length);
  assert.is(summary.items, items);
  assert.is(summary.sent, direct.length + table2.length + twoWay.length + items);
  assert.is(summary.deliveries, deliveries);
  assert.is(summary.delivered, summary.sent);
  assert.is(summary.evidenced, summary.sent);
  assert.equal([summary.stray, summary.notInOrder, summary.lostRefTo], [[], [], []]);
  assert.is(summary.dataDir, data);
  assert.is(summary.queries, table1.length, 'one query per Table 1 dataset');
  assert.is(summary.answered, table1.length);
  assert.match(stdout, /provider answers over SOAP/);
  assert.match(stdout, /provider answers over REST/);
  let inInboxes = 0;
  for (const { id } of demoAgencies) {
    for (const file of ['cert.pem', 'key.pem', 'ca.pem', 'hub-sign.pem']) assert.ok(existsSync(join(data, 'demo', id, file)), `${id}/${file}`);
    const inbox = join(data, 'demo', id, 'inbox');
    if (existsSync(inbox)) inInboxes += readdirSync(inbox).filter((f) => f.endsWith('.json')).length;
  }
  assert.is(inInboxes, deliveries, 'each delivery stored once, by its receiver');
  // The agencies that receive by pull collected what the tables send them, as the others received it, in the order
  // stored (their channels' order is judged with everyone's by the check above).
  const meantFor = (id: string) => direct.filter((to) => to === id).length
    + table2.filter((topic) => topic.receivers.includes(id) && topic.notifiers[0] !== id).length
    + twoWay.filter((topic) => topic.notifiers.includes(id) && replier(topic) !== id).length
    + table3.reduce((sum, channel) => sum + (channel.requesters.includes(id) ? channel.providers.length * itemsPerProvider : 0), 0);
  assert.ok(pullAgencies.size > 0);
  assert.equal(Object.keys(summary.pulled).sort(), [...pullAgencies].sort());
  for (const id of pullAgencies) {
    assert.ok(meantFor(id) > 0, id);
    assert.is(summary.pulled[id], meantFor(id), id);
    assert.is(readdirSync(join(data, 'demo', id, 'inbox')).filter((f) => f.endsWith('.json')).length, meantFor(id), id);
    assert.is(readFileSync(join(data, 'demo', id, 'arrivals.log'), 'utf8').trim().split('\n').length, meantFor(id), id);
  }
  assert.match(stdout, new RegExp(`Received by pull, collected from the inbox and acknowledged: ${[...pullAgencies].map((id) => `${id} ${meantFor(id)}/${meantFor(id)}`).join(', ')};`));
  // The last declaration on the channel, as Bank of Taiwan (its last requester) stored it: a record a query also finds.
  const stored = readFileSync(join(data, 'demo', 'BOT', 'arrivals.log'), 'utf8').trim().split('\n');
  const item = JSON.parse(readFileSync(join(data, 'demo', 'BOT', 'inbox', `${stored.at(-1)}.bin`), 'utf8'));
  assert.is(item.sequence, itemsPerProvider);
  const declarations = table1.filter((dataset) => dataset.keys.join() === 'declarationNo').map((dataset) => dataset.id);
  assert.ok(declarations.some((dataset) => answer(dataset, { declarationNo: item.declarationNo })), JSON.stringify(item));
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
