// The console API: one fastify application, zod schemas at its boundary and its OpenAPI document generated from them,
// served on two listeners: HTTPS for operators on the network and plain HTTP on loopback for local scripts. Every
// route declares the roles that may call it (access.ts); callers are users signed in with a password or a TLS client
// certificate (a session cookie, CSRF-protected), users' API tokens, or, on loopback only, the hub's operator token.
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { evidenceQuery, giveBody, hostName, messageId, opsNames, pageQuery, pathGrammar, resendRequest, type RouteTable } from '../engine/admin.ts';
import { datasetSchema } from '../engine/catalogue.ts';
import { problem, SwxError } from '../engine/errors.ts';
import { problemReply, refuseUnparsed, retryAfter, type RouteHandler } from '../engine/http.ts';
import { log } from '../engine/log.ts';
import { problemReplies } from '../engine/metrics.ts';
import { channelSchema, partnerSchema, serviceSchema, topicSchema } from '../engine/registry.ts';
import { accessOf, allowedRole } from './access.ts';
import { mountAccountRoutes } from './account-routes.ts';
import { mountAlertRoutes } from './alert-routes.ts';
import { mountAnalysisRoutes } from './analysis-routes.ts';
import { mountAuditRoutes } from './audit-routes.ts';
import { mountDlqRoutes } from './dlq-routes.ts';
import { mountMessageRoutes } from './message-routes.ts';
import { mountOverviewRoutes } from './overview-routes.ts';
import { mountConsolePages } from './pages.ts';
import { mountSettingsRoutes } from './settings-routes.ts';
import { mountStatsRoutes } from './stats-routes.ts';
import { cookieOptions, csrfCookie, reasonOf, sessionCookie, type ConsoleDeps, type ConsoleListener, type Principal } from './console-context.ts';
import { roles } from './users.ts';

const unsafeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The body each operator route takes, checked before its handler runs (the handler and the registry check again). */
const operatorBodies: Record<string, z.ZodType> = {
  'PUT /api/partners/:partner': partnerSchema.omit({ id: true }),
  'PUT /api/services/:service': serviceSchema.omit({ id: true }),
  'PUT /api/topics/:topic': topicSchema.omit({ id: true }),
  'PUT /api/channels/:channel': channelSchema.omit({ id: true }),
  'PUT /api/catalogue/:dataset': datasetSchema.omit({ id: true }),
  'POST /api/channels/:channel/resend': resendRequest,
  'POST /api/messages/stages': z.object({ ids: z.array(messageId).max(10_000) }),
};

/** What an operator route answers, where the API's description states it. */
const operatorResponses: Record<string, z.ZodType> = {
  'POST /api/partners/:partner/test': z.object({
    partner: z.string(),
    results: z.array(z.object({ protocol: z.string(), ok: z.boolean(), detail: z.string(), ms: z.number() })),
  }).describe('each endpoint of the partner tried as deliveries reach it (TLS or SSH handshake, no message sent)'),
};

/** The query each paged operator list takes. */
const operatorQueries: Record<string, z.ZodType> = {
  'GET /api/evidence': evidenceQuery,
  ...Object.fromEntries(['partners', 'services', 'topics', 'channels', 'catalogue', 'dlq'].map((list) => [`GET /api/${list}`, pageQuery])),
};

/** The problem a failure is answered with: SwxErrors keep their code, the framework's refusals get ours. */
function refusalOf(error: FastifyError | Error): SwxError {
  if (error instanceof SwxError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issue = error.validation[0]!;
    const where = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
    return new SwxError('SWX_BAD_REQUEST', `${error.validationContext ?? 'request'}${where ? `.${where}` : ''}: ${issue.message}`);
  }
  const code = (error as FastifyError).code ?? '';
  if (code.startsWith('FST_CSRF')) return new SwxError('SWX_CSRF_REFUSED', 'a change made with the session cookie sends the CSRF token of GET /api/session as x-csrf-token');
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new SwxError('SWX_BAD_REQUEST', 'a request body must be sent as content-type: application/json');
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new SwxError('SWX_TOO_LARGE', 'the body exceeds the limit of 1 MiB');
  const status = (error as FastifyError).statusCode ?? 500;
  if (status >= 400 && status < 500) return new SwxError('SWX_BAD_REQUEST', error.message);
  log.error({ err: error }, 'console request failed');
  return new SwxError('SWX_INTERNAL', 'the server could not handle this request; it was logged');
}

function sendRefusal(reply: FastifyReply, error: SwxError): FastifyReply {
  problemReplies.inc({ code: error.code });
  if (error.code === 'SWX_OPS_UNAUTHORIZED' || error.code === 'SWX_CONSOLE_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="swx-console"');
  return reply.code(error.status).headers(retryAfter(error)).type('application/problem+json').send(problem(error));
}

