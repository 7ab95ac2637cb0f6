// REST outbound: the hub delivers an envelope to the partner's HTTPS endpoint, signed as the hub, and keeps the
// receiver's signed 2xx answer as its receipt.
import type { TrustStore } from '../../engine/pki/index.ts';
import { Agent, request } from 'node:https';
import type { KeyObject } from 'node:crypto';
import type { Envelope } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { contentDigest, checkContentDigest, sign, verify, type SigAlg, type Verified } from '../../engine/httpsig.ts';
import type { Partner, Registry } from '../../engine/registry.ts';
import { deliveryHeaders, envelopeHeaders, receiptComponents, requestComponents } from './contract.ts';

export interface Receipt {
  status: number;
  body: Buffer;
  signature: Verified;
  /** The receipt as received, status line, signature headers and body, for evidence. */
  raw: string;
}

/** A delivery failure: `transient` ones (transport, 5xx, 429) trip the partner's circuit breaker and never dead-letter. */
export class DeliveryError extends SwxError {
  constructor(readonly transient: boolean, code: ConstructorParameters<typeof SwxError>[0], detail: string) {
    super(code, detail);
  }
}

export interface HubIdentity {
  tls: { key: string; cert: string; ca: string[] };
  signing: { key: KeyObject; keyId: string; alg: SigAlg };
}

export class RestOutbound {
  private readonly agents = new Map<string, Agent>();

  constructor(
    private readonly hub: HubIdentity,
    private readonly registry: Registry,
    private readonly options: { timeoutMs: number; maxSockets: number; clockSkewSeconds: number },
    /** Receipts are signatures like any other: the receiver's key must pass the trust store (path, usage, revocation). */
    private readonly trust: Pick<TrustStore, 'check'>,
  ) {}

  private agent(partnerId: string): Agent {
    let agent = this.agents.get(partnerId);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: this.options.maxSockets, ...this.hub.tls });
      this.agents.set(partnerId, agent);
    }
    return agent;
  }

  async deliver(envelope: Envelope, payload: Buffer, partner: Partner): Promise<Receipt> {
    if (!partner.endpoint) throw new DeliveryError(false, 'SWX_UNKNOWN_RECEIVER', `${partner.id} has no delivery endpoint`);
    const url = new URL(partner.endpoint.url);
    const headers: Record<string, string> = {
      'content-type': envelope.contentType,
      'content-digest': contentDigest(payload),
      'content-length': String(payload.length),
      [envelopeHeaders.to]: envelope.to,
      [envelopeHeaders.service]: envelope.service,
      [envelopeHeaders.action]: envelope.action,
      [envelopeHeaders.messageId]: envelope.id,
      [envelopeHeaders.conversationId]: envelope.conversationId,
      [deliveryHeaders.from]: envelope.from,
      [deliveryHeaders.receivedAt]: envelope.receivedAt,
      ...(envelope.refToMessageId ? { [envelopeHeaders.refTo]: envelope.refToMessageId } : {}),
    };
    Object.assign(headers, sign({ method: 'POST', targetUri: url.href, headers }, {
      ...this.hub.signing, components: requestComponents(headers),
    }));
    const receiptLimit = 1024 * 1024;
    const response = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
      // A deadline for the whole exchange, not an idle timeout: a receiver that drips its answer must not hold a
      // delivery past the consumer's ack wait.
      const req = request(url, { method: 'POST', headers, agent: this.agent(partner.id), signal: AbortSignal.timeout(this.options.timeoutMs) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > receiptLimit) {
            req.destroy();
            reject(new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt is larger than ${receiptLimit} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    }).catch((error: Error) => {
      if (error instanceof DeliveryError) throw error;
      const reason = error.name === 'AbortError' || error.name === 'TimeoutError' ? `no complete answer within ${this.options.timeoutMs} ms` : error.message;
      throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} at ${url.origin}: ${reason}`);
    });

    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} answered ${response.status}`);
    }
    if (response.status < 200 || response.status >= 300) {
      throw new DeliveryError(false, 'SWX_DELIVERY_REJECTED', `${partner.id} answered ${response.status}: ${response.body.toString('utf8').slice(0, 300)}`);
    }
    let signature: Verified;
    try {
      signature = verify({ status: response.status, headers: response.headers }, {
        required: receiptComponents,
        maxSkewSeconds: this.options.clockSkewSeconds,
        key: (keyId, declared) => this.registry.verificationKey(keyId, partner.id, declared),
      });
    } catch (error) {
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt: ${(error as Error).message}`);
    }
    const signer = this.registry.keyByThumbprint(signature.keyId);
    const refusal = signer ? await this.trust.check(signer.parsed, 'agency-signing') : undefined;
    if (refusal) {
      // An unknown revocation status may clear up (a CRL fetched later); a revoked or misused key will not.
      throw new DeliveryError(refusal.code === 'SWX_CERT_REVOCATION_UNKNOWN', 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt is signed with ${signature.keyId}: ${refusal.code}: ${refusal.detail}`);
    }
    const receiptId = response.headers[envelopeHeaders.messageId];
    if (receiptId !== envelope.id || !checkContentDigest(String(response.headers['content-digest']), response.body)) {
      throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt names another message or its digest does not match`);
    }
    const raw = [
      `HTTP ${response.status}`,
      `signature-input: ${response.headers['signature-input']}`,
      `signature: ${response.headers.signature}`,
      `content-digest: ${response.headers['content-digest']}`,
      '',
      response.body.toString('utf8'),
    ].join('\n');
    return { status: response.status, body: response.body, signature, raw };
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
