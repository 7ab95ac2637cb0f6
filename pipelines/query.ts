// The query service (即時查證): an asker's verified request is checked against the catalogue and the asker's rate
// limit, put to the provider through the provider's connector with a deadline, and the provider's verified answer
// goes back to the asker. Synchronous in the process that took the request: a query is worth nothing after its
// deadline, so it is not queued for redelivery. What makes it evidence is that the request and the answer are
// both on the evidence stream (acknowledged by JetStream) before the asker sees the answer. A hub that dies while
// a provider works leaves no record of that query: its asker got no answer either, and asks again.
import { createHash, randomUUID } from 'node:crypto';
import type { Catalogue } from '../engine/catalogue.ts';
import { endpointFor } from '../engine/endpoints.ts';
import { messageIdPattern } from '../engine/envelope.ts';
import { SwxError } from '../engine/errors.ts';
import { sameMessage, type EvidenceLog, type EvidenceRecord } from '../engine/evidence.ts';
import { log } from '../engine/log.ts';
import { queriesTotal, queryLatency } from '../engine/metrics.ts';
import { replayMessageId } from '../engine/replay.ts';
import { keyValueFits, keyValueLength, withQueryId, type ProviderAnswer, type ProviderConnector, type QueryAnswer, type QueryRequest, type QueryService, type RefusedQuery, type ReplayGuard } from '../engine/query.ts';
import { Unauthenticated } from '../engine/peer.ts';
import type { RateLimiter } from '../engine/ratelimit.ts';
import type { Registry } from '../engine/registry.ts';
import type { UnauthenticatedRefusals } from '../engine/unauthenticated.ts';

export interface QueryPipelineOptions {
  catalogue: Pick<Catalogue, 'decide' | 'dataset'>;
  registry: Pick<Registry, 'partner'>;
  evidence: EvidenceLog;
  /** Counts requests refused before a registered certificate named their sender. */
  refusals: Pick<UnauthenticatedRefusals, 'count'>;
  limiter: Pick<RateLimiter, 'take'>;
  /** The started connector that puts queries over a protocol, if this hub runs one. */
  providers: (protocol: string) => ProviderConnector | undefined;
  deadlineMs: number;
  /** Claims asker-chosen query ids, so that each names one query's evidence. */
  replay?: ReplayGuard;
  /** Why no query may be taken now (evidence cannot be time-stamped), if that is so. */
  admission?: () => SwxError | undefined;
}

// Labelled once: prom-client hashes a labels object on every observation.
const latency = { provider: queryLatency.labels({ part: 'provider' }), hub: queryLatency.labels({ part: 'hub' }) };

export class QueryPipeline implements QueryService {
  constructor(private readonly options: QueryPipelineOptions) {}

