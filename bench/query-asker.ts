// Query bench askers in their own process, as asking agencies would be: an open-loop generator that sends each
// query at its scheduled time, signed afresh (REST: RFC 9421 through AgencyClient; SOAP: WS-Security), and checks
// the hub's signature on every answer. Latency runs from the scheduled send to the end of the hub's response. The
// answers are checked once a run's last answer is in: an asking agency checks on its own machine, so here the
// checks must neither count as the hub's time nor take the machine's CPU from the hub while it is measured.
import { request } from 'node:https';
import { clientAgent } from '../engine/http.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { sampleQuery } from '../app/demo-data.ts';
import { thumbprint } from '../engine/pki/index.ts';
import { checkWsSecurity } from '../engine/trust/index.ts';
import { AgencyClient, type AgencyCredentials } from '../connectors/rest/agency.ts';
import { queryPath as soapQueryPath, soapAction, type SoapVersion } from '../connectors/ws/contract.ts';
import { queryXml, readAnswer } from '../connectors/ws/messages.ts';
import { readFault, readSoap, soapContentType, writeSignedEnvelope } from '../connectors/ws/soap.ts';

export type BenchProtocol = 'rest' | 'soap';

export interface AskerSetup {
  hubUrl: string;
  hubSignCertPem: string;
  askers: (AgencyCredentials & { id: string })[];
  /** Datasets each protocol asks, in turn, and how many distinct queries to draw from each. */
  datasets: Record<BenchProtocol, string[]>;
  queriesPerDataset: number;
  /** Connections per asker agency. */
  maxSockets: number;
}

export interface AskerRun { protocol: BenchProtocol; rate: number; seconds: number; drainMs: number }

/** One query: the hub's query id (when it answered), its scheduled send (ms since the epoch), latency (ms), outcome. */
export type Outcome = [queryId: string | undefined, due: number, latencyMs: number, outcome: string];

export interface AskerResult { outcomes: Outcome[]; late: number; maxLagMs: number; cpuMs: number }

const now = () => performance.timeOrigin + performance.now();
const codeOf = (error: unknown) => String((error as { code?: unknown }).code ?? 'ASKER_ERROR');

/** An answer as it ended; `check` (run after the run) gives the outcome: 'ok' or why the answer does not count. */
interface Answered { end: number; check(): Promise<{ queryId?: string; outcome: string }> }

interface Asker {
  ask(dataset: string, keys: Record<string, string>, index: number): Promise<Answered>;
}

function restAsker(setup: AskerSetup, credentials: AgencyCredentials): Asker {
  const client = new AgencyClient(setup.hubUrl, credentials, { maxSockets: setup.maxSockets, hubSignCertPem: setup.hubSignCertPem });
  return {
    async ask(dataset, keys) {
      const answer = await client.ask(dataset, keys);
      return {
        end: now(),
        async check() {
          const queryId = typeof answer.body.queryId === 'string' ? answer.body.queryId : undefined;
          if (answer.status !== 200) return { queryId, outcome: String(answer.body.code ?? `HTTP_${answer.status}`) };
          // The hub's signature, the Content-Digest and the query the answer names.
          if (!client.checkAnswer(answer, dataset)) return { queryId, outcome: 'ANSWER_UNSIGNED' };
          return { queryId, outcome: answer.body.found === true ? 'ok' : 'NOT_FOUND' };
        },
      };
    },
  };
}

