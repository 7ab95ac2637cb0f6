// The console API on a running hub, as operators and their scripts use it: over HTTPS with the hub's certificate, each
// role doing only its part (every route of the table tried as every role), sign-in with a password or an officer's
// client certificate, CSRF on changes made with the session cookie, lockout and its end, API tokens and their
// revocation, audit entries of changes, paging, the OpenAPI document, and the loopback listener still serving the CLI.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import SwaggerParser from '@apidevtools/swagger-parser';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initPki, issueCertificate, loadPki } from '../../engine/pki/index.ts';
import { AuditFile, auditChainBreak } from '../../dashboards/audit-sink.ts';
import { routeAccess } from '../../dashboards/access.ts';
import { roles, type Role } from '../../dashboards/users.ts';
import { consoleRequest, roleTokens, testPassword, userOf, type Answer, type ConsoleRequest, type Jar } from '../helpers/console.ts';
import { cleanEnv, startHubProcess, swxBin, tempDir, type HubProcess } from '../helpers/hub.ts';

const run = promisify(execFile);
const lockoutSeconds = 5;
let hub: HubProcess;
let ca: string;

/** One request to the console's HTTPS port (test/helpers/console.ts). */
const console_ = (method: string, path: string, options: ConsoleRequest = {}): Promise<Answer> => consoleRequest(hub, method, path, options);

async function swx(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [swxBin, ...args, '--data', hub.dataDir], {
      env: { ...cleanEnv(), SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}`, ...env }, timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The JSON a `swx` command printed, without the line it adds for a password it made. */
const printed = (stdout: string) => JSON.parse(stdout.replace(/^password: .*$/m, ''));

const password = testPassword;
let tokens = {} as Record<Role, string>;

async function signIn(user: string, secret: string): Promise<{ jar: Jar; answer: Answer }> {
  const jar: Jar = new Map();
  const answer = await console_('POST', '/api/session', { body: { user, password: secret }, jar });
  return { jar, answer };
}

/** The audit log's entries as an auditor reads them, before and after parsed. */
async function auditEntries(): Promise<any[]> {
  const answer = await console_('GET', '/api/audit?limit=10000', { bearer: tokens.auditor });
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  const parse = (text: string) => (text ? JSON.parse(text) : null);
  return answer.body.map((row: any) => ({ ...row, before: parse(row.before), after: parse(row.after) }));
}

test.before(async () => {
  hub = await startHubProcess({ env: { SWX_CONSOLE_LOCKOUT_FAILURES: '5', SWX_CONSOLE_LOCKOUT_SECONDS: String(lockoutSeconds), SWX_NODE_NAME: 'console-test' } });
  ca = readFileSync(join(hub.dataDir, 'pki', 'ca', 'cert.pem'), 'utf8');
  // The first admin, as a deployment gets one: `swx user add` on the hub's machine, with its operator token.
  const first = await swx(['user', 'add', userOf.admin, '--role', 'admin', '--password', password('admin')]);
  assert.is(first.code, 0, first.stderr);
  tokens = await roleTokens(hub);
});

test.after(async () => {
  await hub?.stop();
});

test('the HTTPS listener serves with the hub\'s TLS certificate, which chains to the deployment CA', async () => {
  const hubTls = (await loadPki(join(hub.dataDir, 'pki'))).hubTls;
  const served = await new Promise<X509Certificate>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: hub.consolePort, servername: 'localhost', path: '/api/session', ca, agent: false }, (res) => {
      resolve(new X509Certificate((res.socket as import('node:tls').TLSSocket).getPeerCertificate().raw));
      res.resume();
    });
    req.on('error', reject);
    req.end();
  });
  assert.is(served.fingerprint256, new X509Certificate(hubTls.certPem).fingerprint256);
  // And with curl, given only the CA.
  const { stdout } = await run('curl', ['-sS', '--cacert', join(hub.dataDir, 'pki', 'ca', 'cert.pem'), '--resolve', `localhost:${hub.consolePort}:127.0.0.1`,
    '-H', `authorization: Bearer ${tokens.analyst}`, `https://localhost:${hub.consolePort}/api/session`]);
  assert.equal(JSON.parse(stdout), { user: userOf.analyst, roles: ['analyst'], via: 'api-token' });
});

