// XMLDSig sign and verify (enveloped, enveloping, by Id, over MIME attachments), the reference implementation:
// xml-crypto 6.3 canonicalises and runs the transforms, every input passes parseXml first. verifyXml turns every input,
// hostile ones included, into a verdict with a stable SWX_* code; it never throws. Order of judgement: XML, signature
// present, algorithms known and allowed by policy, references, key, SignatureValue, the place of what is signed,
// certificate. The WS-Security profile of the same signatures is wssecurity.ts, built from the signing pieces here.
import { XMLSerializer } from '@xmldom/xmldom';
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { SwxError } from '../errors.ts';
import { cidUrl } from '../mime/headers.ts';
import { XmlRefusal, type XmlLimits } from '../xml/parse.ts';
import { soapVersionOf } from '../xml/soap.ts';
import { childElement, childElements, resolveKey, type KeySources } from './keyinfo.ts';
import { chooseSignature, readSignature, type ReferenceSpec, type SignatureSpec, type SignatureTree, type TransformStep } from './xmldsig-spec.ts';
import { attachmentRefusal, attachmentTarget, concludeSignature, digestRefusal, readTrust, xmlDraft, type Refusal, type VerifyXmlOptions, type XmlAttachment, type XmlDraft } from './xmldsig-trust.ts';
import type { ReferenceCheck, SignedElement, XmlVerdict } from './verdict.ts';
import { verifyXmlFast } from './xmldsig-fast.ts';
import { pemBlocks } from './x509.ts';
import {
  attachmentDigest,
  attachmentTransforms,
  canonicalizationNames,
  canonicalizations,
  canonicalizer,
  defaultSignatureFor,
  digest,
  digestAlgorithms,
  digestUris,
  documentTransforms,
  excludedNodes,
  keyMismatch,
  namespaces,
  parseDocument,
  signatureAlgorithms,
  signatureUris,
  signWith,
  idAttributes,
  transformName,
  transforms as transformUris,
  within,
  UnsupportedNodeSet,
  type CanonicalizationName,
  type Canonicalizer,
  type DigestName,
  type SignatureName,
  type WeakDigestName,
  type WeakSignatureName,
  type XPathFilter,
  weakDigestUris,
  weakSignatureUris,
} from './xmldsig-algorithms.ts';

export type { CanonicalizationName, DigestName, SignatureName, WeakDigestName, WeakSignatureName, XPathFilter };
export type { SignedElement, XmlVerdict } from './verdict.ts';
export type { VerifyXmlOptions, XmlAttachment } from './xmldsig-trust.ts';

/** Prefix bindings in scope at `element` (its own declarations included), innermost first. */
function inScopeNamespaces(element: Element): Map<string, string> {
  const scope = new Map<string, string>();
  for (let node: Node | null = element; node && node.nodeType === node.ELEMENT_NODE; node = node.parentNode) {
    for (const attribute of Array.from((node as Element).attributes)) {
      const prefix = attribute.name === 'xmlns' ? '' : attribute.prefix === 'xmlns' ? attribute.localName : undefined;
      if (prefix !== undefined && !scope.has(prefix)) scope.set(prefix, attribute.value);
    }
  }
  return scope;
}

/** What xml-crypto's canonicalisers need from outside a subtree: bindings declared by ancestors and not redeclared on it. */
function ancestorNamespaces(element: Element): { prefix: string; namespaceURI: string }[] {
  const parent = element.parentNode;
  if (!parent || parent.nodeType !== parent.ELEMENT_NODE) return [];
  const own = new Set(Array.from(element.attributes).flatMap((a) => (a.name === 'xmlns' ? [''] : a.prefix === 'xmlns' ? [a.localName] : [])));
  own.add(element.prefix ?? '');
  return [...inScopeNamespaces(parent as Element)]
    .filter(([prefix, uri]) => uri !== '' && !own.has(prefix))
    .map(([prefix, namespaceURI]) => ({ prefix, namespaceURI }));
}

function elementChildren(element: Element): Element[] {
  return Array.from(element.childNodes).filter((node): node is Element => node.nodeType === node.ELEMENT_NODE);
}

