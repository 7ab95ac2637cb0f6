// The agency side of the REST contract: a client that sends signed messages to the hub, asks what became of them
// (`swx send`, `swx status`, `swx sign`, the demo and the bench) and collects them from its inbox when it receives by
// pull (`swx receive`), and a receiver that checks the hub's signature, keeps each message once by id, and answers with
// a signed receipt. Reference code for agency integrators.
import { createHash, createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { Transform, Writable } from 'node:stream';
import { createServer, request, type Agent, type RequestOptions } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { messageIdPattern } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { boundedBody, clientAgent, contained, readBody } from '../../engine/http.ts';
import { algorithmFor, checkContentDigest, checkContentDigestWith, contentDigest, isSigAlg, sign, verify, verifySignatureBase, type SigAlg } from '../../engine/httpsig.ts';
import { thumbprint } from '../../engine/pki/index.ts';
import {
  deliveryComponents, deliveryHeaders, envelopeHeaders, inboxAckPath, inboxComponents, inboxPath, messagePath, payloadReplyComponents,
  providerRequestComponents, queryComponents, queryPath, receiptComponents, replyComponents, requestComponents, statusComponents,
} from './contract.ts';
import type { HeldReceipt } from '../../engine/status.ts';
// The inbox's answers as the hub's route declares them; type-only, so the toolkit loads none of the hub's code.
import type { InboxAcknowledgement, InboxListing, InboxMessage } from './inbox.ts';

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
    const answer = await this.call('GET', url, headers);
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
  private hubSigned(answer: ReceivedAnswer, success: number, named = answer.status === success || answer.headers[envelopeHeaders.messageId] !== undefined): boolean {
    if (!this.hubKey || (answer.status !== success && answer.headers.signature === undefined)) return false;
    this.verifyHub(answer.status, answer.headers, replyComponents(named));
    if (!checkContentDigest(String(answer.headers['content-digest']), Buffer.from(answer.text))) throw new Error('the reply\'s Content-Digest does not match its body');
    return true;
  }

  /** Throws unless the hub's signing key signed these headers over `required`. */
  private verifyHub(status: number, headers: IncomingMessage['headers'], required: string[]): void {
    const hub = this.requiredHubKey();
    verify({ status, headers }, {
      required,
      maxSkewSeconds: 300,
      key: (keyId, declared) => {
        const alg = keyId === hub.keyId ? algorithmFor(hub.key, declared) : undefined;
        return alg ? { key: hub.key, alg } : undefined;
      },
    });
  }

  /**
   * Lists the deliveries waiting in this agency's inbox (it receives by pull): up to `max`, waiting up to `wait`
   * seconds for the first. Each stays handed out to this agency until acknowledged, or until the hub's visibility
   * timeout passes. The listing must carry the hub's signature.
   */
  async inbox(options: { max?: number; wait?: number } = {}): Promise<InboxListing> {
    const url = new URL(inboxPath, this.hubUrl);
    if (options.max !== undefined) url.searchParams.set('max', String(options.max));
    if (options.wait !== undefined) url.searchParams.set('wait', String(options.wait));
    return this.inboxAnswer(await this.call('GET', url.href, this.signedGet(url.href))) as unknown as InboxListing;
  }

  /**
   * Acknowledges deliveries this agency kept, with `receipt` data of its own if it likes: the signed request is the
   * receipt the hub keeps as evidence. Acknowledge a delivery only once it is stored: one not acknowledged comes back.
   */
  async acknowledge(messages: Pick<InboxMessage, 'id' | 'token'>[], receipt?: Record<string, unknown>): Promise<InboxAcknowledgement> {
    const url = new URL(inboxAckPath, this.hubUrl).href;
    const body = Buffer.from(JSON.stringify({ messages: messages.map(({ id, token }) => ({ id, token })), ...(receipt ? { receipt } : {}) }));
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-digest': contentDigest(body) };
    const nonce = randomBytes(16).toString('base64url');
    Object.assign(headers, sign({ method: 'POST', targetUri: url, headers }, { ...this.signer, components: inboxComponents('POST', headers), nonce }));
    return this.inboxAnswer(await this.call('POST', url, headers, body)) as unknown as InboxAcknowledgement;
  }

  /**
   * Writes a listed message's payload to `file`: the inline one at once; a large one downloaded, resuming from what
   * `file` already holds (a download cut off) with a Range request, up to `attempts` times. The whole must match the
   * SHA-256 the hub signed, or the file is removed and this throws.
   */
  async download(message: InboxMessage, file: string, attempts = 5): Promise<void> {
    if (message.payload !== undefined) {
      writeFileSync(file, Buffer.from(message.payload, 'base64'));
    } else {
      for (let attempt = 1; ; attempt++) {
        const held = existsSync(file) ? statSync(file).size : 0;
        if (held >= message.size) break;
        try {
          await pipeline(await this.openPayload(message, held), createWriteStream(file, { flags: 'a' }));
        } catch (error) {
          if (attempt >= attempts) throw error;
        }
      }
    }
    const hash = createHash('sha256');
    await pipeline(createReadStream(file), hash);
    if (hash.digest('hex') !== message.sha256) {
      unlinkSync(file);
      throw new Error(`the payload of ${message.id} from ${message.from} does not match its SHA-256; removed, download it again`);
    }
  }

  /** Bytes start..end (inclusive; to the end without it) of a listed message's payload, its signed answer checked. */
  async payloadPart(message: InboxMessage, start: number, end?: number): Promise<{ status: number; contentRange?: string; body: Buffer }> {
    const res = await this.openPayload(message, start, end);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return { status: res.statusCode!, ...(res.headers['content-range'] ? { contentRange: res.headers['content-range'] } : {}), body: Buffer.concat(chunks) };
  }

  /**
   * The answer streaming a message's payload from `start`, once its signature is checked: signed by the hub for this
   * message and sender, with the SHA-256 the listing gave, and for the range asked. For a caller that keeps the payload
   * somewhere of its own (or only hashes it); the caller checks the SHA-256 of what it read.
   */
  async openPayload(message: InboxMessage, start: number, end?: number): Promise<IncomingMessage> {
    const url = new URL(message.payloadUrl ?? `${inboxPath}/payload/${message.token}`, this.hubUrl).href;
    const range = start > 0 || end !== undefined ? { range: `bytes=${start}-${end ?? ''}` } : {};
    const res = await exchange(url, { method: 'GET', agent: this.agent, headers: { ...range, ...this.signedGet(url) } });
    const status = res.statusCode ?? 0;
    try {
      if (status !== 200 && status !== 206) throw new Error(`the hub answered ${status} for the payload of ${message.id}`);
      this.verifyHub(status, res.headers, payloadReplyComponents(status === 206));
      const digest = `sha-256=:${Buffer.from(message.sha256, 'hex').toString('base64')}:`;
      if (res.headers['repr-digest'] !== digest || res.headers[envelopeHeaders.messageId] !== message.id || res.headers[deliveryHeaders.from] !== message.from) {
        throw new Error(`the hub's answer is for another payload than that of ${message.id} from ${message.from}`);
      }
      if ((status === 206) !== (range.range !== undefined) || (status === 206 && !String(res.headers['content-range']).startsWith(`bytes ${start}-`))) {
        throw new Error(`the hub answered ${status} ${res.headers['content-range'] ?? ''} for ${range.range ?? 'the whole payload'}`);
      }
      return res;
    } catch (error) {
      res.resume();
      throw error;
    }
  }

  /** The headers of a signed GET on the inbox. */
  private signedGet(url: string): Record<string, string> {
    const nonce = randomBytes(16).toString('base64url');
    return sign({ method: 'GET', targetUri: url, headers: {} }, { ...this.signer, components: inboxComponents('GET', {}), nonce });
  }

  /** The inbox's answers are checked always: what is kept and acknowledged must be what the hub signed. */
  private requiredHubKey(): { key: KeyObject; keyId: string } {
    if (!this.hubKey) throw new Error('the hub\'s signing certificate is needed to check its answers from the inbox (hubSignCertPem, --hub-cert)');
    return this.hubKey;
  }

  /** The body of an inbox answer, which must carry the hub's signature (a refusal may not); a refusal throws with its code. */
  private inboxAnswer(answer: ReceivedAnswer): Record<string, unknown> {
    this.requiredHubKey();
    this.hubSigned(answer, 200, false);
    if (answer.status !== 200) throw new Error(`${String(answer.body.code ?? answer.status)}: ${String(answer.body.detail ?? answer.text.slice(0, 300))}`);
    return answer.body;
  }

  private post(url: string, headers: Record<string, string>, payload: Buffer): Promise<ReceivedAnswer> {
    return this.call('POST', url, headers, payload);
  }

  private async call(method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: Buffer): Promise<ReceivedAnswer> {
    const length = payload ? { 'content-length': String(payload.length) } : {};
    const res = await exchange(url, { method, agent: this.agent, headers: { ...headers, ...length } }, payload);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown>;
    try { body = JSON.parse(text) as Record<string, unknown>; } catch { body = { text }; }
    return { status: res.statusCode ?? 0, body, headers: res.headers, text };
  }

  close(): void { this.agent.destroy(); }
}

