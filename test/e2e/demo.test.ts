// The reference deployment as its users run it: `swx demo --check` on a fresh folder sends the traffic of every table
// by each agency's protocol and judges it from the receivers' own inboxes. Counted per protocol from the stored files;
// the files the hub pushed into the SFTP push agencies' own OpenSSH servers counted under their final names, each with the
// SHA-256 sent; the MQ legs reported skipped with the connector's reason; and each SFTP agency's key, as the demo wrote it, logs in to
// the hub's SFTP server with OpenSSH's own sftp, pinning the host key whose fingerprint the hub printed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Topic } from '../../engine/registry.ts';
import { answer } from '../../app/demo-data.ts';
import { demoAgencies, demoServices, pullAgencies } from '../../app/demo.ts';
import { mqAgencies, receiveProtocol, sendProtocol, sftpAgencies, sftpOutboxAgencies, sftpPushAgencies } from '../../app/demo-protocols.ts';
import { inboxIds } from '../../app/demo-check.ts';
import { demoTraffic, itemsPerProvider } from '../../app/demo-traffic.ts';
import { table1 } from '../../app/table1.ts';
import { table2 } from '../../app/table2.ts';
import { table3 } from '../../app/table3.ts';
import { freePort, startHubProcess, swxCommand, tempDir } from '../helpers/hub.ts';

const data = tempDir('demo');
let stdout = '';
let summary: Record<string, any>;

const direct = demoServices.flatMap((service) => service.rules.flatMap((rule) => rule.to));
const twoWay = table2.filter((topic) => topic.twoWay);
const replier = (topic: Topic) => topic.receivers.find((receiver) => receiver !== topic.notifiers[0])!;
/** What the tables send agency `id` in one round: direct messages, notifications and replies, channel items. */
const meantFor = (id: string) => direct.filter((to) => to === id).length
  + table2.filter((topic) => topic.receivers.includes(id) && topic.notifiers[0] !== id).length
  + twoWay.filter((topic) => topic.notifiers.includes(id) && replier(topic) !== id).length
  + table3.reduce((sum, channel) => sum + (channel.requesters.includes(id) ? channel.providers.length * itemsPerProvider : 0), 0);
/** What agency `id` stored: its inbox entries, or the files complete in its own SFTP server's folder. */
const stored = (id: string) => inboxIds(data, id).size;

test.before(async () => {
  const env = { SWX_HTTP_PORT: String(await freePort()), SWX_OPS_PORT: String(await freePort()), SWX_NATS_PORT: String(await freePort()), SWX_SFTP_PORT: String(await freePort()), SWX_CONSOLE_PORT: String(await freePort()), SWX_LOG_LEVEL: 'warn' };
  // The whole deployment starts, runs a round and stops: the RSA keys of 36 agencies alone take a while to make.
  const run = await swxCommand(['demo', '--check', '--data', data], env, 540_000);
  assert.is(run.code, 0, `${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`);
  stdout = run.stdout;
  summary = JSON.parse(stdout.trim().split('\n').at(-1)!);
});