/** "/Envelope/Header/Security": local names, with [n] (1-based) where siblings share a local name. */
export function pathOf(element: Element): string {
  const steps: string[] = [];
  for (let node: Element | null = element; node; ) {
    const parent: Node | null = node.parentNode;
    let step = node.localName;
    if (parent && parent.nodeType === parent.ELEMENT_NODE) {
      const namesakes = elementChildren(parent as Element).filter((sibling) => sibling.localName === node!.localName);
      if (namesakes.length > 1) step += `[${namesakes.indexOf(node) + 1}]`;
      node = parent as Element;
    } else {
      node = null;
    }
    steps.unshift(step);
  }
  return `/${steps.join('/')}`;
}

/** Every element by each Id, ID or id attribute it carries (any namespace, so wsu:Id too), as xml-crypto matches them. */
function idIndex(doc: Document): (id: string) => Element[] {
  const index = new Map<string, Element[]>();
  const visit = (element: Element) => {
    for (const attribute of Array.from(element.attributes)) {
      if (!idAttributes.has(attribute.localName)) continue;
      const list = index.get(attribute.value) ?? [];
      if (!list.includes(element)) list.push(element);
      index.set(attribute.value, list);
    }
    for (const child of elementChildren(element)) visit(child);
  };
  visit(doc.documentElement);
  return (id) => index.get(id) ?? [];
}


/** The DOM as the shared signature reader (xmldsig-spec.ts) walks it. */
export const domTree: SignatureTree<Element> = {
  children: childElements,
  attribute: (element, name) => (element.hasAttribute(name) ? element.getAttribute(name) ?? '' : undefined),
  text: (element) => element.textContent ?? '',
  namespacesInScope: inScopeNamespaces,
  namespace: (element) => element.namespaceURI ?? '',
  localName: (element) => element.localName,
  path: pathOf,
};

function canonicalSignedInfo(canon: Canonicalizer, spec: SignatureSpec<Element>): string {
  return canon.canonicalize([spec.canonicalization], spec.signedInfo, {
    ancestorNamespaces: ancestorNamespaces(spec.signedInfo),
    inclusiveNamespacesPrefixList: spec.prefixes,
  }, { discardComments: false });
}

type Target =
  | { kind: 'element'; element: Element; discardComments: boolean }
  | { kind: 'attachment'; attachment: XmlAttachment };

/** What a Reference URI points to: this document ("", #id, #xpointer(...)) or a MIME part (cid:). */
function dereference(uri: string, doc: Document, byId: (id: string) => Element[], attachments: readonly XmlAttachment[]): Target | Refusal {
  if (uri === '') return { kind: 'element', element: doc.documentElement, discardComments: true };
  if (uri.toLowerCase().startsWith('cid:')) {
    const attachment = attachmentTarget(uri, attachments);
    return 'code' in attachment ? attachment : { kind: 'attachment', attachment };
  }
  if (!uri.startsWith('#')) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `${uri.slice(0, 120)} is outside this message; external references are not fetched` };
  // XMLDSig 4.4.3.3: bare names drop comments, XPointers keep them.
  if (uri === '#xpointer(/)') return { kind: 'element', element: doc.documentElement, discardComments: false };
  const pointer = /^#xpointer\(id\((['"])([^'"]*)\1\)\)$/.exec(uri);
  const id = pointer ? pointer[2]! : uri.slice(1);
  const found = byId(id);
  if (found.length === 0) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `no element carries Id ${id.slice(0, 120)}` };
  if (found.length > 1) return { code: 'SWX_SIG_WRAPPED', detail: `${found.length} elements carry Id ${id.slice(0, 120)}: the signed one is ambiguous` };
  return { kind: 'element', element: found[0]!, discardComments: !pointer };
}

/**
 * The digest of a Reference's target, the same for signing and verifying: over its octets, or for an attachment too large
 * to hold, the SHA-256 taken as it streamed (undefined when the Reference asks another digest). Throws UnsupportedNodeSet.
 */
function referenceDigest(canon: Canonicalizer, ref: ReferenceSpec<Element>, target: Target, limits?: Partial<XmlLimits>): Buffer | undefined {
  if (target.kind === 'attachment') return attachmentDigest(target.attachment, ref.transforms[0]?.algorithm, ref.digestAlgorithm, limits);
  return digest(digestAlgorithms[ref.digestAlgorithm]!, elementOctets(canon, ref, target));
}

