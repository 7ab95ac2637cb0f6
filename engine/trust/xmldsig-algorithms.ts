// What XMLDSig needs beyond xml-crypto 6.3: the algorithm tables (digests, signatures incl. ECDSA, SHA-384, RSA-PSS,
// Ed25519 and legacy DSA/SHA-1), the XPath filter transform of ebMS 2.0 (registered on xml-crypto's SignedXml), the
// SwA attachment transforms of AS4, and the one way XML reaches xmldom here: through the hardened parseXml gate.
// xml-crypto canonicalises and runs the transform chain; digests and signature values are computed with node:crypto,
// since xml-crypto hashes only strings and knows neither ECDSA's raw r||s encoding nor DSA nor Ed25519.
import { DOMParser } from '@xmldom/xmldom';
import { constants, createHash, sign, verify, type KeyObject } from 'node:crypto';
import { C14nCanonicalization, ExclusiveCanonicalization, SignedXml, type CanonicalizationOrTransformationAlgorithmProcessOptions } from 'xml-crypto';
import * as xpath from 'xpath';
import { canonicalize, canonicalStream, EXC_C14N } from '../xml/c14n.ts';
import { parseXml, XmlRefusal, type XmlLimits } from '../xml/parse.ts';
import { soapNamespaces } from '../xml/soap.ts';

/** Checked before the signature is (references are judged first), so bounded: both verifiers refuse more with SWX_XML_LIMIT. */
export const maxReferences = 30;
export const maxTransforms = 5;

export const namespaces = {
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  dsig11: 'http://www.w3.org/2009/xmldsig11#',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  xmlns: 'http://www.w3.org/2000/xmlns/',
  soap11: soapNamespaces['1.1'],
  soap12: soapNamespaces['1.2'],
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
} as const;

export const canonicalizations = {
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  'c14n#WithComments': 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments',
  'exc-c14n': 'http://www.w3.org/2001/10/xml-exc-c14n#',
  'exc-c14n#WithComments': 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
} as const;

export type CanonicalizationName = keyof typeof canonicalizations;

export const transforms = {
  envelopedSignature: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  xpathFilter: 'http://www.w3.org/TR/1999/REC-xpath-19991116',
  attachmentContent: 'http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform',
  attachmentComplete: 'http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete-Signature-Transform',
} as const;

/** Transforms over a node-set of this document; canonicalisations count among them. */
export const documentTransforms: ReadonlySet<string> = new Set([...Object.values(canonicalizations), transforms.envelopedSignature, transforms.xpathFilter]);
/** Transforms over a MIME part (a cid: reference); none at all is ebMS 2.0's plain digest of the decoded octets. */
export const attachmentTransforms: ReadonlySet<string> = new Set([transforms.attachmentContent, transforms.attachmentComplete]);

export const canonicalizationNames: Record<string, string> = Object.fromEntries(Object.entries(canonicalizations).map(([name, uri]) => [uri, name]));

/** A transform's short name in verdicts (e.g. exc-c14n, envelopedSignature), else its URI. */
export function transformName(uri: string): string {
  return canonicalizationNames[uri] ?? Object.entries(transforms).find(([, value]) => value === uri)?.[0] ?? uri;
}

/** Attributes that name an element for a same-document reference (in any namespace, so wsu:Id too). */
export const idAttributes: ReadonlySet<string> = new Set(['Id', 'ID', 'id']);

/** Whether the element at `path` is `ancestor` or inside it (paths as SignatureTree.path writes them). */
export const within = (path: string, ancestor: string) => path === ancestor || path.startsWith(`${ancestor}/`);

interface Digest { name: string; hash: string; weak: boolean }

export const digestAlgorithms: Record<string, Digest> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': { name: 'SHA-1', hash: 'sha1', weak: true },
  'http://www.w3.org/2001/04/xmldsig-more#sha224': { name: 'SHA-224', hash: 'sha224', weak: false },
  'http://www.w3.org/2001/04/xmlenc#sha256': { name: 'SHA-256', hash: 'sha256', weak: false },
  'http://www.w3.org/2001/04/xmldsig-more#sha384': { name: 'SHA-384', hash: 'sha384', weak: false },
  'http://www.w3.org/2001/04/xmlenc#sha512': { name: 'SHA-512', hash: 'sha512', weak: false },
};

