// HTTP Message Signatures (RFC 9421) and Content-Digest (RFC 9530) for the REST connector.
// Hot path: keys arrive as ready KeyObjects, so a verify parses only the two signature fields and the target URI.

import type { SignatureInfo } from './envelope.ts';
import { constants, createHash, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  isInnerList,
  parseDictionary,
  parseItem,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeParameters,
  type InnerList,
  type Item,
  type Parameters,
} from 'structured-headers';

export type SigAlg = 'ecdsa-p256-sha256' | 'ecdsa-p384-sha384' | 'rsa-pss-sha512' | 'rsa-v1_5-sha256' | 'ed25519';

/** A message as seen by the signer/verifier. Header names lower-case. A response sets `status`; `request` serves `;req` components. */
export interface HttpMessage {
  method?: string;
  targetUri?: string;
  status?: number;
  headers: Record<string, string | string[] | undefined>;
  request?: HttpMessage;
}

/**
 * Component identifiers are written as in a Signature-Input field, quotes optional:
 * `@method`, `content-digest`, `content-digest;req`, `@query-param;name="id"`.
 */
export interface SignOptions {
  key: KeyObject;
  keyId: string;
  alg: SigAlg;
  components: string[];
  /** Unix seconds; default now. */
  created?: number;
  expires?: number;
  nonce?: string;
  tag?: string;
  /** Dictionary key in Signature-Input and Signature; default 'sig1'. */
  label?: string;
  /** Also emit the `alg` parameter; off by default, as in the RFC examples (the keyid fixes the algorithm). */
  includeAlg?: boolean;
}

export interface VerifyOptions {
  /** Resolve the key for a keyid (throw or return undefined when unknown). `alg` is the signer's `alg` parameter, if any. */
  key: (keyId: string, alg: string | undefined) => { key: KeyObject; alg: SigAlg } | undefined;
  /** Components that must be covered, e.g. ['@method', '@target-uri', 'content-digest']. */
  required: string[];
  maxSkewSeconds: number;
  /** Unix seconds; default now. */
  now?: number;
  /** Which signature to check; default the first one in Signature-Input. */
  label?: string;
}

export interface Verified {
  keyId: string;
  alg: SigAlg;
  /** Covered components in the notation of `SignOptions.components`, e.g. `content-digest;req`. */
  covered: string[];
  created: number;
  expires?: number;
  nonce?: string;
  tag?: string;
  label: string;
  /** `label=(...);created=...` and `label=:...:`, kept for evidence. */
  signatureInput: string;
  signature: string;
  /** The signature base the signature was checked over: with the key, it proves the signature to anyone, later. */
  base: string;
}

export type HttpSigReason =
  | 'missing' // no Signature-Input/Signature, or not the requested label
  | 'malformed' // fields do not parse, or parameters/components are not usable
  | 'absent-component' // a covered component has no value in the message
  | 'unknown-key' // the keyid resolves to no usable key
  | 'not-covered' // a required component is not covered
  | 'expired' // created older than the allowed skew, or past expires
  | 'future' // created further ahead than the allowed skew
  | 'invalid'; // the signature does not verify

export class HttpSigError extends Error {
  readonly reason: HttpSigReason;
  constructor(reason: HttpSigReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
    this.name = 'HttpSigError';
  }
}

// ---- Content-Digest (RFC 9530) ----

const DIGEST_ALGS: Record<string, 'sha256' | 'sha512'> = { 'sha-256': 'sha256', 'sha-512': 'sha512' };

export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** True when at least one sha-256/sha-512 member is present and every such member matches; other algorithms are ignored. */
export function checkContentDigest(header: string | undefined, body: Uint8Array): boolean {
  return checkContentDigestWith(header, (hash) => createHash(hash).update(body).digest());
}

/** The hashes (node:crypto names) whose digests `header` names, for a body hashed as it streams past. */
export function contentDigestHashes(header: string | undefined): ('sha256' | 'sha512')[] {
  return header && /sha-512\s*=/.test(header) ? ['sha256', 'sha512'] : ['sha256'];
}