test('swx demo --check delivers every message, notification and channel item of Tables 2 and 3, and answers a query of every Table 1 dataset', () => {
  assert.is(summary.ok, true);
  assert.match(stdout, /^Console: https:\/\/localhost:\d+\/api\/session \(sign in as admin, password [A-Za-z0-9_-]{24};/m);
  const items = table3.reduce((sum, channel) => sum + channel.providers.length * itemsPerProvider, 0);
  const all = demoAgencies.reduce((sum, { id }) => sum + meantFor(id), 0);
  const toMq = [...mqAgencies].reduce((sum, id) => sum + meantFor(id), 0);
  assert.is(summary.topics, table2.length);
  assert.is(summary.notifications, table2.length + twoWay.length);
  assert.is(summary.replies, twoWay.length);
  assert.is(summary.channels, table3.length);
  assert.is(summary.items, items);
  assert.is(summary.sent, direct.length + table2.length + twoWay.length + items);
  assert.is(summary.deliveries, all - toMq, 'every delivery but those to MQ agencies');
  assert.is(summary.delivered, summary.sent);
  assert.is(summary.evidenced, summary.sent);
  assert.equal([summary.stray, summary.corrupt, summary.notInOrder, summary.lostRefTo], [[], [], [], []]);
  assert.is(summary.queries, table1.length, 'one query per Table 1 dataset');
  assert.is(summary.answered, table1.length);
  assert.match(stdout, /provider answers over SOAP/);
  assert.match(stdout, /provider answers over REST/);
  for (const { id } of demoAgencies) {
    for (const file of ['cert.pem', 'key.pem', 'ca.pem', 'hub-sign.pem']) assert.ok(existsSync(join(data, 'demo', id, file)), `${id}/${file}`);
    assert.is(stored(id), mqAgencies.has(id) ? 0 : meantFor(id), `${id} stored each delivery meant for it once`);
    if (stored(id) > 0) assert.is(readFileSync(join(data, 'demo', id, 'arrivals.log'), 'utf8').trim().split('\n').length, meantFor(id), id);
  }
  assert.ok(pullAgencies.size > 0);
  assert.equal(Object.keys(summary.pulled).sort(), [...pullAgencies].sort());
  for (const id of pullAgencies) assert.is(summary.pulled[id], meantFor(id), id);
  // The last declaration on the channel, as Bank of Taiwan (its last requester) stored it: a record a query also finds.
  const arrivals = readFileSync(join(data, 'demo', 'BOT', 'arrivals.log'), 'utf8').trim().split('\n');
  const item = JSON.parse(readFileSync(join(data, 'demo', 'BOT', 'inbox', `${arrivals.at(-1)}.bin`), 'utf8'));
  assert.is(item.sequence, itemsPerProvider);
  const declarations = table1.filter((dataset) => dataset.keys.join() === 'declarationNo').map((dataset) => dataset.id);
  assert.ok(declarations.some((dataset) => answer(dataset, { declarationNo: item.declarationNo })), JSON.stringify(item));
});

test('deliveries counted per protocol from the files each receiver stored: REST push and pull, SFTP pull and push, AS4, ebMS 2.0; sends per protocol', () => {
  const counted: Record<string, number> = {};
  for (const { id } of demoAgencies) if (stored(id) > 0) counted[receiveProtocol(id)] = (counted[receiveProtocol(id)] ?? 0) + stored(id);
  const expected: Record<string, number> = {};
  for (const { id } of demoAgencies) if (!mqAgencies.has(id) && meantFor(id) > 0) expected[receiveProtocol(id)] = (expected[receiveProtocol(id)] ?? 0) + meantFor(id);
  assert.equal(counted, expected);
  assert.equal(summary.deliveredBy, expected, 'the summary counts what the receivers stored');
  for (const protocol of ['rest', 'rest-pull', 'sftp-pull', 'sftp-push', 'as4', 'ebms2']) assert.ok((counted[protocol] ?? 0) > 0, `some deliveries over ${protocol}`);
  const sentBy: Record<string, number> = {};
  for (const message of demoTraffic(1)) sentBy[sendProtocol(message.from, message.service)] = (sentBy[sendProtocol(message.from, message.service)] ?? 0) + 1;
  assert.equal(summary.sentBy, sentBy);
  for (const protocol of ['rest', 'sftp', 'sftp-outbox', 'as4']) assert.ok((sentBy[protocol] ?? 0) > 0, `some messages sent over ${protocol}`);
  // Both directions across protocols: AS4 in reaching a REST receiver, REST in leaving over ebMS 2.0 and AS4, and an
  // SFTP upload fanned out to REST and SFTP requesters alike.
  const by = (id: string) => readdirSync(join(data, 'demo', id, 'inbox')).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(data, 'demo', id, 'inbox', f), 'utf8')));
  assert.ok(by('TFDA').some((entry) => entry.from === 'COA-DAI'), 'the AS4 gateway\'s alert at TFDA\'s REST receiver');
  assert.ok(by('BOCA').every((entry) => entry.from === 'CUSTOMS') && by('BOCA').length > 0, 'CUSTOMS\'s items at BOCA\'s ebMS 2.0 MSH');
  assert.ok(by('FA').some((entry) => entry.from === 'TFDA'), 'TFDA\'s notification at FA\'s AS4 gateway');
  const uploaded = by('BOT').filter((entry) => entry.id.startsWith('sftp:')).map((entry) => entry.id).sort();
  assert.is(uploaded.length, itemsPerProvider, 'the declarations CUSTOMS uploaded over SFTP at a REST requester');
  assert.equal(by('MPB').filter((entry) => uploaded.includes(entry.id)).map((entry) => entry.id).sort(), uploaded, 'and at an SFTP requester');
});

