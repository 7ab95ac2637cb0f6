// SOAP outbound for the query service: the hub puts a query to a provider agency as a hub-signed SOAP 1.1 request over
// mutual TLS, and accepts only a fresh q:Answer to that very query, signed by a trusted certificate of that provider.
import { postHttps, type HttpsAnswer } from '../../engine/http.ts';
import { SwxError } from '../../engine/errors.ts';
import { checkWsSecurity, type CertificateCheck, type VerifyXml } from '../../engine/trust/index.ts';
import type { ProviderAnswer, ProviderCall, ProviderConnector } from '../../engine/query.ts';
import type { Registry } from '../../engine/registry.ts';
import { describeTransportFailure, PartnerAgents, type ClientCredential } from '../../engine/server-trust.ts';
import { soapAction } from './contract.ts';
import type { SoapEndpoint } from './endpoint.ts';
import { contextXml, queryXml, readAnswer } from './messages.ts';
import { readFault, readSoap, soapContentType, writeSignedEnvelope, type SoapSigner } from './soap.ts';

export interface SoapProviderOptions {
  /** The hub's TLS client credential, and the CAs a provider's server chains to unless its endpoint says others. */
  tls: ClientCredential;
  /** The hub's signing key and certificate. */
  signing: SoapSigner;
  registry: Pick<Registry, 'keyByThumbprint'>;
  trust: CertificateCheck;
  verifyXml?: VerifyXml;
  clockSkewSeconds?: number;
  freshnessSeconds?: number;
  /** Largest answer read (default 4 MiB). */
  maxAnswerBytes?: number;
  /** Sockets kept per provider host (default 16). */
  maxSockets?: number;
}

const failed = (call: ProviderCall, detail: string) => new SwxError('SWX_PROVIDER_ERROR', `${call.provider} (${call.dataset}, query ${call.id}): ${detail}`);

export class SoapProvider implements ProviderConnector {
  private readonly agents: PartnerAgents;

  constructor(private readonly options: SoapProviderOptions) {
    this.agents = new PartnerAgents(options.tls, options.maxSockets ?? 16);
  }

  async ask(call: ProviderCall): Promise<ProviderAnswer> {
    const context = contextXml({ queryId: call.id, dataset: call.dataset, asker: call.asker });
    const body = Buffer.from(writeSignedEnvelope('1.1', queryXml({ provider: call.provider, keys: call.keys }), this.options.signing, [context]));
    const response = await this.post(call, body);
    const contentType = String(response.headers['content-type'] ?? '');
    let answer: ProviderAnswer;
    try {
      answer = await this.judge(call, response.status, response.body, contentType);
    } catch (error) {
      if (error instanceof SwxError && error.code === 'SWX_PROVIDER_ERROR') throw error;
      throw failed(call, `${error instanceof SwxError ? `${error.code}: ` : ''}${(error as Error).message}`);
    }
    return answer;
  }

  private post(call: ProviderCall, body: Buffer): Promise<HttpsAnswer> {
    const limit = this.options.maxAnswerBytes ?? 4 * 1024 * 1024;
    const { queryUrl, tls } = call.endpoint as SoapEndpoint;
    return postHttps(queryUrl, {
      agent: this.agents.for(call.provider, tls),
      signal: call.signal,
      headers: { 'content-type': soapContentType('1.1'), soapaction: `"${soapAction(call.dataset)}"`, 'content-length': body.length },
    }, body, limit).catch((error: Error) => {
      if (error instanceof SwxError) throw failed(call, error.message);
      if (call.signal.aborted) throw new SwxError('SWX_PROVIDER_TIMEOUT', `${call.provider} did not answer query ${call.id} before the deadline`);
      throw failed(call, `cannot reach ${new URL(queryUrl).origin}: ${describeTransportFailure(error)}`);
    });
  }

  /** The answer as the provider signed it, or SWX_PROVIDER_ERROR saying what is wrong with it. */
  private async judge(call: ProviderCall, status: number, raw: Buffer, contentType: string): Promise<ProviderAnswer> {
    const message = readSoap(raw, contentType);
    const fault = readFault(message);
    // Only what the provider signed may reach the asker: a fault's text too, so its signature is checked first.
    const unsignedFault = () => failed(call, `answered a fault (HTTP ${status}) that is not validly signed by ${call.provider}; its text is not passed on`);
    const security = await checkWsSecurity(message, {
      ...(this.options.verifyXml ? { verifyXml: this.options.verifyXml } : {}),
      ...(this.options.clockSkewSeconds !== undefined ? { clockSkewSeconds: this.options.clockSkewSeconds } : {}),
      ...(this.options.freshnessSeconds !== undefined ? { freshnessSeconds: this.options.freshnessSeconds } : {}),
    }).catch((error: unknown) => { throw fault ? unsignedFault() : error; });
    const signer = this.options.registry.keyByThumbprint(security.thumbprint);
    if (!signer || signer.partner.id !== call.provider) throw fault ? unsignedFault() : failed(call, `the answer is signed with ${security.thumbprint}, which is not a certificate of ${call.provider}`);
    const refusal = await this.options.trust.check(signer.parsed, 'agency-signing');
    if (refusal) throw failed(call, `the answer's signing certificate ${security.thumbprint}: ${refusal.code}: ${refusal.detail}`);
    if (fault) throw failed(call, `answered a signed fault (HTTP ${status}${fault.code ? `, ${fault.code}` : ''}): ${fault.reason}`);
    if (status !== 200) throw failed(call, `answered HTTP ${status}`);
    const answer = readAnswer(message.payload);
    // Signed, but for this query? The q:queryId binds the answer to the question the hub asked.
    if (answer.queryId !== call.id || answer.dataset !== call.dataset || answer.provider !== call.provider) {
      throw failed(call, `the answer is for query ${answer.queryId.slice(0, 80)} of ${answer.dataset.slice(0, 80)} by ${answer.provider.slice(0, 40)}, not this one`);
    }
    return {
      found: answer.found,
      ...(answer.record ? { record: answer.record } : {}),
      raw,
      contentType,
      signature: security.signature,
    };
  }

  close(): void {
    this.agents.close();
  }
}