/** `partners/CUSTOMS` for `/api/partners/:partner`: what an audit entry says a change was made to. */
export function targetOf(pattern: string, params: Record<string, string>): string {
  return pattern.replace(/^\/api\//, '').replace(/:([a-zA-Z]+)/g, (_, name: string) => params[name] ?? '');
}

/** The state of what a registry route names, before a change: the audit's `before`. */
function currentState(deps: ConsoleDeps, target: string): unknown {
  const [collection, id = ''] = target.split('/');
  switch (collection) {
    case 'partners': return deps.registry.partner(id) ?? null;
    case 'services': return deps.registry.service(id) ?? null;
    case 'topics': return deps.registry.topic(id) ?? null;
    case 'channels': return deps.registry.channel(id) ?? null;
    case 'catalogue': return deps.catalogue.dataset(id) ?? null;
    default: return null;
  }
}

/**
 * Holds back the end of a handler's answer (its JSON, written with one end call) until `release`: a change is answered
 * only once its audit entry is written, and the entry's `after` is what the answer says.
 */
function heldAnswer(res: ServerResponse): { body(): unknown; release(): void } {
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  let held: unknown[] | undefined;
  res.end = ((...args: unknown[]) => { held = args; return res; }) as ServerResponse['end'];
  return {
    body() {
      const chunk = held?.[0];
      const text = Buffer.isBuffer(chunk) || typeof chunk === 'string' ? Buffer.from(chunk).toString('utf8') : '';
      try { return JSON.parse(text); } catch { return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text; }
    },
    release() {
      res.end = end as ServerResponse['end'];
      if (held) end(...held);
    },
  };
}

export async function buildConsole(deps: ConsoleDeps, listener: ConsoleListener): Promise<FastifyInstance> {
  const loopback = listener.kind === 'loopback';
  const names = opsNames(deps.opsHost, deps.opsNames);
  const listed = [...names].join(', ');
  const opsDigest = createHash('sha256').update(deps.opsToken).digest();
  const app = Fastify({
    // The operator API judges Host itself (a missing one is a problem reply, not Node's bare 400), and answers requests
    // the HTTP parser refused as the agency port does.
    serverFactory: (handler) => (listener.tls
      ? createHttpsServer({ key: listener.tls.key, cert: listener.tls.cert, ca: listener.tls.ca, requestCert: listener.tls.requestCert, rejectUnauthorized: false }, handler)
      : createHttpServer({ requireHostHeader: false }, handler)) as unknown as ReturnType<typeof createHttpServer>,
    clientErrorHandler: (error, socket) => refuseUnparsed(error, socket),
    logger: false,
    bodyLimit: 1024 * 1024,
    // Path parameters are held to their grammars by the routes, which answer a long one 400, not a bare 404.
    routerOptions: { maxParamLength: 10_000 },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: a form or text body, which a page elsewhere could make a browser send, is refused before any route.
  app.removeContentTypeParser(['text/plain']);
  await app.register(fastifyCookie);
  await app.register(fastifyCsrf, {
    cookieKey: csrfCookie,
    cookieOpts: cookieOptions,
    getUserInfo: (request: FastifyRequest) => request.principal?.session?.key ?? '',
    csrfOpts: { hmacKey: deps.csrfKey },
  });
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'swx console API', version: '1', description: 'The operator and console API of the swx hub. Lists are paged: `limit` and `cursor`, the next page\'s cursor in the `x-next-cursor` header.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'a user\'s API token (swx user token add), or the operator token on loopback' },
          session: { type: 'apiKey', in: 'cookie', name: sessionCookie, description: 'POST /api/session; changes send x-csrf-token' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.setErrorHandler((error, _request, reply) => sendRefusal(reply, refusalOf(error as Error)));
  app.setNotFoundHandler((request, reply) => sendRefusal(reply, new SwxError('SWX_NOT_FOUND', `${request.method} ${request.url.split('?')[0]} is not served here`)));

  app.addHook('onRequest', async (request) => {
    if (loopback) {
      const host = request.headers.host;
      if (host === undefined || !names.has(hostName(host))) {
        throw new SwxError('SWX_BAD_REQUEST', `Host ${host === undefined ? '(none)' : JSON.stringify(host.slice(0, 100))} is not a name of this operator server: it answers to ${listed} (SWX_OPS_HOST, SWX_OPS_NAMES)`);
      }
    }
    const access = request.routeOptions.config?.access;
    if (access === undefined || access === 'public') return;
    const principal = await authenticate(request);
    const role = allowedRole(access, principal.roles);
    if (!role) throw new SwxError('SWX_ROLE_DENIED', `${principal.name} (${principal.roles.join(', ')}) may not ${request.method} ${request.routeOptions.url}: it is for ${typeof access === 'string' ? access : access.join(', ')}`);
    request.principal = principal;
  });
  // The JSON as sent, kept before the route's schema checks it (and fills its defaults).
  const sentBodies = new WeakMap<FastifyRequest, unknown>();
  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined) sentBodies.set(request, structuredClone(request.body));
  });
  // A change made with the session cookie must carry the CSRF token; bearer tokens are never sent by a browser on its own.
  app.addHook('preHandler', (request, reply, done) => {
    if (request.principal?.via === 'session' && unsafeMethods.has(request.method)) return app.csrfProtection(request, reply, done);
    done();
  });

  async function authenticate(request: FastifyRequest): Promise<Principal> {
    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const bearer = /^Bearer +(\S+) *$/i.exec(authorization)?.[1];
      if (bearer !== undefined && loopback && timingSafeEqual(createHash('sha256').update(bearer).digest(), opsDigest)) {
        return { name: 'local-operator', roles, via: 'operator-token' };
      }
      const found = bearer === undefined ? undefined : deps.users.byToken(bearer);
      if (!found || found.user.disabled) {
        throw new SwxError('SWX_OPS_UNAUTHORIZED', `send Authorization: Bearer <token>: a user's API token (swx user token add)${loopback ? ', or the operator token in <data>/ops-token (SWX_OPS_TOKEN when set)' : ''}`);
      }
      return { name: found.user.name, roles: found.user.roles, via: 'api-token' };
    }
    const cookie = request.cookies[sessionCookie];
    const session = cookie ? await deps.sessions.find(cookie) : undefined;
    const user = session ? deps.users.user(session.user) : undefined;
    if (!session || !user || user.disabled) {
      // On loopback the operator API's own refusal, which its scripts know.
      if (loopback && !cookie) throw new SwxError('SWX_OPS_UNAUTHORIZED', 'send Authorization: Bearer <token>: the operator token in <data>/ops-token (SWX_OPS_TOKEN when set), or a user\'s API token (swx user token add)');
      throw new SwxError('SWX_CONSOLE_UNAUTHORIZED', 'sign in (POST /api/session), or send Authorization: Bearer with an API token');
    }
    return { name: user.name, roles: user.roles, via: 'session', session };
  }

  // The operator routes, as engine/admin.ts defines them: each handler runs on the raw request once the console
  // admitted it; a change is audited with the state before it and the answer after it.
  const operatorTable: RouteTable = {
    add(method: string, pattern: string, handle: RouteHandler) {
      const { access, declared } = accessOf(method, pattern);
      if (!declared && pattern.startsWith('/api/')) log.warn({ route: `${method} ${pattern}` }, 'route has no line in dashboards/access.ts: admins only');
      // Served on loopback only: health, metrics and the CRL are the local machine's, as before the console.
      if (!loopback && !pattern.startsWith('/api/')) return;
      const key = `${method} ${pattern}`;
      const params = [...pattern.matchAll(/:([a-zA-Z]+)/g)].map((match) => match[1]!);
      const schema = {
        ...(params.length ? { params: z.object(Object.fromEntries(params.map((name) => [name, pathGrammar[name] ?? z.string()]))) } : {}),
        ...(operatorBodies[key] ? { body: operatorBodies[key] } : {}),
        ...(operatorQueries[key] ? { querystring: operatorQueries[key] } : {}),
        ...(operatorResponses[key] ? { response: { 200: operatorResponses[key] } } : {}),
        ...(pattern.startsWith('/api/') ? {} : { hide: true }),
      };
      app.route({
        method: method as 'GET',
        url: pattern,
        schema,
        config: { access },
        handler: async (request, reply) => {
          reply.hijack();
          const req = request.raw as IncomingMessage;
          const res = reply.raw;
          // The handler gets the body as it came, not as the schema's defaults filled it: a field left out (a partner's
          // sshKeys) means "keep what is there" to it.
          if (sentBodies.has(request)) giveBody(req, sentBodies.get(request));
          const change = unsafeMethods.has(method);
          const target = targetOf(pattern, request.params as Record<string, string>);
          const before = change ? structuredClone(currentState(deps, target)) : undefined;
          const answer = change ? heldAnswer(res) : undefined;
          try {
            await handle(req, res, request.params as Record<string, string>);
          } catch (error) {
            await problemReply(req, res, error);
          }
          if (!answer) return;
          if (res.statusCode < 400) {
            const principal = request.principal!;
            await deps.audit.append({
              actor: principal.name, role: allowedRole(access, principal.roles) ?? '', action: key, target, before, after: answer.body(), reason: reasonOf(request),
            }).catch((error: unknown) => log.error({ err: error, action: key, target }, 'the audit entry of a change could not be written'));
          }
          answer.release();
        },
      });
    },
  };
  deps.operatorRoutes(operatorTable);
  mountAccountRoutes(app, deps, listener);
  mountAuditRoutes(app, deps);
  mountMessageRoutes(app, deps);
  mountStatsRoutes(app, deps);
  mountOverviewRoutes(app, deps);
  mountAnalysisRoutes(app, deps);
  mountAlertRoutes(app, deps);
  mountSettingsRoutes(app, deps);
  mountDlqRoutes(app, deps);
  app.get('/api/openapi.json', { schema: { hide: true }, config: { access: accessOf('GET', '/api/openapi.json').access } }, async () => app.swagger());
  await mountConsolePages(app);
  await app.ready();
  return app;
}

/** Starts a built console on `port` and `host`; returns the port bound (chosen by the system for 0). */
export async function listenConsole(app: FastifyInstance, port: number, host: string): Promise<number> {
  await app.listen({ port, host });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : port;
}

