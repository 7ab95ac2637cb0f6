// query floor: what the query bench's shape costs on this machine with nothing of the hub in it. An asker process
// sends plain HTTPS queries open-loop (mutual TLS, keep-alive, latency from each scheduled send), a forwarder in the
// hub's place passes each body on to a provider process over a keep-alive agent and relays its answer (a demo-sized
// record), and nothing else: no signatures, no evidence, no catalogue. Its CPU per query is the least that three
// Node processes of the query bench's shape spend on HTTPS here, and its latency the least the query bench can show.
// With --mandated the floor also does the work issue 4 requires of every query and nothing more: RFC 9421 signatures
// made and checked on both legs (asker → forwarder → provider and back, with Content-Digest), and the request's and
// answer's evidence (both bodies) published to a JetStream stream and acknowledged before the asker is answered.
// One file, three roles (argv[2]); the bench process starts them and gathers their figures.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:https';
import { clientAgent } from '../engine/http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { answer, sampleQuery } from '../app/demo-data.ts';
import { checkContentDigest, contentDigest, sign, verify, type SigAlg } from '../engine/httpsig.ts';
import { connectBus, provisionStreams, subjects, type Bus } from '../engine/nats/jetstream.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../engine/nats/server.ts';
import { initPki, issueAgency, loadPki } from '../engine/pki/index.ts';
import { envelopeHeaders, providerRequestComponents, queryRequestComponents, receiptComponents } from '../connectors/rest/contract.ts';
import { freePort } from '../test/helpers/hub.ts';
import { conditions, percentile, treeCpuMs } from './conditions.ts';
import { reply } from './ipc.ts';

interface Tls { key: string; cert: string; ca: string }
/** --mandated: this role signs with `keyPem` as `keyId` and checks its peers' signatures by key id. */
interface Signing { keyId: string; keyPem: string; peers: Record<string, string> }
type Listen = { tls: Tls; upstream?: string; signing?: Signing; natsUrl?: string };
type Message = { listen?: Listen; run?: { url: string; tls: Tls; rate: number; seconds: number; signing?: Signing }; cpu?: true };

const cpuMs = () => { const used = process.cpuUsage(); return (used.user + used.system) / 1000; };
const dataset = 'import-declaration-sea';

const alg: SigAlg = 'ecdsa-p256-sha256';

/** Signs requests and answers as this role, and checks its peers' (the mandated RFC 9421 work, without the hub's). */
function signer(signing: Signing | undefined) {
  if (!signing) return undefined;
  const key = createPrivateKey(signing.keyPem);
  const peers = new Map(Object.entries(signing.peers).map(([keyId, certPem]) => [keyId, { key: createPublicKey(certPem) as KeyObject, alg }]));
  return {
    /** Adds Content-Digest and the signature over `components` to `headers`. */
    seal(message: { method?: string; targetUri?: string; status?: number }, headers: Record<string, string>, body: Buffer, components: string[]) {
      headers['content-digest'] = contentDigest(body);
      Object.assign(headers, sign({ ...message, headers }, { key, keyId: signing.keyId, alg, components }));
    },
    /** Throws unless a peer signed `components` and the body matches its Content-Digest. */
    check(message: { method?: string; targetUri?: string; status?: number }, headers: IncomingHttpHeaders, body: Buffer, components: string[]) {
      verify({ ...message, headers }, { required: components, maxSkewSeconds: 300, key: (keyId) => peers.get(keyId) });
      const digest = headers['content-digest'];
      if (!checkContentDigest(typeof digest === 'string' ? digest : undefined, body)) throw new Error('Content-Digest does not match');
    },
  };
}

/** One acknowledged stream message per query with both its records, as the hub's evidence of a query is. */
function evidenceOf(asked: Buffer, answered: Buffer, asker: string, provider: string) {
  const record = (stage: string, raw: Buffer, from: string, to: string) => ({
    id: randomUUID(), stage, at: new Date().toISOString(), from, to, service: `query.${dataset}`, size: raw.length,
    sha256: createHash('sha256').update(raw).digest('hex'), raw: raw.toString('base64'),
  });
  return JSON.stringify([record('received', asked, asker, provider), record('answered', answered, provider, asker)]);
}

