// The agency port against hostile senders: bodies are read only once the sender and its signature are known, within a
// budget of in-flight body bytes (the whole hub's and each agency's); what the signature leaves out, a body that is
// not what its Content-Type says, and requests Node's parser refuses all get an answer, a code and a trace.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { algorithmFor, contentDigest, sign } from '../../engine/httpsig.ts';
import { thumbprint } from '../../engine/pki/index.ts';
import { messagePath, queryPath, queryRequestComponents, requiredRequestComponents } from '../../connectors/rest/contract.ts';
import type { ReceivedAnswer } from '../../connectors/rest/agency.ts';
import { addAgency, addService, evidenceOf, startHubProcess, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { holdPost, rawPost, rawTls, type RawTls } from '../helpers/raw.ts';

const MiB = 1024 * 1024;
let hub: HubProcess;
let customs: TestAgency;
let boft: TestAgency;
let tfda: TestAgency;

test.before(async () => {
  hub = await startHubProcess({
    env: {
      SWX_MAX_BODY_BYTES: String(32 * MiB),
      SWX_INFLIGHT_BODY_BYTES: String(64 * MiB),
      SWX_INFLIGHT_BODY_BYTES_PER_PARTNER: String(32 * MiB),
      SWX_LOG_LEVEL: 'info',
    },
  });
  customs = await addAgency(hub, 'CUSTOMS');
  boft = await addAgency(hub, 'BOFT');
  tfda = await addAgency(hub, 'TFDA');
  await addService(hub, 'limits.exchange', ['CUSTOMS', 'BOFT', 'TFDA'], ['CUSTOMS', 'BOFT', 'TFDA']);
});

test.after(async () => {
  for (const agency of [customs, boft, tfda]) { agency?.client.close(); await agency?.receiver?.close(); }
  await hub?.stop();
});

const url = (path = messagePath) => `https://localhost:${hub.agencyPort}${path}`;
const tlsOf = (agency?: TestAgency): RawTls => agency
  ? { cert: agency.credentials.certPem, key: agency.credentials.keyPem, ca: agency.credentials.caPem }
  : { ca: customs.credentials.caPem };
const message = (body: Buffer, extra: { to?: string; messageId?: string; contentType?: string } = {}) =>
  ({ to: extra.to ?? 'BOFT', service: 'limits.exchange', contentType: extra.contentType ?? 'application/octet-stream', body, ...(extra.messageId ? { messageId: extra.messageId } : {}) });

/** Signs `headers` as `agency` would, covering `components`: for requests the toolkit cannot make. */
function signAs(agency: TestAgency, target: string, headers: Record<string, string>, components: string[]): Record<string, string> {
  const key = createPrivateKey(agency.credentials.keyPem);
  const alg = algorithmFor(new X509Certificate(agency.credentials.certPem).publicKey)!;
  const signature = sign({ method: 'POST', targetUri: target, headers }, { key, alg, keyId: thumbprint(agency.credentials.certPem), components, nonce: randomBytes(12).toString('base64url') });
  return { ...headers, ...signature };
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

function status(pid: number): { rss: number; peak: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)![1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

async function expectRefused(answer: ReceivedAnswer | undefined, status: number, code: string): Promise<any[]> {
  assert.ok(answer, `${code}: an answer`);
  assert.is(answer!.status, status, `${code}: ${answer!.text}`);
  assert.is(answer!.body.code, code);
  assert.match(String(answer!.headers['content-type']), /application\/problem\+json/);
  const rows = await evidenceOf(hub, String(answer!.body.messageId ?? answer!.body.queryId), 'rejected');
  assert.is(rows.find((row) => row.stage === 'rejected')?.code, code, `evidence of ${code}`);
  return rows;
}

function expectRetryAfter(answer: ReceivedAnswer | undefined): void {
  assert.match(String(answer?.headers['retry-after']), /^[1-9]\d*$/, `Retry-After on ${answer?.status} ${answer?.body.code}`);
}

// Within this growth over idle the hub takes a burst of unread bodies: TLS buffers and the request objects, no bodies.
const rssBudget = 64 * MiB;

test(`12 concurrent 32 MiB bodies without a certificate or signature are refused unread: the hub's RSS grows less than ${rssBudget / MiB} MiB`, async () => {
  const pid = hub.proc.pid!;
  const idle = status(pid).rss;
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM, so it holds the peak of this burst alone
  const body = Buffer.alloc(32 * MiB, 0x41);
  const unsigned = { 'content-type': 'application/octet-stream', 'swx-to': 'BOFT', 'swx-service': 'limits.exchange', 'content-digest': contentDigest(body) };
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => {
    if (i % 3 === 0) return rawPost(url(), customs.client.signedHeaders(message(body)), body, tlsOf());
    return rawPost(url(), unsigned, body, { ...tlsOf(customs), chunked: i % 3 === 2 });
  }));
  const growth = status(pid).peak - idle;
  console.log(`hub RSS: idle ${(idle / MiB).toFixed(0)} MiB, peak growth during the burst ${(growth / MiB).toFixed(1)} MiB (budget ${rssBudget / MiB} MiB)`);
  assert.equal(answers.map((answer) => answer.body.code).sort(), [...Array(4).fill('SWX_AUTH_REQUIRED'), ...Array(8).fill('SWX_SIG_MISSING')]);
  assert.ok(growth < rssBudget, `RSS grew ${(growth / MiB).toFixed(1)} MiB over idle`);
  assert.is((await customs.client.send(message(Buffer.from('after the burst')))).status, 202);
});

test('the in-flight body budget: 429 past an agency\'s share, 503 past the hub\'s, each with Retry-After; released as requests end', async () => {
  const gauge = () => metric('swx_inflight_body_bytes');
  // JSON is read whole, so it is held whole: it claims its declared length.
  const hold = (agency: TestAgency, declared: number, id: string, contentType = 'application/json') => {
    const headers = agency.client.signedHeaders(message(Buffer.alloc(declared), { to: 'CUSTOMS', messageId: id, contentType }));
    return holdPost(url(), { ...headers, 'content-length': String(declared) }, Buffer.alloc(64 * 1024), tlsOf(agency));
  };
  const a = hold(boft, 24 * MiB, 'HOLD-A');
  await waitFor('24 MiB held', async () => (await gauge()) === 24 * MiB, 10_000);
  const overShare = await hold(boft, 16 * MiB, 'HOLD-A2').reply;
  await expectRefused(overShare, 429, 'SWX_PARTNER_BUSY');
  expectRetryAfter(overShare);

  const b = hold(tfda, 24 * MiB, 'HOLD-B');
  await waitFor('48 MiB held', async () => (await gauge()) === 48 * MiB, 10_000);
  // Without Content-Length a body counts as it arrives.
  const chunkedHeaders = tfda.client.signedHeaders(message(Buffer.alloc(0), { to: 'CUSTOMS', messageId: 'HOLD-C' }));
  const c = holdPost(url(), { ...chunkedHeaders, 'transfer-encoding': 'chunked' }, Buffer.alloc(MiB, 0x43), tlsOf(tfda));
  await waitFor('49 MiB held', async () => (await gauge()) === 49 * MiB, 10_000);
  const overHub = await hold(customs, 16 * MiB, 'HOLD-D').reply;
  await expectRefused(overHub, 503, 'SWX_BUSY');
  expectRetryAfter(overHub);
  assert.is((await customs.client.send(message(Buffer.from('small'), { to: 'TFDA' }))).status, 202, 'a small message still fits');

  a.abort();
  b.abort();
  c.abort();
  await waitFor('the budget released', async () => (await gauge()) === 0, 10_000);
  for (const id of ['HOLD-A', 'HOLD-B']) {
    const rows = await evidenceOf(hub, id, 'rejected');
    assert.is(rows.find((row) => row.stage === 'rejected')?.code, 'SWX_CLIENT_ABORTED', `${id}: a sender that left mid-body is evidenced as such`);
  }
  assert.not.match(hub.output(), /"level":50/, 'a sender that leaves is no error of the hub');
  const big = Buffer.alloc(20 * MiB, 0x44);
  assert.is((await boft.client.send(message(big, { to: 'CUSTOMS' }))).status, 202, 'the released budget serves again');
  // A body streamed to the Object Store is held a window at a time: it claims that window, not its length.
  const streamed = hold(boft, 24 * MiB, 'HOLD-E', 'application/octet-stream');
  await waitFor('the streamed body\'s window held', async () => (await gauge()) === MiB, 10_000);
  streamed.abort();
  await waitFor('the budget released', async () => (await gauge()) === 0, 10_000);
});

test('a signed request sent again without Swx-Message-Id: the same id, 202 duplicate, delivered once', async () => {
  const body = Buffer.from('{"permit":"P-77"}');
  const headers = customs.client.signedHeaders(message(body, { contentType: 'application/json' }));
  const first = await rawPost(url(), headers, body, tlsOf(customs));
  const second = await rawPost(url(), headers, body, tlsOf(customs));
  assert.is(first.status, 202, first.text);
  assert.is(second.status, 202, second.text);
  assert.is(second.body.id, first.body.id, 'the id is derived from the signature');
  assert.is(second.body.duplicate, true);
  // Another message behind it: once it is delivered, a second delivery of the first would have been too.
  const id = String(first.body.id);
  const after = await customs.client.send(message(Buffer.from('sentinel'), { messageId: 'AFTER-REPLAY' }));
  assert.is(after.status, 202);
  await waitFor('both delivered', () => boft.receiver!.deliveriesOf(id) >= 1 && boft.receiver!.deliveriesOf('AFTER-REPLAY') >= 1, 15_000);
  assert.is(boft.receiver!.deliveriesOf(id), 1);
  const rows = await evidenceOf(hub, id, ['delivered', 'duplicate']);
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 1);
  assert.is(rows.filter((row) => row.stage === 'duplicate').length, 1);
  // Another signature over the same message is another message.
  const again = await customs.client.send(message(body, { contentType: 'application/json' }));
  assert.is(again.body.duplicate, false);
  assert.is.not(again.body.id, id);
});

