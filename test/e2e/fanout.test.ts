// Notification topics (Table 2) and exchange channels (Table 3) as agencies see them: one signed message to a topic or
// channel reaches every receiver or requester once, a channel's items in the order published, one requester down
// stalls nobody else, and a requester that lost its copies gets the channel's items again on the operator's word.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPki } from '../../engine/pki/index.ts';
import { startAgencyReceiver, type AgencyReceiver, type InboxEntry } from '../../connectors/rest/agency.ts';
import { addAgency, evidenceOf, startHubProcess, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
const agencies = new Map<string, TestAgency>();
/** Each agency's stored messages, in the order its receiver stored them. */
const arrivals = new Map<string, InboxEntry[]>();
const arrived = (id: string) => arrivals.get(id) ?? [];

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_DELIVERY_BACKOFF_MS: '200,400', SWX_PROBE_INTERVAL_MS: '300' } });
  for (const id of ['CUSTOMS', 'BOFT', 'HSP', 'EPZA', 'TFDA', 'BSMI', 'FA', 'MPB', 'FIA', 'NTA']) {
    arrivals.set(id, []);
    agencies.set(id, await addAgency(hub, id, { onMessage: (entry) => arrivals.get(id)!.push(entry) }));
  }
  const put = async (path: string, body: unknown) => {
    const answer = await hub.admin('PUT', path, body);
    assert.is(answer.status, 200, JSON.stringify(answer.body));
  };
  await put('/api/topics/fishery-safety', { name: 'International fishery product safety', notifiers: ['TFDA'], receivers: ['BSMI', 'FA'] });
  await put('/api/topics/shtc', { name: 'Strategic high-tech commodities', notifiers: ['BOFT'], receivers: ['HSP', 'EPZA'], twoWay: true });
  await put('/api/channels/taxes-fees', { name: 'Taxes and fees', dataset: 'drawback, import taxes and fees', providers: ['CUSTOMS'], requesters: ['BOFT', 'FIA', 'NTA'] });
});

test.after(async () => {
  for (const agency of agencies.values()) { agency.client.close(); await agency.receiver?.close(); }
  await hub?.stop();
});

const agency = (id: string) => agencies.get(id)!;
const json = (value: unknown) => ({ contentType: 'application/json', body: Buffer.from(JSON.stringify(value)) });

test('a notification reaches every receiver of its topic once, with received, routed and one delivered record each', async () => {
  const answer = await agency('TFDA').client.send({ service: 'notify.fishery-safety', action: 'alert', messageId: 'FISH-0001', ...json({ product: 'frozen squid', finding: 'cadmium' }) });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  for (const receiver of ['BSMI', 'FA']) await waitFor(`the notification at ${receiver}`, () => arrived(receiver).some((entry) => entry.id === 'FISH-0001'), 15_000);
  const rows = await evidenceOf(hub, 'FISH-0001', ['received', 'routed', 'delivered']);
  await waitFor('both deliveries evidenced', async () => (await evidenceOf(hub, 'FISH-0001')).filter((row) => row.stage === 'delivered').length === 2, 15_000);
  const all = await evidenceOf(hub, 'FISH-0001');
  assert.is(all.filter((row) => row.stage === 'received').length, 1);
  assert.equal(all.filter((row) => row.stage === 'delivered').map((row) => row.to_partner).sort(), ['BSMI', 'FA']);
  // One routed record for the topic, naming its receivers, and one per receiver's copy.
  assert.ok(rows.some((row) => row.stage === 'routed' && row.detail.startsWith('topic fishery-safety: BSMI, FA')), JSON.stringify(rows.map((row) => row.detail)));
  assert.is(all.filter((row) => row.stage === 'routed').length, 3);
  for (const id of ['BSMI', 'FA']) assert.is(agency(id).receiver!.deliveriesOf('FISH-0001'), 1);
  assert.is(arrived('TFDA').filter((entry) => entry.id === 'FISH-0001').length, 0, 'the notifier is not among its receivers');
});