export type DigestName = 'sha256' | 'sha384' | 'sha512';

export const digestUris: Record<DigestName, string> = {
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha384: 'http://www.w3.org/2001/04/xmldsig-more#sha384',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
};

/** SHA-1, signed with only where a partner's agreement names it (an old ebMS 2.0 CPA); such a signature is weak. */
export type WeakDigestName = 'sha1';
export const weakDigestUris: Record<WeakDigestName, string> = { sha1: 'http://www.w3.org/2000/09/xmldsig#sha1' };

type KeyFamily = 'rsa' | 'rsa-pss' | 'ec' | 'dsa' | 'ed25519';

interface Signature { name: string; family: KeyFamily; hash: string | null; weak: boolean }

const more = 'http://www.w3.org/2001/04/xmldsig-more#';
const more2007 = 'http://www.w3.org/2007/05/xmldsig-more#';

export const signatureAlgorithms: Record<string, Signature> = {
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1': { name: 'RSA-SHA1', family: 'rsa', hash: 'sha1', weak: true },
  [`${more}rsa-sha224`]: { name: 'RSA-SHA224', family: 'rsa', hash: 'sha224', weak: false },
  [`${more}rsa-sha256`]: { name: 'RSA-SHA256', family: 'rsa', hash: 'sha256', weak: false },
  [`${more}rsa-sha384`]: { name: 'RSA-SHA384', family: 'rsa', hash: 'sha384', weak: false },
  [`${more}rsa-sha512`]: { name: 'RSA-SHA512', family: 'rsa', hash: 'sha512', weak: false },
  // RFC 6931 2.3.10: MGF1 with the same hash, salt as long as the hash, trailer 1.
  [`${more2007}sha256-rsa-MGF1`]: { name: 'RSA-PSS-SHA256', family: 'rsa-pss', hash: 'sha256', weak: false },
  [`${more2007}sha384-rsa-MGF1`]: { name: 'RSA-PSS-SHA384', family: 'rsa-pss', hash: 'sha384', weak: false },
  [`${more2007}sha512-rsa-MGF1`]: { name: 'RSA-PSS-SHA512', family: 'rsa-pss', hash: 'sha512', weak: false },
  [`${more}ecdsa-sha1`]: { name: 'ECDSA-SHA1', family: 'ec', hash: 'sha1', weak: true },
  [`${more}ecdsa-sha256`]: { name: 'ECDSA-SHA256', family: 'ec', hash: 'sha256', weak: false },
  [`${more}ecdsa-sha384`]: { name: 'ECDSA-SHA384', family: 'ec', hash: 'sha384', weak: false },
  [`${more}ecdsa-sha512`]: { name: 'ECDSA-SHA512', family: 'ec', hash: 'sha512', weak: false },
  'http://www.w3.org/2000/09/xmldsig#dsa-sha1': { name: 'DSA-SHA1', family: 'dsa', hash: 'sha1', weak: true },
  'http://www.w3.org/2009/xmldsig11#dsa-sha256': { name: 'DSA-SHA256', family: 'dsa', hash: 'sha256', weak: true },
  // RFC 9231 2.3.12: PureEdDSA over the canonical SignedInfo.
  'http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519': { name: 'Ed25519', family: 'ed25519', hash: null, weak: false },
};

/** What swx signs with: never a weak algorithm. */
export type SignatureName =
  | 'rsa-sha256' | 'rsa-sha384' | 'rsa-sha512' | 'rsa-pss-sha256' | 'rsa-pss-sha384' | 'rsa-pss-sha512'
  | 'ecdsa-sha256' | 'ecdsa-sha384' | 'ecdsa-sha512' | 'ed25519';

