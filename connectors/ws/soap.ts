// SOAP 1.1 and 1.2 envelopes: reading one through the hardened XML parser (version from the envelope namespace, which
// must agree with the Content-Type; exactly one Body with exactly one element), and writing envelopes, signed by
// engine/trust's WS-Security, and faults.
import { randomUUID } from 'node:crypto';
import { errorCodes, SwxError, type ErrorCode } from '../../engine/errors.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import { parseXml, type XmlDocument, type XmlElement, type XmlLimits } from '../../engine/xml/parse.ts';
import { soapVersionOf, type SoapEnvelope } from '../../engine/xml/soap.ts';
import { signedSecurityHeader, wsuNamespace } from '../../engine/trust/index.ts';
import { queryNamespace, soapNamespaces, type SoapVersion } from './contract.ts';
import { escapeXml } from '../../engine/xml/text.ts';

export interface SoapMessage extends SoapEnvelope {
  version: SoapVersion;
  /** The action from SOAPAction (1.1) or the action parameter of the Content-Type (1.2), unquoted; undefined if none. */
  action: string | undefined;
  document: XmlDocument;
  envelope: XmlElement;
  /** The one element child of the Body. */
  payload: XmlElement;
}

const contentTypes: Record<SoapVersion, string> = { '1.1': 'text/xml', '1.2': 'application/soap+xml' };

/** Media type and parameters (names lower-cased, quoted values unquoted); undefined when it is not a media type. */
function parseContentType(value: string): { type: string; params: Map<string, string> } | undefined {
  const match = /^\s*([A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+)\s*((?:;.*)?)$/s.exec(value);
  if (!match) return undefined;
  const params = new Map<string, string>();
  const param = /;\s*([A-Za-z0-9!#$&^_.+-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))\s*/gy;
  const rest = match[2]!;
  for (let at = 0; at < rest.length;) {
    param.lastIndex = at;
    const found = param.exec(rest);
    if (!found) return undefined;
    params.set(found[1]!.toLowerCase(), found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : found[3]!);
    at = param.lastIndex;
  }
  return { type: match[1]!.toLowerCase(), params };
}

/** The SOAP version a Content-Type announces; undefined for anything else. */
export function versionOfContentType(contentType: string | undefined): SoapVersion | undefined {
  const type = contentType ? parseContentType(contentType)?.type : undefined;
  return type === contentTypes['1.1'] ? '1.1' : type === contentTypes['1.2'] ? '1.2' : undefined;
}

export function soapContentType(version: SoapVersion, action?: string): string {
  if (version === '1.1') return 'text/xml; charset=utf-8';
  return `application/soap+xml; charset=utf-8${action ? `; action="${action.replace(/["\\]/g, '\\$&')}"` : ''}`;
}

const bad = (detail: string) => new SwxError('SWX_BAD_REQUEST', detail);

/** Refuses character data where only elements may be (whitespace aside). */
function onlyElements(element: XmlElement, what: string): XmlElement[] {
  for (const child of element.children) {
    if (child.type === 'text' && child.value.trim() !== '') throw bad(`${what} holds text outside its elements`);
  }
  return elementChildren(element);
}

/** A SOAP message holds no processing instruction anywhere (SOAP 1.2 part 1 section 5, WS-I Basic Profile R1009). */
function refuseProcessingInstructions(nodes: XmlDocument['children']): void {
  for (const node of nodes) {
    if (node.type === 'processing-instruction') throw new SwxError('SWX_XML_FORBIDDEN', `a SOAP message may not hold a processing instruction (<?${node.target.slice(0, 40)} …?>)`);
    if (node.type === 'element') refuseProcessingInstructions(node.children);
  }
}

/**
 * Reads a SOAP message as received. `soapActionHeader` is the SOAPAction HTTP header (SOAP 1.1). Refusals: XML ones
 * from the parser (SWX_XML_*), SWX_BAD_REQUEST for a Content-Type that is not SOAP or disagrees with the envelope,
 * and for an envelope that is not Header? Body with one element in the Body.
 */
export function readSoap(raw: Buffer, contentType: string | undefined, soapActionHeader?: string, limits?: Partial<XmlLimits>): SoapMessage {
  const media = contentType ? parseContentType(contentType) : undefined;
  const announced = versionOfContentType(contentType);
  if (!media || !announced) throw bad(`Content-Type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2), not ${JSON.stringify(String(contentType ?? '').slice(0, 80))}`);
  const charset = media.params.get('charset');
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') throw bad(`charset ${JSON.stringify(charset.slice(0, 40))} is not supported; only utf-8`);
  const document = parseXml(raw, limits);
  refuseProcessingInstructions(document.children);
  const envelope = document.root;
  const version = soapVersionOf(envelope.namespace);
  if (envelope.localName !== 'Envelope' || !version) throw bad('the document is not a SOAP 1.1 or 1.2 Envelope');
  if (version !== announced) throw bad(`the envelope is SOAP ${version} but the Content-Type announces SOAP ${announced}`);
  const parts = onlyElements(envelope, 'the Envelope');
  const soap = soapNamespaces[version];
  const [first, second] = parts;
  const header = first?.namespace === soap && first.localName === 'Header' ? first : undefined;
  const body = header ? second : first;
  if (!body || body.namespace !== soap || body.localName !== 'Body' || parts.length !== (header ? 2 : 1)) {
    throw bad('the Envelope must hold an optional Header and then one Body, nothing else');
  }
  const payloads = onlyElements(body, 'the Body');
  if (payloads.length !== 1) throw bad(`the Body holds ${payloads.length} elements, not one`);
  const actionSource = version === '1.1' ? soapActionHeader : media.params.get('action');
  const action = actionSource?.trim().replace(/^"(.*)"$/s, '$1');
  return { version, action: action || undefined, raw, document, envelope, header, body, payload: payloads[0]! };
}

