// query floor: what the query bench's shape costs on this machine with nothing of the hub in it. An asker process
// sends plain HTTPS queries open-loop (mutual TLS, keep-alive, latency from each scheduled send), a forwarder in the
// hub's place passes each body on to a provider process over a keep-alive agent and relays its answer (a demo-sized
// record), and nothing else: no signatures, no evidence, no catalogue. Its CPU per query is the least that three
// Node processes of the query bench's shape spend on HTTPS here, and its latency the least the query bench can show.
// One file, three roles (argv[2]); the bench process starts them and gathers their figures.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { answer, sampleQuery } from '../app/demo-data.ts';
import { initPki, issueAgency, loadPki } from '../engine/pki/index.ts';
import { conditions, percentile } from './conditions.ts';
import { reply } from './ipc.ts';

interface Tls { key: string; cert: string; ca: string }
type Message = { listen?: { tls: Tls; upstream?: string }; run?: { url: string; tls: Tls; rate: number; seconds: number }; cpu?: true };

const cpuMs = () => { const used = process.cpuUsage(); return (used.user + used.system) / 1000; };
const dataset = 'import-declaration-sea';

/** The forwarder and the provider: mutual TLS servers; the forwarder relays to `upstream`, the provider answers a record. */
async function listen({ tls, upstream }: NonNullable<Message['listen']>): Promise<number> {
  // The forwarder's keep-alive agent to the provider; the provider's records to answer with.
  const agent = upstream ? new Agent({ keepAlive: true, maxSockets: 64, ...tls }) : undefined;
  const records = upstream ? [] : sampleQuery(dataset, 64).map((keys) => Buffer.from(JSON.stringify({ found: true, record: answer(dataset, keys) })));
  let served = 0;
  const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!upstream) {
        const record = records[served++ % records.length]!;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': record.length }).end(record);
        return;
      }
      const onward = request(upstream, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (answered) => {
        const parts: Buffer[] = [];
        answered.on('data', (chunk: Buffer) => parts.push(chunk));
        answered.on('end', () => {
          const text = Buffer.concat(parts);
          res.writeHead(answered.statusCode ?? 502, { 'content-type': 'application/json', 'content-length': text.length }).end(text);
        });
      });
      onward.on('error', () => res.writeHead(502).end());
      onward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** The asker: open loop at `rate`, after a warm-up at the same rate that opens the connections it will need. */
async function ask({ url, tls, rate, seconds }: NonNullable<Message['run']>) {
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ...tls });
  const queries = sampleQuery(dataset, 256).map((keys) => Buffer.from(JSON.stringify({ keys })));
  const once = (body: Buffer) => new Promise<number>((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
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
  protocol: 'rest-floor';
  offered_per_s: number;
  achieved_per_s: number;
  observed_p50_ms: number;
  observed_p95_ms: number;
  observed_p99_ms: number;
  failed: number;
  cpu_ms_per_query: { asker: number; forwarder: number; provider: number };
}

export async function floorBench(options: { json: boolean; rates: number[]; seconds: number }): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const dir = mkdtempSync(join(tmpdir(), 'swx-floor-'));
  const children: ChildProcess[] = [];
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
    const providerPort = (await reply<number>(provider, 'port', { listen: { tls: await credentials('CUSTOMS') } }));
    const hubTls = { key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: pki.ca.certPem };
    const forwarderPort = await reply<number>(forwarder, 'port', { listen: { tls: hubTls, upstream: `https://localhost:${providerPort}/query` } });
    const askerTls = await credentials('BOFT');
    const rows: FloorRow[] = [];
    for (const rate of options.rates) {
      say(`floor: ${rate} queries/s offered for ${options.seconds} s (after 2 s at the same rate)`);
      // The servers' CPU is read around the whole round, warm-up included, then scaled to the measured share.
      const [forwarderBefore, providerBefore] = [await reply<number>(forwarder, 'cpuMs', { cpu: true }), await reply<number>(provider, 'cpuMs', { cpu: true })];
      const result = await reply<{ latencies: number[]; failed: number; ms: number; cpuMs: number }>(asker, 'result', {
        run: { url: `https://localhost:${forwarderPort}/v1/query/${dataset}`, tls: askerTls, rate, seconds: options.seconds },
      });
      const [forwarderAfter, providerAfter] = [await reply<number>(forwarder, 'cpuMs', { cpu: true }), await reply<number>(provider, 'cpuMs', { cpu: true })];
      const answered = result.latencies.length;
      const allQueries = answered + result.failed + Math.round(rate * 2);
      const sorted = result.latencies.sort((a, b) => a - b);
      const ms = (p: number) => Number(percentile(sorted, p).toFixed(1));
      const per = (total: number, queries: number) => Number((total / (queries || 1)).toFixed(2));
      const row: FloorRow = {
        protocol: 'rest-floor',
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
        },
      };
      rows.push(row);
      say(`  achieved ${row.achieved_per_s}/s; observed p50 ${row.observed_p50_ms} ms, p95 ${row.observed_p95_ms} ms, p99 ${row.observed_p99_ms} ms`);
      say(`  CPU per query: asker ${row.cpu_ms_per_query.asker} ms, forwarder ${row.cpu_ms_per_query.forwarder} ms, provider ${row.cpu_ms_per_query.provider} ms`);
    }
    return {
      bench: 'query-floor',
      rates: rows,
      conditions: conditions({
        seconds_per_rate: options.seconds,
        warm_up: '2 s at each offered rate before it, not counted in latency',
        shape: 'asker → forwarder → provider, three Node processes on this machine; HTTPS mutual TLS (ECDSA P-256 certificates), keep-alive, 64 connections per hop; a demo query body in, a demo record out',
        left_out: 'everything the hub does besides HTTPS: signatures, replay, catalogue, rate limits, evidence (NATS, chDB)',
        cpu: 'per process from process.cpuUsage; the forwarder\'s and provider\'s include the warm-up, divided over all its queries',
      }),
    };
  } finally {
    for (const child of children) if (child.connected) child.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
