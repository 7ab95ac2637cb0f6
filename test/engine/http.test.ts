// The HTTP plumbing's rules that hold for every reply: a refusal that passes with time (every 429 and 503) says when
// to come back; JSON is JSON in UTF-8 under any JSON media type. Judged over a real server and Node's own client.
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errorCodes, SwxError, type ErrorCode } from '../../engine/errors.ts';
import { Agent, createServer as createHttpsServer } from 'node:https';
import { isJsonMediaType, listen, close, postHttps, readJson, sendProblem } from '../../engine/http.ts';
import { initPki, loadPki } from '../../engine/pki/index.ts';
import { tempDir } from '../helpers/hub.ts';

let server: Server;
let port = 0;

test.before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://localhost');
    const wait = url.searchParams.get('wait');
    sendProblem(res, new SwxError(url.searchParams.get('code') as ErrorCode, 'as asked', wait ? { retryAfterSeconds: Number(wait) } : {}));
  });
  port = await listen(server, 0, '127.0.0.1');
});

test.after(() => close(server));

const ask = (query: string) => fetch(`http://127.0.0.1:${port}/?${query}`);

test('every 429 and 503 carries Retry-After in whole seconds; other statuses do not', async () => {
  for (const [code, { status }] of Object.entries(errorCodes)) {
    const answer = await ask(`code=${code}`);
    assert.is(answer.status, status, code);
    const retry = answer.headers.get('retry-after');
    if (status === 429 || status === 503) assert.match(String(retry), /^[1-9]\d*$/, `${code} has Retry-After`);
    else assert.is(retry, null, `${code} has no Retry-After`);
    await answer.arrayBuffer();
  }
});

test('a refusal that knows its own wait says it, rounded up to whole seconds', async () => {
  assert.is((await ask('code=SWX_RATE_LIMITED&wait=7')).headers.get('retry-after'), '7');
  assert.is((await ask('code=SWX_RATE_LIMITED&wait=0.2')).headers.get('retry-after'), '1');
  assert.is((await ask('code=SWX_BAD_REQUEST&wait=7')).headers.get('retry-after'), null, 'only where the code passes with time');
});

test('JSON media types, and JSON read as strict UTF-8', () => {
  for (const type of ['application/json', 'application/json; charset=utf-8', 'text/json', 'Application/JSON', 'application/problem+json', 'application/vnd.a.b+json;x=1']) {
    assert.ok(isJsonMediaType(type), type);
  }
  for (const type of ['application/json-seq', 'application/jsonx', 'text/plain', 'application/xml', 'text/json5']) assert.not.ok(isJsonMediaType(type), type);
  assert.equal(readJson(Buffer.from('{"a":"é"}')), { a: 'é' });
  assert.throws(() => readJson(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), /not valid UTF-8/);
  assert.throws(() => readJson(Buffer.from('{"a":"\xed\xa0\x80"}', 'latin1')), /not valid UTF-8/, 'an encoded surrogate');
  assert.throws(() => readJson(Buffer.from('{"a":')), /not JSON/);
});

test('a POST on a kept-alive connection the server dropped while idle goes once more on a new connection', async () => {
  const dir = tempDir('stale');
  await initPki(dir, { agencies: [], hosts: ['localhost'] });
  const pki = await loadPki(dir);
  // The second request on any connection finds it closed, as when the server's keep-alive timeout ran out just then.
  let answered = 0;
  const served = new WeakMap<object, number>();
  const provider = createHttpsServer({ key: pki.hubTls.keyPem, cert: pki.hubTls.certPem }, (req, res) => {
    const onThisConnection = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, onThisConnection);
    if (onThisConnection > 1) { req.socket.destroy(); return; }
    answered++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const providerPort = await listen(provider as unknown as Server, 0, '127.0.0.1');
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.certPem });
  try {
    for (let i = 0; i < 3; i++) {
      const answer = await postHttps(`https://localhost:${providerPort}/`, { agent }, Buffer.from('{}'), 1024);
      assert.is(answer.body.toString(), 'ok', `request ${i + 1}`);
    }
    assert.is(answered, 3, 'each request answered once');
  } finally {
    agent.destroy();
    await close(provider as unknown as Server);
  }
});

test.run();
