// Request handlers whose code fails: every failure stays with its request (a problem reply, or a closed connection
// when even that fails), and the server goes on serving the next request.
import { createServer, request, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SwxError } from '../../engine/errors.ts';
import { close, contained, listen, Router } from '../../engine/http.ts';

const servers: Server[] = [];

test.after(async () => {
  for (const server of servers) await close(server);
});

async function serve(handler: Parameters<typeof createServer>[0] & object): Promise<number> {
  const server = createServer(handler as never);
  servers.push(server);
  return listen(server, 0, '127.0.0.1');
}

function get(port: number, path: string): Promise<{ status: number; body: any } | { closed: string }> {
  return new Promise((resolve) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on('error', (error) => resolve({ closed: error.message })).end();
  });
}

test('a route that throws synchronously, rejects, or throws an SwxError gets a problem reply; the router keeps serving', async () => {
  const router = new Router()
    .add('GET', '/sync', () => { throw new TypeError('a bug'); })
    .add('GET', '/async', async () => { await Promise.resolve(); throw new Error('a later bug'); })
    .add('GET', '/refused', () => { throw new SwxError('SWX_BAD_REQUEST', 'no'); })
    .add('GET', '/ok', (_req, res) => { res.end('{"ok":true}'); });
  const port = await serve(router.handler);
  for (const path of ['/sync', '/async']) {
    const answer = await get(port, path);
    assert.ok('status' in answer && answer.status === 500 && answer.body.code === 'SWX_INTERNAL', `${path}: ${JSON.stringify(answer)}`);
  }
  const refused = await get(port, '/refused');
  assert.ok('status' in refused && refused.status === 400 && refused.body.code === 'SWX_BAD_REQUEST');
  assert.equal(await get(port, '/ok'), { status: 200, body: { ok: true } });
});

test('contained: the failure reply is the one given; when it fails too, or the reply had begun, only that connection closes', async () => {
  const port = await serve(contained((req, res) => {
    if (req.url === '/ok') return void res.end('{"ok":true}');
    if (req.url === '/begun') { res.writeHead(200); res.write('{"partial":'); }
    throw new Error(`failed at ${req.url}`);
  }, (req, res, error) => {
    if (req.url === '/fail-fails') throw new Error('the failure reply failed');
    if (req.url === '/fail-rejects') return Promise.reject(new Error('the failure reply rejected'));
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ told: (error as Error).message }));
  }));
  assert.equal(await get(port, '/x'), { status: 503, body: { told: 'failed at /x' } });
  for (const path of ['/fail-fails', '/fail-rejects', '/begun']) {
    const answer = await get(port, path);
    assert.ok('closed' in answer, `${path}: ${JSON.stringify(answer)}`);
  }
  assert.equal(await get(port, '/ok'), { status: 200, body: { ok: true } });
});

test.run();
