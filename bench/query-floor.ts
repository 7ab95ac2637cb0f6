// query floor: what the query bench's shape costs on this machine with nothing of the hub in it. An asker process
// sends HTTPS queries open-loop (mutual TLS, keep-alive, latency from each scheduled send), a forwarder in the hub's
// place passes each on to a provider process over a keep-alive agent and relays its answer (a demo record).
// - plain: no signatures, no evidence, no catalogue: the least three Node processes of the query bench's shape spend
//   on HTTPS here, and the least latency the query bench can show.
// - --mandated: also the work every query requires and nothing more: every hop's message signed by its
//   sender and checked by its receiver (RFC 9421 over Content-Digest), and the request's and answer's evidence (both
//   bodies) published to a JetStream stream and acknowledged before the asker is answered.
// - --soap: the mandated floor with SOAP and WS-Security on every hop, written and checked by the hub's own code.
// One file, three roles (argv[2]); the bench process starts them and gathers their figures.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { answer, sampleQuery } from '../app/demo-data.ts';
import { clientAgent } from '../engine/http.ts';
import { checkContentDigest, contentDigest, sign, verify, type SigAlg } from '../engine/httpsig.ts';
import { connectBus, provisionStreams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../engine/nats/server.ts';
import { initPki, issueAgency, loadPki, thumbprint } from '../engine/pki/index.ts';
import { checkWsSecurity } from '../engine/trust/index.ts';
import { elementChildren } from '../engine/xml/elements.ts';
import { envelopeHeaders, providerRequestComponents, queryRequestComponents, receiptComponents } from '../connectors/rest/contract.ts';
import { soapAction } from '../connectors/ws/contract.ts';
import { answerXml, contextXml, queryXml, readAnswer, readContext, readQuery } from '../connectors/ws/messages.ts';
import { readSoap, soapContentType, writeSignedEnvelope } from '../connectors/ws/soap.ts';
import { freePort } from '../app/hub-process.ts';
import { conditions, percentile, treeCpuMs } from './conditions.ts';
import { reply } from './ipc.ts';

export type FloorKind = 'plain' | 'rest' | 'soap';
interface Tls { key: string; cert: string; ca: string }
/** This role's signing key and name, and the certificates of those it takes messages from, by name. */
interface Role { kind: FloorKind; name: string; keyPem: string; certPem: string; peers: Record<string, string> }
type Listen = { tls: Tls; role: Role; upstream?: string; natsUrl?: string };
type Message = { listen?: Listen; run?: { url: string; tls: Tls; rate: number; seconds: number; role: Role }; cpu?: true };

const cpuMs = () => { const used = process.cpuUsage(); return (used.user + used.system) / 1000; };
const dataset = 'import-declaration-sea';
const alg: SigAlg = 'ecdsa-p256-sha256';

interface Outgoing { headers: Record<string, string>; body: Buffer }
interface Incoming { status?: number; method?: string; url?: string; headers: IncomingHttpHeaders; body: Buffer }

/**
 * How one kind of floor writes and checks each hop: the asker's query, the forwarder's request to the provider, the
 * provider's answer and the forwarder's answer to the asker. Each check throws unless the message is a peer's.
 */
interface Wire {
  ask(url: string, keys: Record<string, string>): Outgoing;
  /** The forwarder's request to the provider for the asker's query, and the query id it names. */
  forward(asked: Incoming, url: string): Promise<Outgoing & { queryId: string }>;
  provide(asked: Incoming, record: Record<string, unknown>): Promise<Outgoing>;
  /** The forwarder's answer to the asker for the provider's. */
  relay(answered: Incoming, queryId: string): Promise<Outgoing>;
}

const targetUri = (message: Incoming) => `https://${message.headers.host}${message.url}`;

/** No signatures: bodies pass through as they are. */
const plainWire: Wire = {
  ask: (_url, keys) => ({ headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ keys })) }),
  forward: async (asked) => ({ headers: { 'content-type': 'application/json' }, body: asked.body, queryId: '' }),
  provide: async (_asked, record) => ({ headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ found: true, record })) }),
  relay: async (answered) => ({ headers: { 'content-type': 'application/json' }, body: answered.body }),
};

