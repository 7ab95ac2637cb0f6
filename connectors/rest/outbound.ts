// REST outbound: the hub delivers an envelope to the partner's HTTPS endpoint, signed as the hub, and keeps the
// receiver's signed 2xx answer as its receipt; and puts queries to providers that answer over REST.
import type { CertificateCheck } from '../../engine/trust/index.ts';
import { postHttps, type HttpsAnswer, type RequestBody } from '../../engine/http.ts';
import type { Envelope } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { contentDigest, checkContentDigest, sign, signatureInfo, verify, type Verified } from '../../engine/httpsig.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import type { ProviderAnswer, ProviderCall, ProviderConnector } from '../../engine/query.ts';
import type { Partner, Registry } from '../../engine/registry.ts';
import { describeTransportFailure, PartnerAgents, type ServerTrust } from '../../engine/server-trust.ts';
import { deliveryDeadlineMs, DeliveryError, transportFailure, type OutgoingPayload, type Outbound, type Receipt } from '../../engine/outbound.ts';
import type { RestEndpoint } from './endpoint.ts';
import { deliveryHeaders, envelopeHeaders, providerRequestComponents, receiptComponents, requestComponents } from './contract.ts';

export class RestOutbound implements Outbound, ProviderConnector {
  private readonly agents: PartnerAgents;

  constructor(
    private readonly hub: HubIdentity,
    private readonly registry: Registry,
    private readonly options: { timeoutMs: number; maxSockets: number; clockSkewSeconds: number },
    /** Receipts are signatures like any other: the receiver's key must pass the trust store (path, usage, revocation). */
    private readonly trust: CertificateCheck,
  ) {
    this.agents = new PartnerAgents(hub.tls, options.maxSockets);
  }