/** As checkContentDigest, with the body's digests computed elsewhere (as it streamed past): `digest` gives each. */
export function checkContentDigestWith(header: string | undefined, digest: (hash: 'sha256' | 'sha512') => Uint8Array): boolean {
  if (!header) return false;
  const canonical = canonicalBytes(header);
  const hash = canonical ? DIGEST_ALGS[canonical.key] : undefined;
  if (hash) return Buffer.from(digest(hash)).equals(canonical!.bytes);
  let members;
  try {
    members = parseDictionary(header);
  } catch {
    return false;
  }
  let checked = 0;
  for (const [name, member] of members) {
    const hash = DIGEST_ALGS[name];
    if (!hash) continue;
    const value = isInnerList(member) ? undefined : member[0];
    if (!(value instanceof ArrayBuffer)) return false;
    if (!Buffer.from(digest(hash)).equals(new Uint8Array(value))) return false;
    checked++;
  }
  return checked > 0;
}

// ---- Algorithms ----

interface AlgSpec {
  hash: string | null;
  keyTypes: string[];
  curve?: string;
  options: { dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number };
}

const ALGS: Record<SigAlg, AlgSpec> = {
  'ecdsa-p256-sha256': { hash: 'sha256', keyTypes: ['ec'], curve: 'prime256v1', options: { dsaEncoding: 'ieee-p1363' } },
  'ecdsa-p384-sha384': { hash: 'sha384', keyTypes: ['ec'], curve: 'secp384r1', options: { dsaEncoding: 'ieee-p1363' } },
  'rsa-pss-sha512': { hash: 'sha512', keyTypes: ['rsa', 'rsa-pss'], options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 } },
  'rsa-v1_5-sha256': { hash: 'sha256', keyTypes: ['rsa'], options: { padding: constants.RSA_PKCS1_PADDING } },
  ed25519: { hash: null, keyTypes: ['ed25519'], options: {} },
};

/** Checks a signature over a signature base; a malformed signature is false, not an exception. */
export function verifySignatureBase(base: string, signature: Buffer, key: KeyObject, alg: SigAlg): boolean {
  const spec = ALGS[alg];
  try {
    return cryptoVerify(spec.hash, Buffer.from(base, 'latin1'), { key, ...spec.options }, signature);
  } catch {
    return false;
  }
}

export function isSigAlg(alg: string): alg is SigAlg {
  return Object.hasOwn(ALGS, alg);
}

/** Each EC key's curve: asymmetricKeyDetails asks OpenSSL afresh on every read, and every signature reads it. */
const curves = new WeakMap<KeyObject, string | undefined>();
function namedCurve(key: KeyObject): string | undefined {
  if (!curves.has(key)) curves.set(key, key.asymmetricKeyDetails?.namedCurve);
  return curves.get(key);
}

/** Why `key` cannot serve `alg`, or undefined when it can. */
function keyMismatch(key: KeyObject, alg: SigAlg): string | undefined {
  if (!isSigAlg(alg)) return `${String(alg)} is not a supported algorithm`;
  const spec = ALGS[alg];
  const type = key.asymmetricKeyType;
  if (!type || !spec.keyTypes.includes(type)) return `a ${type ?? key.type} key cannot sign ${alg}`;
  if (spec.curve && namedCurve(key) !== spec.curve) return `an EC key on ${namedCurve(key)} cannot sign ${alg}`;
  return undefined;
}

// ---- Components ----

/** A covered component: its name, its parameters, and its serialized identifier as it appears in the signature base. */
interface Component {
  name: string;
  params: Parameters;
  id: string;
}