/** A path of the table with its parameters filled: well-formed ids that name nothing, or the caller's own user. */
function concrete(pattern: string, self: string): string {
  const values: Record<string, string> = {
    partner: 'NOSUCH', service: 'no.such', topic: 'no-such', channel: 'no-such', dataset: 'no-such', messageId: 'no-such-message',
    seq: '999999', panel: 'no-such', name: 'logLevel', user: self, token: 'AAAAAAAAAAAAAAAAAAAAAAAA', fingerprint: `SHA256:${'A'.repeat(43)}`,
  };
  return pattern.replace(/:([a-zA-Z]+)/g, (_, name: string) => values[name]!);
}

test('each role does only its part: every route of the table, as every role, is 403 SWX_ROLE_DENIED exactly where the table says', async () => {
  const apiRoutes = Object.entries(routeAccess).filter(([key, access]) => key.split(' ')[1]!.startsWith('/api/') && access !== 'public');
  let denied = 0;
  let allowed = 0;
  let expectedDenied = 0;
  for (const role of roles) {
    for (const [key, access] of apiRoutes) {
      const [method, pattern] = key.split(' ') as [string, string];
      // Routes on the caller's own user are tried on their own name; an admin's routes on users on a user that is not there.
      const self = access === 'signed-in' ? userOf[role] : 'nobody-here';
      if (key === 'DELETE /api/session') continue; // tried below, where it ends a session
      const answer = await console_(method, concrete(pattern, self), { bearer: tokens[role] });
      const may = access === 'signed-in' || access.includes(role);
      if (!may) expectedDenied++;
      if (may) {
        allowed++;
        assert.ok(answer.status !== 401 && answer.status !== 403, `${role} ${key}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        assert.ok(answer.status < 500, `${role} ${key}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
      } else {
        denied++;
        assert.is(answer.status, 403, `${role} ${key}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        assert.is(answer.body.code, 'SWX_ROLE_DENIED', `${role} ${key}`);
      }
    }
  }
  assert.is(denied, expectedDenied);
  assert.ok(allowed > 0 && denied > allowed, `${allowed} allowed, ${denied} denied`);
  // Without any credential every one of them is 401, and the operator token is not taken on the network listener.
  for (const [key] of apiRoutes) {
    const [method, pattern] = key.split(' ') as [string, string];
    assert.is((await console_(method, concrete(pattern, 'ada'))).status, 401, key);
  }
  const withOpsToken = await console_('GET', '/api/partners', { bearer: await hub.token() });
  assert.is(withOpsToken.status, 401);
  assert.is(withOpsToken.body.code, 'SWX_OPS_UNAUTHORIZED');
});

test('a user\'s own tokens are theirs: another user\'s are refused unless the caller is admin', async () => {
  const other = await console_('GET', `/api/users/${userOf.admin}/tokens`, { bearer: tokens.operator });
  assert.is(other.status, 403);
  assert.is((await console_('GET', `/api/users/${userOf.operator}/tokens`, { bearer: tokens.admin })).status, 200);
});

test('a user changes their own password only by giving the current one', async () => {
  const path = `/api/users/${userOf.analyst}/password`;
  const fresh = 'a-new-analyst-password';
  const without = await console_('PUT', path, { body: { password: fresh }, bearer: tokens.analyst });
  assert.is(without.status, 400);
  assert.is((await console_('PUT', path, { body: { password: fresh, current: 'wrong-current-one' }, bearer: tokens.analyst })).status, 401);
  assert.is((await console_('PUT', path, { body: { password: fresh, current: password('analyst') }, bearer: tokens.analyst })).status, 200);
  assert.is((await signIn(userOf.analyst, fresh)).answer.status, 200);
  // An admin sets anyone else's without it: back to the one the other tests use.
  assert.is((await console_('PUT', path, { body: { password: password('analyst') }, bearer: tokens.admin })).status, 200);
});

test('every route is in the table and in the OpenAPI document, which is valid OpenAPI 3.1', async () => {
  const answer = await hub.admin('GET', '/api/openapi.json');
  assert.is(answer.status, 200);
  const validated = await SwaggerParser.validate(structuredClone(answer.body)) as any;
  assert.is(validated.openapi, '3.1.0');
  const documented = Object.entries(answer.body.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path.replace(/\{([a-zA-Z]+)\}/g, ':$1')}`));
  const tabled = Object.keys(routeAccess).filter((key) => key.split(' ')[1]!.startsWith('/api/') && key !== 'GET /api/openapi.json');
  assert.equal([...documented].sort(), [...tabled].sort());
  // The bodies are described: a partner's schema names its fields.
  assert.ok(answer.body.paths['/api/partners/{partner}'].put.requestBody.content['application/json'].schema.properties.certificates);
});

test('a change made with the session cookie needs its CSRF token, bound to that session', async () => {
  const { jar, answer } = await signIn(userOf.operator, password('operator'));
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  const cookie = answer.headers['set-cookie']!.find((line) => line.startsWith('__Host-swx-session='))!;
  for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) assert.match(cookie, attribute);
  const service = { name: 'CSRF test', rules: [{ from: ['*'], to: ['*'] }] };
  const without = await console_('PUT', '/api/services/csrf.test', { body: service, jar });
  assert.is(without.status, 403);
  assert.is(without.body.code, 'SWX_CSRF_REFUSED');
  // Another session's token does not pass for this one.
  const other = await signIn(userOf.admin, password('admin'));
  const foreign = await console_('PUT', '/api/services/csrf.test', { body: service, jar, csrf: other.answer.body.csrfToken });
  assert.is(foreign.status, 403);
  // Reading needs none; a change with the session's token passes.
  assert.is((await console_('GET', '/api/services', { jar })).status, 200);
  const done = await console_('PUT', '/api/services/csrf.test', { body: service, jar, csrf: answer.body.csrfToken });
  assert.is(done.status, 200, JSON.stringify(done.body));
  // Signed out, the same cookie is refused.
  const kept = new Map(jar);
  assert.is((await console_('DELETE', '/api/session', { jar, csrf: answer.body.csrfToken })).status, 200);
  assert.is((await console_('GET', '/api/services', { jar: kept })).status, 401);
});

test('changes are audited with who, role, what, target, before and after, in a hash chain', async () => {
  const service = { name: 'Audited', rules: [{ from: ['*'], to: ['*'] }] };
  assert.is((await console_('PUT', '/api/services/audited.one', { body: service, bearer: tokens.operator })).status, 200);
  assert.is((await console_('PUT', '/api/services/audited.one', { body: { ...service, name: 'Audited again' }, bearer: tokens.operator })).status, 200);
  const disabled = await console_('POST', `/api/users/${userOf.analyst}/disable`, { body: {}, bearer: tokens.admin });
  assert.is(disabled.status, 400, 'disabling a user needs a reason');
  const verdict = await console_('GET', '/api/audit/verify', { bearer: tokens.auditor });
  assert.is(verdict.status, 200);
  assert.is(verdict.body.ok, true, JSON.stringify(verdict.body));
  const entries = await auditEntries();
  assert.is(verdict.body.records, entries.length);
  const last = entries.filter((entry) => entry.target === 'services/audited.one').at(-1);
  assert.is(last.actor, userOf.operator);
  assert.is(last.role, 'operator');
  assert.is(last.action, 'PUT /api/services/:service');
  assert.is(last.before.name, 'Audited');
  assert.is(last.after.name, 'Audited again');
  assert.ok(entries.some((entry) => entry.action === 'PUT /api/users/:user' && entry.actor === 'local-operator' && entry.after.name === userOf.operator && entry.after.password === true));
  assert.not.match(JSON.stringify(entries), /password-for-tests/, 'no password is written');
  // Only auditors read it.
  assert.is((await console_('GET', '/api/audit', { bearer: tokens.operator })).status, 403);
});

test('lists are paged: limit and cursor, the next cursor in x-next-cursor', async () => {
  for (const id of ['paged.a', 'paged.b', 'paged.c']) await hub.admin('PUT', `/api/services/${id}`, { name: id, rules: [{ from: ['*'], to: ['*'] }] });
  const seen: string[] = [];
  let path = '/api/services?limit=2';
  for (let pages = 0; pages < 20; pages++) {
    const answer = await console_('GET', path, { bearer: tokens.operator });
    assert.is(answer.status, 200);
    assert.ok(answer.body.length <= 2);
    seen.push(...answer.body.map((service: { id: string }) => service.id));
    const next = answer.headers['x-next-cursor'];
    if (!next) break;
    path = `/api/services?limit=2&cursor=${next}`;
  }
  const all = (await hub.admin('GET', '/api/services')).body.map((service: { id: string }) => service.id);
  assert.equal(seen, all);
  assert.ok(all.includes('paged.c'));
  // Evidence pages by its order (time, node, position): a cursor after a time far back and one far ahead.
  const cursor = (at: string) => Buffer.from(JSON.stringify([at, 'console-test', '0'])).toString('base64url');
  const early = await console_('GET', `/api/evidence?limit=5&cursor=${cursor('2000-01-01 00:00:00.000')}`, { bearer: tokens.auditor });
  assert.is(early.status, 200, JSON.stringify(early.body));
  const late = await console_('GET', `/api/evidence?limit=5&cursor=${cursor('2999-01-01 00:00:00.000')}`, { bearer: tokens.auditor });
  assert.equal([late.status, late.body], [200, []]);
  assert.is((await console_('GET', '/api/evidence?cursor=not*a*cursor', { bearer: tokens.auditor })).status, 400);
});

test('an API token works until it is revoked (swx user token add|revoke)', async () => {
  const added = await swx(['user', 'token', 'add', userOf.auditor, '--label', 'script']);
  assert.is(added.code, 0, added.stderr);
  const { token, id } = printed(added.stdout);
  assert.is((await console_('GET', '/api/evidence?limit=1', { bearer: token })).status, 200);
  const listed = await swx(['user', 'token', 'list', userOf.auditor]);
  assert.ok(printed(listed.stdout).some((entry: { id: string; digest?: string }) => entry.id === id && entry.digest === undefined));
  assert.is((await swx(['user', 'token', 'revoke', userOf.auditor, id])).code, 0);
  const refused = await console_('GET', '/api/evidence?limit=1', { bearer: token });
  assert.is(refused.status, 401);
  assert.is(refused.body.code, 'SWX_OPS_UNAUTHORIZED');
});

test('an officer signs in with a client certificate from the deployment PKI once it is registered; an unknown one is refused', async () => {
  const issued = await swx(['pki', 'issue', 'OFFICER1', '--profile', 'tls-client']);
  assert.is(issued.code, 0, issued.stderr);
  const { certPath, keyPath } = printed(issued.stdout);
  const cert = readFileSync(certPath, 'utf8');
  const key = readFileSync(keyPath, 'utf8');
  const before = await console_('POST', '/api/session/certificate', { cert, key });
  assert.is(before.status, 401, 'not registered yet');
  assert.is(before.body.code, 'SWX_AUTH_UNKNOWN_CERT');
  assert.is((await swx(['user', 'cert', userOf.auditor, certPath])).code, 0);
  const jar: Jar = new Map();
  const signedIn = await console_('POST', '/api/session/certificate', { cert, key, jar });
  assert.is(signedIn.status, 200, JSON.stringify(signedIn.body));
  assert.is(signedIn.body.user, userOf.auditor);
  assert.is(signedIn.body.via, 'certificate');
  assert.is((await console_('GET', '/api/evidence?limit=1', { jar })).status, 200);
  // A certificate of another CA, however well made, signs no one in.
  const elsewhere = tempDir('other-pki');
  await initPki(elsewhere, { agencies: [], alg: 'ecdsa', crlUrl: 'http://localhost:9/pki/crl' });
  const stranger = await issueCertificate(elsewhere, 'STRANGER', { profile: 'tls-client' });
  const refused = await console_('POST', '/api/session/certificate', { cert: stranger.certPem, key: readFileSync(stranger.keyPath, 'utf8') });
  assert.is(refused.status, 401);
  assert.is(refused.body.code, 'SWX_AUTH_UNKNOWN_CERT');
  // Without a certificate at all.
  assert.is((await console_('POST', '/api/session/certificate')).status, 401);
});

test('five failed sign-ins lock the user and the address out, evidenced in the audit; the lockout ends with its window', async () => {
  // Starts with a clean window: earlier refusals from this address (the certificate test) are past it.
  await sleep(lockoutSeconds * 1000 + 200);
  for (let attempt = 1; attempt <= 5; attempt++) {
    const { answer } = await signIn(userOf.operator, 'not-the-password');
    assert.is(answer.status, 401, `attempt ${attempt}`);
    assert.is(answer.body.code, 'SWX_CONSOLE_UNAUTHORIZED');
  }
  const locked = await signIn(userOf.operator, password('operator'));
  assert.is(locked.answer.status, 429, 'the right password is refused while locked out');
  assert.is(locked.answer.body.code, 'SWX_LOCKED_OUT');
  const wait = Number(locked.answer.headers['retry-after']);
  assert.ok(wait >= 1 && wait <= lockoutSeconds, `retry-after ${wait}`);
  // The address is locked out too: another user from it waits as well.
  assert.is((await signIn(userOf.admin, password('admin'))).answer.status, 429);
  const entries = await auditEntries();
  assert.ok(entries.filter((entry) => entry.action === 'session.refused' && entry.target === `users/${userOf.operator}`).length >= 6);
  assert.ok(entries.some((entry) => entry.action === 'session.lockout' && entry.target === `users/${userOf.operator}`));
  await sleep(wait * 1000 + 500);
  const after = await signIn(userOf.operator, password('operator'));
  assert.is(after.answer.status, 200, JSON.stringify(after.answer.body));
});

test('the loopback listener still serves the CLI with the operator token, and a disabled user is refused everywhere', async () => {
  const partners = await swx(['partner', 'list']);
  assert.is(partners.code, 0, partners.stderr);
  assert.equal(JSON.parse(partners.stdout), []);
  // Without any credential, loopback answers as the operator API always did (test/e2e/route.test.ts holds the rest of
  // its refusals), and the console's refusals are counted with every other problem reply.
  const bare = await fetch(`http://127.0.0.1:${hub.opsPort}/api/users`);
  assert.equal([bare.status, (await bare.json()).code], [401, 'SWX_OPS_UNAUTHORIZED']);
  assert.match(await (await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`)).text(), /swx_http_problem_replies_total\{code="SWX_ROLE_DENIED"\}/);
  // A script with a user's API token on the same port does what that user's role may.
  const asOperator = { SWX_ADMIN_TOKEN: tokens.operator };
  assert.is((await swx(['partner', 'list'], asOperator)).code, 0);
  const refused = await swx(['user', 'list'], asOperator);
  assert.is.not(refused.code, 0);
  assert.match(refused.stderr, /SWX_ROLE_DENIED/);
  const listed = await swx(['user', 'list']);
  assert.equal(printed(listed.stdout).map((user: { name: string }) => user.name), Object.values(userOf).sort());
  const disabled = await swx(['user', 'disable', userOf.analyst, '--reason', 'left the agency']);
  assert.is(disabled.code, 0, disabled.stderr);
  assert.is((await console_('GET', '/api/session', { bearer: tokens.analyst })).status, 401);
  assert.is((await signIn(userOf.analyst, password('analyst'))).answer.status, 401);
  const entry = (await auditEntries()).find((line) => line.action === 'POST /api/users/:user/disable');
  assert.is(entry.reason, 'left the agency');
  assert.is(entry.before.disabled, false);
  assert.is(entry.after.disabled, true);
});

test('a hub process without the store audits to a file of its own, each line chained to the one before', async () => {
  const path = join(tempDir('audit'), 'audit.jsonl');
  const file = new AuditFile(path, 'node-a');
  await Promise.all([1, 2, 3].map((n) => file.append({ actor: 'ada', role: 'admin', action: 'PUT /api/users/:user', target: `users/u${n}`, before: null, after: { n } })));
  const text = readFileSync(path, 'utf8');
  assert.is(text.trimEnd().split('\n').length, 3);
  assert.is(auditChainBreak(text), undefined);
  // Reopened, it continues the chain.
  await new AuditFile(path, 'node-a').append({ actor: 'ada', role: 'admin', action: 'x', target: 'y', before: null, after: null });
  assert.is(auditChainBreak(readFileSync(path, 'utf8')), undefined);
  assert.match(String(auditChainBreak(text.replace('users/u2', 'users/u9'))), /line 2/);
});

test.run();