/** The octets a same-document Reference digests (XMLDSig 4.4.3.2), the same for signing and verifying. Throws UnsupportedNodeSet. */
function elementOctets(canon: Canonicalizer, ref: ReferenceSpec<Element>, target: Extract<Target, { kind: 'element' }>): string {
  const prefixes = ref.transforms.filter((step) => step.prefixes).at(-1)?.prefixes ?? [];
  return canon.canonicalize(ref.transforms.map((step) => step.algorithm), target.element, {
    ancestorNamespaces: ancestorNamespaces(target.element),
    inclusiveNamespacesPrefixList: prefixes,
    xpathFilters: ref.transforms.flatMap((step) => (step.filter ? [step.filter] : [])),
  }, { discardComments: target.discardComments });
}

/** Algorithm URIs the signature uses that swx does not implement. */
function unsupported(spec: SignatureSpec<Element>): string[] {
  const unknown: string[] = [];
  if (!canonicalizationNames[spec.canonicalization]) unknown.push(`CanonicalizationMethod ${spec.canonicalization}`);
  if (!signatureAlgorithms[spec.signatureMethod]) unknown.push(`SignatureMethod ${spec.signatureMethod}`);
  for (const ref of spec.references) {
    // A malformed Reference is refused as such (SWX_SIG_INVALID) when the references are checked.
    if (ref.malformed) continue;
    if (!digestAlgorithms[ref.digestAlgorithm]) unknown.push(`DigestMethod ${ref.digestAlgorithm}`);
    const attachment = ref.uri.toLowerCase().startsWith('cid:');
    for (const step of ref.transforms) {
      if (!(attachment ? attachmentTransforms : documentTransforms).has(step.algorithm)) unknown.push(`Transform ${step.algorithm} on ${attachment ? 'an attachment' : 'XML'}`);
    }
    if (attachment && ref.transforms.length > 1) unknown.push(`a chain of ${ref.transforms.length} transforms on an attachment`);
  }
  return unknown.map((what) => what.slice(0, 200));
}

function weakAlgorithms(spec: SignatureSpec<Element>): string[] {
  const names = [signatureAlgorithms[spec.signatureMethod], ...spec.references.map((ref) => digestAlgorithms[ref.digestAlgorithm])]
    .filter((alg) => alg?.weak)
    .map((alg) => alg!.name);
  return [...new Set(names)];
}


/** Paths inside `target` that the reference's transforms leave out, judged on the document as it is. */
function excludedPaths(ref: ReferenceSpec<Element>, target: Element, signature: Element): string[] {
  const paths: string[] = [];
  if (ref.transforms.some((step) => step.algorithm === transformUris.envelopedSignature) && within(pathOf(signature), pathOf(target))) paths.push(pathOf(signature));
  for (const step of ref.transforms) {
    if (!step.filter) continue;
    try {
      for (const node of excludedNodes(target, step.filter)) {
        const owner = node.nodeType === node.ATTRIBUTE_NODE ? (node as Attr).ownerElement : node.nodeType === node.ELEMENT_NODE ? (node as Element) : node.parentNode;
        if (owner && owner.nodeType === owner.ELEMENT_NODE) paths.push(pathOf(owner as Element));
      }
    } catch {
      // The canonicalisation agreed with this filter on the transformed copy; on the full document it is ambiguous.
      paths.push(pathOf(target));
    }
  }
  const unique = [...new Set(paths)];
  return unique.filter((path) => !unique.some((other) => other !== path && within(path, other)));
}

/**
 * Verifies the one signature of an XML message (the SOAP header's, for an envelope); never throws. The fast path
 * (xmldsig-fast.ts) answers the common profiles, the reference everything else, with the same verdicts
 * (test/engine/xml-differential.test.ts).
 */
export async function verifyXml(xml: Buffer | string, options: VerifyXmlOptions = {}): Promise<XmlVerdict> {
  return verifyXmlFast(xml, options) ?? verifyXmlReference(xml, options);
}

/** The reference verifier on xml-crypto alone: what the fast path is measured and tested against. */
export async function verifyXmlReference(xml: Buffer | string, options: VerifyXmlOptions = {}): Promise<XmlVerdict> {
  const draft = xmlDraft();
  try {
    return verify(xml, options, draft);
  } catch (error) {
    if (error instanceof SwxError) return draft.refuse(error.code, error.message);
    return draft.refuse('SWX_SIG_INVALID', `the signature cannot be processed: ${(error as Error)?.message ?? String(error)}`);
  }
}

