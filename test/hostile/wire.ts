// How a hostile client talks to the hub: requests signed (or mis-signed) exactly as the case needs, over mutual TLS
// with any certificate or none (raw bytes, for what Node's own client refuses to send, go through test/helpers/raw.ts).
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'node:https';
import { algorithmFor, contentDigest, sign, type SigAlg } from '../../engine/httpsig.ts';
import { thumbprint } from '../../engine/pki/index.ts';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The JSON body, or undefined when the body is not JSON. */
  json?: Record<string, any>;
}

export interface Identity {
  /** TLS client credentials; none means no client certificate. */
  tls?: { certPem: string; keyPem: string };
  /** The RFC 9421 signing key. */
  signing?: { certPem: string; keyPem: string };
}

export interface Signer { key: KeyObject; keyId: string; alg: SigAlg }

export function signerOf(credentials: { certPem: string; keyPem: string }): Signer {
  const key = createPrivateKey(credentials.keyPem);
  return { key, keyId: thumbprint(credentials.certPem), alg: algorithmFor(new X509Certificate(credentials.certPem).publicKey)! };
}

/** One HTTPS request to the hub; a reply is whatever came back, never a thrown error for an error status. */
export class Wire {
  private readonly agents = new Map<string, Agent>();

  constructor(readonly origin: string, private readonly caPem: string) {}

  private agent(identity: Identity): Agent {
    const key = identity.tls?.certPem ?? 'none';
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: false, ca: this.caPem, ...(identity.tls ? { cert: identity.tls.certPem, key: identity.tls.keyPem } : {}) });
      this.agents.set(key, agent);
    }
    return agent;
  }

  send(identity: Identity, method: string, path: string, headers: Record<string, string | string[]>, body?: Buffer): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, this.origin), { method, agent: this.agent(identity), headers, setHost: !('host' in headers) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, any> | undefined;
          try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      });
      // A hub that refuses a large body early closes the connection: the reply already read is the answer.
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
  }
}

export interface SignedRequestOptions {
  method?: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Components to sign; default every header given (less none), with @method and @target-uri. */
  components?: string[];
  created?: number;
  /** The URI the signature names, if not the one the request goes to. */
  signedUri?: string;
  /** Applied after signing, to the headers and the body the hub receives. */
  tamper?: (headers: Record<string, string>, body: Buffer) => Buffer | void;
}

/** The headers of a request signed as the options say, and the body to send with them. */
export function signedRequest(signer: Signer | undefined, origin: string, options: SignedRequestOptions): { headers: Record<string, string>; body: Buffer } {
  const headers: Record<string, string> = { 'content-digest': contentDigest(options.body), ...options.headers };
  const uri = options.signedUri ?? new URL(options.path, origin).href;
  const components = options.components ?? ['@method', '@target-uri', ...Object.keys(headers)];
  const signature = signer
    ? sign({ method: options.method ?? 'POST', targetUri: uri, headers }, { ...signer, components, ...(options.created !== undefined ? { created: options.created } : {}) })
    : {};
  const all: Record<string, string> = { ...headers, ...signature };
  const body = options.tamper?.(all, options.body) ?? options.body;
  return { headers: all, body };
}

/** A header value carrying these characters as UTF-8 bytes (Node's client refuses characters above U+00FF). */
export const utf8Bytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