/** The forwarder and the provider: mutual TLS servers; the forwarder relays to `upstream`, the provider answers a record. */
async function listen({ tls, upstream, signing, natsUrl }: Listen): Promise<number> {
  // The forwarder's keep-alive agent to the provider; the provider's records to answer with.
  const agent = upstream ? clientAgent(tls, 64) : undefined;
  const records = upstream ? [] : sampleQuery(dataset, 64).map((keys) => Buffer.from(JSON.stringify({ found: true, record: answer(dataset, keys) })));
  const signed = signer(signing);
  const bus: Bus | undefined = natsUrl ? await connectBus(natsUrl, 'floor-forwarder') : undefined;
  let served = 0;
  const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const targetUri = `https://${req.headers.host}${req.url}`;
      try {
        if (!upstream) {
          signed?.check({ method: req.method, targetUri }, req.headers, body, providerRequestComponents);
          const record = records[served++ % records.length]!;
          headers[envelopeHeaders.messageId] = String(req.headers[envelopeHeaders.messageId]);
          signed?.seal({ status: 200 }, headers, record, receiptComponents);
          res.writeHead(200, { ...headers, 'content-length': record.length }).end(record);
          return;
        }
        signed?.check({ method: req.method, targetUri }, req.headers, body, queryRequestComponents);
        const keys = (JSON.parse(body.toString('utf8')) as { keys: unknown }).keys;
        const outgoing = Buffer.from(JSON.stringify({ queryId: randomUUID(), dataset, asker: 'BOFT', keys }));
        const onwardHeaders: Record<string, string> = { 'content-type': 'application/json', [envelopeHeaders.messageId]: randomUUID(), 'swx-from': 'BOFT' };
        signed?.seal({ method: 'POST', targetUri: upstream }, onwardHeaders, outgoing, providerRequestComponents);
        const onward = request(upstream, { method: 'POST', agent, headers: { ...onwardHeaders, 'content-length': outgoing.length } }, (answered) => {
          const parts: Buffer[] = [];
          answered.on('data', (chunk: Buffer) => parts.push(chunk));
          answered.on('end', async () => {
            try {
              const text = Buffer.concat(parts);
              signed?.check({ status: answered.statusCode }, answered.headers, text, receiptComponents);
              if (bus) await bus.js.publish(subjects.evidence, evidenceOf(body, text, 'BOFT', 'CUSTOMS'), { msgID: randomUUID() });
              headers[envelopeHeaders.messageId] = onwardHeaders[envelopeHeaders.messageId]!;
              signed?.seal({ status: answered.statusCode ?? 502 }, headers, text, receiptComponents);
              res.writeHead(answered.statusCode ?? 502, { ...headers, 'content-length': text.length }).end(text);
            } catch {
              res.writeHead(502).end();
            }
          });
        });
        onward.on('error', () => res.writeHead(502).end());
        onward.end(outgoing);
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** The asker: open loop at `rate`, after a warm-up at the same rate that opens the connections it will need. */
async function ask({ url, tls, rate, seconds, signing }: NonNullable<Message['run']>) {
  const agent = clientAgent(tls, 64);
  const queries = sampleQuery(dataset, 256).map((keys) => Buffer.from(JSON.stringify({ keys })));
  const signed = signer(signing);
  const once = (body: Buffer) => new Promise<number>((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    signed?.seal({ method: 'POST', targetUri: url }, headers, body, queryRequestComponents);
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
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
  protocol: 'rest-floor' | 'rest-mandated-floor';
  offered_per_s: number;
  achieved_per_s: number;
  observed_p50_ms: number;
  observed_p95_ms: number;
  observed_p99_ms: number;
  failed: number;
  /** `all`: every process of the bench (nats-server too), over the whole round, warm-up included. */
  cpu_ms_per_query: { asker: number; forwarder: number; provider: number; all: number };
}

export async function floorBench(options: { json: boolean; rates: number[]; seconds: number; mandated: boolean }): Promise<Record<string, unknown>> {
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
    // --mandated: each signs with its own key and checks the key of whom it talks to; the forwarder keeps evidence.
    const signing = (keyId: string, keyPem: string, peers: Record<string, string>): Signing | undefined => options.mandated ? { keyId, keyPem, peers } : undefined;
    nats = options.mandated ? await startEmbeddedNats(dir, await freePort()) : undefined;
    if (nats) {
      const bus = await connectBus(nats.url, 'floor-provisioning');
      await provisionStreams(bus.jsm, 120, 600);
      await bus.nc.close();
    }
    const providerPort = await reply<number>(provider, 'port', {
      listen: { tls: providerTls, signing: signing('CUSTOMS', providerTls.key, { HUB: pki.hubSign.certPem }) },
    });
    const forwarderPort = await reply<number>(forwarder, 'port', {
      listen: {
        tls: hubTls, upstream: `https://localhost:${providerPort}/query`, ...(nats ? { natsUrl: nats.url } : {}),
        signing: signing('HUB', pki.hubSign.keyPem, { BOFT: askerTls.cert, CUSTOMS: providerTls.cert }),
      },
    });
    const rows: FloorRow[] = [];
    for (const rate of options.rates) {
      say(`floor: ${rate} queries/s offered for ${options.seconds} s (after 2 s at the same rate)`);
      // The servers' CPU is read around the whole round, warm-up included, then scaled to the measured share.
      const [forwarderBefore, providerBefore, allBefore] = [await reply<number>(forwarder, 'cpuMs', { cpu: true }), await reply<number>(provider, 'cpuMs', { cpu: true }), treeCpuMs(process.pid)];
      const result = await reply<{ latencies: number[]; failed: number; ms: number; cpuMs: number }>(asker, 'result', {
        run: { url: `https://localhost:${forwarderPort}/v1/query/${dataset}`, tls: askerTls, rate, seconds: options.seconds, signing: signing('BOFT', askerTls.key, { HUB: pki.hubSign.certPem }) },
      });
      const [forwarderAfter, providerAfter, allAfter] = [await reply<number>(forwarder, 'cpuMs', { cpu: true }), await reply<number>(provider, 'cpuMs', { cpu: true }), treeCpuMs(process.pid)];
      const answered = result.latencies.length;
      const allQueries = answered + result.failed + Math.round(rate * 2);
      const sorted = result.latencies.sort((a, b) => a - b);
      const ms = (p: number) => Number(percentile(sorted, p).toFixed(1));
      const per = (total: number, queries: number) => Number((total / (queries || 1)).toFixed(2));
      const row: FloorRow = {
        protocol: options.mandated ? 'rest-mandated-floor' : 'rest-floor',
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
        ...(options.mandated ? {
          mandated: 'RFC 9421 (ECDSA P-256) over Content-Digest signed and checked on every hop: asker signs, forwarder checks and signs to the provider, provider checks and signs its answer, forwarder checks it and signs its own; both bodies published to a JetStream file stream as one message and acknowledged before the answer',
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