export const signatureUris: Record<SignatureName, string> = {
  'rsa-sha256': `${more}rsa-sha256`,
  'rsa-sha384': `${more}rsa-sha384`,
  'rsa-sha512': `${more}rsa-sha512`,
  'rsa-pss-sha256': `${more2007}sha256-rsa-MGF1`,
  'rsa-pss-sha384': `${more2007}sha384-rsa-MGF1`,
  'rsa-pss-sha512': `${more2007}sha512-rsa-MGF1`,
  'ecdsa-sha256': `${more}ecdsa-sha256`,
  'ecdsa-sha384': `${more}ecdsa-sha384`,
  'ecdsa-sha512': `${more}ecdsa-sha512`,
  ed25519: 'http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519',
};

/** RSA-SHA1, signed with only when asked (allowWeak): for partners whose agreement names it; the signature is weak. */
export type WeakSignatureName = 'rsa-sha1';
export const weakSignatureUris: Record<WeakSignatureName, string> = { 'rsa-sha1': 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' };

/** The algorithm a key signs with when none is asked for: its hash matches the curve's strength. */
export function defaultSignatureFor(key: KeyObject): SignatureName | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa': return 'rsa-sha256';
    case 'rsa-pss': return 'rsa-pss-sha256';
    case 'ed25519': return 'ed25519';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'secp384r1' ? 'ecdsa-sha384' : curve === 'secp521r1' ? 'ecdsa-sha512' : 'ecdsa-sha256';
    }
    default: return undefined;
  }
}

/** Why this key cannot make or check this signature, or undefined when it can. */
export function keyMismatch(algorithm: Signature, key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType ?? 'unknown';
  const fits = algorithm.family === 'rsa' ? type === 'rsa'
    : algorithm.family === 'rsa-pss' ? type === 'rsa' || type === 'rsa-pss'
      : algorithm.family === type;
  return fits ? undefined : `${algorithm.name} needs a key of type ${algorithm.family}, not ${type}`;
}

function cryptoKey(algorithm: Signature, key: KeyObject) {
  if (algorithm.family === 'rsa-pss') return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  // XMLDSig carries (EC)DSA signatures as the raw r||s concatenation, not as DER.
  if (algorithm.family === 'ec' || algorithm.family === 'dsa') return { key, dsaEncoding: 'ieee-p1363' as const };
  return { key };
}

export function signWith(algorithm: Signature, key: KeyObject, canonicalSignedInfo: string): Buffer {
  return sign(algorithm.hash, Buffer.from(canonicalSignedInfo, 'utf8'), cryptoKey(algorithm, key));
}

export function verifyWith(algorithm: Signature, key: KeyObject, canonicalSignedInfo: string, signatureValue: Buffer): boolean {
  try {
    return verify(algorithm.hash, Buffer.from(canonicalSignedInfo, 'utf8'), cryptoKey(algorithm, key), signatureValue);
  } catch {
    // A value of the wrong length or shape for the key is a signature that does not verify.
    return false;
  }
}

export function digest(algorithm: Digest, octets: string | Buffer): Buffer {
  return createHash(algorithm.hash).update(octets).digest();
}

/** An XPath filter expression with the namespace bindings in scope of its ds:XPath element. */
export interface XPathFilter {
  expression: string;
  namespaces: Record<string, string>;
}

export interface TransformOptions extends CanonicalizationOrTransformationAlgorithmProcessOptions {
  /** xml-crypto hands a transform no parameters of its own: the reference passes its XPath filters in order. */
  xpathFilters?: XPathFilter[];
}

/** Raised when an XPath filter leaves a node-set xml-crypto cannot canonicalise (a kept node below a dropped element). */
export class UnsupportedNodeSet extends Error {}