function soapAsker(setup: AskerSetup, credentials: AgencyCredentials): Asker {
  const agent = clientAgent({ cert: credentials.certPem, key: credentials.keyPem, ca: credentials.caPem }, setup.maxSockets);
  const hubPrint = thumbprint(setup.hubSignCertPem);
  const post = (url: string, headers: Record<string, string>, body: Buffer) => new Promise<{ status: number; contentType: string; body: Buffer; end: number }>((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks), end: now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  return {
    async ask(dataset, keys, index) {
      // Both SOAP versions, alternately; the hub asks its SOAP providers in 1.1 either way.
      const version: SoapVersion = index % 2 ? '1.2' : '1.1';
      const action = soapAction(dataset);
      const headers: Record<string, string> = version === '1.1' ? { 'content-type': soapContentType('1.1'), soapaction: `"${action}"` } : { 'content-type': soapContentType('1.2', action) };
      // The hub's own fast signer: the asker's CPU shares the machine with the hub, so it should cost little.
      const signed = writeSignedEnvelope(version, queryXml({ keys }), credentials);
      const reply = await post(new URL(soapQueryPath(dataset), setup.hubUrl).href, headers, Buffer.from(signed));
      return {
        end: reply.end,
        async check() {
          try {
            const message = readSoap(reply.body, reply.contentType);
            const fault = readFault(message);
            if (fault) return { outcome: fault.code ?? 'SOAP_FAULT' };
            const security = await checkWsSecurity(message);
            if (security.thumbprint !== hubPrint) return { outcome: 'ANSWER_NOT_HUB_SIGNED' };
            const answer = readAnswer(message.payload);
            return { queryId: answer.queryId, outcome: reply.status === 200 && answer.found ? 'ok' : answer.found ? `HTTP_${reply.status}` : 'NOT_FOUND' };
          } catch (error) {
            return { outcome: codeOf(error) };
          }
        },
      };
    },
  };
}

process.once('message', (setup: AskerSetup) => {
  const askers: Record<BenchProtocol, Asker[]> = {
    rest: setup.askers.map((credentials) => restAsker(setup, credentials)),
    soap: setup.askers.map((credentials) => soapAsker(setup, credentials)),
  };
  // Every query of the whole bench asks for a different record, so every answer is distinct.
  const pools = Object.fromEntries((Object.keys(setup.datasets) as BenchProtocol[]).map((protocol) => [protocol, {
    queries: setup.datasets[protocol].map((dataset) => ({ dataset, keys: sampleQuery(dataset, setup.queriesPerDataset) })),
    next: 0,
  }])) as Record<BenchProtocol, { queries: { dataset: string; keys: Record<string, string>[] }[]; next: number }>;

  const run = async ({ protocol, rate, seconds, drainMs }: AskerRun): Promise<AskerResult> => {
    const pool = pools[protocol];
    const total = Math.round(rate * seconds);
    const outcomes: Outcome[] = [];
    const answered: { due: number; answer: Answered }[] = [];
    const inflight = new Set<Promise<void>>();
    const cpuBefore = process.cpuUsage();
    let late = 0;
    let maxLagMs = 0;
    const start = now() + 50;
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const lag = now() - due;
      maxLagMs = Math.max(maxLagMs, lag);
      if (lag > 10) late++;
      const n = pool.next++;
      const source = pool.queries[n % pool.queries.length]!;
      const keys = source.keys[Math.floor(n / pool.queries.length)];
      if (!keys) throw new Error(`the bench drew more than ${setup.queriesPerDataset} queries per dataset; raise queriesPerDataset`);
      const asker = askers[protocol][i % askers[protocol].length]!;
      const done: Promise<void> = asker.ask(source.dataset, keys, i).then(
        (answer) => { answered.push({ due, answer }); },
        (error) => { outcomes.push([undefined, due, now() - due, codeOf(error)]); },
      ).finally(() => inflight.delete(done));
      inflight.add(done);
    }
    // Past the drain time, what is still unanswered counts as such.
    await Promise.race([Promise.all(inflight), sleep(drainMs)]);
    const cpu = process.cpuUsage(cpuBefore);
    for (const { due, answer } of answered.splice(0)) {
      const { queryId, outcome } = await answer.check();
      outcomes.push([queryId, due, answer.end - due, outcome]);
    }
    const unanswered = total - outcomes.length;
    for (let i = 0; i < unanswered; i++) outcomes.push([undefined, NaN, NaN, 'NO_ANSWER_IN_TIME']);
    return { outcomes, late, maxLagMs, cpuMs: (cpu.user + cpu.system) / 1000 };
  };

  process.on('message', (message: { run?: AskerRun }) => {
    if (message.run) void run(message.run).then((result) => process.send!({ result }));
  });
  process.send!({ ready: true });
});
process.on('disconnect', () => process.exit(0));