test('a two-way topic: a receiver notifies the notifiers, the reply carrying Ref-To; others may not notify at all', async () => {
  const first = await agency('BOFT').client.send({ service: 'notify.shtc', messageId: 'SHTC-0001', ...json({ firm: 'ACME Photonics', goods: 'lithography optics' }) });
  assert.is(first.status, 202);
  const reply = await agency('HSP').client.send({ service: 'notify.shtc', messageId: 'SHTC-0002', refTo: 'SHTC-0001', ...json({ firm: 'ACME Photonics', found: 'shipment held' }) });
  assert.is(reply.status, 202, JSON.stringify(reply.body));
  await waitFor('the reply at BOFT', () => arrived('BOFT').some((entry) => entry.id === 'SHTC-0002'), 15_000);
  assert.is(arrived('BOFT').find((entry) => entry.id === 'SHTC-0002')!.refToMessageId, 'SHTC-0001');
  await waitFor('the first notification at both parks', () => ['HSP', 'EPZA'].every((id) => arrived(id).some((entry) => entry.id === 'SHTC-0001')), 15_000);
  assert.not.ok(arrived('EPZA').some((entry) => entry.id === 'SHTC-0002'), 'a reply goes to the notifiers, not to the other receivers');

  const denied = await agency('TFDA').client.send({ service: 'notify.shtc', messageId: 'SHTC-0003', ...json({}) });
  assert.is(denied.status, 403);
  assert.is(denied.body.code, 'SWX_ACL_DENIED');
  assert.ok((await evidenceOf(hub, 'SHTC-0003', 'rejected')).some((row) => row.stage === 'rejected' && row.code === 'SWX_ACL_DENIED'));
  const named = await agency('BOFT').client.send({ to: 'HSP', service: 'notify.shtc', ...json({}) });
  assert.is(named.status, 400, 'a notification names no receiver');
});

test('a channel\'s items reach every requester once and in order; a requester down stalls nobody and catches up in order', async () => {
  const nta = agency('NTA');
  const ntaPort = nta.receiver!.port;
  await nta.receiver!.close();
  const items = Array.from({ length: 30 }, (_, index) => `TAX-${String(index + 1).padStart(4, '0')}`);
  for (const [index, id] of items.entries()) {
    const answer = await agency('CUSTOMS').client.send({ service: 'exchange.taxes-fees', action: 'drawback', messageId: id, ...json({ item: index + 1 }) });
    assert.is(answer.status, 202, JSON.stringify(answer.body));
  }
  for (const requester of ['BOFT', 'FIA']) {
    await waitFor(`every item at ${requester}`, () => items.every((id) => arrived(requester).some((entry) => entry.id === id)), 30_000);
    assert.equal(arrived(requester).filter((entry) => entry.id.startsWith('TAX-')).map((entry) => entry.id), items, `${requester} got each item once, in order`);
  }
  assert.is(arrived('NTA').length, 0, 'NTA was down all along');
  // NTA comes back on its port: it gets every item, once, in the order published.
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  const restarted: AgencyReceiver = await startAgencyReceiver({
    ...nta.credentials, port: ntaPort, hubSignCertPem: pki.hubSign.certPem, inboxDir: nta.inboxDir, onMessage: (entry) => arrivals.get('NTA')!.push(entry),
  });
  try {
    await waitFor('every item at NTA', () => items.every((id) => arrived('NTA').some((entry) => entry.id === id)), 60_000);
    assert.equal(arrived('NTA').map((entry) => entry.id), items);
    assert.equal(JSON.parse(readFileSync(join(nta.inboxDir, 'TAX-0007.bin'), 'utf8')), { item: 7 });
  } finally {
    await restarted.close();
  }
  const refused = await agency('BOFT').client.send({ service: 'exchange.taxes-fees', ...json({}) });
  assert.is(refused.status, 403, 'a requester is not a provider');
  assert.is(refused.body.code, 'SWX_ACL_DENIED');
});

test('a slow requester (its link passes one request a second) slows no other requester of the channel', async () => {
  // A TCP relay in front of FA's receiver holds every chunk the hub sends for a second: about one item a second.
  const fa = agency('FA');
  const slowLink = createServer((client) => {
    const upstream = connect(fa.receiver!.port, 'localhost');
    let queue = Promise.resolve();
    client.on('data', (chunk) => { queue = queue.then(() => sleep(1_000)).then(() => { upstream.write(chunk); }); });
    upstream.pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
  });
  await new Promise<void>((resolve) => slowLink.listen(0, '127.0.0.1', resolve));
  const slowPort = (slowLink.address() as AddressInfo).port;
  try {
    const registered = await hub.admin('PUT', '/api/partners/FA', {
      name: 'FA (slow link)', certificates: [fa.credential.certPem], endpoints: { rest: { url: `https://localhost:${slowPort}/inbox` } },
    });
    assert.is(registered.status, 200, JSON.stringify(registered.body));
    const put = await hub.admin('PUT', '/api/channels/fishery-catch', { name: 'Fishery catch reports', dataset: 'catch reports', providers: ['CUSTOMS'], requesters: ['FA', 'BSMI', 'MPB'] });
    assert.is(put.status, 200);
    const items = Array.from({ length: 20 }, (_, index) => `CATCH-${String(index + 1).padStart(2, '0')}`);
    const started = Date.now();
    for (const id of items) assert.is((await agency('CUSTOMS').client.send({ service: 'exchange.fishery-catch', messageId: id, ...json({ id }) })).status, 202);
    await waitFor('every item at the fast requesters', () => ['BSMI', 'MPB'].every((who) => items.every((id) => arrived(who).some((entry) => entry.id === id))), 15_000);
    const fastDone = Date.now() - started;
    const slowSoFar = arrived('FA').filter((entry) => entry.id.startsWith('CATCH-')).length;
    assert.ok(slowSoFar < items.length / 2, `the slow requester had ${slowSoFar} of ${items.length} when the others had all (after ${fastDone} ms)`);
    await waitFor('every item at the slow requester', () => items.every((id) => arrived('FA').some((entry) => entry.id === id)), 90_000);
    assert.equal(arrived('FA').filter((entry) => entry.id.startsWith('CATCH-')).map((entry) => entry.id), items, 'in order, each once');
  } finally {
    slowLink.close();
  }
});