type Evaluator = { expression: unknown; evaluateBoolean(options: { node: Node; namespaces: (prefix: string) => string }): boolean };
const parseXPath = (xpath as unknown as { parse(expression: string): Evaluator }).parse;
/** A prefix the XPath element does not bind matches nothing, rather than whatever the evaluated node binds it to. */
const unbound = 'urn:swx:unbound-prefix';
const maxExpressionLength = 2048;
/** xpath 0.0.33's axis numbers: ancestor, ancestor-or-self, attribute, parent, self. */
const upwardAxes = new Set([0, 1, 2, 9, 12]);
const boundedFunctions = new Set([
  'not', 'true', 'false', 'boolean', 'string', 'concat', 'contains', 'starts-with', 'normalize-space', 'local-name', 'namespace-uri', 'name',
]);

/**
 * Why evaluating the expression at every node could cost more than the depth of the tree, or undefined. The filter
 * runs once per node and may come from a SignedInfo not yet authenticated, so it may look only up the tree
 * (ebMS 2.0's actor filter and `not(ancestor-or-self::ds:Signature)` do) and call no function that searches.
 */
function unbounded(parsed: unknown): string | undefined {
  const seen = new Set<object>();
  const visit = (node: unknown): string | undefined => {
    if (typeof node !== 'object' || node === null || seen.has(node)) return undefined;
    seen.add(node);
    if (seen.size > 1000) return 'the expression is too complex';
    const record = node as Record<string, unknown>;
    if (record.absolute === true) return 'an absolute path searches the document';
    if (typeof record.axis === 'number' && !upwardAxes.has(record.axis)) return 'only the ancestor, ancestor-or-self, parent, self and attribute axes are evaluated';
    if (typeof record.functionName === 'string' && !boundedFunctions.has(record.functionName)) return `function ${record.functionName}() is not evaluated`;
    for (const value of Object.values(record)) {
      const problem = visit(value);
      if (problem) return problem;
    }
    return undefined;
  };
  return visit(parsed);
}

/**
 * The nodes an XPath filter (XMLDSig 6.6.3) drops from the subtree at `root`: elements, attributes, text, comments
 * and processing instructions for which the expression is false. Only whole subtrees may be dropped, since the
 * canonicaliser works on subtrees; ebMS 2.0's actor filter and `not(ancestor-or-self::ds:Signature)` drop exactly that.
 */
export function excludedNodes(root: Node, filter: XPathFilter): Node[] {
  if (filter.expression.length > maxExpressionLength) throw new UnsupportedNodeSet(`XPath expression longer than ${maxExpressionLength} characters`);
  let evaluator: Evaluator;
  try {
    evaluator = parseXPath(filter.expression);
  } catch (error) {
    throw new UnsupportedNodeSet(`XPath expression cannot be read: ${(error as Error).message}`);
  }
  const problem = unbounded(evaluator.expression);
  if (problem) throw new UnsupportedNodeSet(`XPath filter refused: ${problem}`);
  const resolve = (prefix: string) => (prefix === 'xml' ? 'http://www.w3.org/XML/1998/namespace' : filter.namespaces[prefix] ?? unbound);
  const keep = (node: Node) => {
    try {
      return evaluator.evaluateBoolean({ node, namespaces: resolve });
    } catch (error) {
      throw new UnsupportedNodeSet(`XPath expression cannot be evaluated: ${(error as Error).message}`);
    }
  };
  const excluded: Node[] = [];
  const walk = (node: Node, parentDropped: boolean): void => {
    const kept = keep(node);
    if (kept && parentDropped) throw new UnsupportedNodeSet('the XPath filter keeps a node whose parent element it drops');
    if (!kept && !parentDropped) excluded.push(node);
    if (node.nodeType !== node.ELEMENT_NODE) return;
    const element = node as Element;
    for (const attribute of Array.from(element.attributes)) {
      if (attribute.name === 'xmlns' || attribute.prefix === 'xmlns') continue;
      const attributeKept = keep(attribute);
      if (attributeKept && !kept) throw new UnsupportedNodeSet('the XPath filter keeps an attribute of an element it drops');
      if (!attributeKept && kept) excluded.push(attribute);
    }
    for (const child of Array.from(element.childNodes)) walk(child, !kept);
  };
  walk(root, false);
  return excluded;
}