function verify(xml: Buffer | string, options: VerifyXmlOptions, draft: XmlDraft): XmlVerdict {
  const { known, refuse } = draft;
  const at = options.at ?? new Date();
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) return refuse('SWX_BAD_REQUEST', 'options.at is not a valid Date');
  const policy = options.policy ?? 'live';
  if (policy !== 'live' && policy !== 'archive') return refuse('SWX_BAD_REQUEST', `policy ${JSON.stringify(policy)} is neither live nor archive`);
  if (typeof xml !== 'string' && !Buffer.isBuffer(xml)) return refuse('SWX_BAD_REQUEST', 'the XML must be a string or a Buffer');
  const trust = readTrust(options);
  const attachments = options.attachments ?? [];

  let doc: Document;
  try {
    doc = parseDocument(xml, options.limits);
  } catch (error) {
    if (error instanceof XmlRefusal) return refuse(error.code, error.message);
    throw error;
  }
  const signature = chooseSignature(domTree, doc.documentElement, Array.from(doc.getElementsByTagNameNS(namespaces.ds, 'Signature')));
  if ('code' in signature) return refuse(signature.code, signature.detail);
  const parent = signature.parentNode as Element | null;
  if (parent?.namespaceURI === namespaces.wsse && parent.localName === 'Security') known.kind = 'soap-wss';

  const spec = readSignature(domTree, signature);
  if ('code' in spec) return refuse(spec.code, spec.detail);
  known.algorithms = {
    signature: signatureAlgorithms[spec.signatureMethod]?.name ?? spec.signatureMethod,
    digest: [...new Set(spec.references.map((ref) => digestAlgorithms[ref.digestAlgorithm]?.name ?? ref.digestAlgorithm))],
    canonicalization: [...new Set([spec.canonicalization, ...spec.references.flatMap((ref) => ref.transforms.map((step) => step.algorithm)).filter((uri) => canonicalizationNames[uri])].map(transformName))],
  };
  const unknown = unsupported(spec);
  if (unknown.length > 0) return refuse('SWX_SIG_ALG_UNSUPPORTED', `not supported: ${unknown.join('; ')}`);
  const weak = weakAlgorithms(spec);
  if (weak.length > 0) {
    if (policy === 'live') return refuse('SWX_SIG_WEAK_ALG', `${weak.join(', ')} refused on live traffic (accepted only for archived content)`);
    known.weak = weak;
  }

  // References before the SignatureValue, as xmlsec1 and xml-crypto judge them: the transforms of a SignedInfo not yet
  // authenticated are bounded (counted, XPath filters look only up the tree, attachments pass the XML gate).
  const byId = idIndex(doc);
  const canon = canonicalizer(signature);
  let failure: Refusal | undefined;
  const signedElements: SignedElement[] = [];
  const signedAttachments: string[] = [];
  known.references = spec.references.map((ref) => {
    const check: ReferenceCheck = {
      uri: ref.uri,
      digestAlgorithm: digestAlgorithms[ref.digestAlgorithm]?.name ?? ref.digestAlgorithm,
      transforms: ref.transforms.map((step) => transformName(step.algorithm)),
      valid: false,
    };
    const outcome = checkReference(ref, doc, byId, attachments, canon, options.limits);
    if ('code' in outcome) {
      failure ??= { code: outcome.code, detail: `reference ${ref.uri.slice(0, 120) || '""'}: ${outcome.detail}` };
      return { ...check, detail: outcome.detail };
    }
    if (outcome.kind === 'attachment') signedAttachments.push(outcome.attachment.contentId);
    else {
      signedElements.push({
        uri: ref.uri,
        namespace: outcome.element.namespaceURI || null,
        localName: outcome.element.localName,
        path: pathOf(outcome.element),
        excludes: excludedPaths(ref, outcome.element, signature),
      });
    }
    return { ...check, valid: true };
  });
  if (failure) return refuse(failure.code, failure.detail);

  const sources: KeySources = {
    ...(trust.pinned ? { pinned: trust.pinned } : {}),
    ...(trust.pinnedKey ? { pinnedKey: trust.pinnedKey } : {}),
    ...(trust.namedKeys ? { namedKeys: trust.namedKeys } : {}),
    known: [...(trust.pinned ? [trust.pinned] : []), ...trust.pinnedRest, ...trust.untrusted, ...trust.anchors],
  };
  return concludeSignature(draft, {
    tree: domTree,
    root: doc.documentElement,
    byId: (id) => byId(id)[0],
    algorithm: signatureAlgorithms[spec.signatureMethod]!,
    signatureValue: spec.signatureValue,
    signedInfo: () => canonicalSignedInfo(canon, spec),
    resolved: resolveKey(signature, byId, sources),
    signedElements,
    signedAttachments,
    trust,
    at,
  });
}

