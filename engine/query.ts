// The query service's contract (即時查證): what an inbound connector hands the query pipeline for an asker, and
// what a provider connector must do to put a query to the providing agency. Protocol-neutral: keys and records are
// JSON values; connectors translate to and from SOAP or REST, so an asker and its provider may speak either.
import type { Protocol, SignatureInfo } from './envelope.ts';
import type { SwxError } from './errors.ts';

/** Every key value of a query is a string of this many characters (code points), whatever the protocol. */
export const keyValueLength = { min: 1, max: 64 } as const;

/**
 * Characters no key value may hold: controls (C0, DEL, C1), lone surrogates and the noncharacters U+FFFE and U+FFFF.
 * Not every protocol can carry them unchanged (XML cannot), and no identifier a dataset is queried by needs them.
 */
const unfitCharacter = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether a key value is one every protocol carries unchanged: its length counted in characters as JSON Schema and XML count. */
export const keyValueFits = (value: string) => {
  const characters = [...value].length;
  return characters >= keyValueLength.min && characters <= keyValueLength.max && !unfitCharacter.test(value);
};

/** A query as an inbound connector authenticated it: transport peer, signature and certificate already checked. */
export interface QueryRequest {
  /** The asker's request id when it gave one (REST Swx-Message-Id, SOAP wsa:MessageID), else the hub makes one. */
  id?: string;
  asker: string;
  dataset: string;
  /** Required only where the dataset has several providers. */
  provider?: string;
  keys: Record<string, string>;
  protocol: Protocol;
  /** The bytes as received and their content type: evidence of what was asked. */
  raw: Buffer;
  contentType: string;
  signature: SignatureInfo;
  /** What a replay of this request would repeat (the connector's replay key), when the asker gave no id. */
  replayKey?: string;
}

/**
 * A request that could not even be read as a query (bad signature, XML, size...), for the evidence of its refusal.
 * Its fields hold only well-formed values (a malformed one is left out), since they are stored.
 */
export type RefusedQuery = Partial<Omit<QueryRequest, 'raw'>> & { raw: Buffer; claimedId?: string };

export interface QueryAnswer {
  id: string;
  dataset: string;
  provider: string;
  found: boolean;
  /** The provider's record, present when found. */
  record?: Record<string, unknown>;
  /** When the hub received the provider's verified answer. */
  answeredAt: string;
  /** Provider time as the hub measured it (ms): the asker's latency minus this is the hub's own. */
  providerMs: number;
}

/** The query pipeline as connectors see it (pipelines/query.ts). */
export interface QueryService {
  /** Resolves with the verified answer, or rejects with an SwxError whose code the connector reports. */
  ask(request: QueryRequest): Promise<QueryAnswer>;
  /** Evidences a request refused before it was a query; returns the id it was evidenced under. */
  refuse(request: RefusedQuery, error: SwxError): Promise<string>;
}

/** What the pipeline asks a provider connector: one query to one provider agency, as the hub. */
export interface ProviderCall {
  id: string;
  asker: string;
  dataset: string;
  provider: string;
  keys: Record<string, string>;
  /** The provider's endpoint for this connector's protocol, as the connector declared its shape (engine/endpoints.ts). */
  endpoint: Record<string, unknown>;
  /** Aborted at the deadline. */
  signal: AbortSignal;
}

/** A provider's answer whose signature the connector verified against the provider's registered certificates. */
export interface ProviderAnswer {
  found: boolean;
  record?: Record<string, unknown>;
  raw: Buffer;
  contentType: string;
  signature: SignatureInfo;
}

/**
 * What a connector offers to put queries to providers over its protocol (connectors/rest, connectors/ws). Rejects with SwxError: SWX_PROVIDER_ERROR when the provider
 * answers with an error, an unsigned or badly signed answer, or one signed by a key that is not the provider's;
 * an abort of `signal` must reject promptly (the pipeline turns it into SWX_PROVIDER_TIMEOUT).
 */
export interface ProviderConnector {
  ask(call: ProviderCall): Promise<ProviderAnswer>;
}

/**
 * Claims a replay key once within its window, in this process: false when it was already claimed. Other hub
 * processes are covered by the evidence stream, which refuses a second publish under the key (replayMessageId).
 */
export interface ReplayGuard {
  claim(key: string): boolean;
}

/** The id a refused or failed query was evidenced under, carried on the error so connectors can tell the asker. */
const queryIds = new WeakMap<SwxError, string>();
export function withQueryId(error: SwxError, id: string): SwxError {
  queryIds.set(error, id);
  return error;
}
export function queryIdOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? queryIds.get(error as SwxError) : undefined;
}