const NAME = /^@?[a-z0-9!#$%&'*+.^_`|~-]+$/;
const NO_PARAMS: Parameters = new Map();

function component(name: string, params: Parameters): Component {
  if (!NAME.test(name)) throw new HttpSigError('malformed', `component name "${name}" is not a lower-case field name or derived component`);
  if (name === '@signature-params') throw new HttpSigError('malformed', '@signature-params cannot be a covered component');
  return { name, params, id: params.size === 0 ? `"${name}"` : serializeItem(name, params) };
}

/** Parse `name`, `name;param`, or `"name";param` into a component. */
function parseComponent(text: string): Component {
  const semi = text.indexOf(';');
  if (!text.startsWith('"') && semi < 0) return component(text, NO_PARAMS);
  let item: Item;
  try {
    item = parseItem(text.startsWith('"') ? text : `"${text.slice(0, semi)}"${text.slice(semi)}`);
  } catch (cause) {
    throw new HttpSigError('malformed', `component identifier ${text} does not parse`, { cause });
  }
  if (typeof item[0] !== 'string') throw new HttpSigError('malformed', `component identifier ${text} is not a string`);
  return component(item[0], item[1]);
}

/** The notation callers use: the bare name, then any parameters. */
function display(c: Component): string {
  return c.params.size === 0 ? c.name : c.name + serializeParameters(c.params);
}

// Structured fields we know the type of, for the `sf` and `key` parameters.
const DICTIONARY_FIELDS = new Set([
  'signature', 'signature-input', 'accept-signature', 'content-digest', 'repr-digest', 'want-content-digest', 'want-repr-digest',
]);

interface UriParts {
  scheme: string;
  authority: string;
  path: string;
  query: string | undefined;
}

const URI = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/;

/** Split an absolute target URI without normalising its path or query (RFC 9421 signs them as sent). */
function splitUri(uri: string): UriParts {
  const m = URI.exec(uri);
  if (!m) throw new HttpSigError('malformed', `target URI ${uri} is not absolute`);
  const scheme = m[1]!.toLowerCase();
  let authority = m[2]!.slice(m[2]!.lastIndexOf('@') + 1).toLowerCase();
  if (authority.endsWith(':')) authority = authority.slice(0, -1);
  else if (scheme === 'http' && authority.endsWith(':80')) authority = authority.slice(0, -3);
  else if (scheme === 'https' && authority.endsWith(':443')) authority = authority.slice(0, -4);
  return { scheme, authority, path: m[3] || '/', query: m[4] };
}

/** Re-encode a decoded query name or value with the x-www-form-urlencoded percent-encode set, space as %20 (RFC 9421 §2.2.8). */
function formEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()~]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

function absent(c: Component, why: string): HttpSigError {
  return new HttpSigError('absent-component', `covered component ${display(c)} ${why}`);
}

/** Resolves component values for one message, parsing its target URI at most once. */
class ComponentSource {
  private readonly message: HttpMessage;
  private uri: UriParts | undefined;
  private requestSource: ComponentSource | undefined;
  constructor(message: HttpMessage) {
    this.message = message;
  }

  value(c: Component): string {
    let source: ComponentSource = this;
    if (c.params.has('req')) {
      if (!this.message.request) throw absent(c, 'refers to the request, which is not available');
      source = this.requestSource ??= new ComponentSource(this.message.request);
    }
    return c.name.startsWith('@') ? source.derived(c) : source.field(c);
  }

  private uriParts(c: Component): UriParts {
    if (this.uri) return this.uri;
    if (this.message.targetUri === undefined) throw absent(c, 'needs the target URI, which is not set');
    return (this.uri = splitUri(this.message.targetUri));
  }

  private derived(c: Component): string {
    for (const key of c.params.keys()) {
      if (key !== 'req' && !(key === 'name' && c.name === '@query-param')) {
        throw new HttpSigError('malformed', `parameter ${key} is not allowed on ${c.name}`);
      }
    }
    switch (c.name) {
      case '@method':
        if (this.message.method === undefined) throw absent(c, 'needs a request method');
        return this.message.method;
      case '@target-uri':
        if (this.message.targetUri === undefined) throw absent(c, 'needs the target URI, which is not set');
        return this.message.targetUri;
      case '@authority':
        return this.uriParts(c).authority;
      case '@scheme':
        return this.uriParts(c).scheme;
      case '@request-target': {
        const { path, query } = this.uriParts(c);
        return query === undefined ? path : `${path}?${query}`;
      }
      case '@path':
        return this.uriParts(c).path;
      case '@query':
        return `?${this.uriParts(c).query ?? ''}`;
      case '@query-param':
        return this.queryParam(c);
      case '@status': {
        const status = this.message.status;
        if (status === undefined) throw absent(c, 'needs a response status');
        if (!Number.isInteger(status) || status < 100 || status > 999) throw new HttpSigError('malformed', `status ${status} is not a three-digit code`);
        return String(status);
      }
      default:
        throw new HttpSigError('malformed', `derived component ${c.name} is not supported`);
    }
  }