class XPathFilterTransform {
  process(node: Node, options: TransformOptions): Node {
    const filter = options.xpathFilters?.shift();
    if (!filter) throw new UnsupportedNodeSet('XPath filter transform without its expression');
    for (const dropped of excludedNodes(node, filter)) {
      if (dropped.nodeType === dropped.ATTRIBUTE_NODE) (dropped as Attr).ownerElement?.removeAttributeNode(dropped as Attr);
      else dropped.parentNode?.removeChild(dropped);
    }
    return node;
  }

  getAlgorithmName(): string {
    return transforms.xpathFilter;
  }
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** C14N orders namespace declarations by prefix in code point order; xml-crypto 6.3 uses localeCompare ("eb" before "SOAP"). */
function compareNamespaces(a: { prefix: string }, b: { prefix: string }): number {
  return byCodePoint(a.prefix, b.prefix);
}

/** C14N orders attributes by namespace URI (none first), then local name; xml-crypto compares the two joined. */
function compareAttributes(a: Attr, b: Attr): number {
  if (!a.namespaceURI !== !b.namespaceURI) return a.namespaceURI ? 1 : -1;
  return byCodePoint(a.namespaceURI ?? '', b.namespaceURI ?? '') || byCodePoint(a.localName, b.localName);
}

/** The default namespace an element of a (detached) copy declares or inherits within the copy. */
function declaredDefault(node: Node): string {
  for (let at: Node | null = node; at && at.nodeType === at.ELEMENT_NODE; at = at.parentNode) {
    const element = at as Element;
    if (element.hasAttribute('xmlns')) return element.getAttribute('xmlns') ?? '';
  }
  return '';
}

class InclusiveC14n extends C14nCanonicalization {
  override nsCompare = compareNamespaces;
  override attrCompare = compareAttributes as never;
}

class InclusiveC14nWithComments extends InclusiveC14n {
  constructor() {
    super();
    this.includeComments = true;
  }

  override getAlgorithmName(): string {
    return canonicalizations['c14n#WithComments'];
  }
}

/** Exclusive C14N; also renders "#default" of an InclusiveNamespaces PrefixList, which xml-crypto 6.3 ignores. */
class ExclusiveC14n extends ExclusiveCanonicalization {
  override nsCompare = compareNamespaces;
  override attrCompare = compareAttributes as never;

  override process(elem: Element, options: CanonicalizationOrTransformationAlgorithmProcessOptions): string {
    const inherited = options.ancestorNamespaces?.find((binding) => binding.prefix === '');
    if (options.inclusiveNamespacesPrefixList?.includes('#default') && inherited && !elem.hasAttribute('xmlns')) elem.setAttribute('xmlns', inherited.namespaceURI);
    return super.process(elem, options);
  }

  override renderNs(node: Element, prefixesInScope: unknown, defaultNs: string, defaultNsForPrefix: unknown, prefixes: string[]) {
    const rendered = super.renderNs(node, prefixesInScope, defaultNs, defaultNsForPrefix, prefixes);
    // An unprefixed element renders its default namespace already, as visibly used.
    if (!node.prefix || !prefixes.includes('#default')) return rendered;
    const inScope = declaredDefault(node);
    if (inScope === (defaultNs || '')) return rendered;
    return { rendered: ` xmlns="${inScope}"${rendered.rendered}`, newDefaultNs: inScope };
  }
}

class ExclusiveC14nWithComments extends ExclusiveC14n {
  constructor() {
    super();
    this.includeComments = true;
  }

