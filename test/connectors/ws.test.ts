// The SOAP side of the query service, all real but the query pipeline (a stand-in answering from app/demo-data.ts):
// a hub-like HTTPS server with mountSoapQueries on a real registry and catalogue (nats-server), a real trust store and
// PKI. Python zeep (with xmlsec) is the asking agency: it loads the WSDL, signs queries by WS-Security and verifies the
// hub's signed answers; xmlsec1 checks the hub's signature too. Hostile requests each get a signed fault with their
// code. SoapProvider is judged against the reference provider and against providers that misbehave.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request } from 'node:https';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { answer, sampleQuery } from '../../app/demo-data.ts';
import { table1 } from '../../app/table1.ts';
import { Catalogue } from '../../engine/catalogue.ts';
import { SwxError } from '../../engine/errors.ts';
import { close, createAgencyServer, listen, Router } from '../../engine/http.ts';
import { connectBus, type Bus } from '../../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../engine/nats/server.ts';
import { initPki, issueAgency, loadPki, TrustStore, type Credential } from '../../engine/pki/index.ts';
import type { ProviderCall, QueryRequest, QueryService } from '../../engine/query.ts';
import { ReplayWindow } from '../../engine/replay.ts';
import { Registry } from '../../engine/registry.ts';
import { checkWsSecurity, signSoap } from '../../engine/trust/index.ts';
import { startSoapProvider, type SoapProviderServer } from '../../connectors/ws/agency.ts';
import { soapAction, soapNamespaces, type SoapVersion } from '../../connectors/ws/contract.ts';
import { mountSoapQueries } from '../../connectors/ws/inbound.ts';
import { answerXml, queryXml } from '../../connectors/ws/messages.ts';
import { SoapProvider } from '../../connectors/ws/outbound.ts';
import { buildEnvelope, readFault, readSoap, soapContentType, writeSignedEnvelope } from '../../connectors/ws/soap.ts';
import { freePort, tempDir } from '../helpers/hub.ts';
import { zeep, type ZeepJob } from '../helpers/zeep.ts';

const dataset = 'import-declaration-sea';
const agencyIds = ['BOFT', 'BSMI', 'CUSTOMS'];
const dir = tempDir('ws');
const pkiDir = join(dir, 'pki');
const maxBodyBytes = 64 * 1024;

let nats: EmbeddedNats;
let bus: Bus;
let registry: Registry;
let catalogue: Catalogue;
let trust: TrustStore;
let server: Server;
let port = 0;
let pki: Awaited<ReturnType<typeof loadPki>>;
const agency: Record<string, Credential> = {};
const asked: QueryRequest[] = [];
const refused: { request: Parameters<QueryService['refuse']>[0]; error: SwxError }[] = [];
const replay = new ReplayWindow(600);
const providers: SoapProviderServer[] = [];
const rawServers: Server[] = [];

/** The pipeline's stand-in: answers from the demo data as CUSTOMS would, and keeps what it was given. */
const queries: QueryService = {
  async ask(request) {
    asked.push(request);
    const record = answer(request.dataset, request.keys) as Record<string, unknown> | undefined;
    return { id: request.id ?? `query-${asked.length}`, dataset: request.dataset, provider: 'CUSTOMS', found: record !== undefined, ...(record ? { record } : {}), answeredAt: new Date().toISOString(), providerMs: 1 };
  },
  async refuse(request, error) {
    refused.push({ request, error });
    return `refused-${refused.length}`;
  },
};

/** Declaration numbers the demo data answers for, a different one each time. */
const samples = sampleQuery(dataset, 64);
const knownDeclaration = () => samples[Math.floor(Math.random() * samples.length)]!.declarationNo!;

test.before(async () => {
  await initPki(pkiDir, { agencies: agencyIds, alg: 'ecdsa' });
  pki = await loadPki(pkiDir);
  for (const id of agencyIds) agency[id] = await issueAgency(pkiDir, id);
  nats = await startEmbeddedNats(dir, await freePort());
  bus = await connectBus(nats.url, 'ws-test');
  registry = await Registry.open(bus);
  for (const id of agencyIds) await registry.putPartner({ id, name: id, certificates: [agency[id]!.certPem] });
  catalogue = await Catalogue.open(bus);
  await catalogue.seed(table1);
  trust = await TrustStore.open(pkiDir, { graceSeconds: 3600, failOpen: false, ocsp: false, maxAgeSeconds: 7200, fetchTimeoutMs: 2000 });
  const router = new Router();
  mountSoapQueries(router, {
    registry, trust, catalogue, queries, replay,
    hub: { keyPem: pki.hubSign.keyPem, certPem: pki.hubSign.certPem },
    maxBodyBytes, clockSkewSeconds: 60, publicUrl: () => `https://localhost:${port}`,
  });
  server = createAgencyServer({ key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: [pki.ca.certPem] }, router);
  port = await listen(server, 0, '127.0.0.1');
  for (const [name, text] of Object.entries({ 'ca.pem': pki.ca.certPem, 'hub.pem': pki.hubSign.certPem })) writeFileSync(join(dir, name), text);
});