  private queryParam(c: Component): string {
    const name = c.params.get('name');
    if (typeof name !== 'string') throw new HttpSigError('malformed', '@query-param needs a string name parameter');
    let found: string | undefined;
    for (const [key, value] of new URLSearchParams(this.uriParts(c).query ?? '')) {
      if (formEncode(key) !== name) continue;
      if (found !== undefined) throw new HttpSigError('malformed', `query parameter ${name} occurs more than once; cover @query instead`);
      found = formEncode(value);
    }
    if (found === undefined) throw absent(c, 'is not in the query');
    return found;
  }

  private field(c: Component): string {
    const p = c.params;
    for (const key of p.keys()) {
      if (key !== 'req' && key !== 'sf' && key !== 'key' && key !== 'bs') {
        throw new HttpSigError('malformed', `parameter ${key} on ${c.name} is not supported`);
      }
    }
    const raw = this.message.headers[c.name];
    if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) throw absent(c, 'is not a header of the message');
    const lines = typeof raw === 'string' ? [raw.trim()] : raw.map((v) => v.trim());
    if (p.has('bs')) {
      if (p.has('sf') || p.has('key')) throw new HttpSigError('malformed', `bs cannot combine with sf or key on ${c.name}`);
      return lines.map((line) => `:${Buffer.from(line, 'latin1').toString('base64')}:`).join(', ');
    }
    const joined = lines.join(', ');
    if (!p.has('sf') && !p.has('key')) return joined;
    if (!DICTIONARY_FIELDS.has(c.name)) throw new HttpSigError('malformed', `${c.name} is not a known Dictionary field, so sf/key cannot apply`);
    let dict;
    try {
      dict = parseDictionary(joined);
    } catch (cause) {
      throw new HttpSigError('malformed', `${c.name} does not parse as a Dictionary`, { cause });
    }
    const key = p.get('key');
    if (key === undefined) return serializeDictionary(dict);
    if (typeof key !== 'string') throw new HttpSigError('malformed', `key parameter on ${c.name} must be a string`);
    const member = dict.get(key);
    if (member === undefined) throw absent(c, `has no member ${key}`);
    return isInnerList(member) ? serializeInnerList(member) : serializeItem(member);
  }
}

// Component values are single-line visible ASCII, so no value can forge another line of the base.
const UNSAFE = /[^\t\x20-\x7e]/;

function buildBase(message: HttpMessage, components: Component[], params: string): string {
  const source = new ComponentSource(message);
  const seen = new Set<string>();
  let base = '';
  for (const c of components) {
    if (seen.has(c.id)) throw new HttpSigError('malformed', `component ${display(c)} is covered twice`);
    seen.add(c.id);
    const value = source.value(c);
    if (UNSAFE.test(value)) throw new HttpSigError('malformed', `value of ${display(c)} holds characters outside visible ASCII`);
    base += `${c.id}: ${value}\n`;
  }
  return `${base}"@signature-params": ${params}`;
}

// ---- The canonical form, read without the general parser ----
// What signers write (and this module writes) is RFC 8941's own serialisation: one member, single spaces, each
// parameter once, integers without leading zeros, strings without escapes. Read directly, that form costs a tenth
// of the general parser; anything else goes to the parser, so both read every accepted value alike
// (test/engine/httpsig.test.ts holds them to each other).

