// Message status as agencies see it: the sender asks the hub what became of its message and gets, signed by the hub,
// each receiver's state and the receiver's own signed receipt, which it checks without the hub; a receiver sees only
// its own entry, anyone else nothing; `swx status` prints it and exits 0 only when every receiver has it.
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPki } from '../../engine/pki/index.ts';
import type { MessageStatus } from '../../engine/status.ts';
import { receiptSigned, startAgencyReceiver } from '../../connectors/rest/agency.ts';
import { statusCommand } from '../helpers/status-command.ts';
import { addAgency, addService, startHubProcess, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
const agencies = new Map<string, TestAgency>();
const agency = (id: string) => agencies.get(id)!;
const json = (value: unknown) => ({ contentType: 'application/json', body: Buffer.from(JSON.stringify(value)) });

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_BACKOFF_MS: '200,400', SWX_PROBE_INTERVAL_MS: '300' } });
  for (const id of ['CUSTOMS', 'BOFT', 'TFDA', 'BSMI', 'FA', 'NTA']) agencies.set(id, await addAgency(hub, id));
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  const topic = await hub.admin('PUT', '/api/topics/fishery-safety', { name: 'Fishery product safety', notifiers: ['TFDA'], receivers: ['BSMI', 'FA'] });
  assert.is(topic.status, 200, JSON.stringify(topic.body));
});

test.after(async () => {
  for (const each of agencies.values()) { each.client.close(); await each.receiver?.close(); }
  await hub?.stop();
});

/** The status as `asker` sees it, once `done` holds of it. */
async function statusWhen(asker: string, id: string, done: (status: MessageStatus) => boolean, from?: string): Promise<MessageStatus> {
  let last: unknown;
  await waitFor(`the status of ${id} for ${asker}`, async () => {
    const answer = await agency(asker).client.status(id, { from });
    assert.is(answer.signed, true, 'every answer is signed by the hub');
    last = answer.body;
    return answer.status === 200 && done(answer.body as unknown as MessageStatus);
  }, 20_000).catch((error: Error) => { throw new Error(`${error.message}; last answer ${JSON.stringify(last)}`); });
  return last as MessageStatus;
}

const delivered = (status: MessageStatus) => status.receivers.length > 0 && status.receivers.every((receiver) => receiver.state === 'delivered');

test('the sender of a direct message sees it delivered, with the receiver\'s receipt that verifies against the receiver\'s certificate', async () => {
  const sent = await agency('CUSTOMS').client.send({ to: 'BOFT', service: 'customs.declaration', messageId: 'DECL-0001', ...json({ declarationNo: 'AA/BE/13/101/00001' }) });
  assert.is(sent.status, 202);
  // Known to the hub from the moment it was accepted, archived or not.
  const early = await agency('CUSTOMS').client.status('DECL-0001');
  assert.is(early.status, 200, JSON.stringify(early.body));
  assert.is(early.body.state, 'accepted');
  if (early.body.archived === false) assert.equal(early.body.receivers, [{ to: 'BOFT', state: 'waiting' }], 'stored, its evidence on the way to the archive');
  const status = await statusWhen('CUSTOMS', 'DECL-0001', delivered);
  assert.is(status.from, 'CUSTOMS');
  assert.is(status.service, 'customs.declaration');
  assert.is(status.archived, true);
  assert.is(status.size, Buffer.from(JSON.stringify({ declarationNo: 'AA/BE/13/101/00001' })).length);
  assert.equal(status.receivers.map((receiver) => receiver.to), ['BOFT']);
  const [boft] = status.receivers;
  assert.ok(boft!.routedAt && boft!.deliveredAt && boft!.deliveredAt >= boft!.routedAt);
  assert.ok(receiptSigned(boft!.receipt!, 'DECL-0001'), 'the receipt verifies with the certificate it names');
  assert.ok(!receiptSigned(boft!.receipt!, 'DECL-0002'), 'and names this message only');
  assert.is(boft!.receipt!.signature!.certificate!.trim(), agency('BOFT').credential.certPem.trim(), 'the certificate is BOFT\'s');
  assert.match(Buffer.from(boft!.receipt!.raw, 'base64').toString('utf8'), /^HTTP 200\n/);
});

