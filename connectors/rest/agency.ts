// The agency side of the REST contract: a client that sends signed messages to the hub and asks what became of them
// (behind `swx send`, `swx status`, `swx sign`, the demo and the bench) and a receiver that checks the hub's
// signature, keeps each message once by id, and answers with a signed receipt. Reference code for agency integrators.
import { createHash, createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createServer, request, type Agent } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { SwxError } from '../../engine/errors.ts';
import { boundedBody, clientAgent, contained, readBody } from '../../engine/http.ts';
import { algorithmFor, checkContentDigest, checkContentDigestWith, contentDigest, isSigAlg, sign, verify, verifySignatureBase, type SigAlg } from '../../engine/httpsig.ts';
import { thumbprint } from '../../engine/pki/index.ts';
import { deliveryComponents, deliveryHeaders, envelopeHeaders, messagePath, providerRequestComponents, queryComponents, queryPath, receiptComponents, replyComponents, requestComponents, statusComponents } from './contract.ts';
import type { HeldReceipt } from '../../engine/status.ts';

export interface AgencyCredentials { certPem: string; keyPem: string; caPem: string }

export interface OutgoingMessage {
  /** The receiver; left out for a message to a topic (service notify.<topic>) or channel (exchange.<channel>). */
  to?: string;
  service: string;
  action?: string;
  body: Buffer;
  contentType?: string;
  messageId?: string;
  conversationId?: string;
  refTo?: string;
}

export interface QueryOptions {
  /** Needed where the dataset has several providers. */
  provider?: string;
  queryId?: string;
}

export interface HubAnswer { status: number; body: Record<string, unknown>; headers: Record<string, string | string[] | undefined> }

/** An answer as it arrived: its text too, which its Content-Digest covers. */
export interface ReceivedAnswer extends HubAnswer { text: string }

interface Signer { key: KeyObject; keyId: string; alg: SigAlg }

function signer(credentials: AgencyCredentials): Signer {
  const key = createPrivateKey(credentials.keyPem);
  const alg = algorithmFor(new X509Certificate(credentials.certPem).publicKey);
  if (!alg) throw new Error('unsupported key type in the agency certificate');
  return { key, keyId: thumbprint(credentials.certPem), alg };
}

export class AgencyClient {
  private readonly signer: Signer;
  private readonly agent: Agent;
  private readonly hubKey?: { key: KeyObject; keyId: string };

  constructor(private readonly hubUrl: string, credentials: AgencyCredentials, options: { maxSockets?: number; hubSignCertPem?: string } = {}) {
    this.signer = signer(credentials);
    if (options.hubSignCertPem) this.hubKey = { key: new X509Certificate(options.hubSignCertPem).publicKey, keyId: thumbprint(options.hubSignCertPem) };
    this.agent = clientAgent({ cert: credentials.certPem, key: credentials.keyPem, ca: credentials.caPem }, options.maxSockets ?? 16);
  }

