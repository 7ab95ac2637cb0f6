// The query service's SOAP payloads: q:Query, q:Answer and the hub's q:Context header, written and read (strictly).
import { randomUUID } from 'node:crypto';
import { SwxError } from '../../engine/errors.ts';
import { partnerId } from '../../engine/registry.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';
import { keyValueFits, keyValueLength } from '../../engine/query.ts';
import { wsuNamespace } from '../../engine/trust/index.ts';
import { elementChildren, textOf } from '../../engine/xml/elements.ts';
import { queryNamespace } from './contract.ts';
import { jsonToXml, xmlToJson } from './json-xml.ts';
import { escapeXml, hasNonXmlChar } from '../../engine/xml/text.ts';

const q = (name: string, value: string) => `<q:${name}>${escapeXml(value)}</q:${name}>`;
const bad = (detail: string) => new SwxError('SWX_BAD_REQUEST', detail);

export interface QueryPayload {
  provider?: string;
  keys: Record<string, string>;
}

/**
 * A q:Query in exclusive-c14n form, as the hub signs it (soap.ts writeSignedEnvelope). A value with a character
 * XML cannot carry (a control character, a lone surrogate) is refused with SWX_BAD_REQUEST naming it: written, it
 * would change, and the provider would be asked something other than what the asker signed.
 */
export function queryXml(query: QueryPayload): string {
  const fields: [string, string][] = [...(query.provider !== undefined ? [['provider', query.provider] as [string, string]] : []), ...Object.entries(query.keys)];
  const unwritable = fields.find(([, value]) => hasNonXmlChar(value));
  if (unwritable) {
    throw bad(`query key ${unwritable[0].slice(0, 40)} holds a control character or lone surrogate, which SOAP (XML) cannot carry unchanged; the query is refused rather than altered`);
  }
  return `<q:Query xmlns:q="${queryNamespace}">${query.provider !== undefined ? q('provider', query.provider) : ''}`
    + `${Object.entries(query.keys).map(([name, value]) => q(name, value)).join('')}</q:Query>`;
}

/** The q:* elements of `parent`, each text only, each once; refuses anything else. */
function fields(parent: XmlElement, what: string, except?: XmlElement): Map<string, string> {
  const out = new Map<string, string>();
  for (const child of parent.children) {
    if (child.type === 'text' && child.value.trim() !== '') throw bad(`${what} holds text outside its elements`);
  }
  for (const child of elementChildren(parent)) {
    if (child === except) continue;
    if (child.namespace !== queryNamespace) throw bad(`${what} may hold only ${queryNamespace} elements, not <${child.qualifiedName.slice(0, 80)}>`);
    if (out.has(child.localName)) throw bad(`${what} holds ${child.localName} twice`);
    out.set(child.localName, textOf(child));
  }
  return out;
}


/**
 * A q:Query. With `keys` (the dataset's), exactly those keys must be there, each a string of 1-64 characters;
 * without, every element but q:provider is taken as a key (the provider side, which knows its own datasets).
 */
export function readQuery(payload: XmlElement, keys?: readonly string[]): QueryPayload {
  if (payload.namespace !== queryNamespace || payload.localName !== 'Query') throw bad(`the Body holds <${payload.qualifiedName.slice(0, 80)}>, not q:Query`);
  const found = fields(payload, 'q:Query');
  const provider = found.get('provider');
  found.delete('provider');
  if (keys) {
    const unknown = [...found.keys()].filter((name) => !keys.includes(name));
    const missing = keys.filter((name) => !found.has(name));
    if (unknown.length || missing.length) {
      throw bad(`q:Query must hold exactly the keys ${keys.join(', ')}${missing.length ? `; missing ${missing.join(', ')}` : ''}${unknown.length ? `; unknown ${unknown.slice(0, 8).join(', ').slice(0, 200)}` : ''}`);
    }
  }
  for (const [name, value] of found) {
    if (!keyValueFits(value)) throw bad(`q:${name} must be ${keyValueLength.min}-${keyValueLength.max} characters`);
  }
  if (provider !== undefined && !partnerId.safeParse(provider).success) throw bad('q:provider must be an agency id (upper-case letters, digits and -)');
  return { ...(provider !== undefined ? { provider } : {}), keys: Object.fromEntries(found) };
}

