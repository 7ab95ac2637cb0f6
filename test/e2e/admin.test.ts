// The operator API and the WSDL address under hostile input on a running hub: every id from a path is held to its
// grammar before it names a key or a subject (400 when malformed, 404 when absent), the operator API answers only
// to its own names, and a WSDL names the configured public address whatever Host the request gave.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addAgency, addService, startHubProcess, type HubProcess, type TestAgency } from '../helpers/hub.ts';

const publicUrl = 'https://hub.example:8443';
let hub: HubProcess;
const agencies: TestAgency[] = [];

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_PUBLIC_URL: publicUrl, SWX_OPS_NAMES: 'ops.example,swx-ops' } });
  for (const id of ['CUSTOMS', 'BOFT', 'BSMI']) agencies.push(await addAgency(hub, id, { receiver: false }));
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  await addService(hub, 'customs.notice', ['CUSTOMS'], ['BSMI']);
});

test.after(async () => {
  for (const agency of agencies) agency.client.close();
  await hub?.stop();
});

/** One operator API request as raw bytes, so that the path is sent exactly as written. */
function raw(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: hub.opsPort, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* kept as text */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function operator(method: string, path: string, host = `127.0.0.1:${hub.opsPort}`) {
  return raw(method, path, { host, authorization: `Bearer ${await hub.token()}` });
}

const long = 'A'.repeat(5_000);
const malformed = ['*', '>', '%3E', 'CUSTOMS.*', '..%2F..%2Fetc%2Fpasswd', '%00', 'CUSTOMS%00', '%2A', long, 'customs', '%20CUSTOMS'];

test('a partner, service or dataset id that is not of its grammar is 400 SWX_BAD_REQUEST, never a wildcard, never a 500', async () => {
  const paths = [
    ...malformed.flatMap((id) => [`/api/partners/${id}`, `/api/partners/${id}/history`]),
    ...['*', '>', 'customs.*', 'customs.>', '..%2F..%2Fetc%2Fpasswd', '%00', 'x'.repeat(5_000), 'Customs.declaration'].map((id) => `/api/services/${id}/history`),
    ...['*', '>', '..%2F..%2Fetc%2Fpasswd', '%00', 'x'.repeat(5_000), 'Import-declaration-sea'].flatMap((id) => [`/api/catalogue/${id}`, `/api/catalogue/${id}/history`]),
    '/api/evidence/bundle/..%2F..%2Fetc%2Fpasswd', `/api/evidence/bundle/${'x'.repeat(500)}`, '/api/evidence/bundle/%00',
  ];
  for (const path of paths) {
    const answer = await operator('GET', path);
    assert.is(answer.status, 400, `${path.slice(0, 60)}: ${JSON.stringify(answer.body).slice(0, 300)}`);
    assert.is(answer.body.code, 'SWX_BAD_REQUEST', path.slice(0, 60));
    assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  }
  for (const [method, path] of [['DELETE', '/api/partners/*'], ['DELETE', '/api/partners/..%2Fx'], ['DELETE', '/api/catalogue/*'], ['POST', '/api/dlq/*/resend']] as const) {
    const answer = await operator(method, path);
    assert.is(answer.status, 400, `${method} ${path}: ${JSON.stringify(answer.body)}`);
  }
  const stages = await fetch(`http://127.0.0.1:${hub.opsPort}/api/messages/stages`, {
    method: 'POST', headers: { authorization: `Bearer ${await hub.token()}`, 'content-type': 'application/json' }, body: JSON.stringify({ ids: ['ok-1', '*'] }),
  });
  assert.is(stages.status, 400);
  assert.not.match(hub.output(), /request failed/, 'nothing reached the internal-error path');
  // Every partner is still there: nothing was removed by a pattern.
  assert.equal((await hub.admin('GET', '/api/partners')).body.map((partner: { id: string }) => partner.id), ['BOFT', 'BSMI', 'CUSTOMS']);
});

test('a well-formed id that is absent is 404; a history names its own entity only', async () => {
  for (const path of ['/api/partners/NOSUCH', '/api/partners/NOSUCH/history', '/api/services/no.such/history', '/api/catalogue/no-such/history', '/api/catalogue/no-such']) {
    const answer = await operator('GET', path);
    assert.is(answer.status, 404, `${path}: ${JSON.stringify(answer.body)}`);
  }
  const history = await operator('GET', '/api/partners/CUSTOMS/history');
  assert.is(history.status, 200);
  assert.ok(history.body.length >= 1);
  assert.ok(history.body.every((revision: { value: { id: string } }) => revision.value.id === 'CUSTOMS'));
  const service = await operator('GET', '/api/services/customs.declaration/history');
  assert.equal(service.body.map((revision: { value: { id: string } }) => revision.value.id), ['customs.declaration']);
});

test('the operator API answers only to its own names: no Host, an IP literal or another name is refused with a problem', async () => {
  const authorization = `Bearer ${await hub.token()}`;
  for (const host of ['10.1.2.3', `10.1.2.3:${hub.opsPort}`, '192.168.0.1', '[fe80::1]', 'evil.example', '0.0.0.0', '']) {
    const answer = await raw('GET', '/api/partners', { host, authorization });
    assert.ok(answer.status === 400 || answer.status === 421, `Host ${host}: ${answer.status}`);
    assert.is(answer.body.code, 'SWX_BAD_REQUEST', `Host ${host}`);
    assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  }
  for (const host of ['localhost', `localhost:${hub.opsPort}`, '127.0.0.1', `[::1]:${hub.opsPort}`, 'ops.example', `swx-ops:${hub.opsPort}`]) {
    assert.is((await raw('GET', '/api/partners', { host, authorization })).status, 200, `Host ${host}`);
  }
  // Without any Host, in HTTP/1.1 and in HTTP/1.0 (which does not require one).
  for (const version of ['1.1', '1.0']) {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(hub.opsPort, '127.0.0.1', () => socket.write(`GET /api/partners HTTP/${version}\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`));
      let out = '';
      socket.on('data', (chunk) => { out += chunk; });
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });
    assert.match(text, /^HTTP\/1\.1 400 /, `HTTP/${version} without Host`);
    assert.match(text, /application\/problem\+json/);
    assert.match(text, /"code":"SWX_BAD_REQUEST"/);
    assert.match(text, /Host/);
  }
});

test('a WSDL names the configured public address, not the Host the request gave', async () => {
  const ca = readFileSync(join(hub.dataDir, 'pki', 'ca', 'cert.pem'), 'utf8');
  for (const host of ['evil.example', `localhost:${hub.agencyPort}`]) {
    const text = await new Promise<string>((resolve, reject) => {
      httpsRequest({ host: '127.0.0.1', servername: 'localhost', port: hub.agencyPort, path: '/ws/query/inbound-passenger?wsdl', ca, headers: { host } }, (res) => {
        let out = '';
        res.on('data', (chunk) => { out += chunk; });
        res.on('end', () => (res.statusCode === 200 ? resolve(out) : reject(new Error(`${res.statusCode}: ${out}`))));
      }).on('error', reject).end();
    });
    const locations = [...text.matchAll(/address location="([^"]*)"/g)].map((match) => match[1]);
    assert.equal(locations, [`${publicUrl}/ws/query/inbound-passenger`, `${publicUrl}/ws/query/inbound-passenger`], `Host ${host}`);
    assert.not.match(text, /evil\.example/);
  }
});

test('the hub still serves after all of it', async () => {
  assert.is(hub.proc.exitCode, null);
  assert.is((await hub.admin('GET', '/readyz')).status, 200);
});

test.run();
