// HTTP plumbing shared by the agency-facing HTTPS server and the operator server: routing, bounded bodies,
// JSON and RFC 9457 problem replies.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, createServer as createHttpsServer, request as httpsRequest, type RequestOptions } from 'node:https';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { problem, SwxError } from './errors.ts';
import { log } from './log.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => Promise<void> | void;
export interface Route { method: string; pattern: string; handle: RouteHandler }

interface CompiledRoute extends Route { regex: RegExp; names: string[] }

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new SwxError('SWX_BAD_REQUEST', 'the path holds a malformed percent-encoding');
  }
}

/** A small router: patterns like `/api/partners/:id`; the first match wins. */
export class Router {
  private readonly routes: CompiledRoute[] = [];

  add(method: string, pattern: string, handle: RouteHandler): this {
    const names: string[] = [];
    const source = pattern.replace(/:([a-zA-Z]+)/g, (_, name: string) => { names.push(name); return '([^/]+)'; });
    this.routes.push({ method, pattern, handle, names, regex: new RegExp(`^${source}$`) });
    return this;
  }

  handler = contained(async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    let pathMatched = false;
    for (const route of this.routes) {
      const match = route.regex.exec(path);
      if (!match) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const params = Object.fromEntries(route.names.map((name, i) => [name, decodePathPart(match[i + 1]!)]));
      await route.handle(req, res, params);
      return;
    }
    sendProblem(res, new SwxError(pathMatched ? 'SWX_BAD_REQUEST' : 'SWX_NOT_FOUND', `${req.method} ${path} is not served here`));
  });
}

/** How a contained handler's failure is answered: may throw or reject too, which closes the connection. */
export type FailureReply = (req: IncomingMessage, res: ServerResponse, error: unknown) => Promise<void> | void;

/** A problem reply for a failure: an SwxError with its own code, anything else logged and answered SWX_INTERNAL. */
export const problemReply: FailureReply = (req, res, error) => {
  if (error instanceof SwxError) return sendProblem(res, error);
  log.error({ err: error, path: (req.url ?? '/').split('?')[0] }, 'request failed');
  sendProblem(res, new SwxError('SWX_INTERNAL', 'the server could not handle this request; it was logged'));
};

/**
 * A request handler whose every failure stays with its request, whoever wrote the code that failed: a synchronous
 * throw or a rejection is answered by `fail` (a problem reply unless told otherwise); when the reply has begun, or
 * `fail` fails as well, the connection is closed. The process and its other requests never see the error.
 */
export function contained(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void, fail: FailureReply = problemReply): (req: IncomingMessage, res: ServerResponse) => void {
  const lastResort = (res: ServerResponse, error: unknown) => {
    log.error({ err: error }, 'a request failed and its failure could not be answered; connection closed');
    res.destroy();
  };
  const failed = (req: IncomingMessage, res: ServerResponse, error: unknown) => {
    if (res.headersSent) return lastResort(res, error);
    try {
      Promise.resolve(fail(req, res, error)).catch((failure: unknown) => lastResort(res, failure));
    } catch (failure) {
      lastResort(res, failure);
    }
  };
  return (req, res) => {
    try {
      Promise.resolve(handle(req, res)).catch((error: unknown) => failed(req, res, error));
    } catch (error) {
      failed(req, res, error);
    }
  };
}

/** A request header as one string (repeated headers joined), or undefined. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Requests whose body was refused as too large: their reply closes the connection. */
const refusedBodies = new WeakSet<IncomingMessage>();

/** Stops keeping a body: the rest is drained (not kept) until the reply is out, so the sender reads the reply, not a reset. */
function refuseBody(req: IncomingMessage): void {
  refusedBodies.add(req);
  req.resume();
}

/**
 * Reads the whole body, refusing more than `limit` bytes as soon as it is exceeded. The problem reply to a refused
 * body closes the connection (see sendProblem).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    refuseBody(req);
    return Promise.reject(new SwxError('SWX_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        chunks.length = 0;
        refuseBody(req);
        reject(new SwxError('SWX_TOO_LARGE', `body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

export interface HttpsAnswer { status: number; headers: IncomingMessage['headers']; body: Buffer }

/**
 * One HTTPS POST (the outbound connectors' calls to agencies): the answer is read up to `limit` bytes, beyond which
 * the request is dropped with SWX_TOO_LARGE; an answer cut off before its end is an error, never a short body.
 */
export function postHttps(url: string | URL, options: RequestOptions, body: Buffer, limit: number): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ...options, method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          req.destroy();
          reject(new SwxError('SWX_TOO_LARGE', `the answer is larger than ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size) }));
      res.on('error', reject);
      res.on('close', () => { if (!res.complete) reject(new Error('the answer was cut off')); });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, seal?: Seal): void {
  const text = Buffer.from(JSON.stringify(body));
  const sent: Record<string, string> = { 'content-type': 'application/json', ...headers };
  seal?.(status, sent, text);
  res.writeHead(status, { ...sent, 'content-length': String(text.length) });
  res.end(text);
}

/**
 * A problem reply. When the request body was refused or not read to its end, the reply says `connection: close` and
 * Node destroys the socket once it is written: the rest of that body is not waited for.
 */
export function sendProblem(res: ServerResponse, error: SwxError, extra: Record<string, unknown> = {}, seal?: Seal): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = Buffer.from(JSON.stringify({ ...problem(error), ...extra }));
  const unread = res.req && (!res.req.complete || refusedBodies.has(res.req));
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  seal?.(error.status, headers, body);
  res.writeHead(error.status, { ...headers, 'content-length': String(body.length), ...(unread ? { connection: 'close' } : {}) });
  res.end(body);
}

/** Adds a reply's signature headers (and what they cover) to `headers`, for the status and body given. */
export type Seal = (status: number, headers: Record<string, string>, body: Buffer) => void;

export function readJson(buffer: Buffer): unknown {
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * A keep-alive HTTPS client agent that presents `tls` (mutual TLS). All its connections share one secure context:
 * given the PEMs instead, Node builds a context for every new connection (~1.3 ms here), which a burst of new
 * connections under load pays on the event loop all at once.
 */
export function clientAgent(tls: { key: string; cert: string; ca: string | string[] }, maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets, secureContext: createSecureContext(tls) });
}

/**
 * The agency-facing server: TLS that asks for a client certificate but does not fail the handshake without one,
 * so an unknown or missing certificate gets a proper 401 problem reply instead of a dropped connection.
 */
export function createAgencyServer(tls: { key: string; cert: string; ca: string[] }, router: Router): Server {
  const server = createHttpsServer({
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    requestCert: true,
    rejectUnauthorized: false,
    keepAliveTimeout: 60_000,
  }, router.handler);
  server.on('tlsClientError', (error) => log.debug({ err: error.message }, 'TLS handshake failed'));
  return server as unknown as Server;
}

export function createOpsServer(router: Router): Server {
  // The operator API judges Host itself and answers a missing one with a problem, not Node's bare 400.
  return createHttpServer({ requireHostHeader: false }, router.handler);
}

/** The DER of the client certificate of this request's TLS connection, if one was presented. */
export function peerCertificate(req: IncomingMessage): Buffer | undefined {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  return cert && cert.raw ? cert.raw : undefined;
}

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections?.();
  });
}