test('the hub pushed each SFTP push agency\'s deliveries into its own sshd\'s folder: whole, under their final names, nothing partial left', () => {
  for (const id of sftpPushAgencies) {
    assert.is(receiveProtocol(id), 'sftp-push', `${id}: sshd is installed here`);
    const folder = join(data, 'demo', id, 'sshd', 'files', 'inbox');
    const files = readdirSync(folder);
    assert.is(files.length, meantFor(id), `${id}: ${files.join(', ')}`);
    assert.ok(files.every((name) => name.endsWith('.json') && !name.startsWith('.')), `${id}: ${files.join(', ')}`);
    assert.match(readFileSync(join(data, 'demo', id, 'sshd', 'authorized_keys'), 'utf8'), readFileSync(join(data, 'sftp', 'client-keys', 'hub.pub'), 'utf8').trim(), `${id} authorized the hub's client key`);
  }
  assert.is(summary.deliveredBy['sftp-push'], [...sftpPushAgencies].reduce((sum, id) => sum + meantFor(id), 0));
});

test('the hub collected what Trade-Van dropped, signed, in its own server\'s outbox: taken (nothing left, nothing refused) and delivered to CUSTOMS', () => {
  for (const id of sftpOutboxAgencies) {
    const outbox = join(data, 'demo', id, 'sshd', 'files', 'outbox');
    const left = readdirSync(outbox, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => entry.name);
    assert.equal(left, [], `${id}'s outbox after the round`);
    const dropped = table3.filter((channel) => channel.providers.includes(id));
    assert.ok(dropped.length > 0, `${id} provides a channel`);
    const atCustoms = readdirSync(join(data, 'demo', 'CUSTOMS', 'inbox')).filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(data, 'demo', 'CUSTOMS', 'inbox', f), 'utf8'))).filter((entry) => entry.from === id);
    assert.is(atCustoms.length, dropped.length * itemsPerProvider);
    assert.ok(atCustoms.every((entry) => entry.id.startsWith('sftp:')), 'ids of files taken over SFTP');
  }
});

test('the MQ legs are reported skipped, each with the connector\'s reason: IBM MQ\'s client library is missing here', () => {
  const toMq = [...mqAgencies].reduce((sum, id) => sum + meantFor(id), 0);
  assert.ok(toMq > 0);
  assert.is(summary.skipped.length, toMq);
  for (const leg of summary.skipped) {
    assert.ok(mqAgencies.has(leg.to), leg.to);
    assert.is(leg.protocol, 'mq');
    assert.match(leg.reason, /IBM MQ/);
  }
  assert.match(stdout, /^skipped +CUSTOMS +⇒ NTA +exchange\.declarations +\d+ over MQ: .*IBM MQ/m);
});

test('each SFTP agency\'s key, mode 0600, logs in with OpenSSH\'s sftp pinning the host key the hub printed', async () => {
  const printed = /SFTP \S+ \(host key (SHA256:[A-Za-z0-9+/]+)\)/.exec(stdout)?.[1];
  assert.ok(printed, 'the hub printed its host key fingerprint');
  const hub = await startHubProcess({ dataDir: data });
  try {
    const hostKey = execFileSync('ssh-keygen', ['-y', '-f', join(data, 'sftp', 'host_ed25519_key')], { encoding: 'utf8' }).trim();
    const knownHosts = join(tempDir('demo-known-hosts'), 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${hub.sftpPort} ${hostKey}\n`);
    assert.match(execFileSync('ssh-keygen', ['-l', '-f', knownHosts], { encoding: 'utf8' }), new RegExp(printed!.replace(/[+/]/g, '\\$&')), 'the key pinned is the one printed');
    assert.ok(sftpAgencies.size > 0);
    for (const id of sftpAgencies) {
      const key = join(data, 'demo', id, 'id_ed25519');
      assert.is(statSync(key).mode & 0o777, 0o600, `${id}'s key is its own`);
      const session = spawnSync('sftp', [
        '-F', '/dev/null', '-b', '-', '-i', key, '-P', String(hub.sftpPort), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
        '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'IdentitiesOnly=yes', `${id}@127.0.0.1`,
      ], { input: 'ls /\n', encoding: 'utf8', timeout: 60_000 });
      assert.is(session.status, 0, `${id}: ${session.stderr}`);
      assert.match(session.stdout, /outbox/, `${id} sees its tree`);
    }
  } finally {
    await hub.stop();
  }
});

test.run();