const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_.*-]/;
/** `key=:base64:` with the base64 as written by an encoder: a Signature or a one-member Content-Digest. */
function canonicalBytes(header: string): { key: string; bytes: Buffer } | undefined {
  const match = /^([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):$/.exec(header);
  if (!match) return undefined;
  const bytes = Buffer.from(match[2]!, 'base64');
  return bytes.toString('base64') === match[2] ? { key: match[1]!, bytes } : undefined;
}

function readKey(text: string, at: number): number {
  if (!KEY_START.test(text[at] ?? '')) return -1;
  let end = at + 1;
  while (end < text.length && KEY_CHAR.test(text[end]!)) end++;
  return end;
}

/** A string without escapes at `at` (its value and where it ends), or undefined. */
function readPlainString(text: string, at: number): { value: string; end: number } | undefined {
  if (text[at] !== '"') return undefined;
  for (let i = at + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return { value: text.slice(at + 1, i), end: i + 1 };
    if (code === 0x5c || code < 0x20 || code > 0x7e) return undefined;
  }
  return undefined;
}

/** `;key`, `;key="string"` and (where allowed) `;key=integer`, each key once. */
function readPlainParams(text: string, at: number, integers: boolean): { params: Parameters; end: number } | undefined {
  const params: Parameters = new Map();
  let i = at;
  while (text[i] === ';') {
    const keyEnd = readKey(text, i + 1);
    if (keyEnd < 0) return undefined;
    const key = text.slice(i + 1, keyEnd);
    if (params.has(key)) return undefined;
    i = keyEnd;
    if (text[i] !== '=') {
      params.set(key, true);
      continue;
    }
    const string = readPlainString(text, i + 1);
    if (string) {
      params.set(key, string.value);
      i = string.end;
      continue;
    }
    const digits = integers ? /^(0|[1-9][0-9]{0,14})(?![0-9])/.exec(text.slice(i + 1, i + 17)) : null;
    if (!digits) return undefined;
    params.set(key, Number(digits[1]));
    i += 1 + digits[1]!.length;
  }
  return { params, end: i };
}

/** A Signature-Input of one member in canonical form, or undefined (then the general parser reads it). */
export function readCanonicalInput(header: string): { label: string; items: [string, Parameters][]; params: Parameters; serialized: string } | undefined {
  const labelEnd = readKey(header, 0);
  if (labelEnd < 0 || header[labelEnd] !== '=' || header[labelEnd + 1] !== '(') return undefined;
  const items: [string, Parameters][] = [];
  let i = labelEnd + 2;
  while (header[i] !== ')') {
    if (items.length > 0) {
      if (header[i] !== ' ') return undefined;
      i++;
    }
    const name = readPlainString(header, i);
    if (!name) return undefined;
    const params = readPlainParams(header, name.end, false);
    if (!params) return undefined;
    items.push([name.value, params.params]);
    i = params.end;
  }
  const params = readPlainParams(header, i + 1, true);
  if (!params || params.end !== header.length) return undefined;
  return { label: header.slice(0, labelEnd), items, params: params.params, serialized: header.slice(labelEnd + 1) };
}

/** The parameters' canonical serialisation when each is an integer or a string without escapes, else undefined. */
function plainParams(params: Parameters): string | undefined {
  let text = '';
  for (const [key, value] of params) {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 999_999_999_999_999) text += `;${key}=${value}`;
    else if (typeof value === 'string' && /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(value)) text += `;${key}="${value}"`;
    else return undefined;
  }
  return text;
}

// ---- Signature-Input ----

interface ParsedInput {
  label: string;
  components: Component[];
  params: Parameters;
  /** The serialized inner list: the @signature-params value. */
  serialized: string;
}

function fieldValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? (value.length ? value.join(', ') : undefined) : value;
}

function readInput(header: string, label: string | undefined): ParsedInput {
  const canonical = readCanonicalInput(header);
  if (canonical && (label === undefined || label === canonical.label)) {
    return { label: canonical.label, components: canonical.items.map(([name, params]) => component(name, params)), params: canonical.params, serialized: canonical.serialized };
  }
  let dict;
  try {
    dict = parseDictionary(header);
  } catch (cause) {
    throw new HttpSigError('malformed', 'Signature-Input does not parse as a Dictionary', { cause });
  }
  const chosen = label ?? dict.keys().next().value;
  const member = chosen === undefined ? undefined : dict.get(chosen);
  if (chosen === undefined || member === undefined) throw new HttpSigError('missing', `Signature-Input has no signature ${label ?? ''}`.trim());
  if (!isInnerList(member)) throw new HttpSigError('malformed', `Signature-Input ${chosen} is not an inner list`);
  const components = member[0].map(([name, params]) => {
    if (typeof name !== 'string') throw new HttpSigError('malformed', `Signature-Input ${chosen} lists a component that is not a string`);
    return component(name, params);
  });
  return { label: chosen, components, params: member[1], serialized: serializeInnerList(member) };
}