  /** The headers of a signed request for this message, as `swx sign` prints them for curl. */
  signedHeaders(message: OutgoingMessage): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': message.contentType ?? 'application/octet-stream',
      'content-digest': contentDigest(message.body),
      ...(message.to ? { [envelopeHeaders.to]: message.to } : {}),
      [envelopeHeaders.service]: message.service,
      ...(message.action ? { [envelopeHeaders.action]: message.action } : {}),
      ...(message.messageId ? { [envelopeHeaders.messageId]: message.messageId } : {}),
      ...(message.conversationId ? { [envelopeHeaders.conversationId]: message.conversationId } : {}),
      ...(message.refTo ? { [envelopeHeaders.refTo]: message.refTo } : {}),
    };
    // A nonce makes each signed message unique: a message without Swx-Message-Id is known by its signature, so the
    // same request sent again is a duplicate, and the same content sent again within a second is not.
    const nonce = randomBytes(16).toString('base64url');
    return { ...headers, ...sign({ method: 'POST', targetUri: this.url(), headers }, { ...this.signer, components: requestComponents(headers), nonce }) };
  }

  url(): string {
    return new URL(messagePath, this.hubUrl).href;
  }

  /**
   * Sends a message. The hub's 202 (its receipt) and its refusals carry its signature, checked when the client knows
   * the hub's signing certificate: `signed` says so; a receipt whose signature fails is an error.
   */
  async send(message: OutgoingMessage): Promise<ReceivedAnswer & { signed: boolean }> {
    const answer = await this.post(this.url(), this.signedHeaders(message), message.body);
    try {
      return { ...answer, signed: this.checkReceipt(answer, message.messageId) };
    } catch (error) {
      // The hub may have taken the message all the same: say what it answered, so that it is not sent again blindly.
      throw new Error(`the hub answered ${answer.status} ${answer.text.slice(0, 500)}, but its signature does not check out: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Whether the hub's reply to a message carries its signature (see hubSigned); throws when the signature, its digest
   * or the message it names is wrong. A receipt names the message in `id`, a refusal in `messageId`.
   */
  checkReceipt(answer: ReceivedAnswer, messageId?: string): boolean {
    if (!this.hubSigned(answer, 202)) return false;
    const signedId = answer.headers[envelopeHeaders.messageId];
    const accepted = answer.status === 202;
    if (signedId !== (accepted ? answer.body.id : answer.body.messageId) || (accepted && messageId !== undefined && signedId !== messageId)) {
      throw new Error(`the hub's receipt is for message ${String(signedId)}, not this one`);
    }
    return true;
  }

  /** A signed query request for `dataset`, as `swx sign --query` prints it for curl. */
  signedQuery(dataset: string, keys: Record<string, string>, options: QueryOptions = {}): { url: string; headers: Record<string, string>; body: Buffer } {
    const url = new URL(`${queryPath}/${encodeURIComponent(dataset)}`, this.hubUrl).href;
    const body = Buffer.from(JSON.stringify({ keys, ...(options.provider ? { provider: options.provider } : {}) }));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-digest': contentDigest(body),
      ...(options.queryId ? { [envelopeHeaders.messageId]: options.queryId } : {}),
    };
    // A nonce makes each signed query unique: the hub refuses a signature base it has seen (a replay), and the same
    // query asked twice within a second would otherwise have the same base.
    const nonce = randomBytes(16).toString('base64url');
    return { url, body, headers: { ...headers, ...sign({ method: 'POST', targetUri: url, headers }, { ...this.signer, components: queryComponents(headers), nonce }) } };
  }

  /**
   * Asks a query. A 200 answer must carry the hub's signature (checked when the client knows the hub's signing
   * certificate): `signed` says so; an answer whose signature fails is an error, never data.
   */
  async query(dataset: string, keys: Record<string, string>, options: QueryOptions = {}): Promise<HubAnswer & { signed: boolean }> {
    const answer = await this.ask(dataset, keys, options);
    return { ...answer, signed: this.checkAnswer(answer, dataset, options) };
  }

  /** Sends a signed query; the answer comes back as received, not yet checked (see checkAnswer). */
  ask(dataset: string, keys: Record<string, string>, options: QueryOptions = {}): Promise<ReceivedAnswer> {
    const { url, headers, body } = this.signedQuery(dataset, keys, options);
    return this.post(url, headers, body);
  }

  /**
   * Whether a query's answer, or refusal, carries the hub's signature (false when the client does not know the hub's
   * signing certificate, or for an unsigned refusal); throws when the signature, its digest or the query it names is
   * wrong. A 200 answer must be signed.
   */
  checkAnswer(answer: ReceivedAnswer, dataset: string, options: QueryOptions = {}): boolean {
    if (!this.hubSigned(answer, 200)) return false;
    // Signed by the hub, but for this query? The signed id and the body must name it.
    const signedId = answer.headers[envelopeHeaders.messageId];
    const answered = answer.status === 200;
    if (signedId !== answer.body.queryId || (answered && ((options.queryId !== undefined && signedId !== options.queryId) || answer.body.dataset !== dataset))) {
      throw new Error(`the hub's answer is for query ${String(signedId)} of ${String(answer.body.dataset)}, not this one`);
    }
    return true;
  }

  /** A signed request for message `id`'s status: as its sender, or as one of its receivers naming the sender (`from`). */
  signedStatus(id: string, from?: string): { url: string; headers: Record<string, string> } {
    const url = new URL(`${messagePath}/${encodeURIComponent(id)}`, this.hubUrl);
    if (from) url.searchParams.set('from', from);
    const headers: Record<string, string> = {};
    return { url: url.href, headers: sign({ method: 'GET', targetUri: url.href, headers }, { ...this.signer, components: statusComponents(headers) }) };
  }

  /**
   * What became of message `id` at each receiver, with their signed receipts. A 200 answer must carry the hub's
   * signature (checked when the client knows the hub's signing certificate): `signed` says so; an answer whose signature
   * fails, or that is about another message, is an error, never data.
   */
  async status(id: string, options: { from?: string } = {}): Promise<ReceivedAnswer & { signed: boolean }> {
    const { url, headers } = this.signedStatus(id, options.from);
    const answer = await this.exchange('GET', url, headers);
    const signed = this.hubSigned(answer, 200);
    const signedId = answer.headers[envelopeHeaders.messageId];
    if ((signed && signedId !== id) || (answer.status === 200 && answer.body.id !== id)) {
      throw new Error(`the hub's answer is about message ${String(signedId ?? answer.body.id)}, not ${id}`);
    }
    return { ...answer, signed };
  }

  /**
   * Whether a reply carries the hub's signature over its status, content type, digest and the id it names: false when
   * the client does not know the hub's signing certificate, or for an unsigned refusal; throws when the signature or
   * the digest is wrong, or when the `success` reply is unsigned.
   */
  private hubSigned(answer: ReceivedAnswer, success: number): boolean {
    if (!this.hubKey || (answer.status !== success && answer.headers.signature === undefined)) return false;
    verify({ status: answer.status, headers: answer.headers }, {
      required: replyComponents(answer.status === success || answer.headers[envelopeHeaders.messageId] !== undefined),
      maxSkewSeconds: 300,
      key: (keyId, declared) => {
        const alg = keyId === this.hubKey!.keyId ? algorithmFor(this.hubKey!.key, declared) : undefined;
        return alg ? { key: this.hubKey!.key, alg } : undefined;
      },
    });
    if (!checkContentDigest(String(answer.headers['content-digest']), Buffer.from(answer.text))) throw new Error('the reply\'s Content-Digest does not match its body');
    return true;
  }

  private post(url: string, headers: Record<string, string>, payload: Buffer): Promise<ReceivedAnswer> {
    return this.exchange('POST', url, { ...headers, 'content-length': String(payload.length) }, payload);
  }

  private exchange(method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: Buffer): Promise<ReceivedAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown>;
          try { body = JSON.parse(text) as Record<string, unknown>; } catch { body = { text }; }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void { this.agent.destroy(); }
}