function checkReference(
  ref: ReferenceSpec<Element>,
  doc: Document,
  byId: (id: string) => Element[],
  attachments: readonly XmlAttachment[],
  canon: Canonicalizer,
  limits?: Partial<XmlLimits>,
): Target | Refusal {
  if (ref.malformed) return { code: 'SWX_SIG_INVALID', detail: ref.malformed };
  const target = dereference(ref.uri, doc, byId, attachments);
  if ('code' in target) return target;
  if (target.kind === 'attachment') return attachmentRefusal(ref, target.attachment, limits) ?? target;
  let computed: Buffer;
  try {
    computed = digest(digestAlgorithms[ref.digestAlgorithm]!, elementOctets(canon, ref, target));
  } catch (error) {
    if (error instanceof UnsupportedNodeSet) return { code: 'SWX_SIG_ALG_UNSUPPORTED', detail: error.message };
    throw error;
  }
  return digestRefusal(computed, ref.digestValue) ?? target;
}

/** The element a connector may act on: signed itself, or inside a signed element with nothing in or around it left out. */
export function signedElement(verdict: XmlVerdict, expectedPath: string): SignedElement | undefined {
  if (!verdict.valid) return undefined;
  const covers = (element: SignedElement) =>
    within(expectedPath, element.path) && !element.excludes.some((excluded) => within(expectedPath, excluded) || within(excluded, expectedPath));
  return verdict.signedElements.find((element) => element.path === expectedPath && covers(element)) ?? verdict.signedElements.find(covers);
}

// ---- signing: signXml here, and the pieces wssecurity.ts signs SOAP envelopes with ----

export interface SignXmlOptions {
  /** PKCS#8 (or PKCS#1 / SEC1) PEM: RSA, EC P-256/384/521 or Ed25519. */
  keyPem: string;
  /** Signer certificate, optionally followed by its chain: published in KeyInfo/X509Data. */
  certPem?: string;
  /** enveloped (default): Signature inside the document (in the SOAP Header of an envelope, else last in the root);
   *  enveloping: the document inside the Signature's ds:Object; detached: placed as enveloped, references by Id only. */
  mode?: 'enveloped' | 'enveloping' | 'detached';
  /** Elements to reference by their Id (Id, ID, id or wsu:Id); without them an enveloped signature covers URI="". */
  ids?: readonly string[];
  /** MIME parts to reference as cid: URIs. */
  attachments?: readonly XmlAttachment[];
  /** content (AS4, default), complete (with MIME headers) or none (ebMS 2.0: the decoded octets). */
  attachmentTransform?: 'content' | 'complete' | 'none';
  signatureAlgorithm?: SignatureName | WeakSignatureName;
  digestAlgorithm?: DigestName | WeakDigestName;
  /** Signs with RSA-SHA1 / SHA-1 when they are asked for (a partner's agreement names them); refused otherwise. */
  allowWeak?: boolean;
  /** For SignedInfo and every XML reference; default exc-c14n. */
  canonicalization?: CanonicalizationName;
  inclusiveNamespaces?: readonly string[];
  /** An XPath filter on the whole-document reference (ebMS 2.0 drops the nextMSH actor's header blocks this way). */
  xpathFilter?: XPathFilter;
}

export interface Signer {
  key: KeyObject;
  uri: string;
  digestUri: string;
  canonicalization: string;
  prefixes: string[];
}

/** Values made from PEM text, by that text: bounded, oldest first out. */
export function pemCache<T>(capacity: number): (pem: string, make: (pem: string) => T) => T {
  const cache = new Map<string, T>();
  return (pem, make) => {
    const hit = cache.get(pem);
    if (hit !== undefined) return hit;
    const made = make(pem);
    cache.set(pem, made);
    if (cache.size > capacity) cache.delete(cache.keys().next().value!);
    return made;
  };
}

// Reading a PEM key costs more than the ECDSA signature made with it, and a process signs with a handful of keys.
const privateKeys = pemCache<KeyObject>(64);