  async ask(request: QueryRequest): Promise<QueryAnswer> {
    const started = performance.now();
    const id = request.id ?? randomUUID();
    if (!messageIdPattern.test(id)) {
      throw await this.refused(request, id, new SwxError('SWX_BAD_REQUEST', 'the query id must be 1-128 characters of letters, digits and . _ : @ -'));
    }
    // An asker's own id names its query's evidence: one query per id (and asker) within the replay window.
    const idKey = request.id !== undefined ? `query-id:${request.asker}:${request.id}` : undefined;
    if (idKey && this.options.replay && !this.options.replay.claim(idKey)) throw await this.reused(request);
    // The evidence is published under this key: another hub process that took the same query adds nothing to it.
    // An asker's own id covers a replay of its signed request too (same id); otherwise the connector's replay key does.
    const dedupeKey = idKey ?? request.replayKey;
    const evidenceId = dedupeKey ? replayMessageId(dedupeKey) : undefined;
    let provider = request.provider ?? '';
    try {
      const refusal = this.options.admission?.();
      if (refusal) throw refusal;
      const admitted = this.options.limiter.take(request.asker);
      if (!admitted.allowed) {
        throw new SwxError('SWX_RATE_LIMITED', `${request.asker} asks faster than its limit; retry after ${admitted.retryAfterSeconds} s`, { retryAfterSeconds: admitted.retryAfterSeconds });
      }
      const decision = this.options.catalogue.decide(request.asker, request.dataset, request.provider);
      if (!decision.allowed) throw new SwxError(decision.code, decision.detail);
      provider = decision.provider;
      checkKeys(this.options.catalogue.dataset(request.dataset)!.keys, request.keys);
    } catch (error) {
      throw await this.refused({ ...request, provider }, id, error);
    }

    // The request's and the outcome's records travel as one stream message once the provider is done: one
    // acknowledged publish per query, and the asker hears nothing before it.
    const received = this.received(request, id, provider);
    let answer: ProviderAnswer;
    let providerMs = 0;
    try {
      const endpoint = this.endpointOf(provider, request.dataset);
      const providerStarted = performance.now();
      answer = await this.callProvider(endpoint.connector, {
        id, asker: request.asker, dataset: request.dataset, provider, keys: request.keys, endpoint: endpoint.endpoint,
      });
      providerMs = performance.now() - providerStarted;
    } catch (error) {
      const swx = asSwxError(error);
      const fresh = await this.options.evidence.publish([received, this.options.evidence.record({
        ...sameMessage(received), stage: 'query_failed', code: swx.code, detail: swx.message,
      })], evidenceId).catch((publishError) => {
        log.error({ err: publishError, id }, 'query failure not evidenced');
        return true;
      });
      if (!fresh) throw await this.reused(request);
      queriesTotal.inc({ dataset: request.dataset, provider, outcome: swx.code });
      throw withQueryId(swx, id);
    }
    const answeredAt = new Date().toISOString();
    let fresh: boolean;
    try {
      fresh = await this.options.evidence.publish([received, this.options.evidence.record({
        ...sameMessage(received),
        stage: 'answered',
        at: answeredAt,
        from: provider,
        to: request.asker,
        size: answer.raw.length,
        sha256: createHash('sha256').update(answer.raw).digest('hex'),
        raw: answer.raw.toString('base64'),
        signature: JSON.stringify(answer.signature),
        detail: answer.found ? 'found' : 'not found',
      })], evidenceId);
    } catch (error) {
      // Never hand out an answer the evidence does not hold.
      queriesTotal.inc({ dataset: request.dataset, provider, outcome: 'SWX_UNAVAILABLE' });
      throw withQueryId(new SwxError('SWX_UNAVAILABLE', 'the answer could not be evidenced; ask again', { cause: error }), id);
    }
    // Another hub process answered this same query first: this answer is not handed out.
    if (!fresh) throw await this.reused(request);
    const totalMs = performance.now() - started;
    latency.provider.observe(providerMs / 1000);
    latency.hub.observe((totalMs - providerMs) / 1000);
    queriesTotal.inc({ dataset: request.dataset, provider, outcome: 'answered' });
    return {
      id, dataset: request.dataset, provider, found: answer.found,
      ...(answer.found && answer.record ? { record: answer.record } : {}),
      answeredAt, providerMs,
    };
  }

  async refuse(request: RefusedQuery, error: SwxError): Promise<string> {
    if (error instanceof Unauthenticated) {
      return this.options.refusals.count(error, { protocol: request.protocol, dataset: request.dataset, messageId: request.claimedId });
    }
    // Before the signature checked out the claimed id is the sender's word only: evidence it under a fresh id.
    const id = request.signature && request.id && messageIdPattern.test(request.id) ? request.id : randomUUID();
    const claimed = request.signature ? undefined : request.claimedId ?? request.id;
    await this.evidenceRefusal(request, id, error, claimed);
    return id;
  }

  /** A query this hub (any of its processes) has already taken: its asker's id was used, or its request replayed. */
  private reused(request: QueryRequest): Promise<SwxError> {
    const error = request.id !== undefined
      ? new SwxError('SWX_DUPLICATE_CONFLICT', `query id ${request.id} was already used by ${request.asker}; give each query a new id`)
      : new SwxError('SWX_REPLAY', 'this signed query was already received; sign each query afresh');
    return this.refused(request, randomUUID(), error, request.id);
  }

