// The hostile corpus against a running hub: every case is answered with its status and SWX_* code, kept as the case
// says (an evidence record, the aggregate of refusals before authentication, or a metric), and after every category
// the hub still accepts a normal message, with its own process's memory within budget.
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sampleQuery, answer as demoAnswer } from '../../app/demo-data.ts';
import { initPki, issueAgency, revokeCertificate } from '../../engine/pki/index.ts';
import { addAgency, addService, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { hostileCorpus, type CorpusContext, type HostileCase, type Party } from './corpus.ts';
import { signerOf, Wire, type Reply } from './wire.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let ctx: CorpusContext;
let idleRss = 0;

/** The hub process's own resident memory, in MB (its nats-server and chDB owner are other processes). */
const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${hub.proc.pid}/status`, 'utf8'))![1]) / 1024;

const party = (id: string, credentials: { certPem: string; keyPem: string }): Party => ({
  id, credentials, signer: signerOf(credentials), identity: { tls: credentials, signing: credentials },
});

test.before(async () => {
  const dataDir = tempDir('hostile');
  writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ query: { rateLimits: { default: { ratePerSecond: 1000, burst: 2000 }, askers: { HASTY: { ratePerSecond: 0.01, burst: 1 } } } } }));
  hub = await startHubProcess({ dataDir });
  const queryKeys = sampleQuery('import-declaration-sea', 1)[0]!;
  customs = await addAgency(hub, 'CUSTOMS', { provider: { answer: (dataset, keys) => demoAnswer(dataset, keys) as Record<string, unknown> | undefined } });
  boft = await addAgency(hub, 'BOFT');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  const pkiDir = join(hub.dataDir, 'pki');
  const revoked = await addAgency(hub, 'REVOKED', { receiver: false });
  await revokeCertificate(pkiDir, { agency: 'REVOKED' }, 'keyCompromise');
  const hasty = await addAgency(hub, 'HASTY', { receiver: false });
  const dataset = (await hub.admin('GET', '/api/catalogue/import-declaration-sea')).body;
  await hub.admin('PUT', '/api/catalogue/import-declaration-sea', { ...dataset, askers: [...dataset.askers, 'HASTY'] });
  const unregistered = await issueAgency(pkiDir, 'LURKER');
  const otherCa = tempDir('hostile-ca');
  await initPki(otherCa, { agencies: ['STRANGER'], alg: 'ecdsa' });
  const stranger = { certPem: readFileSync(join(otherCa, 'agencies/STRANGER/cert.pem'), 'utf8'), keyPem: readFileSync(join(otherCa, 'agencies/STRANGER/key.pem'), 'utf8') };
  const caPem = customs.credentials.caPem;
  ctx = {
    wire: new Wire(`https://localhost:${hub.agencyPort}`, caPem),
    agencyPort: hub.agencyPort,
    opsOrigin: `http://127.0.0.1:${hub.opsPort}`,
    opsToken: await hub.token(),
    caPem,
    sender: party('CUSTOMS', customs.credentials),
    receiver: party('BOFT', boft.credentials),
    revoked: party('REVOKED', revoked.credentials),
    unregistered: party('LURKER', unregistered),
    stranger: party('STRANGER', stranger),
    hasty: party('HASTY', hasty.credentials),
    queryKeys,
  };
  await waitFor('the revocation to reach the hub', async () => (await revoked.client.send({ to: 'BOFT', service: 'customs.declaration', body: Buffer.from('{}'), contentType: 'application/json' })).body.code === 'SWX_CERT_REVOKED', 20_000);
  // Idle once it has served: the first requests load code and grow the heap whatever they carry.
  await normalMessage();
  await customs.client.query('import-declaration-sea', queryKeys).catch(() => undefined);
  idleRss = rssMb();
});

test.after(async () => {
  ctx?.wire.close();
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); await agency?.provider?.close(); }
  await hub?.stop();
});

async function normalMessage(): Promise<number> {
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: Buffer.from('{"declarationNo":"AA/BE/13/101/00002"}') });
  return answer.status;
}

/** The code a refusal names: the problem body's, or the SOAP fault's. */
function codeOf(reply: Reply): string | undefined {
  return reply.json?.code ?? /<q:code[^>]*>([A-Z_]+)<\/q:code>/.exec(reply.text)?.[1];
}

/** The id the refusal was evidenced under. */
function evidenceIdOf(reply: Reply): string | undefined {
  return reply.json?.messageId ?? reply.json?.queryId ?? /<q:messageId[^>]*>([^<]+)<\/q:messageId>/.exec(reply.text)?.[1];
}

function opsGet(path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(`${ctx.opsOrigin}${path}`, { headers: { authorization: `Bearer ${ctx.opsToken}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    }).on('error', reject).end();
  });
}

/** A counter's series on the hub's /metrics, by the value of `label` (all under '' when it has none). */
async function counter(name: string, label = ''): Promise<Map<string, number>> {
  const text = (await opsGet('/metrics')).text;
  const series = new Map<string, number>();
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\d+)$`, 'gm'))) {
    const key = label ? new RegExp(`${label}="([^"]*)"`).exec(match[1] ?? '')?.[1] ?? '' : '';
    series.set(key, (series.get(key) ?? 0) + Number(match[2]));
  }
  return series;
}