export function signer(options: {
  keyPem: string; signatureAlgorithm?: SignatureName | WeakSignatureName; digestAlgorithm?: DigestName | WeakDigestName; allowWeak?: boolean;
  canonicalization?: CanonicalizationName; inclusiveNamespaces?: readonly string[];
}): Signer {
  let key: KeyObject;
  try {
    key = privateKeys(options.keyPem, (pem) => createPrivateKey(pem));
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `keyPem is not a readable PEM private key: ${(error as Error).message}`);
  }
  const weakSignature = options.signatureAlgorithm !== undefined && Object.hasOwn(weakSignatureUris, options.signatureAlgorithm);
  const weakDigest = options.digestAlgorithm !== undefined && Object.hasOwn(weakDigestUris, options.digestAlgorithm);
  if ((weakSignature || weakDigest) && !options.allowWeak) {
    throw new SwxError('SWX_SIG_WEAK_ALG', `${weakSignature ? options.signatureAlgorithm : options.digestAlgorithm} is weak: swx signs with it only when asked (allowWeak), for a partner whose agreement names it`);
  }
  const name = options.signatureAlgorithm ?? defaultSignatureFor(key);
  const uri = name ? (signatureUris as Record<string, string>)[name] ?? (weakSignatureUris as Record<string, string>)[name] : undefined;
  if (!uri) throw new SwxError('SWX_SIG_ALG_UNSUPPORTED', `no XML signature algorithm for ${options.signatureAlgorithm ?? `a ${key.asymmetricKeyType} key`}`);
  const mismatch = keyMismatch(signatureAlgorithms[uri]!, key);
  if (mismatch) throw new SwxError('SWX_SIG_ALG_UNSUPPORTED', mismatch);
  const digestName = options.digestAlgorithm ?? 'sha256';
  const digestUri = (digestUris as Record<string, string>)[digestName] ?? (weakDigestUris as Record<string, string>)[digestName];
  const canonicalization = canonicalizations[options.canonicalization ?? 'exc-c14n'];
  if (!digestUri || !canonicalization) throw new SwxError('SWX_SIG_ALG_UNSUPPORTED', `digest ${options.digestAlgorithm} or canonicalization ${options.canonicalization} is not offered`);
  return { key, uri, digestUri, canonicalization, prefixes: [...(options.inclusiveNamespaces ?? [])] };
}

export function create(doc: Document, namespace: string, qualifiedName: string, attributes: Record<string, string> = {}, text?: string): Element {
  const element = doc.createElementNS(namespace, qualifiedName);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('xmlns:')) element.setAttributeNS(namespaces.xmlns, name, value);
    else element.setAttribute(name, value);
  }
  if (text !== undefined) element.appendChild(doc.createTextNode(text));
  return element;
}

export function ds(doc: Document, localName: string, attributes: Record<string, string> = {}, text?: string): Element {
  return create(doc, namespaces.ds, `ds:${localName}`, attributes, text);
}

/** A ds:Transform or ds:CanonicalizationMethod with its parameters (XPath expression, InclusiveNamespaces). */
function methodElement(doc: Document, localName: 'Transform' | 'CanonicalizationMethod', step: TransformStep): Element {
  const transform = ds(doc, localName, { Algorithm: step.algorithm });
  if (step.filter) {
    const xpath = ds(doc, 'XPath', {}, step.filter.expression);
    for (const [prefix, uri] of Object.entries(step.filter.namespaces)) xpath.setAttributeNS(namespaces.xmlns, `xmlns:${prefix}`, uri);
    transform.appendChild(xpath);
  }
  if (step.prefixes?.length) {
    transform.appendChild(create(doc, namespaces.excC14n, 'ec:InclusiveNamespaces', { 'xmlns:ec': namespaces.excC14n, PrefixList: step.prefixes.join(' ') }));
  }
  return transform;
}

/** A Signature with SignedInfo (no references yet), an empty SignatureValue and an Id to find it again by. */
export function signatureShell(doc: Document, sign: Signer): Element {
  const signature = ds(doc, 'Signature', { 'xmlns:ds': namespaces.ds, Id: `sig-${randomUUID()}` });
  const signedInfo = ds(doc, 'SignedInfo');
  signedInfo.appendChild(methodElement(doc, 'CanonicalizationMethod', { algorithm: sign.canonicalization, prefixes: sign.prefixes }));
  signedInfo.appendChild(ds(doc, 'SignatureMethod', { Algorithm: sign.uri }));
  signature.appendChild(signedInfo);
  signature.appendChild(ds(doc, 'SignatureValue'));
  return signature;
}