/**
 * Whether a receipt the hub holds is the receiver's signature for message `id`: its RFC 9421 signature base names
 * the message and verifies with the certificate it was checked against. Whether that certificate is the receiver's is
 * for the agency to judge against its own trust anchors.
 */
export function receiptSigned(receipt: HeldReceipt, id: string): boolean {
  if (!receipt.signature) return false;
  const { base, certificate, algorithm, value } = receipt.signature;
  const signature = /^[^=]+=:([A-Za-z0-9+/=]+):$/.exec(value.split('\n').at(-1) ?? '')?.[1];
  if (!base || !certificate || !signature || !isSigAlg(algorithm)) return false;
  if (!base.split('\n').includes(`"${envelopeHeaders.messageId}": ${id}`)) return false;
  return verifySignatureBase(base, Buffer.from(signature, 'base64'), new X509Certificate(certificate).publicKey, algorithm);
}

export type { InboxAcknowledgement, InboxListing, InboxMessage };

export interface InboxEntry {
  id: string;
  from: string;
  service: string;
  action: string;
  conversationId: string;
  refToMessageId?: string;
  contentType: string;
  /** Hex SHA-256 of the body as stored in `<id>.bin`, as the hub signed it. */
  sha256: string;
  receivedAt: string;
  deliveredAt: string;
}

