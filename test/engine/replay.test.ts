// Replay refusal: the in-process window, and the evidence stream refusing a query that another hub process already
// took. Two query pipelines, each with its own window, share one real nats-server, catalogue and registry, as two hub
// processes would; the provider is a stand-in for the providing agency, which counts what it is asked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { table1 } from '../../app/table1.ts';
import { Catalogue } from '../../engine/catalogue.ts';
import { SwxError } from '../../engine/errors.ts';
import { EvidenceLog, type EvidenceRecord } from '../../engine/evidence.ts';
import { connectBus, provisionStreams, streams, type Bus } from '../../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { initPki, issueAgency } from '../../engine/pki/index.ts';
import { queryIdOf, type ProviderConnector, type QueryRequest } from '../../engine/query.ts';
import { RateLimiter } from '../../engine/ratelimit.ts';
import { Registry } from '../../engine/registry.ts';
import { ReplayWindow } from '../../engine/replay.ts';
import { UnauthenticatedRefusals } from '../../engine/unauthenticated.ts';
import { QueryPipeline } from '../../pipelines/query.ts';
import { freePort, tempDir } from '../helpers/hub.ts';
import '../../app/connectors.ts';

const dir = tempDir('replay');
let nats: EmbeddedNats;
let bus: Bus;
let registry: Registry;
let catalogue: Catalogue;
const windows: ReplayWindow[] = [];
let asked = 0;

const provider: ProviderConnector = {
  async ask() {
    asked++;
    return { found: true, record: { declarationNo: 'AA12345678' }, raw: Buffer.from('signed answer'), contentType: 'application/json', signature: { scheme: 'http-message-signatures', keyId: 'provider-key', certThumbprint: 'provider-key', algorithm: 'ecdsa-p256-sha256', covered: ['@status'], value: 'v' } };
  },
};

/** A hub process's query pipeline: its own replay window, the shared stream. */
function hubProcess(node: string): QueryPipeline {
  const replay = new ReplayWindow(600);
  windows.push(replay);
  const evidence = new EvidenceLog(bus, node);
  return new QueryPipeline({
    catalogue, registry, evidence, refusals: new UnauthenticatedRefusals(evidence), replay,
    limiter: new RateLimiter({ default: { ratePerSecond: 1000, burst: 1000 }, askers: {} }),
    providers: (protocol) => (protocol === 'rest' ? provider : undefined),
    deadlineMs: 2000,
  });
}

const query = (extra: Partial<QueryRequest>): QueryRequest => ({
  asker: 'BOFT', dataset: 'import-declaration-sea', keys: { declarationNo: 'AA12345678' }, protocol: 'rest',
  raw: Buffer.from('{"keys":{"declarationNo":"AA12345678"}}'), contentType: 'application/json',
  signature: { scheme: 'http-message-signatures', keyId: 'asker-key', certThumbprint: 'asker-key', algorithm: 'ecdsa-p256-sha256', covered: ['@method'], value: 'v' },
  ...extra,
});

async function refusal(promise: Promise<unknown>): Promise<SwxError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, SwxError);
    return error as SwxError;
  }
  throw new Error('the query was answered');
}

/** The evidence stream's records published under a query id. */
async function evidenceOf(id: string): Promise<EvidenceRecord[]> {
  const { state } = await bus.jsm.streams.info(streams.evidence);
  const records: EvidenceRecord[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const message = await bus.jsm.streams.getMessage(streams.evidence, { seq });
    records.push(...message!.json<EvidenceRecord[]>().filter((record) => record.messageId === id));
  }
  return records;
}

test.before(async () => {
  nats = await startEmbeddedNats(dir, await freePort());
  bus = await connectBus(nats.url, 'replay-test');
  await provisionStreams(bus.jsm, 3600, 720);
  const pkiDir = join(dir, 'pki');
  await initPki(pkiDir, { agencies: ['BOFT', 'CUSTOMS'], alg: 'ecdsa' });
  registry = await Registry.open(bus);
  await registry.putPartner({ id: 'BOFT', name: 'BOFT', certificates: [(await issueAgency(pkiDir, 'BOFT')).certPem] });
  await registry.putPartner({
    id: 'CUSTOMS', name: 'CUSTOMS', certificates: [(await issueAgency(pkiDir, 'CUSTOMS')).certPem],
    endpoints: { rest: { queryUrl: 'https://customs.invalid/query' } },
  });
  catalogue = await Catalogue.open(bus);
  await catalogue.seed(table1);
});

