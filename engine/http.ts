// HTTP plumbing shared by the agency-facing HTTPS server and the operator server: routing, bounded bodies,
// JSON and RFC 9457 problem replies.
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, createServer as createHttpsServer, request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import { pipeline, Readable } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import type { BodyClaim } from './budget.ts';
import { problem, SwxError } from './errors.ts';
import { log } from './log.ts';
import { parserRefusals, problemReplies } from './metrics.ts';

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

/** Long enough for a sender still writing its body to read the reply; short, as what it sends meanwhile is discarded. */
const lingerMs = 1_000;

/**
 * A lingering close (RFC 9112 §9.6) for a connection whose request body is not read to its end: once the reply is
 * out, the hub half-closes and discards what still arrives for a moment. Closing at once would reset the connection
 * while the sender writes, and its TCP stack would drop the reply unread. Node closes through destroySoon once the
 * reply is written; this socket's own replaces it.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function destroyAfterLinger(this: Socket) {
    this.end();
    this.resume();
    const timer = setTimeout(() => this.destroy(), lingerMs).unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** A stream's bytes held whole; its bounds are the reader's (boundedBody, the MIME limits' maxBytes). */
export async function whole(source: AsyncIterable<Uint8Array>, limit = Infinity, what = 'the body'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > limit) throw new SwxError('SWX_TOO_LARGE', `${what} is larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/**
 * Reads the whole body through boundedBody (its limit, its budget claim, a sender that leaves). A declared body is read
 * into one buffer of its length, so it costs what was claimed; a body without a length is gathered in chunks and
 * copied once at its end. The problem reply to a refused body closes the connection (see sendProblem).
 */
export async function readBody(req: IncomingMessage, limit: number, claim?: BodyClaim): Promise<Buffer> {
  const body = boundedBody(req, limit, claim);
  const declared = Number(req.headers['content-length'] ?? 0);
  // Allocated only once the declared length passed the limit and the claim.
  const whole = !body.destroyed && declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (whole) chunk.copy(whole, size); else chunks.push(chunk);
    size += chunk.length;
  }
  if (whole) return whole.subarray(0, size);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** Whether the sender declared the body's length; a chunked body did not, and shows its size only as it ends. */
export const undeclaredLength = (req: IncomingMessage): boolean => req.headers['content-length'] === undefined;

/**
 * A SOAP-with-attachments body whose payload parts may stream: declared over `inlineLimit`, or of undeclared length
 * (chunked) and running past it, it may be as large as `maxStreamedBytes` while what is held of it (the envelope, other
 * parts) claims the budget up to `maxHeldBytes`; otherwise it is read within `maxHeldBytes`. `streams` says which.
 */
export async function streamableBody(req: IncomingMessage, claim: BodyClaim, limits: { inlineLimit: number; maxStreamedBytes: number; maxHeldBytes: number }): Promise<{ body: Readable; streams: boolean }> {
  const undeclared = undeclaredLength(req);
  const streams = undeclared || Number(req.headers['content-length']) > limits.inlineLimit;
  const body = boundedBody(req, streams ? limits.maxStreamedBytes : limits.maxHeldBytes, claim, streams ? limits.maxHeldBytes : Infinity);
  if (!undeclared) return { body, streams };
  const peeked = await peekBody(body, limits.inlineLimit);
  return { body: peeked.body, streams: peeked.whole === undefined };
}

/**
 * A body of undeclared length read up to `bytes`: `whole` when it ended within them (handled as a small body is);
 * otherwise what was read is put back in front of the rest, which streams on as it arrives.
 */
export async function peekBody(body: Readable, bytes: number): Promise<{ whole?: Buffer; body: Readable }> {
  const head: Buffer[] = [];
  let size = 0;
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  while (size <= bytes) {
    const next = await chunks.next();
    if (next.done) {
      const whole = Buffer.concat(head, size);
      return { whole, body: Readable.from([whole], { objectMode: false }) };
    }
    head.push(next.value);
    size += next.value.length;
  }
  return {
    body: Readable.from((async function* () {
      yield* head.splice(0);
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    })(), { objectMode: false }),
  };
}

/**
 * The body as a stream of its own, held within `limit` and `claim` (the declared length at once, a body without one as
 * it arrives): past either it ends with the refusal (SWX_TOO_LARGE, SWX_BUSY, SWX_PARTNER_BUSY) and the rest is
 * drained, not kept; a sender gone before the end errors it with SWX_CLIENT_ABORTED. The request itself is never
 * destroyed, so its problem reply still reaches the sender. A reader that passes the body on as it arrives says how
 * much of it it `holds` at most: the claim grows to that, not to the body's length.
 */
export function boundedBody(req: IncomingMessage, limit: number, claim?: BodyClaim, holds = Infinity): Readable {
  let size = 0;
  let claimed = 0;
  const body = new Readable({ read: () => { req.resume(); } });
  const refuse = (error: unknown) => {
    req.off('data', onData);
    refuseBody(req);
    body.destroy(error as Error);
  };
  /** Whether `total` bytes fit the limit and the claim; refuses the body when they do not. */
  const fits = (total: number, what: string): boolean => {
    if (total > limit) {
      refuse(new SwxError('SWX_TOO_LARGE', `${what} exceeds the limit of ${limit} bytes`));
      return false;
    }
    const held = Math.min(total, holds);
    if (held <= claimed) return true;
    try {
      claim?.grow(held - claimed);
    } catch (error) {
      refuse(error);
      return false;
    }
    claimed = held;
    return true;
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (fits(size, 'body') && !body.push(chunk)) req.pause();
  };
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > 0 && !fits(declared, `body of ${declared} bytes`)) return body;
  req.on('data', onData);
  req.on('end', () => body.push(null));
  req.on('close', () => {
    if (req.complete || body.destroyed) return;
    log.info({ peer: req.socket.remoteAddress, path: req.url, received: size }, 'sender closed the connection before the body ended');
    body.destroy(new SwxError('SWX_CLIENT_ABORTED', `the connection closed after ${size} bytes of the body`));
  });
  return body;
}

export interface HttpsAnswer { status: number; headers: IncomingMessage['headers']; body: Buffer }

/**
 * One HTTPS POST (the outbound connectors' calls to agencies): the answer is read up to `limit` bytes, beyond which
 * the request is dropped with SWX_TOO_LARGE; an answer cut off before its end is an error, never a short body.
 */
/** A request body: bytes held, or a stream opened afresh for each attempt (a new connection may need it again). */
export type RequestBody = Buffer | (() => Readable);

export async function postHttps(url: string | URL, options: RequestOptions, body: RequestBody, limit: number): Promise<HttpsAnswer> {
  try {
    return await postOnce(url, options, body, limit);
  } catch (error) {
    // A kept-alive connection that the agency closed while it was idle (its keep-alive timeout, which the hub cannot
    // know) fails as it is reused, before any answer: the agency never read the request, so it goes once more on a
    // new connection.
    if (!(error instanceof StaleConnection)) throw error;
    return postOnce(url, options, body, limit);
  }
}

class StaleConnection extends Error {}

function postOnce(url: string | URL, options: RequestOptions, body: RequestBody, limit: number): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpsRequest(url, { ...options, method: 'POST' }, (res) => {
      answered = true;
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
    req.on('error', (error: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && !answered && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      reject(stale ? new StaleConnection(error.message, { cause: error }) : error);
    });
    if (Buffer.isBuffer(body)) {
      req.end(body);
      return;
    }
    // Streamed with backpressure; a source that fails (its bytes do not match their digest) aborts the request, so
    // the receiver never takes a body cut short for a whole one.
    pipeline(body(), req, (error) => {
      if (error) { req.destroy(error); reject(error); }
    });
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
 * the connection closes shortly after it is written (lingerOnClose): the rest of that body is not waited for.
 */
export function sendProblem(res: ServerResponse, error: SwxError, extra: Record<string, unknown> = {}, seal?: Seal): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = Buffer.from(JSON.stringify({ ...problem(error), ...extra }));
  const unread = res.req && (!res.req.complete || refusedBodies.has(res.req));
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', ...retryAfter(error) };
  seal?.(error.status, headers, body);
  problemReplies.inc({ code: error.code });
  if (unread && res.socket) lingerOnClose(res.socket as Socket);
  res.writeHead(error.status, { ...headers, 'content-length': String(body.length), ...(unread ? { connection: 'close' } : {}) });
  res.end(body);
}

/** The Retry-After header of a refusal that passes with time (errors.ts: every 429 and 503), for any reply format. */
export function retryAfter(error: SwxError): Record<string, string> {
  const seconds = error.retryAfterSeconds;
  return seconds === undefined ? {} : { 'retry-after': String(seconds) };
}

/** Adds a reply's signature headers (and what they cover) to `headers`, for the status and body given. */
export type Seal = (status: number, headers: Record<string, string>, body: Buffer) => void;

/** application/json, application/<anything>+json and text/json, with or without parameters. */
export function isJsonMediaType(contentType: string): boolean {
  return /^(?:application\/(?:[a-z0-9!#$&^_.-]+\+)?json|text\/json)[ \t]*(?:;|$)/i.test(contentType);
}

// Fatal: a lossy decode would turn bytes that are not UTF-8 into U+FFFD, so that JSON.parse accepts what was not JSON.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function readJson(buffer: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(buffer);
  } catch {
    throw new SwxError('SWX_BAD_REQUEST', 'body is not JSON: it is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `body is not JSON: ${(error as Error).message}`);
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
  server.on('clientError', refuseUnparsed);
  return server as unknown as Server;
}

/** At most one warn line per window, counting those left out: a flood of malformed requests cannot flood the log. */
const parserLogWindowMs = 10_000;
const parserLog = { until: 0, unlogged: 0 };

/**
 * A request the HTTP parser refused (bad header bytes, obs-fold, ambiguous framing, an oversized header block) never
 * reaches a handler: it is answered here with a problem, counted and logged. As in Node's own handler, the reply is
 * written only where no reply to an earlier request on the connection has begun, so none is corrupted.
 */
export function refuseUnparsed(error: Error & { code?: string }, socket: Socket): void {
  const reason = error.code ?? '';
  // A reset, or a connection that ended mid-request (HPE_INVALID_EOF_STATE): a sender gone, nobody to answer.
  if ((!reason.startsWith('HPE_') && reason !== 'ERR_HTTP_REQUEST_TIMEOUT') || reason === 'HPE_INVALID_EOF_STATE') {
    socket.destroy();
    return;
  }
  parserRefusals.inc({ reason });
  const now = Date.now();
  if (now >= parserLog.until) {
    log.warn({ peer: socket.remoteAddress, reason, detail: error.message, unlogged: parserLog.unlogged }, 'request refused by the HTTP parser');
    parserLog.until = now + parserLogWindowMs;
    parserLog.unlogged = 0;
  } else {
    parserLog.unlogged++;
  }
  const swx = reason === 'HPE_HEADER_OVERFLOW' ? new SwxError('SWX_HEADERS_TOO_LARGE', 'the request header block is larger than the hub reads')
    : reason === 'ERR_HTTP_REQUEST_TIMEOUT' ? new SwxError('SWX_REQUEST_TIMEOUT', 'the request did not arrive in time')
      : new SwxError('SWX_BAD_REQUEST', `the request is not well-formed HTTP/1.1 (${reason}: ${error.message})`);
  const replying = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (!socket.writable || replying?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(problem(swx));
  socket.end(`HTTP/1.1 ${swx.status} ${STATUS_CODES[swx.status]}\r\ncontent-type: application/problem+json\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
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
    // A connection that turns idle after close() (its request answered, a long poll ended) is closed as it does, not
    // left open for the keep-alive timeout, which would hold up the stop.
    const idle = setInterval(() => server.closeIdleConnections?.(), 100);
    server.close(() => { clearInterval(idle); resolve(); });
    server.closeIdleConnections?.();
  });
}
