// Refusals before authentication on a running hub: a client without a registered certificate, sending hostile
// envelope headers on every agency route, adds a bounded number of evidence records (counted per source address and
// minute), none keeping its header values or filed under the agency it names; an agency that did authenticate is
// still evidenced request by request, without the malformed value; the hub keeps answering.
import { Agent, request } from 'node:https';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initPki, issueAgency } from '../../engine/pki/index.ts';
import { addAgency, addService, evidenceOf, startHubProcess, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;

test.before(async () => {
  hub = await startHubProcess();
  customs = await addAgency(hub, 'CUSTOMS', { receiver: false });
  boft = await addAgency(hub, 'BOFT');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
});

test.after(async () => {
  for (const agency of [customs, boft]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

const longTo = `BOFT${'X'.repeat(7996)}`;
const script = '<script>alert(1)</script>';
const accented = 'import-d\xe9claration';
const declaration = Buffer.from(JSON.stringify({ declarationNo: 'AA/BE/13/101/00001' }));

/** Hostile envelope headers; every other request names a real agency, which must not get the refusal filed under it. */
const hostileHeaders = (n: number): Record<string, string> => ({
  'content-type': 'application/json',
  'swx-to': n % 2 ? 'BOFT' : longTo,
  'swx-service': n % 3 ? script : 'customs.declaration',
  'swx-action': accented,
  'swx-message-id': n % 2 ? `CLAIMED-${n}` : 'i'.repeat(300),
  'swx-conversation-id': `${script}${n}`,
});

function post(path: string, headers: Record<string, string>, body: Buffer, tls: { agent?: Agent; cert?: string; key?: string; ca: string }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://localhost:${hub.agencyPort}${path}`, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const agencyTls = () => ({ cert: customs.credentials.certPem, key: customs.credentials.keyPem, ca: customs.credentials.caPem });

/** Every evidence record the archive holds, through the operator API. */
async function allEvidence(): Promise<any[]> {
  const answer = await hub.admin('GET', '/api/evidence?raw=true&limit=10000');
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** Sends `count` requests over `connections` parallel connections; returns how many got each status and code. */
async function flood(count: number, connections: number, send: (n: number) => Promise<{ status: number; text: string }>): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  let next = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < count) {
      const answer = await send(next++);
      const code = answer.text.startsWith('{') ? JSON.parse(answer.text).code : /<q:code[^>]*>([A-Z_]+)</.exec(answer.text)?.[1];
      const key = `${answer.status} ${code}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
  }));
  return outcomes;
}

test('refusals before authentication are counted per source address and minute, bounded, without the hostile values', async () => {
  await waitFor('the archive to be queryable', async () => (await hub.admin('GET', '/api/evidence?limit=1')).status === 200, 15_000);
  const before = new Set((await allEvidence()).map((row) => row.id));
  const ca = customs.credentials.caPem;
  const anonymous = new Agent({ keepAlive: true, maxSockets: 8, ca });
  const stranger = tempDir('stranger');
  await initPki(stranger, { agencies: ['BOFT'] });
  const foreign = await issueAgency(stranger, 'BOFT');
  const unknown = new Agent({ keepAlive: true, maxSockets: 4, ca, cert: foreign.certPem, key: foreign.keyPem });

  const messages = 300;
  const restQueries = 20;
  const soapQueries = 20;
  const unknownCerts = 40;
  const sent = {
    messages: await flood(messages, 8, (n) => post('/v1/messages', hostileHeaders(n), declaration, { agent: anonymous, ca })),
    restQueries: await flood(restQueries, 4, (n) => post('/v1/query/%3Cscript%3E', hostileHeaders(n), Buffer.from('{"keys":{}}'), { agent: anonymous, ca })),
    soapQueries: await flood(soapQueries, 4, (n) => post(`/ws/query/${'q'.repeat(2000)}`, { ...hostileHeaders(n), 'content-type': 'text/xml', soapaction: script }, Buffer.from('<x/>'), { agent: anonymous, ca })),
    unknownCerts: await flood(unknownCerts, 4, (n) => post('/v1/messages', hostileHeaders(n), declaration, { agent: unknown, ca })),
  };
  anonymous.destroy();
  unknown.destroy();
  assert.equal(sent, {
    messages: { '401 SWX_AUTH_REQUIRED': messages },
    restQueries: { '401 SWX_AUTH_REQUIRED': restQueries },
    soapQueries: { '500 SWX_AUTH_REQUIRED': soapQueries }, // a SOAP 1.1 fault
    unknownCerts: { '401 SWX_AUTH_UNKNOWN_CERT': unknownCerts },
  });

  // An agency that authenticates is still served meanwhile.
  const normal = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: declaration });
  assert.is(normal.status, 202, normal.text);

  // The counts of the current minute are written when it closes, or when the hub stops: stop, and read them back.
  await hub.stop();
  await hub.restart();
  const aggregated = (rows: any[]) => rows.filter((row) => !before.has(row.id) && row.stage === 'refused_unauthenticated');
  const counted = (rows: any[], code: string) => aggregated(rows).filter((row) => row.code === code).reduce((sum, row) => sum + JSON.parse(row.detail).count, 0);
  let rows: any[] = [];
  await waitFor('the aggregate records in the archive', async () => {
    rows = await allEvidence();
    return counted(rows, 'SWX_AUTH_REQUIRED') >= messages + restQueries + soapQueries && counted(rows, 'SWX_AUTH_UNKNOWN_CERT') >= unknownCerts;
  }, 30_000);
  const added = rows.filter((row) => !before.has(row.id));
  const aggregates = aggregated(rows);
  console.log(`  ${messages + restQueries + soapQueries + unknownCerts} unauthenticated requests → ${aggregates.length} evidence records; ${added.length} records added in all`);

  assert.is(counted(rows, 'SWX_AUTH_REQUIRED'), messages + restQueries + soapQueries, 'every request without a certificate is counted once');
  assert.is(counted(rows, 'SWX_AUTH_UNKNOWN_CERT'), unknownCerts, 'every request with an unknown certificate is counted once');
  // One record per (source, minute, code): the burst may straddle a minute boundary, never more.
  for (const code of ['SWX_AUTH_REQUIRED', 'SWX_AUTH_UNKNOWN_CERT']) {
    const ofCode = aggregates.filter((row) => row.code === code);
    assert.ok(ofCode.length >= 1 && ofCode.length <= 2, `${code}: ${ofCode.length} aggregate records`);
    const windows = ofCode.map((row) => { const detail = JSON.parse(row.detail); return `${detail.source} ${detail.minute}`; });
    assert.is(new Set(windows).size, windows.length, `one record per source and minute: ${windows}`);
    for (const row of ofCode) {
      const detail = JSON.parse(row.detail);
      assert.is(detail.source, '127.0.0.1');
      assert.ok(detail.first <= detail.last, `${detail.first} ≤ ${detail.last}`);
      assert.ok(detail.sample && typeof detail.sample === 'object', 'one sample request is kept');
    }
  }
  assert.is(added.filter((row) => /^SWX_AUTH_/.test(row.code)).length, aggregates.length, 'no refusal before authentication is evidenced one by one');
  const listed = await hub.admin('GET', '/api/evidence?stage=refused_unauthenticated&limit=10000');
  assert.equal(listed.body.map((row: any) => row.id).filter((id: string) => !before.has(id)).sort(), aggregates.map((row) => row.id).sort(), 'the operator API lists them by stage');
  // The normal message's received, verified, routed, delivered, and the aggregates: nothing grows with the flood.
  assert.ok(added.length <= aggregates.length + 8, `${added.length} records added`);

  const text = JSON.stringify(added);
  const hostile: [string, string][] = [
    ['Swx-To', 'X'.repeat(64)], ['Swx-Service', '<script'], ['Swx-Action', 'd\xe9claration'], ['Swx-Action (UTF-8)', 'dÃ©claration'], ['message id', 'i'.repeat(129)], ['dataset', 'q'.repeat(100)],
  ];
  for (const [name, value] of hostile) {
    assert.not.ok(text.includes(value), `no record keeps the hostile ${name}`);
  }
  assert.not.ok(text.includes('\\u003c') || text.includes('%3C'), 'nor an encoded <');
  const filed = added.filter((row) => row.code?.startsWith('SWX_AUTH_') && (row.from_partner || row.to_partner));
  assert.equal(filed, [], 'no refusal before authentication is filed under an agency');
  const sample = JSON.parse(aggregates.find((row) => row.code === 'SWX_AUTH_REQUIRED').detail).sample;
  assert.ok(Object.values(sample).every((value) => typeof value === 'string' && value.length <= 200), JSON.stringify(sample));

  // The hub still answers a normal request after the flood and the restart.
  const after = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: declaration });
  assert.is(after.status, 202, after.text);
});

test('an authenticated agency with a malformed Swx-To: 400 naming the header, evidenced without the value', async () => {
  const headers = customs.client.signedHeaders({ to: 'BOFT', service: 'customs.declaration', contentType: 'application/json', body: declaration });
  const answer = await post('/v1/messages', { ...headers, 'swx-to': longTo }, declaration, agencyTls());
  assert.is(answer.status, 400, answer.text);
  const problem = JSON.parse(answer.text);
  assert.is(problem.code, 'SWX_BAD_REQUEST');
  assert.match(problem.detail, /^header swx-to must be/);
  const rows = await evidenceOf(hub, String(problem.messageId), ['received', 'rejected']);
  assert.equal(rows.map((row) => row.stage).sort(), ['received', 'rejected']);
  for (const row of rows) {
    assert.is(row.from_partner, 'CUSTOMS', 'the agency that authenticated');
    assert.is(row.to_partner, '', 'the malformed receiver is dropped');
  }
  assert.not.ok(JSON.stringify(rows).includes('X'.repeat(64)));
});

test('an authenticated asker naming a malformed dataset or provider: refused naming it, evidenced without the value', async () => {
  const keys = { declarationNo: 'AA12345678' };
  const cases: [dataset: string, provider: string | undefined, pattern: RegExp][] = [
    [script, undefined, /dataset/],
    ['import-declaration-sea', longTo, /provider/],
  ];
  for (const [dataset, provider, pattern] of cases) {
    const signed = customs.client.signedQuery(dataset, keys, provider ? { provider } : {});
    const answer = await post(new URL(signed.url).pathname, signed.headers, signed.body, agencyTls());
    const problem = JSON.parse(answer.text);
    assert.is(answer.status, 400, answer.text);
    assert.is(problem.code, 'SWX_BAD_REQUEST');
    assert.match(problem.detail, pattern);
    const rows = await evidenceOf(hub, String(problem.queryId), ['received', 'rejected']);
    assert.ok(rows.length >= 2, `evidence of ${dataset}`);
    const stored = JSON.stringify(rows.map(({ raw, ...row }) => row));
    assert.not.ok(stored.includes('<script') || stored.includes('X'.repeat(64)), stored);
  }
});

test.run();
