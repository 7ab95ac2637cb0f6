// The agency side of the REST contract: a client that sends signed messages to the hub (behind `swx send`,
// `swx sign`, the demo and the bench) and a receiver that checks the hub's signature, keeps each message once
// by id, and answers with a signed receipt. Reference code for agency integrators.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { createServer, Agent, request } from 'node:https';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { algorithmFor, checkContentDigest, contentDigest, sign, verify, type SigAlg } from '../../engine/httpsig.ts';
import { thumbprint } from '../../engine/pki/index.ts';
import { deliveryHeaders, envelopeHeaders, messagePath, receiptComponents, requestComponents, requiredRequestComponents } from './contract.ts';

export interface AgencyCredentials { certPem: string; keyPem: string; caPem: string }

export interface OutgoingMessage {
  to: string;
  service: string;
  action?: string;
  body: Buffer;
  contentType?: string;
  messageId?: string;
  conversationId?: string;
  refTo?: string;
}

export interface HubAnswer { status: number; body: Record<string, unknown>; headers: Record<string, string | string[] | undefined> }

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

  constructor(private readonly hubUrl: string, credentials: AgencyCredentials, options: { maxSockets?: number } = {}) {
    this.signer = signer(credentials);
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? 16,
      cert: credentials.certPem,
      key: credentials.keyPem,
      ca: credentials.caPem,
    });
  }

  /** The headers of a signed request for this message, as `swx sign` prints them for curl. */
  signedHeaders(message: OutgoingMessage): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': message.contentType ?? 'application/octet-stream',
      'content-digest': contentDigest(message.body),
      [envelopeHeaders.to]: message.to,
      [envelopeHeaders.service]: message.service,
      ...(message.action ? { [envelopeHeaders.action]: message.action } : {}),
      ...(message.messageId ? { [envelopeHeaders.messageId]: message.messageId } : {}),
      ...(message.conversationId ? { [envelopeHeaders.conversationId]: message.conversationId } : {}),
      ...(message.refTo ? { [envelopeHeaders.refTo]: message.refTo } : {}),
    };
    return { ...headers, ...sign({ method: 'POST', targetUri: this.url(), headers }, { ...this.signer, components: requestComponents(headers) }) };
  }

  url(): string {
    return new URL(messagePath, this.hubUrl).href;
  }

  send(message: OutgoingMessage): Promise<HubAnswer> {
    const headers = this.signedHeaders(message);
    return new Promise((resolve, reject) => {
      const req = request(this.url(), { method: 'POST', agent: this.agent, headers: { ...headers, 'content-length': String(message.body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown>;
          try { body = JSON.parse(text) as Record<string, unknown>; } catch { body = { text }; }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(message.body);
    });
  }

  close(): void { this.agent.destroy(); }
}

export interface InboxEntry {
  id: string;
  from: string;
  service: string;
  action: string;
  conversationId: string;
  contentType: string;
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
 * once per id in `<inbox>/<id>.json` + `.bin` (a redelivery is acknowledged again, not stored twice).
 */
export async function startAgencyReceiver(options: AgencyCredentials & {
  port: number;
  host?: string;
  hubSignCertPem: string;
  inboxDir: string;
  clockSkewSeconds?: number;
  /** Called once per newly stored message (not for redeliveries). */
  onMessage?(entry: InboxEntry): void;
}): Promise<AgencyReceiver> {
  mkdirSync(options.inboxDir, { recursive: true });
  const own = signer(options);
  const hubKey = new X509Certificate(options.hubSignCertPem).publicKey;
  const hubKeyId = thumbprint(options.hubSignCertPem);
  const perId = new Map<string, number>();
  const receiver: AgencyReceiver = {
    port: 0, server: undefined as unknown as Server, deliveries: 0, deliveriesOf: (id) => perId.get(id) ?? 0, close: async () => undefined,
  };

  const answer = (res: import('node:http').ServerResponse, status: number, messageId: string, payload: Record<string, unknown>) => {
    const body = Buffer.from(JSON.stringify(payload));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-digest': contentDigest(body),
      [envelopeHeaders.messageId]: messageId,
    };
    Object.assign(headers, sign({ status, headers }, { ...own, components: receiptComponents }));
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  };

  const server = createServer({ cert: options.certPem, key: options.keyPem, ca: options.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      receiver.deliveries++;
      const body = Buffer.concat(chunks);
      const h = (name: string) => { const v = req.headers[name]; return Array.isArray(v) ? v.join(', ') : v; };
      const id = h(envelopeHeaders.messageId) ?? '';
      perId.set(id, (perId.get(id) ?? 0) + 1);
      try {
        verify({ method: req.method, targetUri: `https://${req.headers.host}${req.url}`, headers: req.headers }, {
          required: [...requiredRequestComponents, envelopeHeaders.messageId, deliveryHeaders.from],
          maxSkewSeconds: options.clockSkewSeconds ?? 300,
          key: (keyId, declared) => {
            const alg = keyId === hubKeyId ? algorithmFor(hubKey, declared) : undefined;
            return alg ? { key: hubKey, alg } : undefined;
          },
        });
        if (!checkContentDigest(h('content-digest'), body)) throw new Error('Content-Digest does not match');
        if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(id)) throw new Error('missing or malformed Swx-Message-Id');
      } catch (error) {
        answer(res, 400, id || 'unknown', { error: (error as Error).message });
        return;
      }
      const meta = join(options.inboxDir, `${id}.json`);
      if (!existsSync(meta)) {
        const entry: InboxEntry = {
          id,
          from: h(deliveryHeaders.from) ?? '',
          service: h(envelopeHeaders.service) ?? '',
          action: h(envelopeHeaders.action) ?? '',
          conversationId: h(envelopeHeaders.conversationId) ?? '',
          contentType: h('content-type') ?? '',
          receivedAt: h(deliveryHeaders.receivedAt) ?? '',
          deliveredAt: new Date().toISOString(),
        };
        writeFileSync(join(options.inboxDir, `${id}.bin`), body);
        // Written last and by rename, so an entry that exists is complete.
        writeFileSync(`${meta}.tmp`, JSON.stringify(entry));
        renameSync(`${meta}.tmp`, meta);
        options.onMessage?.(entry);
      }
      answer(res, 200, id, { id, received: true, at: new Date().toISOString() });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  receiver.port = typeof address === 'object' && address ? address.port : options.port;
  receiver.server = server;
  receiver.close = () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  return receiver;
}