  override getAlgorithmName(): string {
    return canonicalizations['exc-c14n#WithComments'];
  }
}

const canonicalizationClasses: Record<string, new () => unknown> = {
  [canonicalizations.c14n]: InclusiveC14n,
  [canonicalizations['c14n#WithComments']]: InclusiveC14nWithComments,
  [canonicalizations['exc-c14n']]: ExclusiveC14n,
  [canonicalizations['exc-c14n#WithComments']]: ExclusiveC14nWithComments,
  [transforms.xpathFilter]: XPathFilterTransform,
};

/** The parts of xml-crypto 6.3's SignedXml used beyond its public API: the transform chain with comment control. */
export interface Canonicalizer {
  signatureNode: Node | null;
  canonicalize(transforms: readonly string[], node: Node, options: TransformOptions, flags: { discardComments: boolean }): string;
}

/** A SignedXml used as the canonicaliser and transform runner, with the corrected and missing transforms registered. */
export function canonicalizer(signatureNode: Node | null): Canonicalizer {
  const signed = new SignedXml();
  Object.assign(signed.CanonicalizationAlgorithms, canonicalizationClasses);
  const internals = signed as unknown as Canonicalizer;
  // Set directly: loadSignature() would also parse the references, which must not fail before they are judged.
  internals.signatureNode = signatureNode;
  return internals;
}

/**
 * Parses untrusted XML into an xmldom Document, after the hardened parseXml has accepted it: xmldom never sees a DTD
 * and every size and depth limit holds before it runs. Throws XmlRefusal.
 */
export function parseDocument(input: Buffer | string, limits?: Partial<XmlLimits>): Document {
  parseXml(input, limits);
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8').decode(input);
  const problems: string[] = [];
  const doc = new DOMParser({
    errorHandler: (level: string, message: string) => { if (level !== 'warning') problems.push(message); },
    // XML 1.0 ends lines at CR LF and CR only; xmldom's default would also turn U+0085 and U+2028 into line feeds.
    normalizeLineEndings: (source: string) => source.replace(/\r\n?/g, '\n'),
  } as never).parseFromString(text, 'application/xml');
  if (problems.length > 0 || !doc.documentElement) {
    throw new XmlRefusal('SWX_XML_MALFORMED', `xmldom refused what the gate accepted: ${problems[0] ?? 'no root element'}`);
  }
  return doc;
}

/** A MIME part a cid: reference may point to. */
export interface MimePart {
  headers: Record<string, string>;
  body: Buffer;
}

const xmlType = /^(text\/xml|application\/xml|(application|image)\/[^;]*\+xml)/i;

function contentType(part: MimePart): string {
  return part.headers['content-type'] ?? 'text/plain';
}

/**
 * SwA 1.1 5.4.2 as Apache WSS4J (phase4, Domibus, Holodeck) applies it: XML content in exclusive c14n without comments
 * (of the whole document, as Santuario canonicalizes the part's bytes), other text/* with every line end as CR LF,
 * anything else as it is.
 */
function canonicalContent(part: MimePart, limits?: Partial<XmlLimits>): Buffer {
  const type = contentType(part);
  if (xmlType.test(type)) return Buffer.from(canonicalize(parseXml(part.body, limits), { algorithm: EXC_C14N }), 'utf8');
  if (/^text\//i.test(type)) return Buffer.from(part.body.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
  return part.body;
}

const completeHeaders = ['Content-Description', 'Content-Disposition', 'Content-ID', 'Content-Location', 'Content-Type'];
/** Parameters whose values are case-insensitive, written in lower case. */
const caseInsensitiveParameters = new Set(['charset', 'creation-date', 'filename', 'modification-date', 'padding', 'read-date', 'size', 'type']);

/** RFC 822 comments (parenthesised, nesting, outside quoted strings) removed. */
function uncomment(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += c + (value[i + 1] ?? '');
      i++;
    } else if (quoted) {
      out += c;
      if (c === '"') quoted = false;
    } else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) {
      out += c;
      if (c === '"') quoted = true;
    }
  }
  return out;
}

/** Type and parameters: type in lower case, parameters sorted by lower-case name, every value in quotes. */
function canonicalParameters(value: string): string {
  const [type = '', ...parameters] = value.split(';');
  if (parameters.length === 0) return value;
  const sorted = parameters
    .filter((parameter) => parameter.includes('='))
    .map((parameter) => {
      const at = parameter.indexOf('=');
      const name = parameter.slice(0, at).trim().toLowerCase();
      let text = parameter.slice(at + 1).trim();
      if (caseInsensitiveParameters.has(name)) text = text.toLowerCase();
      if (!text.startsWith('"')) text = `"${text}`;
      if (text.length < 2 || !text.endsWith('"')) text = `${text}"`;
      return [name, text] as const;
    })
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return type.toLowerCase() + sorted.map(([name, text]) => `;${name}=${text}`).join('');
}