/**
 * The soap:Body around `bodyXml`. With a wsu:Id it is written in the exclusive-c14n form it is signed in (its
 * namespaces declared on it, in c14n order), so that the hub digests its own text without parsing it back.
 */
export function bodyElement(version: SoapVersion, bodyXml: string, wsuId?: string): string {
  const signable = wsuId === undefined ? '' : ` xmlns:soap="${soapNamespaces[version]}" xmlns:wsu="${wsuNamespace}" wsu:Id="${wsuId}"`;
  return `<soap:Body${signable}>${bodyXml}</soap:Body>`;
}

/** An envelope in `version` around a soap:Body element (bodyElement) and header markup. */
export function envelopeAround(version: SoapVersion, body: string, headerXml = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="${soapNamespaces[version]}">`
    + `${headerXml ? `<soap:Header>${headerXml}</soap:Header>` : ''}${body}</soap:Envelope>`;
}

/** An envelope in `version` around body (and header) markup; each header block should declare its namespaces. */
export function buildEnvelope(version: SoapVersion, bodyXml: string, headerXml = ''): string {
  return envelopeAround(version, bodyElement(version, bodyXml), headerXml);
}

export interface SoapSigner {
  keyPem: string;
  certPem: string;
}

/** A header block the signature covers, by its wsu:Id; `xml` must be in exclusive-c14n form (contextXml writes it so). */
export interface SignedHeader {
  xml: string;
  id: string;
}

/**
 * An envelope the hub (or a reference provider) writes and signs itself, as engine/trust's signSoap would sign it,
 * without parsing: the Body and the header blocks are digested as written. `bodyXml` and the blocks must therefore be
 * in exclusive-c14n form as subtrees of their own (namespaces declared where used, attributes in c14n order, no
 * empty-element tags, text and attributes escaped as c14n does): messages.ts and soap.ts write theirs so
 * (test/connectors/ws-fastsign.test.ts holds them to signSoap, xmlsec1 and zeep).
 */
export function writeSignedEnvelope(version: SoapVersion, bodyXml: string, signer: SoapSigner, headers: readonly SignedHeader[] = [], timestampTtlSeconds = 300): string {
  const bodyId = `id-${randomUUID()}`;
  const body = bodyElement(version, bodyXml, bodyId);
  const security = signedSecurityHeader([{ id: bodyId, canonical: body }, ...headers.map((block) => ({ id: block.id, canonical: block.xml }))], {
    keyPem: signer.keyPem,
    certPem: signer.certPem,
    soapNamespace: soapNamespaces[version],
    timestampTtlSeconds,
  });
  return envelopeAround(version, body, `${headers.map((block) => block.xml).join('')}${security}`);
}

/** The HTTP status a fault travels with: 500 for SOAP 1.1 (WS-I Basic Profile), the code's own for SOAP 1.2. */
export function faultStatus(version: SoapVersion, code: ErrorCode): number {
  return version === '1.1' ? 500 : errorCodes[code].status;
}

/**
 * The soap:Fault for an error: Client/Sender for 4xx codes, Server/Receiver for 5xx; the detail names the code.
 * Written in exclusive-c14n form inside a Body that declares the soap prefix (every q element declares its own).
 */
export function faultXml(version: SoapVersion, error: SwxError, messageId?: string): string {
  const client = error.status < 500;
  const reason = escapeXml(`${error.code}: ${error.message}`);
  const detail = `<q:code xmlns:q="${queryNamespace}">${error.code}</q:code><q:status xmlns:q="${queryNamespace}">${error.status}</q:status>`
    + (messageId ? `<q:messageId xmlns:q="${queryNamespace}">${escapeXml(messageId)}</q:messageId>` : '');
  return version === '1.1'
    ? `<soap:Fault><faultcode>soap:${client ? 'Client' : 'Server'}</faultcode><faultstring>${reason}</faultstring><detail>${detail}</detail></soap:Fault>`
    : `<soap:Fault><soap:Code><soap:Value>soap:${client ? 'Sender' : 'Receiver'}</soap:Value></soap:Code>`
      + `<soap:Reason><soap:Text xml:lang="en">${reason}</soap:Text></soap:Reason><soap:Detail>${detail}</soap:Detail></soap:Fault>`;
}

export interface FaultInfo {
  /** The SWX_* code from the detail, when the fault carries one. */
  code?: string;
  reason: string;
}

/** What a fault in the Body says; undefined when the payload is not a Fault. */
export function readFault(message: SoapMessage): FaultInfo | undefined {
  const { payload, version } = message;
  if (payload.namespace !== soapNamespaces[version] || payload.localName !== 'Fault') return undefined;
  const all: XmlElement[] = [];
  const walk = (element: XmlElement) => { all.push(element); elementChildren(element).forEach(walk); };
  walk(payload);
  const text = (element: XmlElement | undefined) => (element ? element.children.map((c) => (c.type === 'text' ? c.value : '')).join('').trim() : '');
  const reason = text(all.find((e) => e.localName === (version === '1.1' ? 'faultstring' : 'Text')));
  const code = text(all.find((e) => e.namespace === queryNamespace && e.localName === 'code'));
  return { reason: reason.slice(0, 500), ...(code ? { code: code.slice(0, 60) } : {}) };
}