/** What a counter gained between two readings, by label value, leaving out what did not change. */
function gained(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...after].map(([key, value]) => [key, value - (before.get(key) ?? 0)]).filter(([, value]) => value !== 0));
}

test('the hostile corpus: at least 200 cases, each refused with its status and code, kept, and the hub serving on', async () => {
  const cases = hostileCorpus(ctx);
  const before = { parser: await counter('swx_http_parser_refusals_total'), problems: await counter('swx_http_problem_replies_total', 'code') };
  const problems: Record<string, number> = {};
  const aggregates = new Map<string, number>();
  assert.ok(cases.length >= 200, `the corpus has ${cases.length} cases`);
  const wrong: string[] = [];
  const records: { hostile: HostileCase; id: string }[] = [];
  let category = '';
  for (const hostile of cases) {
    if (hostile.category !== category) {
      if (category) assert.is(await normalMessage(), 202, `a normal message after the ${category} cases`);
      category = hostile.category;
    }
    const reply = await hostile.send().catch((error: Error) => ({ status: 0, headers: {}, text: error.message }) as Reply);
    const label = `${hostile.category} / ${hostile.name}`;
    if (reply.status !== hostile.status) wrong.push(`${label}: status ${reply.status}, expected ${hostile.status}: ${reply.text.slice(0, 200)}`);
    // A refusal that asks the sender to come back later says when.
    if ([429, 503].includes(reply.status) && !/^\d+$/.test(String(reply.headers['retry-after']))) wrong.push(`${label}: ${reply.status} without Retry-After`);
    if (hostile.code && codeOf(reply) !== hostile.code) wrong.push(`${label}: code ${codeOf(reply)}, expected ${hostile.code}: ${reply.text.slice(0, 200)}`);
    if (/^application\/problem\+json/.test(String(reply.headers['content-type']))) problems[codeOf(reply)!] = (problems[codeOf(reply)!] ?? 0) + 1;
    const id = evidenceIdOf(reply);
    if (hostile.kept !== 'metric' && !id) wrong.push(`${label}: the refusal names no evidence id`);
    if (hostile.kept === 'record' && id) records.push({ hostile, id });
    if (hostile.kept === 'aggregate' && id) aggregates.set(id, (aggregates.get(id) ?? 0) + 1);
  }
  // Refused before any handler, or by the router: counted, each of them.
  assert.equal(gained(before.parser, await counter('swx_http_parser_refusals_total')), { '': cases.filter((hostile) => hostile.category === 'HTTP parser').length }, 'parser refusals counted');
  assert.equal(gained(before.problems, await counter('swx_http_problem_replies_total', 'code')), problems, 'every problem reply counted by its code');
  assert.is(await normalMessage(), 202, 'a normal message after the whole corpus');
  const grown = rssMb() - idleRss;
  console.log(`hostile corpus: ${cases.length} cases; hub RSS ${idleRss.toFixed(0)} MB idle, grew ${grown.toFixed(0)} MB`);
  assert.ok(grown < 256, `the hub's RSS grew ${grown.toFixed(0)} MB over its idle ${idleRss.toFixed(0)} MB`);

  // Every refusal of a request that reached a handler is evidenced under the id its reply names, with its code.
  for (const { hostile, id } of records) {
    const label = `${hostile.category} / ${hostile.name}`;
    let rows: any[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      rows = JSON.parse((await opsGet(`/api/evidence?raw=true&messageId=${encodeURIComponent(id)}`)).text);
      if (rows.some((row) => row.stage === 'rejected')) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const rejected = rows.find((row) => row.stage === 'rejected');
    if (!rejected) { wrong.push(`${label}: no rejected evidence under ${id}`); continue; }
    if (hostile.code && rejected.code !== hostile.code) wrong.push(`${label}: evidenced ${rejected.code}, expected ${hostile.code}`);
    if (hostile.forbidden && JSON.stringify(rows).includes(hostile.forbidden)) wrong.push(`${label}: the evidence keeps the hostile value`);
  }
  assert.equal(wrong, []);

  // Refusals before authentication are counted per source, minute and code: stopping the hub writes the open minute.
  await hub.stop();
  await hub.restart();
  let counted: any[] = [];
  await waitFor('the aggregate records in the archive', async () => {
    counted = JSON.parse((await opsGet('/api/evidence?raw=true&stage=refused_unauthenticated')).text) as any[];
    return [...aggregates.keys()].every((id) => counted.some((row) => row.message_id === id));
  }, 30_000);
  for (const [id, sent] of aggregates) {
    const record = counted.find((row) => row.message_id === id);
    assert.ok(record, `an aggregate record ${id}`);
    assert.is(JSON.parse(record.detail).count, sent, `${id} counts every refusal it stands for`);
  }
  const hostileValues = cases.filter((hostile) => hostile.kept === 'aggregate' && hostile.forbidden).map((hostile) => hostile.forbidden!);
  assert.equal(hostileValues.filter((value) => JSON.stringify(counted).includes(value)), [], 'no aggregate keeps a hostile header value');
});

test.run();
