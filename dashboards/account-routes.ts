// The console's own routes: signing in and out (password or TLS client certificate), users and their roles,
// certificates and API tokens, and the settings the hub runs with. Each change goes to the audit sink; so does every
// refused sign-in and every lockout.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { page, pageQuery } from '../engine/admin.ts';
import { SwxError } from '../engine/errors.ts';
import { peerCertificate } from '../engine/http.ts';
import { certificate } from '../engine/trust/index.ts';
import { accessOf } from './access.ts';
import { cookieOptions, reasonOf, sessionCookie, type ConsoleDeps, type ConsoleListener, type Principal } from './console-context.ts';
import type { Session } from './sessions.ts';
import { passwordSchema, publicToken, publicUser, roles, tokenId, userName, type User } from './users.ts';

const userParams = z.object({ user: userName });
const roleList = z.array(z.enum(roles)).min(1).describe('admin: users and settings; operator: partners, services, topics, channels, resends; auditor: evidence; analyst: statistics and analysis');
const pem = z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'expected a PEM certificate' }).max(64 * 1024);

type App = FastifyInstance<any, any, any, any, ZodTypeProvider>;

export function mountAccountRoutes(app: App, deps: ConsoleDeps, listener: ConsoleListener): void {
  const { users, sessions, lockout, audit } = deps;
  const config = (method: string, url: string) => ({ access: accessOf(method, url).access });
  const principal = (request: FastifyRequest): Principal => request.principal!;
  const roleOf = (request: FastifyRequest, method: string, url: string) => {
    const access = accessOf(method, url).access;
    const held = principal(request).roles;
    return typeof access === 'string' ? held[0] ?? '' : access.find((role) => held.includes(role)) ?? '';
  };
  const known = (name: string): User => {
    const user = users.user(name);
    if (!user) throw new SwxError('SWX_NOT_FOUND', `no user ${name}`);
    return user;
  };
  /** A user's own tokens and password are theirs; anyone else's are an admin's. */
  const selfOrAdmin = (request: FastifyRequest, name: string) => {
    const caller = principal(request);
    if (caller.name !== name && !caller.roles.includes('admin')) throw new SwxError('SWX_ROLE_DENIED', `${caller.name} may change only their own tokens and password; another user's are for admin`);
  };
  const change = (request: FastifyRequest, method: string, url: string, target: string, before: unknown, after: unknown) =>
    audit.append({ actor: principal(request).name, role: roleOf(request, method, url), action: `${method} ${url}`, target, before, after, reason: reasonOf(request) });

  /** Starts a session: its cookie, its CSRF token (bound to it), and the audit entry of the sign-in. */
  async function signIn(request: FastifyRequest, reply: FastifyReply, user: User, via: Session['via']) {
    lockout.succeeded(user.name);
    const { token, session } = await sessions.start(user.name, via);
    reply.setCookie(sessionCookie, token, { ...cookieOptions, maxAge: sessions.lifetimeSeconds });
    request.principal = { name: user.name, roles: user.roles, via: 'session', session };
    const csrfToken = reply.generateCsrf({ userInfo: session.key });
    await audit.append({ actor: user.name, role: user.roles[0]!, action: 'session.start', target: `users/${user.name}`, before: null, after: { via, source: request.ip } });
    return { user: user.name, roles: user.roles, via, csrfToken, expiresInSeconds: sessions.lifetimeSeconds };
  }

  /** A refused sign-in, counted towards the lockout and audited; the lockout it starts is audited too. */
  async function refuse(request: FastifyRequest, name: string, why: string, error: SwxError): Promise<never> {
    const counted = lockout.fail(name, request.ip);
    await audit.append({ actor: 'anonymous', role: '', action: 'session.refused', target: `users/${name}`, before: null, after: { source: request.ip, why, failures: counted.user, failuresFromSource: counted.source } });
    if (counted.locked) {
      await audit.append({ actor: 'anonymous', role: '', action: 'session.lockout', target: `users/${name}`, before: null, after: { source: request.ip, seconds: lockout.lockedFor(name, request.ip) } });
    }
    throw error;
  }

  function lockedOut(request: FastifyRequest, name: string): Promise<void> {
    const wait = lockout.lockedFor(name, request.ip);
    if (!wait) return Promise.resolve();
    return audit.append({ actor: 'anonymous', role: '', action: 'session.refused', target: `users/${name}`, before: null, after: { source: request.ip, why: 'locked out', retryAfterSeconds: wait } })
      .then(() => { throw new SwxError('SWX_LOCKED_OUT', `too many failed sign-ins for ${name} or from ${request.ip}: try again in ${wait} s`, { retryAfterSeconds: wait }); });
  }

  app.post('/api/session', {
    config: config('POST', '/api/session'),
    schema: { summary: 'Sign in with a user name and password', body: z.object({ user: z.string().min(1).max(64), password: z.string().min(1).max(1024) }).strict() },
  }, async (request, reply) => {
    const { user: name, password } = request.body;
    await lockedOut(request, name);
    const user = await users.checkPassword(name, password);
    if (!user || user.disabled) return refuse(request, name, user ? 'disabled' : 'wrong user or password', new SwxError('SWX_CONSOLE_UNAUTHORIZED', 'wrong user name or password'));
    return signIn(request, reply, user, 'password');
  });

  app.post('/api/session/certificate', {
    config: config('POST', '/api/session/certificate'),
    schema: { summary: 'Sign in with the TLS client certificate of this connection (HTTPS listener)' },
  }, async (request, reply) => {
    const der = listener.tls ? peerCertificate(request.raw) : undefined;
    if (!der) throw new SwxError('SWX_AUTH_REQUIRED', 'present a client certificate issued by the deployment\'s PKI on the console\'s HTTPS port');
    const cert = certificate(der);
    const name = `certificate:${cert.thumbprint}`;
    await lockedOut(request, name);
    const user = users.byCertificate(cert.thumbprint);
    if (!user || user.disabled) return refuse(request, name, 'certificate not registered to an enabled user', new SwxError('SWX_AUTH_UNKNOWN_CERT', 'the client certificate is not registered to any enabled user (swx user cert)'));
    const refusal = await deps.trust.check(cert, 'tls-client');
    if (refusal) return refuse(request, user.name, refusal.code, new SwxError(refusal.code, `the client certificate of ${user.name}: ${refusal.detail}`));
    return signIn(request, reply, user, 'certificate');
  });

  app.get('/api/session', { config: config('GET', '/api/session'), schema: { summary: 'Who is calling; a session\'s CSRF token' } }, async (request, reply) => {
    const caller = principal(request);
    return {
      user: caller.name, roles: caller.roles, via: caller.via,
      ...(caller.session ? { csrfToken: reply.generateCsrf({ userInfo: caller.session.key }) } : {}),
    };
  });

  app.delete('/api/session', { config: config('DELETE', '/api/session'), schema: { summary: 'Sign out' } }, async (request, reply) => {
    const caller = principal(request);
    if (caller.session) await sessions.end(caller.session);
    reply.clearCookie(sessionCookie, cookieOptions);
    await audit.append({ actor: caller.name, role: caller.roles[0] ?? '', action: 'session.end', target: `users/${caller.name}`, before: null, after: { via: caller.via } });
    return { signedOut: caller.name };
  });

  app.get('/api/users', { config: config('GET', '/api/users'), schema: { summary: 'Users', querystring: pageQuery } }, async (request, reply) =>
    page(request.raw, reply.raw, users.list(), (user) => user.name).map(publicUser));

  app.get('/api/users/:user', { config: config('GET', '/api/users/:user'), schema: { params: userParams } }, async (request) => publicUser(known(request.params.user)));

  app.get('/api/users/:user/history', { config: config('GET', '/api/users/:user/history'), schema: { params: userParams } }, async (request) => {
    const history = await users.history(request.params.user);
    if (!history.length) throw new SwxError('SWX_NOT_FOUND', `no user ${request.params.user}, now or before`);
    return history;
  });

  app.put('/api/users/:user', {
    config: config('PUT', '/api/users/:user'),
    schema: { summary: 'Add a user', params: userParams, body: z.object({ roles: roleList, password: passwordSchema.optional() }).strict() },
  }, async (request) => {
    const user = publicUser(await users.add({ name: request.params.user, roles: request.body.roles, password: request.body.password }));
    await change(request, 'PUT', '/api/users/:user', `users/${user.name}`, null, user);
    return user;
  });

  app.put('/api/users/:user/roles', {
    config: config('PUT', '/api/users/:user/roles'),
    schema: { params: userParams, body: z.object({ roles: roleList }).strict() },
  }, async (request) => {
    const before = publicUser(known(request.params.user));
    const user = publicUser(await users.setRoles(request.params.user, request.body.roles));
    await change(request, 'PUT', '/api/users/:user/roles', `users/${user.name}`, before, user);
    return user;
  });

  app.put('/api/users/:user/password', {
    config: config('PUT', '/api/users/:user/password'),
    schema: {
      summary: 'Set a password: a user\'s own, giving the current one, or any as admin',
      params: userParams,
      body: z.object({ password: passwordSchema, current: z.string().max(1024).optional().describe('the current password, when changing one\'s own') }).strict(),
    },
  }, async (request) => {
    selfOrAdmin(request, request.params.user);
    const target = known(request.params.user);
    // Changing one's own password proves the current one, so a session left open or a token taken cannot keep the
    // account; the operator token on loopback (the hub's machine) needs none.
    const caller = principal(request);
    if (caller.name === target.name && caller.via !== 'operator-token' && target.password !== undefined) {
      if (!request.body.current) throw new SwxError('SWX_BAD_REQUEST', 'body.current: give the current password to change your own');
      await lockedOut(request, target.name);
      if (!await users.checkPassword(target.name, request.body.current)) await refuse(request, target.name, 'wrong current password', new SwxError('SWX_CONSOLE_UNAUTHORIZED', 'the current password is wrong'));
    }
    const user = publicUser(await users.setPassword(request.params.user, request.body.password));
    await change(request, 'PUT', '/api/users/:user/password', `users/${user.name}`, null, { password: 'changed' });
    return user;
  });

  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    const url = `/api/users/:user/${verb}`;
    app.post(url, {
      config: config('POST', url),
      schema: { summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} a user${disabled ? ' (a reason is required)' : ''}`, params: userParams, body: z.object({ reason: z.string().max(1_000).optional() }).strict().optional() },
    }, async (request) => {
      const reason = request.body?.reason;
      if (disabled && !reason) throw new SwxError('SWX_BAD_REQUEST', 'body.reason: say why the user is disabled');
      const before = publicUser(known(request.params.user));
      const user = publicUser(await users.setDisabled(request.params.user, disabled));
      await audit.append({ actor: principal(request).name, role: roleOf(request, 'POST', url), action: `POST ${url}`, target: `users/${user.name}`, before, after: user, reason: reason ?? reasonOf(request) });
      return user;
    });
  }

  app.post('/api/users/:user/certificates', {
    config: config('POST', '/api/users/:user/certificates'),
    schema: { summary: 'Register a TLS client certificate the user signs in with', params: userParams, body: z.object({ certificate: pem }).strict() },
  }, async (request) => {
    const before = publicUser(known(request.params.user));
    let cert;
    try { cert = certificate(request.body.certificate); } catch (error) { throw new SwxError('SWX_BAD_REQUEST', `body.certificate: ${(error as Error).message}`); }
    const refusal = await deps.trust.check(cert, 'tls-client');
    if (refusal) throw new SwxError(refusal.code, `the certificate cannot sign in: ${refusal.detail}`);
    const user = publicUser(await users.addCertificate(request.params.user, cert.thumbprint));
    await change(request, 'POST', '/api/users/:user/certificates', `users/${user.name}`, before, user);
    return user;
  });

  app.get('/api/users/:user/tokens', { config: config('GET', '/api/users/:user/tokens'), schema: { params: userParams, querystring: pageQuery } }, async (request, reply) => {
    selfOrAdmin(request, request.params.user);
    known(request.params.user);
    return page(request.raw, reply.raw, users.tokensOf(request.params.user), (token) => `${token.created} ${token.id}`).map(publicToken);
  });

  app.post('/api/users/:user/tokens', {
    config: config('POST', '/api/users/:user/tokens'),
    schema: { summary: 'A new API token: the answer is the only place it is shown', params: userParams, body: z.object({ label: z.string().max(200).optional() }).strict().optional() },
  }, async (request) => {
    selfOrAdmin(request, request.params.user);
    const made = await users.addToken(request.params.user, request.body?.label ?? '');
    const { token: _secret, ...shown } = made;
    await change(request, 'POST', '/api/users/:user/tokens', `users/${request.params.user}/tokens/${made.id}`, null, shown);
    return made;
  });

  app.delete('/api/users/:user/tokens/:token', {
    config: config('DELETE', '/api/users/:user/tokens/:token'),
    schema: { summary: 'Revoke an API token', params: userParams.extend({ token: tokenId }) },
  }, async (request) => {
    selfOrAdmin(request, request.params.user);
    const token = users.token(request.params.token);
    if (!token || token.user !== request.params.user) throw new SwxError('SWX_NOT_FOUND', `no token ${request.params.token} of ${request.params.user}`);
    await users.revokeToken(token.id);
    await change(request, 'DELETE', '/api/users/:user/tokens/:token', `users/${token.user}/tokens/${token.id}`, publicToken(token), null);
    return { revoked: token.id };
  });

  app.get('/api/settings', { config: config('GET', '/api/settings'), schema: { summary: 'The settings this hub process runs with (no secrets)' } }, async () => deps.settings());
}