/** RFC 9421 over Content-Digest on every hop, as the hub's REST contract has it. */
function restWire(role: Role): Wire {
  const key = createPrivateKey(role.keyPem);
  const keyId = role.name;
  const peers = new Map(Object.entries(role.peers).map(([name, certPem]) => [name, { key: createPublicKey(certPem) as KeyObject, alg }]));
  const seal = (message: { method?: string; targetUri?: string; status?: number }, headers: Record<string, string>, body: Buffer, components: string[]): Outgoing => {
    headers['content-digest'] = contentDigest(body);
    Object.assign(headers, sign({ ...message, headers }, { key, keyId, alg, components }));
    return { headers, body };
  };
  const check = (message: { method?: string; targetUri?: string; status?: number }, incoming: Incoming, components: string[]) => {
    verify({ ...message, headers: incoming.headers }, { required: components, maxSkewSeconds: 300, key: (id) => peers.get(id) });
    const digest = incoming.headers['content-digest'];
    if (!checkContentDigest(typeof digest === 'string' ? digest : undefined, incoming.body)) throw new Error('Content-Digest does not match');
  };
  return {
    ask: (url, keys) => seal({ method: 'POST', targetUri: url }, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ keys })), queryRequestComponents),
    async forward(asked, url) {
      check({ method: asked.method, targetUri: targetUri(asked) }, asked, queryRequestComponents);
      const { keys } = JSON.parse(asked.body.toString('utf8')) as { keys: Record<string, string> };
      const queryId = randomUUID();
      const body = Buffer.from(JSON.stringify({ queryId, dataset, asker: 'BOFT', keys }));
      const headers = { 'content-type': 'application/json', [envelopeHeaders.messageId]: queryId, 'swx-from': 'BOFT' };
      return { ...seal({ method: 'POST', targetUri: url }, headers, body, providerRequestComponents), queryId };
    },
    async provide(asked, record) {
      check({ method: asked.method, targetUri: targetUri(asked) }, asked, providerRequestComponents);
      const headers = { 'content-type': 'application/json', [envelopeHeaders.messageId]: String(asked.headers[envelopeHeaders.messageId]) };
      return seal({ status: 200 }, headers, Buffer.from(JSON.stringify({ found: true, record })), receiptComponents);
    },
    async relay(answered, queryId) {
      check({ status: answered.status }, answered, receiptComponents);
      return seal({ status: 200 }, { 'content-type': 'application/json', [envelopeHeaders.messageId]: queryId }, answered.body, receiptComponents);
    },
  };
}

/** SOAP 1.1 with WS-Security (X.509, ECDSA P-256, over Body and Timestamp) on every hop, by the hub's own code. */
function soapWire(role: Role): Wire {
  const signer = { keyPem: role.keyPem, certPem: role.certPem };
  const peers = new Set(Object.values(role.peers).map((certPem) => thumbprint(certPem)));
  const contentType = soapContentType('1.1');
  const envelope = (bodyXml: string, headers: Parameters<typeof writeSignedEnvelope>[3] = []) => Buffer.from(writeSignedEnvelope('1.1', bodyXml, signer, headers));
  const open = async (incoming: Incoming) => {
    const message = readSoap(incoming.body, String(incoming.headers['content-type']), incoming.headers.soapaction as string | undefined);
    const security = await checkWsSecurity(message);
    if (!peers.has(security.thumbprint)) throw new Error('not signed by a peer');
    return message;
  };
  return {
    ask: (_url, keys) => ({ headers: { 'content-type': contentType, soapaction: `"${soapAction(dataset)}"` }, body: envelope(queryXml({ keys })) }),
    async forward(asked) {
      const { keys } = readQuery((await open(asked)).payload);
      const queryId = randomUUID();
      const body = envelope(queryXml({ provider: 'CUSTOMS', keys }), [contextXml({ queryId, dataset, asker: 'BOFT' })]);
      return { headers: { 'content-type': contentType, soapaction: `"${soapAction(dataset)}"` }, body, queryId };
    },
    async provide(asked, record) {
      const message = await open(asked);
      const context = readContext(elementChildren(message.header!).find((element) => element.localName === 'Context')!);
      readQuery(message.payload);
      const bodyXml = answerXml({ queryId: context.queryId, dataset, provider: 'CUSTOMS', found: true, answeredAt: new Date().toISOString(), record });
      return { headers: { 'content-type': contentType }, body: envelope(bodyXml) };
    },
    async relay(answered, queryId) {
      const answer = readAnswer((await open(answered)).payload);
      return { headers: { 'content-type': contentType }, body: envelope(answerXml({ ...answer, queryId })) };
    },
  };
}