test('an Swx-* header the signature leaves out is refused; one it covers is taken', async () => {
  const body = Buffer.from('{"a":1}');
  const headers = customs.client.signedHeaders(message(body, { contentType: 'application/json' }));
  const added = await rawPost(url(), { ...headers, 'swx-foo': 'bar' }, body, tlsOf(customs));
  await expectRefused(added, 401, 'SWX_SIG_INVALID');
  assert.match(String(added.body.detail), /does not cover required component swx-foo/);
  const covered = { 'content-type': 'application/json', 'content-digest': contentDigest(body), 'swx-to': 'BOFT', 'swx-service': 'limits.exchange', 'swx-foo': 'bar' };
  const signed = signAs(customs, url(), covered, [...requiredRequestComponents, 'swx-to', 'swx-foo']);
  assert.is((await rawPost(url(), signed, body, tlsOf(customs))).status, 202);
  const query = { 'content-type': 'application/json', 'content-digest': contentDigest(body) };
  const target = url(`${queryPath}/import-declaration-sea`);
  const uncovered = { ...signAs(customs, target, query, queryRequestComponents), 'swx-foo': 'bar' };
  const refusedQuery = await rawPost(target, uncovered, body, tlsOf(customs));
  await expectRefused(refusedQuery, 401, 'SWX_SIG_INVALID');
});