test.after(async () => {
  await Promise.all([...providers.map((p) => p.close()), ...rawServers.map((s) => close(s))]);
  await close(server);
  registry.close();
  replay.close();
  catalogue.close();
  await bus.nc.close();
  await nats.stop();
});

interface Reply { status: number; contentType: string; body: Buffer }

function post(path: string, body: Buffer | string, headers: Record<string, string>, as: Credential = agency.BOFT!): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, path, method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, key: as.keyPem, cert: as.certPem, ca: pki.ca.certPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function headersFor(version: SoapVersion, action = soapAction(dataset)): Record<string, string> {
  return version === '1.1' ? { 'content-type': soapContentType('1.1'), soapaction: `"${action}"` } : { 'content-type': soapContentType('1.2', action) };
}

function signedQuery(version: SoapVersion, keys: Record<string, string>, options: { as?: Credential; createdAt?: Date; parts?: ('Body' | 'Timestamp')[] } = {}): Promise<string> {
  const as = options.as ?? agency.BOFT!;
  return signSoap(buildEnvelope(version, queryXml({ keys })), {
    keyPem: as.keyPem, certPem: as.certPem,
    ...(options.createdAt ? { createdAt: options.createdAt } : {}),
    ...(options.parts ? { parts: options.parts } : {}),
  });
}

/** The SWX code of a fault reply, after checking its status and that the hub signed it. */
async function faultCode(reply: Reply, version: SoapVersion): Promise<string | undefined> {
  const message = readSoap(reply.body, reply.contentType);
  assert.is(message.version, version);
  const fault = readFault(message);
  assert.ok(fault, `a fault, got HTTP ${reply.status}: ${reply.body.toString('utf8').slice(0, 300)}`);
  const expected = version === '1.1' ? 500 : new SwxError(fault!.code as never, '').status;
  assert.is(reply.status, expected, `HTTP status of ${fault!.code}`);
  const signed = await checkWsSecurity(message);
  assert.is(signed.thumbprint, pki.hubSign.thumbprint, 'the fault is signed by the hub');
  return fault!.code;
}

/** zeep as the asking agency BOFT against the test server. */
function askWithZeep(calls: ZeepJob['calls'], wsdl = `https://localhost:${port}/ws/query/${dataset}?wsdl`, hubCert = join(dir, 'hub.pem')): Promise<any[]> {
  return zeep({ wsdl, service: dataset, cert: agency.BOFT!.certPath, key: agency.BOFT!.keyPath, alg: 'ecdsa', ca: join(dir, 'ca.pem'), hubCert, calls });
}

test('zeep loads the WSDL, asks over SOAP 1.1 and 1.2 signed by WS-Security, and verifies the signed answers', async () => {
  const declarationNo = knownDeclaration();
  const expected = answer(dataset, { declarationNo });
  const before = asked.length;
  const outcomes = await askWithZeep([
    { binding: 'Soap11', keys: { declarationNo } },
    { binding: 'Soap12', keys: { declarationNo } },
    { binding: 'Soap11', keys: { declarationNo: 'AA  00XXX00000' } },
  ]);
  for (const outcome of outcomes.slice(0, 2)) {
    assert.is(outcome.answer?.found, true, JSON.stringify(outcome));
    assert.is(outcome.answer.dataset, dataset);
    assert.is(outcome.answer.provider, 'CUSTOMS');
    assert.equal(outcome.answer.record, expected, 'the record survives JSON -> fn:json-to-xml -> zeep -> JSON');
  }
  assert.equal(outcomes[2], { answer: { queryId: outcomes[2].answer.queryId, dataset, provider: 'CUSTOMS', found: false, record: null } });
  const seen = asked.slice(before);
  assert.is(seen.length, 3);
  for (const request of seen) {
    assert.is(request.asker, 'BOFT');
    assert.is(request.protocol, 'soap');
    assert.is(request.signature.certThumbprint, agency.BOFT!.thumbprint);
    assert.equal(request.signature.covered, ['/Envelope/Body', '/Envelope/Header/Security/Timestamp']);
  }
  assert.equal(seen[0]!.keys, { declarationNo });
  assert.match(seen[1]!.contentType, /^application\/soap\+xml/);
});