/** Writes a message's metadata last and by rename, so an entry that exists is complete (its `.bin` written before it). */
function writeEntry(inboxDir: string, entry: InboxEntry): void {
  const meta = join(inboxDir, `${entry.id}.json`);
  writeFileSync(`${meta}.tmp`, JSON.stringify(entry));
  renameSync(`${meta}.tmp`, meta);
}

/**
 * Collects this agency's deliveries from its inbox into `inboxDir` as the reference receiver keeps them: `<id>.bin`
 * (its SHA-256 checked) and `<id>.json`, each id once, and acknowledges each once it is written. A repeat of a kept
 * message (same sender and SHA-256) is acknowledged again; another message under a kept id is left unacknowledged and
 * reported. With `once`, it stops when the inbox is empty (having waited `wait` seconds for the first); otherwise
 * when `signal` aborts.
 */
/**
 * Keeps a message an agency received by another protocol (an AS4 or ebMS 2.0 gateway, an SFTP inbox) the way the
 * receiver keeps one: `<id>.bin`, then `<id>.json`. A repeat of a stored id is kept once: undefined.
 */
export function keepDelivery(inboxDir: string, message: Omit<InboxEntry, 'sha256' | 'deliveredAt'>, body: Buffer): InboxEntry | undefined {
  if (!messageIdPattern.test(message.id)) throw new Error(`malformed message id ${JSON.stringify(message.id.slice(0, 140))}`);
  mkdirSync(inboxDir, { recursive: true });
  if (existsSync(join(inboxDir, `${message.id}.json`))) return undefined;
  const entry: InboxEntry = { ...message, sha256: createHash('sha256').update(body).digest('hex'), deliveredAt: new Date().toISOString() };
  writeFileSync(join(inboxDir, `${message.id}.bin.part`), body);
  renameSync(join(inboxDir, `${message.id}.bin.part`), join(inboxDir, `${message.id}.bin`));
  writeEntry(inboxDir, entry);
  return entry;
}