/**
 * Whether a receipt the hub holds is the receiver's signature for message `id`: its RFC 9421 signature base names
 * the message and verifies with the certificate it was checked against. Whether that certificate is the receiver's is
 * for the agency to judge against its own trust anchors.
 */
export function receiptSigned(receipt: HeldReceipt, id: string): boolean {
  const { base, certificate, algorithm, value } = receipt.signature;
  const signature = /^[^=]+=:([A-Za-z0-9+/=]+):$/.exec(value.split('\n').at(-1) ?? '')?.[1];
  if (!base || !certificate || !signature || !isSigAlg(algorithm)) return false;
  if (!base.split('\n').includes(`"${envelopeHeaders.messageId}": ${id}`)) return false;
  return verifySignatureBase(base, Buffer.from(signature, 'base64'), new X509Certificate(certificate).publicKey, algorithm);
}

export interface InboxEntry {
  id: string;
  from: string;
  service: string;
  action: string;
  conversationId: string;
  refToMessageId?: string;
  contentType: string;
  /** Hex SHA-256 of the body as stored in `<id>.bin`. */
  sha256: string;
  receivedAt: string;
  deliveredAt: string;
}

export interface AgencyReceiver {
  port: number;
  server: Server;
  /** Requests that reached the receiver, counting redeliveries; the inbox keeps each id once. */
  deliveries: number;
  /** Requests per message id, counting redeliveries. */
  deliveriesOf(id: string): number;
  close(): Promise<void>;
}

/**
 * Receives deliveries from the hub: mutual TLS, the hub's signature and Content-Digest checked, the message kept
 * once per id in `<inbox>/<id>.json` + `.bin`. A redelivery is acknowledged again with `duplicate: true` in the signed
 * receipt, not stored twice; another message under a stored id (another sender or body) gets a signed 409. A message
 * it cannot keep (a full disk, a missing folder) gets a signed 500, so the hub delivers it again later.
 */