function readSignature(header: string, label: string): Buffer {
  const canonical = canonicalBytes(header);
  if (canonical && canonical.key === label) return canonical.bytes;
  let dict;
  try {
    dict = parseDictionary(header);
  } catch (cause) {
    throw new HttpSigError('malformed', 'Signature does not parse as a Dictionary', { cause });
  }
  const member = dict.get(label);
  if (member === undefined) throw new HttpSigError('missing', `Signature has no member ${label} to match Signature-Input`);
  if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) throw new HttpSigError('malformed', `Signature ${label} is not a byte sequence`);
  return Buffer.from(member[0]);
}

function integerParam(params: Parameters, name: string): number | undefined {
  const value = params.get(name);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new HttpSigError('malformed', `signature parameter ${name} must be an integer`);
  return value;
}

function stringParam(params: Parameters, name: string): string | undefined {
  const value = params.get(name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HttpSigError('malformed', `signature parameter ${name} must be a string`);
  return value;
}

/** The signature base for the signature `label` (default: the first) of a Signature-Input value; for debugging and evidence. */
export function signatureBase(message: HttpMessage, signatureInput: string, label?: string): string {
  const input = readInput(signatureInput, label);
  return buildBase(message, input.components, input.serialized);
}

// ---- Sign and verify ----

const LABEL = /^[a-z*][a-z0-9_.*-]*$/;

export function sign(message: HttpMessage, options: SignOptions): { 'signature-input': string; signature: string } {
  const { key, alg } = options;
  const label = options.label ?? 'sig1';
  if (!LABEL.test(label)) throw new HttpSigError('malformed', `label ${label} is not a structured field key`);
  const mismatch = keyMismatch(key, alg);
  if (mismatch) throw new HttpSigError('unknown-key', `key ${options.keyId}: ${mismatch}`);
  for (const [name, value] of [['created', options.created], ['expires', options.expires]] as const) {
    if (value !== undefined && !Number.isSafeInteger(value)) throw new HttpSigError('malformed', `${name} must be whole unix seconds, not ${value}`);
  }
  const components = options.components.map(parseComponent);
  const params: Parameters = new Map();
  params.set('created', options.created ?? Math.floor(Date.now() / 1000));
  if (options.expires !== undefined) params.set('expires', options.expires);
  params.set('keyid', options.keyId);
  if (options.includeAlg) params.set('alg', alg);
  if (options.nonce !== undefined) params.set('nonce', options.nonce);
  if (options.tag !== undefined) params.set('tag', options.tag);
  const plain = plainParams(params);
  let serialized: string;
  try {
    serialized = plain !== undefined
      ? `(${components.map((c) => c.id).join(' ')})${plain}`
      : serializeInnerList([components.map((c): Item => [c.name, c.params]), params] satisfies InnerList);
  } catch (cause) {
    throw new HttpSigError('malformed', 'signature parameters cannot be serialized', { cause });
  }
  const base = buildBase(message, components, serialized);
  const spec = ALGS[alg];
  const value = cryptoSign(spec.hash, Buffer.from(base, 'latin1'), { key, ...spec.options });
  return { 'signature-input': `${label}=${serialized}`, signature: `${label}=:${value.toString('base64')}:` };
}

function normalizeRequired(text: string): string {
  return !text.startsWith('"') && !text.includes(';') ? `"${text}"` : parseComponent(text).id;
}

export function verify(message: HttpMessage, options: VerifyOptions): Verified {
  const inputHeader = fieldValue(message.headers['signature-input']);
  const signatureHeader = fieldValue(message.headers['signature']);
  if (inputHeader === undefined || signatureHeader === undefined) {
    throw new HttpSigError('missing', 'message has no Signature-Input and Signature header fields');
  }
  const input = readInput(inputHeader, options.label);
  const { label, params } = input;
  const signature = readSignature(signatureHeader, label);

  const covered = new Set(input.components.map((c) => c.id));
  for (const required of options.required) {
    if (!covered.has(normalizeRequired(required))) {
      throw new HttpSigError('not-covered', `signature ${label} does not cover required component ${required}`);
    }
  }

  const created = integerParam(params, 'created');
  if (created === undefined) throw new HttpSigError('malformed', `signature ${label} has no created parameter`);
  const expires = integerParam(params, 'expires');
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (created > now + options.maxSkewSeconds) {
    throw new HttpSigError('future', `signature ${label} was created ${created - now}s in the future (allowed skew ${options.maxSkewSeconds}s)`);
  }
  if (created < now - options.maxSkewSeconds) {
    throw new HttpSigError('expired', `signature ${label} was created ${now - created}s ago (allowed skew ${options.maxSkewSeconds}s)`);
  }
  if (expires !== undefined && now > expires) throw new HttpSigError('expired', `signature ${label} expired ${now - expires}s ago`);

  const keyId = stringParam(params, 'keyid');
  if (keyId === undefined) throw new HttpSigError('malformed', `signature ${label} has no keyid parameter`);
  const algParam = stringParam(params, 'alg');
  let resolved;
  try {
    resolved = options.key(keyId, algParam);
  } catch (cause) {
    throw new HttpSigError('unknown-key', `keyid ${keyId} does not resolve: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (!resolved) throw new HttpSigError('unknown-key', `keyid ${keyId} is not known`);
  const { key, alg } = resolved;
  const mismatch = keyMismatch(key, alg);
  if (mismatch) throw new HttpSigError('unknown-key', `keyid ${keyId}: ${mismatch}`);
  if (algParam !== undefined && algParam !== alg) {
    throw new HttpSigError('invalid', `signature ${label} claims alg ${algParam} but keyid ${keyId} is a ${alg} key`);
  }

  const base = buildBase(message, input.components, input.serialized);
  if (!verifySignatureBase(base, signature, key, alg)) throw new HttpSigError('invalid', `signature ${label} by ${keyId} (${alg}) does not verify`);

  const nonce = stringParam(params, 'nonce');
  const tag = stringParam(params, 'tag');
  return {
    keyId,
    alg,
    covered: input.components.map(display),
    created,
    ...(expires !== undefined ? { expires } : {}),
    ...(nonce !== undefined ? { nonce } : {}),
    ...(tag !== undefined ? { tag } : {}),
    label,
    signatureInput: `${label}=${input.serialized}`,
    signature: `${label}=:${signature.toString('base64')}:`,
    base,
  };
}

/** The signature algorithm for a key: ECDSA by curve, Ed25519, and RSA-PSS for RSA keys unless the signer said v1.5. */
export function algorithmFor(key: KeyObject, declared?: string): SigAlg | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = namedCurve(key);
    const alg: SigAlg | undefined = curve === 'prime256v1' ? 'ecdsa-p256-sha256' : curve === 'secp384r1' ? 'ecdsa-p384-sha384' : undefined;
    return declared === undefined || declared === alg ? alg : undefined;
  }
  if (type === 'ed25519') return declared === undefined || declared === 'ed25519' ? 'ed25519' : undefined;
  if (type === 'rsa') return declared === 'rsa-v1_5-sha256' ? 'rsa-v1_5-sha256' : declared === undefined || declared === 'rsa-pss-sha512' ? 'rsa-pss-sha512' : undefined;
  return undefined;
}

/** What evidence keeps of a checked RFC 9421 signature: enough to verify it again without the hub. */
export function signatureInfo(verified: Verified, certificatePem: string | undefined): SignatureInfo {
  return {
    scheme: 'http-message-signatures',
    algorithm: verified.alg,
    keyId: verified.keyId,
    certThumbprint: verified.keyId,
    covered: verified.covered,
    value: `${verified.signatureInput}\n${verified.signature}`,
    createdAt: new Date(verified.created * 1000).toISOString(),
    base: verified.base,
    ...(certificatePem ? { certificate: certificatePem } : {}),
  };
}