const wireOf = (role: Role): Wire => role.kind === 'soap' ? soapWire(role) : role.kind === 'rest' ? restWire(role) : plainWire;

/** One acknowledged stream message per query with both its records, as the hub's evidence of a query is. */
function evidenceOf(asked: Buffer, answered: Buffer, asker: string, provider: string) {
  const record = (stage: string, raw: Buffer, from: string, to: string) => ({
    id: randomUUID(), stage, at: new Date().toISOString(), from, to, service: `query.${dataset}`, size: raw.length,
    sha256: createHash('sha256').update(raw).digest('hex'), raw: raw.toString('base64'),
  });
  return JSON.stringify([record('received', asked, asker, provider), record('answered', answered, provider, asker)]);
}

const readAll = (from: IncomingMessage) => new Promise<Buffer>((resolve, reject) => {
  const chunks: Buffer[] = [];
  from.on('data', (chunk: Buffer) => chunks.push(chunk));
  from.on('end', () => resolve(Buffer.concat(chunks)));
  from.on('error', reject);
});

/** POSTs over `agent`; resolves with the answer, read whole. */
const post = (url: string, agent: ReturnType<typeof clientAgent>, outgoing: Outgoing) => new Promise<Incoming>((resolve, reject) => {
  const req = request(url, { method: 'POST', agent, headers: { ...outgoing.headers, 'content-length': outgoing.body.length } }, (res) => {
    readAll(res).then((body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }), reject);
  });
  req.on('error', reject);
  req.end(outgoing.body);
});

/** The forwarder and the provider: mutual TLS servers; the forwarder relays to `upstream`, the provider answers a record. */
async function listen({ tls, role, upstream, natsUrl }: Listen): Promise<number> {
  const wire = wireOf(role);
  // The forwarder's keep-alive agent to the provider; the provider's records to answer with.
  const agent = upstream ? clientAgent(tls, 64) : undefined;
  const records = upstream ? [] : sampleQuery(dataset, 64).map((keys) => answer(dataset, keys)!);
  const bus: Bus | undefined = natsUrl ? await connectBus(natsUrl, 'floor-forwarder') : undefined;
  let served = 0;
  const handle = async (incoming: Incoming): Promise<Outgoing> => {
    if (!upstream) return wire.provide(incoming, records[served++ % records.length]!);
    const onward = await wire.forward(incoming, upstream);
    const answered = await post(upstream, agent!, onward);
    if (answered.status !== 200) throw new Error(`the provider answered ${answered.status}`);
    if (bus) await bus.js.publish(subjects.evidence, evidenceOf(incoming.body, answered.body, 'BOFT', 'CUSTOMS'), { msgID: randomUUID() });
    return wire.relay(answered, onward.queryId);
  };
  const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 }, (req, res) => {
    readAll(req)
      .then((body) => handle({ method: req.method, url: req.url, headers: req.headers, body }))
      .then(({ headers, body }) => res.writeHead(200, { ...headers, 'content-length': body.length }).end(body))
      .catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** The asker: open loop at `rate`, after a warm-up at the same rate that opens the connections it will need. */
async function ask({ url, tls, rate, seconds, role }: NonNullable<Message['run']>) {
  const agent = clientAgent(tls, 64);
  const wire = wireOf(role);
  const queries = sampleQuery(dataset, 256);
  // Each query is written (and signed) when it is sent, as an asking agency would.
  const once = (keys: Record<string, string>) => post(url, agent, wire.ask(url, keys)).then((answered) => answered.status ?? 0);
  const round = async (total: number) => {
    const latencies: number[] = [];
    let failed = 0;
    const pending: Promise<void>[] = [];
    const start = performance.now() + 20;
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(once(queries[i % queries.length]!).then(
        (status) => { if (status === 200) latencies.push(performance.now() - due); else failed++; },
        () => { failed++; },
      ));
    }
    await Promise.all(pending);
    return { latencies, failed, ms: performance.now() - start };
  };
  await round(Math.round(rate * 2));
  const before = cpuMs();
  const measured = await round(Math.round(rate * seconds));
  return { ...measured, cpuMs: cpuMs() - before };
}