export async function startAgencyReceiver(options: AgencyCredentials & {
  port: number;
  host?: string;
  hubSignCertPem: string;
  inboxDir: string;
  clockSkewSeconds?: number;
  /** Largest delivery kept (default 4 GiB, the hub's default SWX_MAX_STREAMED_BODY_BYTES); a larger one is refused 413. */
  maxBodyBytes?: number;
  /** Called once per newly stored message (not for redeliveries). */
  onMessage?(entry: InboxEntry): void;
}): Promise<AgencyReceiver> {
  mkdirSync(options.inboxDir, { recursive: true });
  const own = signer(options);
  const hub = hubKeyOf(options.hubSignCertPem);
  const perId = new Map<string, number>();
  const receiver: AgencyReceiver = {
    port: 0, server: undefined as unknown as Server, deliveries: 0, deliveriesOf: (id) => perId.get(id) ?? 0, close: async () => undefined,
  };

  const answer = (res: ServerResponse, status: number, messageId: string, payload: Record<string, unknown>) => signedAnswer(res, own, status, messageId, payload);

  const h = (req: IncomingMessage, name: string) => { const v = req.headers[name]; return Array.isArray(v) ? v.join(', ') : v; };
  const server = createServer({ cert: options.certPem, key: options.keyPem, ca: options.caPem, requestCert: true, rejectUnauthorized: true }, contained(async (req, res) => {
    receiver.deliveries++;
    const id = h(req, envelopeHeaders.messageId) ?? '';
    perId.set(id, (perId.get(id) ?? 0) + 1);
    try {
      // The signature covers Content-Digest: checked before the body is read, which is then held to that digest.
      checkHubSignature(req, hub, deliveryComponents, options.clockSkewSeconds);
      if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(id)) throw new Error('missing or malformed Swx-Message-Id');
    } catch (error) {
      req.resume();
      answer(res, 400, id || 'unknown', { error: (error as Error).message });
      return;
    }
    // The body goes to a file as it arrives, hashed on the way: a dataset of gigabytes is never held whole.
    const part = join(options.inboxDir, `.${randomBytes(8).toString('hex')}.part`);
    const sha256 = createHash('sha256');
    try {
      await pipeline(boundedBody(req, options.maxBodyBytes ?? 4 * 1024 ** 3), new Transform({
        transform(chunk: Buffer, _encoding, done) { sha256.update(chunk); done(null, chunk); },
      }), createWriteStream(part));
    } catch (error) {
      rmSync(part, { force: true });
      throw error;
    }
    const digest = sha256.digest();
    if (!checkContentDigestWith(String(req.headers['content-digest']), (hash) => (hash === 'sha256' ? digest : Buffer.alloc(0)))) {
      rmSync(part, { force: true });
      answer(res, 400, id, { error: 'Content-Digest does not match the body' });
      return;
    }
    const meta = join(options.inboxDir, `${id}.json`);
    const from = h(req, deliveryHeaders.from) ?? '';
    const duplicate = existsSync(meta);
    if (duplicate) {
      rmSync(part, { force: true });
      // The hub delivers at least once: a repeat has the same sender and body, is acknowledged again and kept once.
      // Anything else under a stored id is another message, which must not replace the stored one nor be lost.
      const stored = JSON.parse(readFileSync(meta, 'utf8')) as InboxEntry;
      if (stored.from !== from || stored.sha256 !== digest.toString('hex')) {
        answer(res, 409, id, { error: `another message is stored under ${id} (from ${stored.from})` });
        return;
      }
    } else {
      const entry: InboxEntry = {
        id,
        from,
        service: h(req, envelopeHeaders.service) ?? '',
        action: h(req, envelopeHeaders.action) ?? '',
        conversationId: h(req, envelopeHeaders.conversationId) ?? '',
        ...(h(req, envelopeHeaders.refTo) ? { refToMessageId: h(req, envelopeHeaders.refTo) } : {}),
        contentType: h(req, 'content-type') ?? '',
        sha256: digest.toString('hex'),
        receivedAt: h(req, deliveryHeaders.receivedAt) ?? '',
        deliveredAt: new Date().toISOString(),
      };
      renameSync(part, join(options.inboxDir, `${id}.bin`));
      // Written last and by rename, so an entry that exists is complete.
      writeFileSync(`${meta}.tmp`, JSON.stringify(entry));
      renameSync(`${meta}.tmp`, meta);
      options.onMessage?.(entry);
    }
    answer(res, 200, id, { id, received: true, duplicate, at: new Date().toISOString() });
  }, (req, res, error) => failedAnswer(res, own, h(req, envelopeHeaders.messageId) || 'unknown', 'the receiver', error)));
  receiver.port = await listenOn(server, options.port, options.host);
  receiver.server = server;
  receiver.close = () => closeServer(server);
  return receiver;
}

export interface RestProvider {
  port: number;
  /** Queries answered (found or not). */
  answered: number;
  close(): Promise<void>;
}