  private async refused(request: RefusedQuery, id: string, error: unknown, claimedId?: string): Promise<SwxError> {
    const swx = asSwxError(error);
    await this.evidenceRefusal(request, id, swx, claimedId).catch((publishError) => log.error({ err: publishError, id }, 'query refusal not evidenced'));
    queriesTotal.inc({ dataset: request.dataset ?? '', provider: request.provider ?? '', outcome: swx.code });
    return withQueryId(swx, id);
  }

  private async evidenceRefusal(request: RefusedQuery, id: string, error: SwxError, claimedId?: string): Promise<void> {
    const received = this.received(request, id, request.provider ?? '');
    await this.options.evidence.publish([received, this.options.evidence.record({
      ...sameMessage(received), stage: 'rejected', code: error.code,
      detail: claimedId ? `${error.message} (claimed query id ${String(claimedId).slice(0, 128)}, not authenticated)` : error.message,
    })]);
  }

  private received(request: RefusedQuery, id: string, provider: string): EvidenceRecord {
    return this.options.evidence.record({
      messageId: id,
      conversationId: id,
      stage: 'received',
      from: request.asker ?? '',
      to: provider,
      service: request.dataset ? `query.${request.dataset}` : 'query',
      action: 'query',
      protocol: request.protocol ?? '',
      size: request.raw.length,
      sha256: createHash('sha256').update(request.raw).digest('hex'),
      raw: request.raw.toString('base64'),
      ...(request.signature ? { signature: JSON.stringify(request.signature) } : {}),
    });
  }

  /** The provider's endpoint for queries on this dataset (or its service), and the connector that speaks to it. */
  private endpointOf(provider: string, dataset: string): { connector: ProviderConnector; endpoint: Record<string, unknown> } {
    const partner = this.options.registry.partner(provider);
    const service = this.options.catalogue.dataset(dataset)?.service.id;
    const chosen = partner?.enabled ? endpointFor(partner, service ? [dataset, service] : [dataset], 'query') : undefined;
    if (!chosen) throw new SwxError('SWX_PROVIDER_ERROR', `${provider} has no query endpoint registered`);
    const connector = this.options.providers(chosen.protocol);
    if (!connector) throw new SwxError('SWX_PROVIDER_ERROR', `${provider} answers over ${chosen.protocol}, which this hub does not run`);
    return { connector, endpoint: chosen.endpoint };
  }

  private async callProvider(connector: ProviderConnector, call: Omit<Parameters<ProviderConnector['ask']>[0], 'signal'>): Promise<ProviderAnswer> {
    const deadline = new AbortController();
    const timedOut = () => new SwxError('SWX_PROVIDER_TIMEOUT', `${call.provider} did not answer within ${this.options.deadlineMs} ms`);
    // The connector must stop at the deadline; the race makes sure the asker hears at the deadline even if it does not.
    // One timer, cleared with the answer (AbortSignal.timeout's would stay armed for the whole deadline).
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => { deadline.abort(); reject(timedOut()); }, this.options.deadlineMs);
    });
    try {
      return await Promise.race([connector.ask({ ...call, signal: deadline.signal }), late]);
    } catch (error) {
      if (deadline.signal.aborted) throw timedOut();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The query must name exactly the dataset's keys, each a short string. */
function checkKeys(expected: readonly string[], keys: unknown): void {
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw new SwxError('SWX_BAD_REQUEST', 'the query keys must be an object');
  const given = Object.keys(keys);
  const unknown = given.find((key) => !expected.includes(key));
  if (unknown !== undefined) throw new SwxError('SWX_BAD_REQUEST', `unknown query key ${JSON.stringify(unknown.slice(0, 40))}; this dataset is queried by ${expected.join(' + ')}`);
  for (const key of expected) {
    const value = (keys as Record<string, unknown>)[key];
    if (typeof value !== 'string' || !keyValueFits(value)) {
      throw new SwxError('SWX_BAD_REQUEST', `query key ${key} must be a string of ${keyValueLength.min}-${keyValueLength.max} characters, none a control character, lone surrogate or noncharacter`);
    }
  }
}

function asSwxError(error: unknown): SwxError {
  if (error instanceof SwxError) return error;
  log.error({ err: error }, 'query failed: internal error');
  return new SwxError('SWX_INTERNAL', 'the hub could not complete this query; retry', { cause: error });
}