function addReference(signature: Element, uri: string, steps: TransformStep[], digestUri: string): void {
  const doc = signature.ownerDocument;
  const signedInfo = childElement(signature, namespaces.ds, 'SignedInfo')!;
  const reference = ds(doc, 'Reference', { URI: uri });
  if (steps.length > 0) {
    const list = ds(doc, 'Transforms');
    for (const step of steps) list.appendChild(methodElement(doc, 'Transform', step));
    reference.appendChild(list);
  }
  reference.appendChild(ds(doc, 'DigestMethod', { Algorithm: digestUri }));
  reference.appendChild(ds(doc, 'DigestValue'));
  signedInfo.appendChild(reference);
}

/** References to this document's elements: the enveloped-signature transform where the Signature sits inside. */
export function addElementReferences(signature: Element, targets: { uri: string; element: Element; filter?: XPathFilter }[], sign: Signer): void {
  for (const { uri, element, filter } of targets) {
    const steps: TransformStep[] = [];
    let inside: Node | null = signature;
    while (inside && inside !== element) inside = inside.parentNode;
    if (inside) steps.push({ algorithm: transformUris.envelopedSignature });
    if (filter) steps.push({ algorithm: transformUris.xpathFilter, filter });
    steps.push({ algorithm: sign.canonicalization, prefixes: sign.prefixes });
    addReference(signature, uri, steps, sign.digestUri);
  }
}

export function addAttachmentReferences(signature: Element, attachments: readonly XmlAttachment[], transform: 'content' | 'complete' | 'none', digestUri: string): void {
  const algorithm = transform === 'content' ? transformUris.attachmentContent : transform === 'complete' ? transformUris.attachmentComplete : undefined;
  for (const attachment of attachments) {
    addReference(signature, cidUrl(attachment.contentId), algorithm ? [{ algorithm }] : [], digestUri);
  }
}

export function uniqueById(doc: Document, ids: readonly string[]): { uri: string; element: Element }[] {
  const byId = idIndex(doc);
  return ids.map((id) => {
    const found = byId(id);
    if (found.length !== 1) {
      throw new SwxError(found.length ? 'SWX_SIG_WRAPPED' : 'SWX_SIG_REF_UNRESOLVED', `${found.length} elements carry Id ${id}; exactly one must, to sign it`);
    }
    return { uri: `#${id}`, element: found[0]! };
  });
}

/** Written so that a carriage return in content survives a re-parse (XML 1.0 2.11 would turn it into a line feed). */
export function serialize(doc: Document): string {
  return new XMLSerializer().serializeToString(doc).replace(/\r/g, '&#xD;');
}

/**
 * Fills in the digests and the SignatureValue. The document is first written out and read back, so that what is
 * digested and signed is exactly what a verifier will parse.
 */
export function seal(draft: Document, signatureId: string, sign: Signer, attachments: readonly XmlAttachment[]): string {
  const doc = parseDocument(serialize(draft));
  const byId = idIndex(doc);
  const signature = byId(signatureId)[0]!;
  const spec = readSignature(domTree, signature);
  if ('code' in spec) throw new SwxError('SWX_INTERNAL', `the signature being made is malformed: ${spec.detail}`);
  const canon = canonicalizer(signature);
  for (const ref of spec.references) {
    const target = dereference(ref.uri, doc, byId, attachments);
    if ('code' in target) throw new SwxError(target.code, target.detail);
    const value = referenceDigest(canon, ref, target);
    if (!value) throw new SwxError('SWX_SIG_ALG_UNSUPPORTED', `an attachment digested as it streamed is signed with SHA-256 only, not ${ref.digestAlgorithm}`);
    childElement(ref.element, namespaces.ds, 'DigestValue')!.textContent = value.toString('base64');
  }
  const value = signWith(signatureAlgorithms[sign.uri]!, sign.key, canonicalSignedInfo(canon, spec));
  childElement(signature, namespaces.ds, 'SignatureValue')!.textContent = value.toString('base64');
  return serialize(doc);
}