test('a JSON media type with a body that is not JSON, or not UTF-8: 400 SWX_BAD_REQUEST', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['text/json', Buffer.from('not json at all'), /not JSON/],
    ['application/vnd.swx.permit+json; charset=utf-8', Buffer.from('<permit/>'), /not JSON/],
    ['application/json', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /UTF-8/],
    ['text/json', Buffer.from('{"a":"\xed\xa0\x80"}', 'latin1'), /UTF-8/],
  ];
  for (const [contentType, body, detail] of cases) {
    const answer = await customs.client.send(message(body, { contentType }));
    await expectRefused(answer, 400, 'SWX_BAD_REQUEST');
    assert.match(String(answer.body.detail), detail, contentType);
  }
  const body = Buffer.from([...Buffer.from('{"keys":{"declarationNo":"'), 0xc3, 0x28, ...Buffer.from('"}}')]);
  const target = url(`${queryPath}/import-declaration-sea`);
  const query = { 'content-type': 'application/json', 'content-digest': contentDigest(body) };
  const answer = await rawPost(target, signAs(boft, target, query, queryRequestComponents), body, tlsOf(boft));
  await expectRefused(answer, 400, 'SWX_BAD_REQUEST');
  assert.match(String(answer.body.detail), /UTF-8/);
});