export async function receiveInbox(client: AgencyClient, options: {
  inboxDir: string;
  wait?: number;
  max?: number;
  once?: boolean;
  signal?: AbortSignal;
  /** Called once per newly stored message. */
  onMessage?(entry: InboxEntry): void;
  /** Without `once`: called when the inbox cannot be read or acknowledged, which is then tried again after a pause. */
  onError?(error: Error): void;
}): Promise<{ stored: string[]; repeats: string[]; failed: { id: string; error: string }[] }> {
  mkdirSync(options.inboxDir, { recursive: true });
  const result = { stored: [] as string[], repeats: [] as string[], failed: [] as { id: string; error: string }[] };
  /**
   * Whether to go on after a failed request. Running on, a hub that is away (restarting, unreachable) is asked again
   * after a pause; once, it is the answer. Stopped, a request cut short ends the loop: whatever it concerned stays
   * in the inbox, handed out again after the visibility timeout.
   */
  const goOn = async (error: unknown) => {
    if (options.signal?.aborted) return false;
    if (options.once || !options.onError) throw error;
    options.onError(error as Error);
    await sleep(5_000, undefined, { signal: options.signal }).catch(() => undefined);
    return true;
  };
  for (let round = 0; !options.signal?.aborted; round++) {
    let messages: InboxMessage[];
    try {
      ({ messages } = await client.inbox({ max: options.max, wait: options.once && round > 0 ? 0 : options.wait }));
    } catch (error) {
      if (await goOn(error)) continue;
      break;
    }
    if (options.once && messages.length === 0) break;
    const kept: InboxMessage[] = [];
    for (const message of messages) {
      try {
        const entry = await keepListed(client, options.inboxDir, message);
        if (entry) { result.stored.push(message.id); options.onMessage?.(entry); } else result.repeats.push(message.id);
        kept.push(message);
      } catch (error) {
        result.failed.push({ id: message.id, error: (error as Error).message });
      }
    }
    if (kept.length > 0) {
      try {
        await client.acknowledge(kept);
      } catch (error) {
        if (!(await goOn(error))) break;
      }
    }
  }
  return result;
}

/** Stores one listed message once by id; undefined for a repeat of one already kept. */
async function keepListed(client: AgencyClient, inboxDir: string, message: InboxMessage): Promise<InboxEntry | undefined> {
  // Ids name files here: held to their grammar (no path separator) even though the hub signed them.
  if (!messageIdPattern.test(message.id)) throw new Error('malformed message id');
  const meta = join(inboxDir, `${message.id}.json`);
  if (existsSync(meta)) {
    const stored = JSON.parse(readFileSync(meta, 'utf8')) as InboxEntry;
    if (stored.from === message.from && stored.sha256 === message.sha256) return undefined;
    throw new Error(`another message is stored under ${message.id} (from ${stored.from})`);
  }
  const bin = join(inboxDir, `${message.id}.bin`);
  await client.download(message, `${bin}.part`);
  renameSync(`${bin}.part`, bin);
  const entry: InboxEntry = {
    id: message.id,
    from: message.from,
    service: message.service,
    action: message.action,
    conversationId: message.conversationId,
    ...(message.refTo ? { refToMessageId: message.refTo } : {}),
    contentType: message.contentType,
    receivedAt: message.receivedAt,
    deliveredAt: new Date().toISOString(),
    sha256: message.sha256,
  };
  writeEntry(inboxDir, entry);
  return entry;
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
  /** The TLS server credential, when another CA than the hub's issued it (default: the agency credential). */
  serverTls?: { certPem: string; keyPem: string };
  hubSignCertPem: string;
  inboxDir: string;
  clockSkewSeconds?: number;
  /** Largest delivery kept (default 4 GiB, the hub's default SWX_MAX_STREAMED_BODY_BYTES); a larger one is refused 413. */
  maxBodyBytes?: number;
  /** Keep each message's metadata and digest but not its body (default false): for benches that move gigabytes. */
  discardBodies?: boolean;
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
  const serverTls = options.serverTls ?? options;
  const server = createServer({ cert: serverTls.certPem, key: serverTls.keyPem, ca: options.caPem, requestCert: true, rejectUnauthorized: true }, contained(async (req, res) => {
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
      }), options.discardBodies ? new Writable({ write: (_chunk, _encoding, done) => done() }) : createWriteStream(part));
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
      if (!options.discardBodies) renameSync(part, join(options.inboxDir, `${id}.bin`));
      writeEntry(options.inboxDir, entry);
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

/**
 * Sends a request and resolves with the hub's answer. A kept-alive connection the hub closed as it idled can be taken
 * for a request in the same instant; the request then never reached the hub, and is sent once more on a new
 * connection (Node's documented way through that race: `reusedSocket`).
 */
function exchange(url: string, options: RequestOptions, body?: Buffer, again = true): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(url, options, (res) => { answered = true; resolve(res); });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (again && !answered && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) resolve(exchange(url, options, body, false));
      else reject(error);
    });
    req.end(body);
  });
}
