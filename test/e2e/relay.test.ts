// Topics and channels across two hubs: hub A fans a channel's item or a topic's notification out to each receiver, one
// of which, BOFT, stands behind hub B; its copy goes to hub B over HTTPS (AS4, or ebMS 2.0 where BOFT's entry prefers
// it) as one message of its own MessageId that names BOFT as its final recipient and the item it is a copy of. Hub B
// delivers it to BOFT alone, not to the channel's other requester there, and refuses a copy for a receiver its own
// tables do not allow or know, with the protocol's error code; the evidence on both hubs names the receiver. Two
// requesters behind hub B each get their own copy, answered with their own Receipt, once.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { composeUserMessage, type ComposedMessage } from '../../connectors/as4/compose.ts';
import { as4Endpoint, as4Settings, checkReceipt, readAs4Message, swxPartyIdType, type SignalMessage } from '../../connectors/as4/index.ts';
import { swxPartyIdType as ebms2PartyType } from '../../connectors/ebms2/index.ts';
import type { InboxEntry } from '../../connectors/rest/agency.ts';
import { deliveryMessageId, type Envelope } from '../../engine/envelope.ts';
import { hubIdentity } from '../../engine/identity.ts';
import { issueAgency, type loadPki } from '../../engine/pki/index.ts';
import { checkWsSecurity, inProcessSigners } from '../../engine/trust/index.ts';
import { exportCheckedBundle } from '../helpers/bundle.ts';
import { addAgency, evidenceOf, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { twoHubsUnderOneRoot } from '../helpers/two-hubs.ts';

type Pki = Awaited<ReturnType<typeof loadPki>>;

const hubType = 'urn:swx:hub';
const rsaSha256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
/** Every topic and channel service the hubs exchange, each with its one action. */
const relayed = ['exchange.tariffs', 'exchange.quotas', 'exchange.closed', 'exchange.sealed', 'exchange.vetted', 'notify.alerts'];

let hubA: HubProcess;
let hubB: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
const agencies: TestAgency[] = [];
const arrivals = new Map<string, InboxEntry[]>([['NTA', []], ['FIA', []]]);
let pkiA: Pki;
let pkiB: Pki;

/** The other hub's AS4 P-Mode (as4) and ebMS 2.0 agreement (ebms2), as a hub registers the agency behind it. */
function hubEndpoints(port: number, party: string): Record<string, unknown> {
  const as4Url = `https://localhost:${port}/as4`;
  const ebms2Url = `https://localhost:${port}/ebms2`;
  const both = [{ action: 'deliver', channels: ['messages'] }];
  return {
    as4: {
      url: as4Url, partyIds: [{ id: party, type: swxPartyIdType }],
      services: relayed.map((service) => ({ service, actions: ['deliver'] })), security: { sign: true, encrypt: true },
    },
    ebms2: {
      cpaId: 'swx-hub-a-hub-b', partyIds: [{ id: party, type: hubType }], roles: ['exchange'], url: ebms2Url, defaultChannel: 'messages',
      channels: { messages: {
        transport: 'HTTP', url: ebms2Url, syncReplyMode: 'mshSignalsOnly', ackRequested: 'always', ackSignatureRequested: 'always', duplicateElimination: 'always',
        reliability: { retries: 3, retryIntervalMs: 2000, persistDurationMs: 24 * 3600 * 1000 }, signature: { algorithm: rsaSha256, weak: false },
      } },
      services: relayed.map((service) => ({ service, role: 'exchange', canSend: both, canReceive: both })),
    },
  };
}

test.before(async () => {
  const hubs = await twoHubsUnderOneRoot('relay', {
    settings: (dir, party) => {
      const settings = { connectors: { as4: { partyId: { id: party } }, ebms2: { partyIds: [{ id: party, type: hubType }] } } };
      writeFileSync(join(dir, 'swx.json'), JSON.stringify(settings));
    },
    endpoints: (port, party) => hubEndpoints(port, party),
    onCustomsMessage: () => undefined,
  });
  ({ hubA, hubB, customs, boft, pkiA, pkiB } = hubs);
  // NTA requests the channels at hub A itself; FIA is the channels' other requester at hub B.
  for (const [hub, id] of [[hubA, 'NTA'], [hubB, 'FIA']] as const) {
    agencies.push(await addAgency(hub, id, { onMessage: (entry) => arrivals.get(id)!.push(entry) }));
  }
  // Hub A reaches BOFT over AS4, but over ebMS 2.0 for two channels.
  const boftAtA = await hubA.admin('GET', '/api/partners/BOFT');
  const preferred = await hubA.admin('PUT', '/api/partners/BOFT', { ...boftAtA.body, preferred: { 'exchange.quotas': 'ebms2', 'exchange.sealed': 'ebms2' } });
  assert.is(preferred.status, 200, JSON.stringify(preferred.body));
  const put = async (hub: HubProcess, path: string, body: Record<string, unknown>) => {
    const answer = await hub.admin('PUT', path, { name: path, ...body });
    assert.is(answer.status, 200, JSON.stringify(answer.body));
  };
  for (const id of ['tariffs', 'quotas']) {
    await put(hubA, `/api/channels/${id}`, { dataset: id, providers: ['CUSTOMS'], requesters: ['BOFT', 'NTA'] });
    await put(hubB, `/api/channels/${id}`, { dataset: id, providers: ['CUSTOMS'], requesters: ['BOFT', 'FIA'] });
  }
  // Hub A lets BOFT request these two; hub B's own tables do not.
  for (const id of ['closed', 'sealed']) {
    await put(hubA, `/api/channels/${id}`, { dataset: id, providers: ['CUSTOMS'], requesters: ['BOFT'] });
    await put(hubB, `/api/channels/${id}`, { dataset: id, providers: ['CUSTOMS'], requesters: ['FIA'] });
  }
  // MPB stands behind hub B as hub A's registry has it, but hub B knows no MPB.
  const mpb = await issueAgency(join(hubA.dataDir, 'pki'), 'MPB');
  const endpoints = hubEndpoints(hubB.agencyPort, 'hub-b');
  const mpbAtA = await hubA.admin('PUT', '/api/partners/MPB', {
    name: 'MPB behind hub-b', certificates: [mpb.certPem],
    endpoints: { as4: { ...(endpoints.as4 as object), security: { sign: true, encrypt: true, encryptionCertificate: pkiB.hubSign.certPem } } },
  });
  assert.is(mpbAtA.status, 200, JSON.stringify(mpbAtA.body));
  await put(hubA, '/api/channels/vetted', { dataset: 'vetted', providers: ['CUSTOMS'], requesters: ['MPB'] });
  await put(hubB, '/api/channels/vetted', { dataset: 'vetted', providers: ['CUSTOMS'], requesters: ['FIA'] });
  await put(hubA, '/api/topics/alerts', { notifiers: ['CUSTOMS'], receivers: ['BOFT'] });
  await put(hubB, '/api/topics/alerts', { notifiers: ['CUSTOMS'], receivers: ['BOFT', 'FIA'] });
});

test.after(async () => {
  for (const agency of [customs, boft, ...agencies]) { agency?.client.close(); await agency?.receiver?.close(); }
  await Promise.all([hubA?.stop(), hubB?.stop()]);
});

/** How many messages of this body an agency's inbox holds, whatever their ids. */
function storedCopies(inboxDir: string, body: string): number {
  let files: string[] = [];
  try { files = readdirSync(inboxDir); } catch { return 0; }
  return files.filter((name) => name.endsWith('.bin') && readFileSync(join(inboxDir, name), 'utf8') === body).length;
}

/** The MessageId a receiver's copy of CUSTOMS's message travels under. */
const copyOf = (id: string, service: string, to = 'BOFT') => deliveryMessageId({ id, from: 'CUSTOMS', to, audience: { kind: service.startsWith('notify.') ? 'topic' : 'channel', id: service.split('.')[1]!, receivers: [] } });

/**
 * CUSTOMS sends `id` to a topic or channel at hub A; each receiver gets it once: NTA at hub A (where it is one) under its
 * id, BOFT behind hub B under its copy's id, FIA (hub B's other receiver) not at all. Resolves with both hubs' evidence
 * of the copy.
 */
async function relayOnce(service: string, id: string, toNta = true): Promise<{ copy: string; atA: any[]; atB: any[] }> {
  const body = JSON.stringify({ item: id });
  const answer = await customs.client.send({ service, action: 'deliver', messageId: id, contentType: 'application/json', body: Buffer.from(body) });
  assert.is(answer.status, 202, answer.text);
  const copy = copyOf(id, service);
  assert.is.not(copy, id, 'a copy for a receiver behind another hub has its own MessageId');
  await waitFor(`${id} at BOFT behind hub B`, () => storedCopies(boft.inboxDir, body) > 0, 60_000);
  if (toNta) await waitFor(`${id} at NTA`, () => arrivals.get('NTA')!.some((entry) => entry.id === id), 30_000);
  const [kind, name] = service.split('.') as [string, string];
  const audience = `${kind === 'notify' ? 'topic' : 'channel'} ${name}`;
  let atB: any[] = [];
  await waitFor(`hub B's evidence of ${copy}`, async () => {
    atB = await evidenceOf(hubB, copy, ['received', 'delivered'], 30_000);
    return atB.some((row) => row.stage === 'routed' && row.detail.startsWith(`${audience}:`));
  }, 30_000);
  let atA: any[] = [];
  await waitFor(`hub A's evidence of hub B's receipt for ${id}`, async () => {
    atA = await evidenceOf(hubA, id);
    return atA.some((row) => row.stage === 'delivered' && row.to_partner === 'BOFT');
  }, 30_000);
  atA = atA.filter((row) => row.stage === 'received' || row.to_partner === 'BOFT');

  assert.is(storedCopies(boft.inboxDir, body), 1, 'BOFT stored the item once');
  assert.is(boft.receiver!.deliveriesOf(copy), 1, 'hub B delivered it to BOFT once');
  const entry = JSON.parse(readFileSync(join(boft.inboxDir, `${copy}.json`), 'utf8'));
  assert.is(entry.from, 'CUSTOMS');
  assert.is(entry.service, service);
  assert.is(entry.conversationId, id, 'the copy keeps the original\'s conversation');
  assert.is(arrivals.get('NTA')!.filter((entry) => entry.id === id).length, toNta ? 1 : 0, 'NTA stored it once, under its own id, where it is a receiver');
  assert.is(agencies.find((agency) => agency.id === 'NTA')!.receiver!.deliveriesOf(id), toNta ? 1 : 0);
  // Hub B routed the copy to BOFT alone: FIA, the other receiver there, has none of it.
  const delivered = atB.filter((row) => row.stage === 'delivered');
  assert.equal(delivered.map((row) => row.to_partner), ['BOFT'], `hub B delivered to BOFT only: ${atB.map((row) => [row.stage, row.to_partner])}`);
  assert.is(storedCopies(join(hubB.dataDir, 'agencies', 'FIA', 'inbox'), body), 0, 'FIA got none of BOFT\'s copy');
  assert.is(atB.find((row) => row.stage === 'received').from_partner, 'CUSTOMS');
  // Routed twice: the message to its one receiver, then that receiver's copy to its lane (a channel's) or queue.
  const routed = atB.filter((row) => row.stage === 'routed').map((row) => row.detail.replace(/ seq \d+$/, '')).sort();
  assert.equal(routed, [`${audience}: BOFT`, kind === 'notify' ? 'swx.msg.BOFT' : `swx.msg.BOFT.${name}`].sort(), 'hub B\'s evidence routes the copy to BOFT, its one receiver');
  return { copy, atA, atB };
}

test('a channel\'s item over AS4: BOFT behind hub B gets its copy once, under a MessageId of its own that names the item; hub B\'s signed Receipt checks out at hub A', async () => {
  const { copy, atA, atB } = await relayOnce('exchange.tariffs', 'TARIFF-0001');
  const received = atB.find((row) => row.stage === 'received');
  assert.is(received.protocol, 'as4');
  const envelope = JSON.parse(received.signature).base;
  assert.match(envelope, new RegExp(`<eb:MessageId>${copy}</eb:MessageId>`), 'the copy\'s MessageId, as hub A sent it');
  assert.match(envelope, /<eb:Property name="finalRecipient">BOFT<\/eb:Property>/);
  assert.match(envelope, /<eb:Property name="originalMessageId">TARIFF-0001<\/eb:Property>/, 'the copy names the item it is a copy of');

  const delivered = atA.find((row) => row.stage === 'delivered');
  assert.ok(delivered, `hub A evidenced the delivery to BOFT: ${atA.map((row) => [row.stage, row.to_partner, row.detail])}`);
  const receipt = Buffer.from(delivered.raw, 'base64').toString('utf8');
  assert.match(receipt, new RegExp(`<eb:RefToMessageId>${copy}</eb:RefToMessageId>`), 'hub B\'s Receipt answers the copy');
  assert.match(receipt, /NonRepudiationInformation/);
  const security = await checkWsSecurity(readAs4Message(Buffer.from(receipt)).envelope);
  assert.is(security.certificatePem.replace(/\s/g, ''), pkiB.hubSign.certPem.replace(/\s/g, ''), 'hub B signed the Receipt');
});

test('a channel\'s item over ebMS 2.0: BOFT behind hub B gets its copy once; hub B\'s signed Acknowledgment answers the copy\'s MessageId', async () => {
  const { copy, atA, atB } = await relayOnce('exchange.quotas', 'QUOTA-0001');
  const received = atB.find((row) => row.stage === 'received');
  assert.is(received.protocol, 'ebms2');
  const envelope = JSON.parse(received.signature).base;
  assert.match(envelope, new RegExp(`<eb:MessageId>${copy}</eb:MessageId>`));
  assert.match(envelope, new RegExp(`<eb:To>.*<eb:PartyId eb:type="${ebms2PartyType}">BOFT</eb:PartyId>.*</eb:To>`, 's'), 'BOFT named as the To party');
  assert.match(envelope, /<eb:Description xml:lang="en">originalMessageId QUOTA-0001<\/eb:Description>/, 'the copy names the item it is a copy of');

  const delivered = atA.find((row) => row.stage === 'delivered');
  assert.ok(delivered, `hub A evidenced the delivery to BOFT: ${atA.map((row) => [row.stage, row.to_partner, row.detail])}`);
  const acknowledgment = Buffer.from(delivered.raw, 'base64').toString('utf8');
  assert.match(acknowledgment, /<eb:Acknowledgment/);
  assert.match(acknowledgment, new RegExp(`<eb:RefToMessageId>${copy}</eb:RefToMessageId>`));
  assert.is(JSON.parse(delivered.signature).scheme, 'xmldsig', 'the Acknowledgment\'s signature was checked and kept');
});

test('a topic\'s notification over AS4 reaches BOFT behind hub B once, and not hub B\'s other receiver; hub A\'s evidence bundle holds hub B\'s Receipt, which checks out', async () => {
  const { atB } = await relayOnce('notify.alerts', 'ALERT-0001', false);
  assert.is(atB.find((row) => row.stage === 'received').service, 'notify.alerts');
  const bundle = await exportCheckedBundle(hubA, 'ALERT-0001', ['received', 'delivered']);
  assert.ok(bundle.checks.some((check) => check.check === 'delivered XML signature' && check.ok), JSON.stringify(bundle.checks));
  assert.match(readFileSync(join(bundle.folder, 'signatures/delivered-BOFT-signed.xml'), 'utf8'), new RegExp(`<eb:RefToMessageId>${copyOf('ALERT-0001', 'notify.alerts')}</eb:RefToMessageId>`));
});

test('a copy for a receiver hub B\'s own tables do not allow, or do not know, is refused with the protocol\'s code, evidenced on both hubs, and reaches no one', async () => {
  const cases = [
    ['exchange.closed', 'CLOSED-0001', 'as4', 'BOFT', /EBMS:0010 ProcessingModeMismatch: SWX_ACL_DENIED: BOFT is not a requester of channel 'closed'/, 'SWX_ACL_DENIED'],
    ['exchange.sealed', 'SEALED-0001', 'ebms2', 'BOFT', /DeliveryFailure: SWX_ACL_DENIED: BOFT is not a requester of channel 'sealed'/, 'SWX_ACL_DENIED'],
    ['exchange.vetted', 'VETTED-0001', 'as4', 'MPB', /EBMS:0001 ValueNotRecognized: SWX_UNKNOWN_RECEIVER: receiver 'MPB' is not a registered partner/, 'SWX_UNKNOWN_RECEIVER'],
  ] as const;
  for (const [service, id, protocol, to, detail, code] of cases) {
    const body = JSON.stringify({ item: id });
    const answer = await customs.client.send({ service, action: 'deliver', messageId: id, contentType: 'application/json', body: Buffer.from(body) });
    assert.is(answer.status, 202, answer.text);
    const atA = await evidenceOf(hubA, id, ['delivery_failed'], 60_000);
    const failed = atA.find((row) => row.stage === 'delivery_failed');
    assert.ok(failed, `${protocol}: hub A evidenced the refusal: ${atA.map((row) => [row.stage, row.code, row.detail])}`);
    assert.is(failed.code, 'SWX_DELIVERY_REJECTED');
    assert.is(failed.to_partner, to);
    assert.match(failed.detail, detail, `${protocol}: ${failed.detail}`);
    const atB = await evidenceOf(hubB, copyOf(id, service, to), ['rejected'], 30_000);
    const rejected = atB.find((row) => row.stage === 'rejected');
    assert.ok(rejected, `${protocol}: hub B evidenced the refusal: ${JSON.stringify(atB)}`);
    assert.is(rejected.code, code);
    assert.is(rejected.to_partner, to, 'hub B\'s evidence names the receiver it refused the copy for');
    assert.is(rejected.protocol, protocol);
    assert.not.ok(atB.some((row) => row.stage === 'delivered'), 'hub B delivered nothing');
    assert.is(storedCopies(boft.inboxDir, body), 0);
    assert.is(storedCopies(join(hubB.dataDir, 'agencies', 'FIA', 'inbox'), body), 0, 'not even to the channel\'s requester at hub B');
  }
});

/** POSTs a composed AS4 message to hub B as another hub's MSH does (server-authenticated TLS); the answer's bytes. */
function postToHubB(message: { body: Buffer; contentType: string }): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hubB.agencyPort}/as4`, {
      method: 'POST', ca: pkiA.ca.certPem, headers: { 'content-type': message.contentType, 'content-length': String(message.body.length) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(message.body);
  });
}

test('two requesters behind hub B: each copy hub A\'s AS4 code composes has its own MessageId and gets its own Receipt; each requester stores the item once, a resend gets its stored Receipt', async () => {
  // Hub A's registry lists one partner per certificate, so only BOFT stands behind hub B there: the copies for BOFT and
  // FIA are composed by hub A's own AS4 code, with hub A's key and hub B's P-Mode, and sent as hub A sends them.
  const signing = hubIdentity(pkiA).signing;
  const pmode = as4Endpoint.parse(hubEndpoints(hubB.agencyPort, 'hub-b').as4);
  const settings = as4Settings.parse({ partyId: { id: 'hub-a' } });
  const body = Buffer.from(JSON.stringify({ item: 'TARIFF-0002' }));
  const envelope: Envelope = {
    id: 'TARIFF-0002', conversationId: 'TARIFF-0002', service: 'exchange.tariffs', action: 'deliver', from: 'CUSTOMS', to: '',
    audience: { kind: 'channel', id: 'tariffs', receivers: ['BOFT', 'FIA'] }, protocol: 'rest', contentType: 'application/json',
    size: body.length, sha256: createHash('sha256').update(body).digest('hex'), receivedAt: new Date().toISOString(),
  };
  const sent: { to: string; messageId: string; composed: ComposedMessage; receipt: string }[] = [];
  for (const to of ['BOFT', 'FIA']) {
    const copy = { ...envelope, to };
    const composed = await composeUserMessage(copy, body, pmode, settings, signing, [pkiB.hubSign.certPem], inProcessSigners.signSoap);
    const answer = await postToHubB(composed);
    assert.is(answer.status, 200, answer.body.toString('utf8').slice(0, 600));
    const message = readAs4Message(answer.body);
    assert.is(message.message.kind, 'signal');
    const messageId = deliveryMessageId(copy);
    assert.is(checkReceipt(message.message as SignalMessage, { messageId, references: composed.references }, true), undefined, `${to}'s copy: the Receipt answers it and copies each of its references`);
    const security = await checkWsSecurity(message.envelope);
    assert.is(security.certificatePem.replace(/\s/g, ''), pkiB.hubSign.certPem.replace(/\s/g, ''), 'signed by hub B');
    sent.push({ to, messageId, composed, receipt: answer.body.toString('utf8') });
  }
  assert.is(new Set(sent.map((copy) => copy.messageId)).size, 2, 'two copies, two MessageIds');

  const inboxOf = (to: string) => (to === 'BOFT' ? boft.inboxDir : join(hubB.dataDir, 'agencies', 'FIA', 'inbox'));
  for (const { to, messageId } of sent) {
    await waitFor(`the item at ${to}`, () => storedCopies(inboxOf(to), body.toString('utf8')) > 0, 60_000);
    const atB = await evidenceOf(hubB, messageId, ['received', 'routed', 'delivered'], 30_000);
    assert.equal(atB.filter((row) => row.stage === 'delivered').map((row) => row.to_partner), [to], `hub B delivered ${to}'s copy to ${to} alone`);
  }
  // BOFT's copy again, byte for byte (a retry whose receipt was lost): its own stored Receipt, and no second delivery.
  const boftCopy = sent[0]!;
  const again = await postToHubB(boftCopy.composed);
  assert.is(again.body.toString('utf8'), boftCopy.receipt, 'the stored Receipt of BOFT\'s copy, byte for byte');
  const atB = await evidenceOf(hubB, boftCopy.messageId, ['duplicate'], 30_000);
  assert.is(atB.filter((row) => row.stage === 'duplicate').length, 1);
  assert.is(storedCopies(boft.inboxDir, body.toString('utf8')), 1, 'BOFT stored the item once');
  assert.is(boft.receiver!.deliveriesOf(boftCopy.messageId), 1);
  assert.is(storedCopies(inboxOf('FIA'), body.toString('utf8')), 1, 'FIA stored the item once');
  assert.is(arrivals.get('FIA')!.filter((entry) => entry.id === sent[1]!.messageId).length, 1);
});

test.run();