test('a notification has one entry per receiver of its topic', async () => {
  assert.is((await agency('TFDA').client.send({ service: 'notify.fishery-safety', messageId: 'FISH-0001', ...json({ finding: 'cadmium' }) })).status, 202);
  const status = await statusWhen('TFDA', 'FISH-0001', delivered);
  assert.is(status.topic, 'fishery-safety');
  assert.equal(status.receivers.map((receiver) => receiver.to).sort(), ['BSMI', 'FA']);
  for (const receiver of status.receivers) assert.ok(receiptSigned(receiver.receipt!, 'FISH-0001'), receiver.to);
  // A receiver names the sender and sees its own entry only.
  const bsmi = await statusWhen('BSMI', 'FISH-0001', delivered, 'TFDA');
  assert.equal(bsmi.receivers.map((receiver) => receiver.to), ['BSMI']);
});

test('a receiver that is down leaves its copy routed, then delivered once it is back', async () => {
  const boft = agency('BOFT');
  const port = boft.receiver!.port;
  await boft.receiver!.close();
  assert.is((await agency('CUSTOMS').client.send({ to: 'BOFT', service: 'customs.declaration', messageId: 'DECL-0002', ...json({ n: 2 }) })).status, 202);
  const waiting = await statusWhen('CUSTOMS', 'DECL-0002', (status) => status.archived && status.receivers[0]?.state === 'routed');
  assert.is(waiting.receivers[0]!.receipt, undefined);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.is(((await agency('CUSTOMS').client.status('DECL-0002')).body as unknown as MessageStatus).receivers[0]!.state, 'routed', 'still not delivered while BOFT is down');
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  boft.receiver = await startAgencyReceiver({ ...boft.credentials, port, hubSignCertPem: pki.hubSign.certPem, inboxDir: boft.inboxDir });
  const status = await statusWhen('CUSTOMS', 'DECL-0002', delivered);
  assert.ok(receiptSigned(status.receivers[0]!.receipt!, 'DECL-0002'));
});

test('the receiver sees the message too; a third agency, an unknown id and another sender\'s id are all not found', async () => {
  const own = await statusWhen('BOFT', 'DECL-0001', delivered, 'CUSTOMS');
  assert.equal(own.receivers.map((receiver) => receiver.to), ['BOFT']);
  for (const [asker, id, from] of [['NTA', 'DECL-0001', 'CUSTOMS'], ['CUSTOMS', 'NOPE-0001', undefined], ['BOFT', 'DECL-0001', undefined], ['FA', 'FISH-0001', 'CUSTOMS']] as const) {
    const answer = await agency(asker).client.status(id, { from });
    assert.is(answer.status, 404, `${asker} asking for ${id}: ${JSON.stringify(answer.body)}`);
    assert.is(answer.body.code, 'SWX_NOT_FOUND');
    assert.is(answer.signed, true);
  }
});

test('a status request without the agency\'s signature is refused', async () => {
  const { credentials } = agency('CUSTOMS');
  const answer = await new Promise<{ status: number; body: any }>((resolve, reject) => {
    request(`https://localhost:${hub.agencyPort}/v1/messages/DECL-0001`, { cert: credentials.certPem, key: credentials.keyPem, ca: credentials.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    }).on('error', reject).end();
  });
  assert.is(answer.status, 401);
  assert.is(answer.body.code, 'SWX_SIG_MISSING');
});

test('swx status prints each receiver\'s state and exits 0 only when every receiver has the message', async () => {
  const swx = await statusCommand(hub, agency('CUSTOMS'));
  const done = await swx('DECL-0001');
  assert.is(done.code, 0, done.stderr);
  assert.is(JSON.parse(done.stdout).receivers[0].state, 'delivered');
  assert.match(done.stderr, /^BOFT: delivered, receipt signature verifies$/m);

  const boft = agency('BOFT');
  await boft.receiver!.close();
  assert.is((await agency('CUSTOMS').client.send({ to: 'BOFT', service: 'customs.declaration', messageId: 'DECL-0003', ...json({ n: 3 }) })).status, 202);
  const pending = await swx('DECL-0003');
  assert.is(pending.code, 1, 'not every receiver has it');
  assert.match(pending.stderr, /^BOFT: (waiting|routed)$/m);
  const unknown = await swx('NOPE-0002');
  assert.is(unknown.code, 1);
  assert.is(JSON.parse(unknown.stdout).code, 'SWX_NOT_FOUND');
});

test.run();