test('zeep also loads the WSDL at /ws/query/<dataset>.wsdl; it refuses an answer checked against another certificate; an unknown dataset is 404', async () => {
  writeFileSync(join(dir, 'not-hub.pem'), agency.BSMI!.certPem);
  const outcomes = await askWithZeep([{ binding: 'Soap12', keys: { declarationNo: 'AA  00XXX00001' } }], `https://localhost:${port}/ws/query/${dataset}.wsdl`, join(dir, 'not-hub.pem'));
  assert.equal(outcomes, [{ unverified: true }], 'zeep really checks the signature');
  const missing = await fetchStatus(`/ws/query/no-such-dataset?wsdl`);
  assert.is(missing, 404);
});

function fetchStatus(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', servername: 'localhost', port, path, ca: pki.ca.certPem }, (res) => { res.resume(); resolve(res.statusCode ?? 0); })
      .on('error', reject).end();
  });
}

test('xmlsec1 --verify accepts the answer the hub signs', async () => {
  const reply = await post(`/ws/query/${dataset}`, await signedQuery('1.1', { declarationNo: knownDeclaration() }), headersFor('1.1'));
  assert.is(reply.status, 200, reply.body.toString('utf8').slice(0, 300));
  const file = join(dir, 'answer.xml');
  writeFileSync(file, reply.body);
  const run = spawnSync('xmlsec1', ['--verify', '--pubkey-cert-pem', join(dir, 'hub.pem'),
    '--id-attr:Id', `${soapNamespaces['1.1']}:Body`,
    '--id-attr:Id', 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd:Timestamp', file], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  assert.match(run.stderr, /OK/);
});

const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>`
  + `<soap:Envelope xmlns:soap="${soapNamespaces['1.2']}"><soap:Body><q:Query xmlns:q="urn:swx:query:1"><q:declarationNo>&lol3;</q:declarationNo></q:Query></soap:Body></soap:Envelope>`;

/** The signed request with its Body moved into a header block and a new Body put in its place. */
function wrapped(signed: string): string {
  const body = /<soap:Body[\s\S]*<\/soap:Body>/.exec(signed)![0];
  return signed.replace(body, `<soap:Body>${queryXml({ keys: { declarationNo: 'AWCA13M4Y00000' } })}</soap:Body>`)
    .replace('</soap:Header>', `<w:Wrapper xmlns:w="urn:example:wrapper">${body}</w:Wrapper></soap:Header>`);
}

const keys = () => ({ declarationNo: knownDeclaration() });
const minutes = (n: number) => new Date(Date.now() + n * 60_000);

const hostile: [name: string, version: SoapVersion, make: () => Promise<{ body: string; headers?: Record<string, string>; as?: Credential }>, code: string][] = [
  ['unsigned', '1.1', async () => ({ body: buildEnvelope('1.1', queryXml({ keys: keys() })) }), 'SWX_SIG_MISSING'],
  ['stale Timestamp', '1.2', async () => ({ body: await signedQuery('1.2', keys(), { createdAt: minutes(-10) }) }), 'SWX_SIG_EXPIRED'],
  ['future Timestamp', '1.1', async () => ({ body: await signedQuery('1.1', keys(), { createdAt: minutes(10) }) }), 'SWX_SIG_EXPIRED'],
  ['no Timestamp', '1.2', async () => ({ body: await signedQuery('1.2', keys(), { parts: ['Body'] }) }), 'SWX_SIG_MISSING'],
  ['Body not signed', '1.2', async () => ({ body: await signedQuery('1.2', keys(), { parts: ['Timestamp'] }) }), 'SWX_SIG_MISSING'],
  ['wrapped Body', '1.1', async () => ({ body: wrapped(await signedQuery('1.1', keys())) }), 'SWX_SIG_WRAPPED'],
  ['XML bomb', '1.2', async () => ({ body: bomb }), 'SWX_XML_FORBIDDEN'],
  ['SOAP 1.1 action of another dataset', '1.1', async () => ({ body: await signedQuery('1.1', keys()), headers: headersFor('1.1', soapAction('export-declaration-sea')) }), 'SWX_SOAP_ACTION'],
  ['SOAP 1.2 without an action', '1.2', async () => ({ body: await signedQuery('1.2', keys()), headers: { 'content-type': soapContentType('1.2') } }), 'SWX_SOAP_ACTION'],
  ['oversized body', '1.2', async () => ({ body: buildEnvelope('1.2', `<x>${'a'.repeat(maxBodyBytes)}</x>`) }), 'SWX_TOO_LARGE'],
  ['BinarySecurityToken of another partner', '1.2', async () => ({ body: await signedQuery('1.2', keys(), { as: agency.BSMI! }) }), 'SWX_SIG_KEY_MISMATCH'],
  ['wrong keys', '1.1', async () => ({ body: await signedQuery('1.1', { ubn: '49572785' }) }), 'SWX_BAD_REQUEST'],
  ['extra key', '1.2', async () => ({ body: await signedQuery('1.2', { ...keys(), ubn: '49572785' }) }), 'SWX_BAD_REQUEST'],
  ['version disagreeing with the Content-Type', '1.1', async () => ({ body: await signedQuery('1.2', keys()), headers: headersFor('1.1') }), 'SWX_BAD_REQUEST'],
];

for (const [name, version, make, code] of hostile) {
  test(`${name}: a signed SOAP ${version} fault ${code}, evidenced as refused`, async () => {
    const before = { asked: asked.length, refused: refused.length };
    const request = await make();
    const reply = await post(`/ws/query/${dataset}`, request.body, request.headers ?? headersFor(version), request.as);
    assert.is(await faultCode(reply, version), code);
    assert.is(asked.length, before.asked, 'never reached the pipeline');
    assert.is(refused.length, before.refused + 1);
    assert.is(refused.at(-1)!.error.code, code);
    assert.match(reply.body.toString('utf8'), `<q:messageId xmlns:q="urn:swx:query:1">refused-${refused.length}</q:messageId>`);
  });
}

test('a replayed request is refused with SWX_REPLAY; the first one was answered', async () => {
  const body = await signedQuery('1.2', keys());
  const first = await post(`/ws/query/${dataset}`, body, headersFor('1.2'));
  assert.is(first.status, 200);
  const again = await post(`/ws/query/${dataset}`, body, headersFor('1.2'));
  assert.is(await faultCode(again, '1.2'), 'SWX_REPLAY');
});

test('a signature re-encoded with the same signed content is still a replay', async () => {
  // ECDSA's (r, s) and (r, n - s) both verify: the replay key must not hang on the SignatureValue's bytes.
  const body = await signedQuery('1.1', keys());
  assert.is((await post(`/ws/query/${dataset}`, body, headersFor('1.1'))).status, 200);
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  const flipped = body.replace(/<ds:SignatureValue>([^<]+)<\/ds:SignatureValue>/, (_, value: string) => {
    const raw = Buffer.from(value, 'base64');
    const s = BigInt(`0x${raw.subarray(32).toString('hex')}`);
    return `<ds:SignatureValue>${Buffer.concat([raw.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')]).toString('base64')}</ds:SignatureValue>`;
  });
  assert.is.not(flipped, body);
  assert.is(await faultCode(await post(`/ws/query/${dataset}`, flipped, headersFor('1.1')), '1.1'), 'SWX_REPLAY');
});

// ---- SoapProvider (the hub asking a provider) against the reference provider and misbehaving ones ----

function hubProvider(signing = { keyPem: pki.hubSign.keyPem, certPem: pki.hubSign.certPem }): SoapProvider {
  return new SoapProvider({ tls: { key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: [pki.ca.certPem] }, signing, registry, trust });
}

async function referenceProvider(as: Credential, answerWith = (d: string, k: Record<string, string>) => answer(d, k) as Record<string, unknown> | undefined): Promise<SoapProviderServer> {
  const started = await startSoapProvider({ certPem: as.certPem, keyPem: as.keyPem, caPem: pki.ca.certPem, hubCertPem: pki.hubSign.certPem, provider: 'CUSTOMS', answer: answerWith });
  providers.push(started);
  return started;
}

const call = (url: string, overrides: Partial<ProviderCall> = {}): ProviderCall => ({
  id: `q-${Math.random().toString(36).slice(2)}`, asker: 'BOFT', dataset, provider: 'CUSTOMS', keys: keys(), endpoint: { queryUrl: url }, signal: AbortSignal.timeout(10_000), ...overrides,
});

async function rejection(promise: Promise<unknown>): Promise<SwxError> {
  try { await promise; } catch (error) { assert.instance(error, SwxError); return error as SwxError; }
  throw new Error('expected a rejection');
}

test('SoapProvider: the reference provider answers, signed by CUSTOMS; the record round-trips', async () => {
  const provider = await referenceProvider(agency.CUSTOMS!);
  const hub = hubProvider();
  try {
    const query = call(provider.url);
    const found = await hub.ask(query);
    assert.is(found.found, true);
    assert.equal(found.record, answer(dataset, query.keys));
    assert.is(found.signature.certThumbprint, agency.CUSTOMS!.thumbprint);
    assert.match(found.raw.toString('utf8'), `<q:queryId>${query.id}</q:queryId>`);
    const missing = await hub.ask(call(provider.url, { keys: { declarationNo: 'AA  00XXX00000' } }));
    assert.is(missing.found, false);
    assert.is(missing.record, undefined);
  } finally {
    hub.close();
  }
});

test('SoapProvider: an answer signed by another agency, a tampered answer, a fault -> SWX_PROVIDER_ERROR', async () => {
  const hub = hubProvider();
  try {
    const impostor = await referenceProvider(agency.BSMI!);
    const signedByOther = await rejection(hub.ask(call(impostor.url)));
    assert.is(signedByOther.code, 'SWX_PROVIDER_ERROR');
    assert.match(signedByOther.message, 'not a certificate of CUSTOMS');

    const failing = await referenceProvider(agency.CUSTOMS!, () => { throw new Error('register offline'); });
    const fault = await rejection(hub.ask(call(failing.url)));
    assert.is(fault.code, 'SWX_PROVIDER_ERROR');
    assert.match(fault.message, 'SWX_INTERNAL');

    const tampering = await rawProvider(async (query) => {
      const signed = writeSignedEnvelope('1.1', answerXml({ queryId: query, dataset, provider: 'CUSTOMS', found: true, answeredAt: new Date().toISOString(), record: { customsValueTwd: 100 } }),
        { keyPem: agency.CUSTOMS!.keyPem, certPem: agency.CUSTOMS!.certPem });
      return signed.replace('>100<', '>1000000<');
    });
    const tampered = await rejection(hub.ask(call(tampering)));
    assert.is(tampered.code, 'SWX_PROVIDER_ERROR');
    assert.match(tampered.message, 'SWX_DIGEST_MISMATCH');

    const otherQuery = await rawProvider(async () => writeSignedEnvelope('1.1', answerXml({ queryId: 'some-other-query', dataset, provider: 'CUSTOMS', found: false, answeredAt: new Date().toISOString() }),
      { keyPem: agency.CUSTOMS!.keyPem, certPem: agency.CUSTOMS!.certPem }));
    assert.match((await rejection(hub.ask(call(otherQuery)))).message, 'not this one');
  } finally {
    hub.close();
  }
});

test('the reference provider refuses a query not signed by the hub', async () => {
  const provider = await referenceProvider(agency.CUSTOMS!);
  const hub = hubProvider({ keyPem: agency.BSMI!.keyPem, certPem: agency.BSMI!.certPem });
  try {
    const error = await rejection(hub.ask(call(provider.url)));
    assert.is(error.code, 'SWX_PROVIDER_ERROR');
    assert.match(error.message, 'SWX_SIG_KEY_MISMATCH');
  } finally {
    hub.close();
  }
});

test('SoapProvider: a provider that does not answer is abandoned as soon as the signal aborts', async () => {
  const silent = await rawProvider(() => new Promise(() => {}));
  const hub = hubProvider();
  try {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 200);
    const error = await rejection(hub.ask(call(silent, { signal: controller.signal })));
    const took = Date.now() - started;
    assert.is(error.code, 'SWX_PROVIDER_TIMEOUT');
    assert.ok(took < 1000, `rejected ${took} ms after the start, abort at 200 ms`);
  } finally {
    hub.close();
  }
});

/** An HTTPS endpoint with the CUSTOMS certificate that answers whatever `reply` makes of the hub's q:queryId. */
async function rawProvider(reply: (queryId: string) => Promise<string>): Promise<string> {
  const raw = createHttpsServer({ key: agency.CUSTOMS!.keyPem, cert: agency.CUSTOMS!.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const queryId = /<q:queryId>([^<]+)</.exec(Buffer.concat(chunks).toString('utf8'))?.[1] ?? '';
      const body = await reply(queryId);
      res.writeHead(200, { 'content-type': soapContentType('1.1') }).end(body);
    });
  }) as unknown as Server;
  rawServers.push(raw);
  const rawPort = await listen(raw, 0, '127.0.0.1');
  return `https://localhost:${rawPort}/ws/query`;
}

test.run();