export interface QueryContext {
  queryId: string;
  dataset: string;
  asker: string;
}

/** The hub's q:Context header block, in exclusive-c14n form, and the wsu:Id to sign it by. */
export function contextXml(context: QueryContext): { xml: string; id: string } {
  const id = `ctx-${randomUUID()}`;
  const xml = `<q:Context xmlns:q="${queryNamespace}" xmlns:wsu="${wsuNamespace}" wsu:Id="${id}">`
    + `${q('queryId', context.queryId)}${q('dataset', context.dataset)}${q('asker', context.asker)}</q:Context>`;
  return { xml, id };
}

export function readContext(block: XmlElement): QueryContext {
  const found = fields(block, 'q:Context');
  const [queryId, dataset, asker] = ['queryId', 'dataset', 'asker'].map((name) => found.get(name));
  if (!queryId || !dataset || !asker || found.size !== 3) throw bad('q:Context must hold q:queryId, q:dataset and q:asker');
  return { queryId, dataset, asker };
}

export interface AnswerPayload {
  queryId: string;
  dataset: string;
  provider: string;
  found: boolean;
  answeredAt: string;
  record?: Record<string, unknown>;
}

/** A q:Answer in exclusive-c14n form, so that its signer digests it as written (soap.ts writeSignedEnvelope). */
export function answerXml(answer: AnswerPayload): string {
  return `<q:Answer xmlns:q="${queryNamespace}">${q('queryId', answer.queryId)}${q('dataset', answer.dataset)}${q('provider', answer.provider)}`
    + `${q('found', String(answer.found))}${q('answeredAt', answer.answeredAt)}`
    + `${answer.record !== undefined ? `<q:record>${jsonToXml(answer.record)}</q:record>` : ''}</q:Answer>`;
}

/** A q:Answer: the record must be a JSON object (fn:json-to-xml map) and be present exactly when found. */
export function readAnswer(payload: XmlElement): AnswerPayload {
  if (payload.namespace !== queryNamespace || payload.localName !== 'Answer') throw bad(`the Body holds <${payload.qualifiedName.slice(0, 80)}>, not q:Answer`);
  const recordElement = elementChildren(payload).find((child) => child.namespace === queryNamespace && child.localName === 'record');
  const found = fields(payload, 'q:Answer', recordElement);
  const [queryId, dataset, provider, foundText, answeredAt] = ['queryId', 'dataset', 'provider', 'found', 'answeredAt'].map((name) => found.get(name)?.trim());
  if (!queryId || !dataset || !provider || !foundText || !answeredAt || found.size !== 5) {
    throw bad('q:Answer must hold q:queryId, q:dataset, q:provider, q:found, q:answeredAt and at most a q:record');
  }
  if (!['true', 'false', '1', '0'].includes(foundText)) throw bad('q:found must be an xsd:boolean');
  if (Number.isNaN(Date.parse(answeredAt))) throw bad('q:answeredAt must be an xsd:dateTime');
  const isFound = foundText === 'true' || foundText === '1';
  let record: Record<string, unknown> | undefined;
  if (recordElement) {
    const content = elementChildren(recordElement);
    if (content.length !== 1) throw bad('q:record must hold one fn:json-to-xml map');
    const value = xmlToJson(content[0]!);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('q:record must hold a map (a JSON object)');
    record = value as Record<string, unknown>;
  }
  if (isFound !== (record !== undefined)) throw bad(isFound ? 'q:found is true but there is no q:record' : 'q:found is false but a q:record is given');
  return { queryId, dataset, provider, found: isFound, answeredAt, ...(record ? { record } : {}) };
}