test('a requester that joins later gets new items; the operator re-sends a channel\'s items since a time to one requester', async () => {
  const joined = await hub.admin('PUT', '/api/channels/taxes-fees/requesters/MPB');
  assert.is(joined.status, 200);
  assert.equal((joined.body as { requesters: string[] }).requesters, ['BOFT', 'FIA', 'NTA', 'MPB']);
  const since = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (const id of ['TAX-0101', 'TAX-0102']) assert.is((await agency('CUSTOMS').client.send({ service: 'exchange.taxes-fees', messageId: id, ...json({ id }) })).status, 202);
  await waitFor('the new items at MPB and FIA', () => ['MPB', 'FIA'].every((who) => ['TAX-0101', 'TAX-0102'].every((id) => arrived(who).some((entry) => entry.id === id))), 15_000);
  const fiaBefore = agency('FIA').receiver!.deliveries;
  const resent = await hub.admin('POST', '/api/channels/taxes-fees/resend', { requester: 'FIA', since });
  assert.is(resent.status, 200, JSON.stringify(resent.body));
  assert.is((resent.body as { resent: number }).resent, 2);
  await waitFor('the re-sent items at FIA', () => agency('FIA').receiver!.deliveries === fiaBefore + 2, 15_000);
  assert.is(agency('FIA').receiver!.deliveriesOf('TAX-0101'), 2, 'the same message again, acknowledged as a duplicate');
  assert.is(agency('BOFT').receiver!.deliveriesOf('TAX-0101'), 1, 'the other requesters are not sent anything again');
  await waitFor('resent and redelivered evidence', async () => {
    const rows = await evidenceOf(hub, 'TAX-0101');
    return rows.some((row) => row.stage === 'resent' && row.to_partner === 'FIA') && rows.some((row) => row.stage === 'redelivered' && row.to_partner === 'FIA');
  }, 15_000);
  const left = await hub.admin('DELETE', '/api/channels/taxes-fees/requesters/MPB');
  assert.equal((left.body as { requesters: string[] }).requesters, ['BOFT', 'FIA', 'NTA']);
  const history = await hub.admin('GET', '/api/channels/taxes-fees/history');
  assert.is((history.body as unknown[]).length, 3, 'created, joined, left: each change kept');
  const notRequester = await hub.admin('POST', '/api/channels/taxes-fees/resend', { requester: 'MPB', since });
  assert.is(notRequester.status, 400);
});


test('an item a requester refuses goes to the dead-letter stream and holds up none of the items after it', async () => {
  // BOFT already keeps another message under TAX-0203's id, so its receiver refuses that item (a signed 409): the
  // item's own problem, retried and then dead-lettered, while the items after it go on in order.
  writeFileSync(join(agency('BOFT').inboxDir, 'TAX-0203.json'), JSON.stringify({ id: 'TAX-0203', from: 'ANOTHER-SENDER', sha256: '0'.repeat(64) }));
  const items = ['TAX-0201', 'TAX-0202', 'TAX-0203', 'TAX-0204', 'TAX-0205'];
  for (const id of items) assert.is((await agency('CUSTOMS').client.send({ service: 'exchange.taxes-fees', messageId: id, ...json({ id }) })).status, 202);
  const delivered = items.filter((id) => id !== 'TAX-0203');
  await waitFor('the items after the refused one at BOFT', () => delivered.every((id) => arrived('BOFT').some((entry) => entry.id === id)), 30_000);
  assert.equal(arrived('BOFT').map((entry) => entry.id).filter((id) => items.includes(id)), delivered, 'in order, the refused one left out');
  await waitFor('every item at FIA', () => items.every((id) => arrived('FIA').some((entry) => entry.id === id)), 30_000);
  const letters = (await hub.admin('GET', '/api/dlq')).body as { messageId?: string; to?: string; actor: string; code: string }[];
  const letter = letters.find((candidate) => candidate.messageId === 'TAX-0203');
  assert.equal([letter?.to, letter?.actor, letter?.code], ['BOFT', 'deliver-BOFT-taxes-fees', 'SWX_DELIVERY_REJECTED']);
  assert.ok((await evidenceOf(hub, 'TAX-0203', 'dead_lettered')).some((row) => row.stage === 'dead_lettered' && row.to_partner === 'BOFT'));
});

test.run();