/**
 * Answers the hub's queries as a provider agency (register its URL as the `queryUrl` of the partner's
 * `rest` endpoint): mutual TLS, the hub's signature and Content-Digest checked, `answer` asked, the answer signed.
 * A request the provider cannot read gets a signed 400; `answer` throwing or rejecting gets a signed 500.
 */
export async function startRestProvider(options: AgencyCredentials & {
  port: number;
  host?: string;
  hubSignCertPem: string;
  clockSkewSeconds?: number;
  /** Largest query read (default 1 MiB); a larger one is refused 413. */
  maxBodyBytes?: number;
  answer(dataset: string, keys: Record<string, string>, asker: string): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
}): Promise<RestProvider> {
  const own = signer(options);
  const hub = hubKeyOf(options.hubSignCertPem);
  const provider: RestProvider = { port: 0, answered: 0, close: async () => undefined };
  const queryIdOf = (req: IncomingMessage) => String(req.headers[envelopeHeaders.messageId] ?? 'unknown');
  const server = createServer({ cert: options.certPem, key: options.keyPem, ca: options.caPem, requestCert: true, rejectUnauthorized: true }, contained(async (req, res) => {
    const body = await readBody(req, options.maxBodyBytes ?? 1024 * 1024);
    const queryId = queryIdOf(req);
    let query: { dataset: string; asker: string; keys: Record<string, string> };
    try {
      checkHubRequest(req, body, hub, providerRequestComponents, options.clockSkewSeconds);
      query = JSON.parse(body.toString('utf8')) as typeof query;
      if (typeof query.dataset !== 'string' || typeof query.keys !== 'object' || query.keys === null) throw new Error('expected { queryId, dataset, asker, keys }');
    } catch (error) {
      signedAnswer(res, own, 400, queryId, { error: (error as Error).message });
      return;
    }
    // Awaited inside the contained handler: `answer` throwing, synchronously or not, is this request's signed 500.
    const record = await options.answer(query.dataset, query.keys, query.asker);
    provider.answered++;
    signedAnswer(res, own, 200, queryId, record ? { found: true, record } : { found: false });
  }, (req, res, error) => failedAnswer(res, own, queryIdOf(req), 'the provider', error)));
  provider.port = await listenOn(server, options.port, options.host);
  provider.close = () => closeServer(server);
  return provider;
}

function hubKeyOf(certPem: string): { key: KeyObject; keyId: string } {
  return { key: new X509Certificate(certPem).publicKey, keyId: thumbprint(certPem) };
}

/** A request from the hub: signed by the hub's key over `required`, with a matching Content-Digest; throws if not. */
/** The hub's RFC 9421 signature on a request, over `required` at least. */
function checkHubSignature(req: IncomingMessage, hub: { key: KeyObject; keyId: string }, required: string[], skewSeconds = 300): void {
  verify({ method: req.method, targetUri: `https://${req.headers.host}${req.url}`, headers: req.headers }, {
    required,
    maxSkewSeconds: skewSeconds,
    key: (keyId, declared) => {
      const alg = keyId === hub.keyId ? algorithmFor(hub.key, declared) : undefined;
      return alg ? { key: hub.key, alg } : undefined;
    },
  });
}

function checkHubRequest(req: IncomingMessage, body: Buffer, hub: { key: KeyObject; keyId: string }, required: string[], skewSeconds = 300): void {
  checkHubSignature(req, hub, required, skewSeconds);
  if (!checkContentDigest(String(req.headers['content-digest']), body)) throw new Error('Content-Digest does not match');
}

/** The signed answer to a request that failed: its own status for an SwxError (a body too large), else 500. */
function failedAnswer(res: ServerResponse, own: Signer, messageId: string, who: string, error: unknown): void {
  const status = error instanceof SwxError ? error.status : 500;
  signedAnswer(res, own, status, messageId, { error: `${who} failed: ${error instanceof Error ? error.message : String(error)}` });
}

/** A JSON answer signed like a receipt: status, content type, digest and the message id it answers. */
function signedAnswer(res: ServerResponse, own: Signer, status: number, messageId: string, payload: Record<string, unknown>): void {
  const body = Buffer.from(JSON.stringify(payload));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-digest': contentDigest(body),
    [envelopeHeaders.messageId]: messageId,
  };
  Object.assign(headers, sign({ status, headers }, { ...own, components: receiptComponents }));
  res.writeHead(status, { ...headers, 'content-length': String(body.length) });
  res.end(body);
}

async function listenOn(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
}