test('requests Node\'s HTTP parser refuses get a problem reply, are counted and logged, and the hub serves on', async () => {
  const head = 'POST /v1/messages HTTP/1.1\r\nHost: localhost\r\n';
  const cases: [string, string, number, string][] = [
    ['bare CR in a header', `${head}X-A: a\rb\r\nContent-Length: 0\r\n\r\n`, 400, 'HPE_LF_EXPECTED'],
    ['bare LF in a header', `${head}X-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n`, 400, 'HPE_CR_EXPECTED'],
    ['NUL in a header', `${head}X-A: a\0b\r\nContent-Length: 0\r\n\r\n`, 400, 'HPE_INVALID_HEADER_TOKEN'],
    ['obs-fold', `${head}X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n`, 400, 'HPE_INVALID_HEADER_TOKEN'],
    ['Content-Length with Transfer-Encoding', `${head}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'HPE_INVALID_TRANSFER_ENCODING'],
    ['two Content-Lengths', `${head}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400, 'HPE_UNEXPECTED_CONTENT_LENGTH'],
    ['an oversized header block', `${head}X-A: ${'a'.repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`, 431, 'HPE_HEADER_OVERFLOW'],
  ];
  for (const [name, bytes, expected, reason] of cases) {
    for (const identity of [tlsOf(), tlsOf(customs)]) {
      const before = await metric('swx_http_parser_refusals_total', `reason="${reason}"`);
      const reply = await rawTls(hub.agencyPort, bytes, identity);
      assert.match(reply, new RegExp(`^HTTP/1\\.1 ${expected} `), `${name}: ${reply.slice(0, 80)}`);
      const [headers, text] = reply.split('\r\n\r\n');
      assert.match(headers!, /content-type: application\/problem\+json/i, name);
      assert.is(JSON.parse(text!).code, expected === 431 ? 'SWX_HEADERS_TOO_LARGE' : 'SWX_BAD_REQUEST', name);
      assert.is(await metric('swx_http_parser_refusals_total', `reason="${reason}"`), before + 1, `${name} counted`);
    }
  }
  // A flood of them: every one counted, the log keeps a few lines with the peer.
  const flood = cases[0]![1];
  const before = await metric('swx_http_parser_refusals_total', 'reason="HPE_LF_EXPECTED"');
  await Promise.all(Array.from({ length: 40 }, () => rawTls(hub.agencyPort, flood, tlsOf())));
  assert.is(await metric('swx_http_parser_refusals_total', 'reason="HPE_LF_EXPECTED"'), before + 40);
  const lines = hub.output().split('\n').filter((line) => line.includes('refused by the HTTP parser'));
  assert.ok(lines.length >= 1 && lines.length <= 4, `${lines.length} log lines for ${cases.length * 2 + 40} refusals`);
  const logged = JSON.parse(lines[0]!);
  assert.is(logged.level, 40);
  assert.is(logged.peer, '127.0.0.1');
  assert.is((await customs.client.send(message(Buffer.from('still serving')))).status, 202);
});

test.run();