/**
 * SwA 1.1 5.4.1 MIME header canonicalisation as WSS4J writes it: the five content headers (Content-Type defaulting to
 * text/plain us-ascii) in name order, unfolded, comments removed, each as `Name:value` CR LF. RFC 2047 encoded words
 * and RFC 2231 parameter continuations are taken as they are, not decoded.
 */
function canonicalHeaders(part: MimePart): string {
  const lines: string[] = [];
  for (const name of completeHeaders) {
    const raw = part.headers[name.toLowerCase()] ?? (name === 'Content-Type' ? 'text/plain;charset="us-ascii"' : undefined);
    if (raw === undefined) continue;
    let value = raw.replace(/\r\n(?=[ \t])/g, '');
    if (name !== 'Content-Description') value = value.replace(/^[ \t]+/, '');
    value = uncomment(value);
    if (name === 'Content-Type' || name === 'Content-Disposition') value = canonicalParameters(value);
    lines.push(`${name}:${value}\r\n`);
  }
  return lines.join('');
}

/**
 * The SHA-256 digests of an attachment too large to hold, taken as it streamed: of its canonical content
 * (Attachment-Content-Signature-Transform: the octets, a text part's line ends as CR LF, an XML part's exclusive
 * c14n), of its canonical MIME headers followed by that (Attachment-Complete-Signature-Transform), and of a text or XML
 * part's octets as they are (no transform).
 */
export interface AttachmentDigests {
  content: Buffer;
  /** Absent for a part the hub signs itself (with the content transform) from the SHA-256 its store keeps. */
  complete?: Buffer;
  /** A text or XML part's octets, where they differ from its canonical content. */
  octets?: Buffer;
  /** SHA-1 of the octets: taken where an ebMS 2.0 agreement lets the sender digest its parts with SHA-1. */
  sha1Octets?: Buffer;
}

const crlf = Buffer.from('\r\n');

/**
 * Text line ends made CR LF chunk by chunk, as canonicalContent makes them in one piece, handed to `sink` as views of
 * the chunk and CR LF (no copy of a large part is made): a CR ending one chunk has its LF at the start of the next.
 */
function crlfLineEnds(): (chunk: Uint8Array, sink: (piece: Uint8Array) => void) => void {
  let endedWithCr = false;
  return (chunk, sink) => {
    let from = endedWithCr && chunk[0] === 0x0a ? 1 : 0;
    if (chunk.length > 0) endedWithCr = chunk[chunk.length - 1] === 0x0d;
    for (let at = from; at < chunk.length; at++) {
      const byte = chunk[at];
      if (byte !== 0x0d && byte !== 0x0a) continue;
      if (byte === 0x0d && chunk[at + 1] === 0x0a) {
        at++;
        continue;
      }
      // A bare LF, or a CR alone (one that ends the chunk too: its LF, if one follows, is skipped in the next).
      if (at > from) sink(chunk.subarray(from, at));
      sink(crlf);
      from = at + 1;
    }
    if (from < chunk.length) sink(chunk.subarray(from));
  };
}

const typeOf = (headers: Record<string, string>) => contentType({ headers, body: Buffer.alloc(0) });
const isText = (headers: Record<string, string>) => /^text\//i.test(typeOf(headers));

/**
 * The digests of a stored part the hub signs: the SHA-256 it is stored with, when its canonical content is its octets;
 * a text or XML part's, or one to be signed with SHA-1 too, read through once, never held.
 */