  async deliver(envelope: Envelope, payload: OutgoingPayload, partner: Partner, endpoint: RestEndpoint): Promise<Receipt> {
    if (!endpoint.url) throw new DeliveryError(false, 'SWX_UNKNOWN_RECEIVER', `${partner.id} has no REST delivery URL`);
    const url = new URL(endpoint.url);
    const headers: Record<string, string> = {
      'content-type': envelope.contentType,
      // The digest of a streamed payload is the one stored with it: the stream errors if the bytes disagree.
      'content-digest': `sha-256=:${Buffer.from(payload.sha256, 'hex').toString('base64')}:`,
      [envelopeHeaders.to]: envelope.to,
      [envelopeHeaders.service]: envelope.service,
      [envelopeHeaders.action]: envelope.action,
      [envelopeHeaders.messageId]: envelope.id,
      [envelopeHeaders.conversationId]: envelope.conversationId,
      [deliveryHeaders.from]: envelope.from,
      [deliveryHeaders.receivedAt]: envelope.receivedAt,
      ...(envelope.refToMessageId ? { [envelopeHeaders.refTo]: envelope.refToMessageId } : {}),
    };
    // A deadline for the whole exchange, not an idle timeout: a receiver that drips its answer must not hold a
    // delivery for ever. A large payload gets the time it needs at the slowest rate allowed.
    const deadlineMs = deliveryDeadlineMs(this.options.timeoutMs, payload.size);
    const response = await this.post(url, headers, requestComponents(headers), payload.held ?? payload.open, payload.size, { id: partner.id, tls: endpoint.tls }, AbortSignal.timeout(deadlineMs)).catch((error: Error) => {
      if (error instanceof SwxError) throw new DeliveryError(false, 'SWX_RECEIPT_INVALID', error.message);
      throw transportFailure(error, `${partner.id} at ${url.origin}`, deadlineMs);
    });

    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner.id} answered ${response.status}`);
    }
    if (response.status < 200 || response.status >= 300) {
      throw new DeliveryError(false, 'SWX_DELIVERY_REJECTED', `${partner.id} answered ${response.status}: ${response.body.toString('utf8').slice(0, 300)}`);
    }
    const checked = await this.checkSigned(response, partner.id, envelope.id);
    if (!checked.ok) {
      // An unknown revocation status may clear up (a CRL fetched later); a revoked or misused key will not.
      throw new DeliveryError(checked.code === 'SWX_CERT_REVOCATION_UNKNOWN', 'SWX_RECEIPT_INVALID', `${partner.id}'s receipt: ${checked.detail}`);
    }
    const signer = this.registry.keyByThumbprint(checked.signature.keyId);
    return {
      status: response.status,
      duplicate: receiverHadIt(response.body),
      signature: signatureInfo(checked.signature, signer?.certificate.toString()),
      raw: rawAnswer(response),
    };
  }

  /** Puts a query to a provider answering over REST: the provider's signed 200 `{ found, record? }` is its answer. */
  async ask(call: ProviderCall): Promise<ProviderAnswer> {
    const { queryUrl, tls } = call.endpoint as RestEndpoint;
    if (!queryUrl) throw new SwxError('SWX_PROVIDER_ERROR', `${call.provider} has no REST query URL`);
    const url = new URL(queryUrl);
    const body = Buffer.from(JSON.stringify({ queryId: call.id, dataset: call.dataset, asker: call.asker, keys: call.keys }));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-digest': contentDigest(body),
      [envelopeHeaders.messageId]: call.id,
      [deliveryHeaders.from]: call.asker,
    };
    const failed = (detail: string) => new SwxError('SWX_PROVIDER_ERROR', `${call.provider}: ${detail}`);
    const response = await this.post(url, headers, providerRequestComponents, body, body.length, { id: call.provider, tls }, call.signal).catch((error: Error) => {
      if (isAbort(error)) throw error;
      throw failed(error instanceof SwxError ? error.message : `${url.origin}: ${describeTransportFailure(error)}`);
    });
    const checked = await this.checkSigned(response, call.provider, call.id);
    // Only what the provider signed may reach the asker, its error text included.
    if (response.status !== 200) {
      throw failed(checked.ok ? `answered ${response.status}: ${response.body.toString('utf8').slice(0, 300)}` : `answered ${response.status}, not validly signed (${checked.detail}); its text is not passed on`);
    }
    if (!checked.ok) throw failed(`the answer ${checked.detail}`);
    let answer: { found?: unknown; record?: unknown };
    try { answer = JSON.parse(response.body.toString('utf8')) as typeof answer; } catch { throw failed('the answer is not JSON'); }
    const record = answer.record;
    if (typeof answer.found !== 'boolean' || (answer.found && (typeof record !== 'object' || record === null || Array.isArray(record)))) {
      throw failed('the answer must be { "found": boolean, "record": object when found }');
    }
    const signer = this.registry.keyByThumbprint(checked.signature.keyId);
    return {
      found: answer.found,
      ...(answer.found ? { record: record as Record<string, unknown> } : {}),
      raw: Buffer.from(rawAnswer(response)),
      contentType: 'application/json',
      signature: signatureInfo(checked.signature, signer?.certificate.toString()),
    };
  }

  /** One signed POST over the partner's keep-alive mutual-TLS agent; the answer is read up to a bound. */
  private post(url: URL, headers: Record<string, string>, components: string[], body: RequestBody, size: number, partner: { id: string; tls: ServerTrust | undefined }, signal: AbortSignal): Promise<HttpsAnswer> {
    Object.assign(headers, sign({ method: 'POST', targetUri: url.href, headers }, { ...this.hub.signing, components }));
    headers['content-length'] = String(size);
    return postHttps(url, { headers, agent: this.agents.for(partner.id, partner.tls), signal }, body, 1024 * 1024).catch((error: Error) => {
      throw error instanceof SwxError ? new SwxError(error.code, `${partner.id}: ${error.message}`) : error;
    });
  }

  /**
   * An answer is a signature like any other: signed by a key registered to `partnerId` that passes the trust store
   * (path, usage, revocation), naming `messageId`, with a matching Content-Digest.
   */
  private async checkSigned(response: HttpsAnswer, partnerId: string, messageId: string): Promise<{ ok: true; signature: Verified } | { ok: false; code?: string; detail: string }> {
    let signature: Verified;
    try {
      signature = verify({ status: response.status, headers: response.headers }, {
        required: receiptComponents,
        maxSkewSeconds: this.options.clockSkewSeconds,
        key: (keyId, declared) => this.registry.verificationKey(keyId, partnerId, declared),
      });
    } catch (error) {
      return { ok: false, detail: (error as Error).message };
    }
    const signer = this.registry.keyByThumbprint(signature.keyId);
    const refusal = signer ? await this.trust.check(signer.parsed, 'agency-signing') : undefined;
    if (refusal) return { ok: false, code: refusal.code, detail: `is signed with ${signature.keyId}: ${refusal.code}: ${refusal.detail}` };
    if (response.headers[envelopeHeaders.messageId] !== messageId || !checkContentDigest(String(response.headers['content-digest']), response.body)) {
      return { ok: false, detail: 'names another message or its digest does not match' };
    }
    return { ok: true, signature };
  }

  close(): void {
    this.agents.close();
  }
}

/** Whether a receipt says its receiver already had the message (the reference receiver's `duplicate: true`). */
function receiverHadIt(body: Buffer): boolean {
  try {
    return (JSON.parse(body.toString('utf8')) as { duplicate?: unknown }).duplicate === true;
  } catch {
    return false; // a receipt's body is the receiver's own: it need not be JSON
  }
}

const isAbort = (error: Error) => error.name === 'AbortError' || error.name === 'TimeoutError';

/** The answer as received, status line, signature headers and body, for evidence. */
function rawAnswer(response: HttpsAnswer): string {
  return [
    `HTTP ${response.status}`,
    `signature-input: ${response.headers['signature-input']}`,
    `signature: ${response.headers.signature}`,
    `content-digest: ${response.headers['content-digest']}`,
    '',
    response.body.toString('utf8'),
  ].join('\n');
}