function x509Data(doc: Document, certPem: string | undefined): Element | undefined {
  if (certPem === undefined) return undefined;
  const ders = pemBlocks(certPem, 'CERTIFICATE');
  if (ders.length === 0) throw new SwxError('SWX_BAD_REQUEST', 'certPem holds no PEM CERTIFICATE block');
  const keyInfo = ds(doc, 'KeyInfo');
  const data = ds(doc, 'X509Data');
  for (const der of ders) data.appendChild(ds(doc, 'X509Certificate', {}, der.toString('base64')));
  keyInfo.appendChild(data);
  return keyInfo;
}

export async function guarded<T>(make: () => T): Promise<T> {
  try {
    return make();
  } catch (error) {
    if (error instanceof SwxError) throw error;
    throw new SwxError('SWX_BAD_REQUEST', `cannot sign: ${(error as Error).message}`, { cause: error });
  }
}

/** Signs XML enveloped (URI=""), by Id, enveloping or over attachments; rejects with an SwxError on bad input. */
export function signXml(xml: Buffer | string, options: SignXmlOptions): Promise<string> {
  return guarded(() => {
    const sign = signer(options);
    const mode = options.mode ?? 'enveloped';
    if (mode === 'detached' && !options.ids?.length) throw new SwxError('SWX_BAD_REQUEST', 'a detached signature names the elements it signs in ids');
    const input = parseDocument(xml);
    const doc = mode === 'enveloping' ? parseDocument(`<ds:Signature xmlns:ds="${namespaces.ds}"/>`) : input;
    const signature = signatureShell(doc, sign);
    const targets: { uri: string; element: Element; filter?: XPathFilter }[] = [];
    if (mode === 'enveloping') {
      doc.replaceChild(signature, doc.documentElement);
      const objectId = `object-${randomUUID()}`;
      const object = ds(doc, 'Object', { Id: objectId });
      object.appendChild(doc.importNode(input.documentElement, true));
      signature.appendChild(object);
      targets.push({ uri: `#${objectId}`, element: object }, ...uniqueById(doc, options.ids ?? []));
    } else {
      soapHeader(doc, false).appendChild(signature);
      if (options.ids?.length) targets.push(...uniqueById(doc, options.ids));
      else targets.push({ uri: '', element: doc.documentElement, ...(options.xpathFilter ? { filter: options.xpathFilter } : {}) });
    }
    addElementReferences(signature, targets, sign);
    addAttachmentReferences(signature, options.attachments ?? [], options.attachmentTransform ?? 'content', sign.digestUri);
    const keyInfo = x509Data(doc, options.certPem);
    if (keyInfo) signature.insertBefore(keyInfo, childElement(signature, namespaces.ds, 'Object') ?? null);
    return seal(doc, signature.getAttribute('Id')!, sign, options.attachments ?? []);
  });
}

/** The wsse:Security block of an envelope's SOAP Header, made (mustUnderstand) if it has none; the Header too. */
export function securityHeader(doc: Document): Element {
  const header = soapHeader(doc, true);
  const existing = childElement(header, namespaces.wsse, 'Security');
  if (existing) return existing;
  const root = doc.documentElement;
  const soap = root.namespaceURI!;
  const security = create(doc, namespaces.wsse, 'wsse:Security', { 'xmlns:wsse': namespaces.wsse, 'xmlns:wsu': namespaces.wsu });
  if (!root.prefix) security.setAttributeNS(namespaces.xmlns, 'xmlns:soap', soap);
  security.setAttributeNS(soap, `${root.prefix || 'soap'}:mustUnderstand`, soap === namespaces.soap11 ? '1' : 'true');
  header.appendChild(security);
  return security;
}

/** Where an enveloped signature goes: the SOAP Header of an envelope (made if missing), else the root element. */
export function soapHeader(doc: Document, required: boolean): Element {
  const root = doc.documentElement;
  const soap = root.namespaceURI ?? '';
  if (!soapVersionOf(soap) || root.localName !== 'Envelope') {
    if (required) throw new SwxError('SWX_BAD_REQUEST', 'not a SOAP 1.1 or 1.2 Envelope');
    return root;
  }
  const existing = childElement(root, soap, 'Header');
  if (existing) return existing;
  const header = create(doc, soap, `${root.prefix ? `${root.prefix}:` : ''}Header`);
  root.insertBefore(header, root.firstChild);
  return header;
}