export async function storedAttachmentDigests(headers: Record<string, string>, stored: { sha256: string; open(): AsyncIterable<Uint8Array> }, options: { sha1?: boolean } = {}): Promise<AttachmentDigests> {
  if (!isText(headers) && !xmlType.test(typeOf(headers)) && !options.sha1) return { content: Buffer.from(stored.sha256, 'hex') };
  const digester = attachmentDigester(headers, options);
  for await (const chunk of stored.open()) digester.update(chunk);
  return digester.digests();
}

/**
 * Digests a part's octets as they pass, for a reference to it judged with no body at hand (AttachmentDigests); an XML
 * part's canonical form is made as it passes, so update() and digests() throw XmlRefusal for XML that does not parse.
 */
export function attachmentDigester(headers: Record<string, string>, options: { sha1?: boolean } = {}): AttachmentDigester {
  const digester = sha256Digester(headers);
  if (!options.sha1) return digester;
  const sha1 = createHash('sha1');
  return {
    update(chunk) {
      sha1.update(chunk);
      digester.update(chunk);
    },
    digests: () => ({ ...digester.digests(), sha1Octets: sha1.digest() }),
  };
}

interface AttachmentDigester { update(chunk: Uint8Array): void; digests(): AttachmentDigests }

function sha256Digester(headers: Record<string, string>): AttachmentDigester {
  const octets = createHash('sha256');
  const complete = createHash('sha256').update(canonicalHeaders({ headers, body: Buffer.alloc(0) }), 'utf8');
  if (xmlType.test(typeOf(headers))) {
    const content = createHash('sha256');
    const xml = canonicalStream((text) => {
      const canonical = Buffer.from(text, 'utf8');
      content.update(canonical);
      complete.update(canonical);
    });
    return {
      update(chunk) {
        octets.update(chunk);
        xml.write(chunk);
      },
      digests() {
        xml.end();
        return { content: content.digest(), complete: complete.digest(), octets: octets.digest() };
      },
    };
  }
  const canonical = isText(headers) ? crlfLineEnds() : undefined;
  const content = canonical ? createHash('sha256') : octets;
  return {
    update(chunk) {
      octets.update(chunk);
      if (!canonical) {
        complete.update(chunk);
        return;
      }
      canonical(chunk, (piece) => {
        content.update(piece);
        complete.update(piece);
      });
    },
    digests: () => ({ content: content.digest(), complete: complete.digest(), ...(canonical ? { octets: octets.digest() } : {}) }),
  };
}

/**
 * The digest a cid: reference names for a part digested as it streamed; undefined when the reference's digest is not
 * one taken (SHA-256, and SHA-1 of the octets where asked).
 */
export function streamedAttachmentDigest(digests: AttachmentDigests, transform: string | undefined, digestUri: string): Buffer | undefined {
  if (digestUri === weakDigestUris.sha1 && transform === undefined) return digests.sha1Octets;
  if (digestUri !== 'http://www.w3.org/2001/04/xmlenc#sha256') return undefined;
  if (transform === undefined) return digests.octets ?? digests.content;
  return transform === transforms.attachmentComplete ? digests.complete : digests.content;
}

/**
 * The digest of a cid: reference's part, the same for signing and verifying: over its octets after the transform, or
 * for a part too large to hold, the SHA-256 taken as it streamed (undefined when the reference asks another digest).
 * Throws XmlRefusal for an XML part that does not parse.
 */
export function attachmentDigest(part: MimePart & { digests?: AttachmentDigests }, transform: string | undefined, digestUri: string, limits?: Partial<XmlLimits>): Buffer | undefined {
  if (part.digests) return streamedAttachmentDigest(part.digests, transform, digestUri);
  return digest(digestAlgorithms[digestUri]!, attachmentOctets(part, transform, limits));
}

/** The octets a cid: reference digests after its transform (none: the decoded part as it is, as in ebMS 2.0). */
export function attachmentOctets(part: MimePart, transform: string | undefined, limits?: Partial<XmlLimits>): Buffer {
  if (transform === undefined) return part.body;
  const content = canonicalContent(part, limits);
  if (transform === transforms.attachmentContent) return content;
  return Buffer.concat([Buffer.from(canonicalHeaders(part), 'utf8'), content]);
}