if (process.argv[2] === 'role') {
  process.on('message', (message: Message) => {
    if (message.listen) void listen(message.listen).then((port) => process.send!({ port }));
    if (message.run) void ask(message.run).then((result) => process.send!({ result }));
    if (message.cpu) process.send!({ cpuMs: cpuMs() });
  });
  process.on('disconnect', () => process.exit(0));
}

export interface FloorRow {
  protocol: 'rest-floor' | 'rest-mandated-floor' | 'soap-mandated-floor';
  offered_per_s: number;
  achieved_per_s: number;
  observed_p50_ms: number;
  observed_p95_ms: number;
  observed_p99_ms: number;
  failed: number;
  /** `all`: every process of the bench (nats-server too), over the whole round, warm-up included. */
  cpu_ms_per_query: { asker: number; forwarder: number; provider: number; all: number };
}

const rowProtocol = { plain: 'rest-floor', rest: 'rest-mandated-floor', soap: 'soap-mandated-floor' } as const;

export async function floorBench(options: { json: boolean; rates: number[]; seconds: number; kind: FloorKind }): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const dir = mkdtempSync(join(tmpdir(), 'swx-floor-'));
  const children: ChildProcess[] = [];
  let nats: EmbeddedNats | undefined;
  try {
    await initPki(dir, { agencies: ['BOFT', 'CUSTOMS'], alg: 'ecdsa' });
    const pki = await loadPki(dir);
    const credentials = async (id: string): Promise<Tls> => {
      const issued = await issueAgency(dir, id);
      return { key: issued.keyPem, cert: issued.certPem, ca: pki.ca.certPem };
    };
    const start = () => {
      const child = fork(fileURLToPath(import.meta.url), ['role'], { execArgv: ['--import', 'tsx'] });
      children.push(child);
      return child;
    };
    const [provider, forwarder, asker] = [start(), start(), start()];
    const [providerTls, askerTls] = [await credentials('CUSTOMS'), await credentials('BOFT')];
    const hubTls = { key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: pki.ca.certPem };
    // Mandated: each signs with its own key and checks the key of whom it talks to; the forwarder keeps evidence.
    const mandated = options.kind !== 'plain';
    const role = (name: string, credential: { keyPem: string; certPem: string }, peers: Record<string, string>): Role => ({ kind: options.kind, name, ...credential, peers });
    const hubSign = { keyPem: pki.hubSign.keyPem, certPem: pki.hubSign.certPem };
    nats = mandated ? await startEmbeddedNats(dir, await freePort()) : undefined;
    if (nats) {
      const bus = await connectBus(nats.url, 'floor-provisioning');
      await provisionStreams(bus.jsm, 120, 600);
      await bus.nc.close();
    }
    const providerPort = await reply<number>(provider, 'port', {
      listen: { tls: providerTls, role: role('CUSTOMS', { keyPem: providerTls.key, certPem: providerTls.cert }, { HUB: hubSign.certPem }) },
    });
    const forwarderPort = await reply<number>(forwarder, 'port', {
      listen: {
        tls: hubTls, upstream: `https://localhost:${providerPort}/query`, ...(nats ? { natsUrl: nats.url } : {}),
        role: role('HUB', hubSign, { BOFT: askerTls.cert, CUSTOMS: providerTls.cert }),
      },
    });
    const rows: FloorRow[] = [];
    for (const rate of options.rates) {
      say(`${rowProtocol[options.kind]}: ${rate} queries/s offered for ${options.seconds} s (after 2 s at the same rate)`);
      // The servers' CPU is read around the whole round, warm-up included, then scaled to the measured share.
      const [forwarderBefore, providerBefore, allBefore] = [await reply<number>(forwarder, 'cpuMs', { cpu: true }), await reply<number>(provider, 'cpuMs', { cpu: true }), treeCpuMs(process.pid)];
      const result = await reply<{ latencies: number[]; failed: number; ms: number; cpuMs: number }>(asker, 'result', {
        run: { url: `https://localhost:${forwarderPort}/v1/query/${dataset}`, tls: askerTls, rate, seconds: options.seconds, role: role('BOFT', { keyPem: askerTls.key, certPem: askerTls.cert }, { HUB: hubSign.certPem }) },
      });
      const [forwarderAfter, providerAfter, allAfter] = [await reply<number>(forwarder, 'cpuMs', { cpu: true }), await reply<number>(provider, 'cpuMs', { cpu: true }), treeCpuMs(process.pid)];
      const answered = result.latencies.length;
      const allQueries = answered + result.failed + Math.round(rate * 2);
      const sorted = result.latencies.sort((a, b) => a - b);
      const ms = (p: number) => Number(percentile(sorted, p).toFixed(1));
      const per = (total: number, queries: number) => Number((total / (queries || 1)).toFixed(2));
      const row: FloorRow = {
        protocol: rowProtocol[options.kind],
        offered_per_s: rate,
        achieved_per_s: Math.round(answered / (result.ms / 1000)),
        observed_p50_ms: ms(50),
        observed_p95_ms: ms(95),
        observed_p99_ms: ms(99),
        failed: result.failed,
        cpu_ms_per_query: {
          asker: per(result.cpuMs, answered),
          forwarder: per(forwarderAfter - forwarderBefore, allQueries),
          provider: per(providerAfter - providerBefore, allQueries),
          all: per(allAfter - allBefore, allQueries),
        },
      };
      rows.push(row);
      say(`  achieved ${row.achieved_per_s}/s; observed p50 ${row.observed_p50_ms} ms, p95 ${row.observed_p95_ms} ms, p99 ${row.observed_p99_ms} ms`);
      say(`  CPU per query: asker ${row.cpu_ms_per_query.asker} ms, forwarder ${row.cpu_ms_per_query.forwarder} ms, provider ${row.cpu_ms_per_query.provider} ms; all processes ${row.cpu_ms_per_query.all} ms`);
    }
    return {
      bench: 'query-floor',
      rates: rows,
      conditions: conditions({
        seconds_per_rate: options.seconds,
        warm_up: '2 s at each offered rate before it, not counted in latency',
        shape: 'asker → forwarder → provider, three Node processes on this machine; HTTPS mutual TLS (ECDSA P-256 certificates), keep-alive, 64 connections per hop; a demo query body in, a demo record out',
        ...(mandated ? {
          mandated: `${options.kind === 'soap' ? 'SOAP 1.1 with WS-Security (X.509, ECDSA P-256, over Body and Timestamp; the hub\'s own XML code)' : 'RFC 9421 (ECDSA P-256) over Content-Digest'} signed and checked on every hop: asker signs, forwarder checks and signs to the provider, provider checks and signs its answer, forwarder checks it and signs its own; both bodies published to a JetStream file stream as one message and acknowledged before the answer`,
          left_out: 'the rest of the hub: certificate trust checks, replay, catalogue, rate limits, the archive to chDB and time-stamping; the asker does not check answers',
        } : { left_out: 'everything the hub does besides HTTPS: signatures, replay, catalogue, rate limits, evidence (NATS, chDB)' }),
        cpu: 'per process from process.cpuUsage; the forwarder\'s and provider\'s include the warm-up, divided over all its queries',
      }),
    };
  } finally {
    for (const child of children) if (child.connected) child.disconnect();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