test.after(async () => {
  for (const window of windows) window.close();
  registry?.close();
  catalogue?.close();
  await bus?.nc.close();
  await nats?.stop();
});

test('a window refuses a key it holds and forgets it after the window', () => {
  let now = 1_000_000;
  const window = new ReplayWindow(60, () => now);
  windows.push(window);
  assert.ok(window.claim('a'));
  assert.not.ok(window.claim('a'));
  assert.ok(window.claim('b'));
  now += 59_000;
  assert.not.ok(window.claim('a'), 'still inside the window');
  now += 2_000;
  assert.ok(window.claim('a'), 'the window has passed');
  assert.is(window.size, 2);
});

test('the evidence stream\'s duplicate window follows the replay window, also on a stream made with another', async () => {
  const window = async () => (await bus.jsm.streams.info(streams.evidence)).config.duplicate_window / 1e9;
  assert.is(await window(), 720);
  await provisionStreams(bus.jsm, 3600, 900);
  assert.is(await window(), 900);
  await provisionStreams(bus.jsm, 3600, 30);
  assert.is(await window(), 120, 'never under the two minutes other evidence retries rely on');
  await provisionStreams(bus.jsm, 3600, 720);
});

test('evidence published twice under one id is refused the second time', async () => {
  const evidence = new EvidenceLog(bus, 'test');
  const record = () => evidence.record({ messageId: 'm', conversationId: 'm', stage: 'received', from: 'A', to: 'B', service: 's', action: 'a', protocol: 'rest' });
  assert.ok(await evidence.publish([record()], 'replay:same'));
  assert.not.ok(await evidence.publish([record()], 'replay:same'));
});

test('a replay taken by another hub process is refused SWX_REPLAY, with evidence, and its answer is not handed out', async () => {
  const [first, second] = [hubProcess('hub-1'), hubProcess('hub-2')];
  const replayKey = `rest:asker-key:${Math.random()}`;
  const before = asked;
  const answered = await first.ask(query({ replayKey }));
  assert.ok(answered.found);
  const refused = await refusal(second.ask(query({ replayKey })));
  assert.is(refused.code, 'SWX_REPLAY');
  // The other process could not know before its evidence was refused: the provider was asked twice.
  assert.is(asked - before, 2);
  const refusalId = queryIdOf(refused)!;
  assert.ok(refusalId && refusalId !== answered.id);
  const records = await evidenceOf(refusalId);
  assert.equal(records.map((record) => [record.stage, record.code]), [['received', undefined], ['rejected', 'SWX_REPLAY']]);
  assert.equal((await evidenceOf(answered.id)).map((record) => record.stage), ['received', 'answered']);
});

test('an asker\'s query id names one query: reused in the same process it is refused before the provider is asked, in another when its evidence is written', async () => {
  const [first, second] = [hubProcess('hub-1'), hubProcess('hub-2')];
  const id = `asker-id-${Math.random().toString(36).slice(2)}`;
  const before = asked;
  assert.is((await first.ask(query({ id }))).id, id);
  assert.is((await refusal(first.ask(query({ id })))).code, 'SWX_DUPLICATE_CONFLICT');
  assert.is(asked - before, 1, 'the same process refused it at once');
  const refused = await refusal(second.ask(query({ id })));
  assert.is(refused.code, 'SWX_DUPLICATE_CONFLICT');
  assert.is(asked - before, 2);
  assert.equal((await evidenceOf(queryIdOf(refused)!)).map((record) => record.code), [undefined, 'SWX_DUPLICATE_CONFLICT']);
  assert.equal((await evidenceOf(id)).map((record) => record.stage), ['received', 'answered'], 'the first answer\'s evidence stands alone');
});

test.run();
