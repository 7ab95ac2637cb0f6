// The fast XMLDSig verifier: the common profiles over our own parser and canonicaliser instead of xmldom, XPath and
// xml-crypto. It gives exactly the verdict xmldsig.ts (the reference) gives, or none: undefined sends
// the caller to the reference, for anything outside these profiles and wherever the reference's xml-crypto departs
// from the specifications (test/engine/xml-c14n.test.ts lists how), so speed never changes a verdict.
// Profiles: enveloped URI="" and references by Id / ID / id / wsu:Id, with enveloped-signature and one c14n or
// exc-c14n (with or without comments); MIME parts by cid: (AS4's SwA transforms, or none), digested by the code the
// reference digests them with; SHA-2 digests; RSA PKCS#1, RSA-PSS, ECDSA, Ed25519; the key from KeyInfo as
// one X509Certificate or a WS-Security BinarySecurityToken.
import type { KeyObject } from 'node:crypto';
import { C14N, C14N_WITH_COMMENTS, canonicalize, EXC_C14N, EXC_C14N_WITH_COMMENTS, isC14nAlgorithm, type C14nAlgorithm } from '../xml/c14n.ts';
import { elementPath } from '../xml/elements.ts';
import { parseXml, XML_NAMESPACE, XmlRefusal, type XmlDocument, type XmlElement } from '../xml/parse.ts';
import { certificate, type ParsedCert } from './certs.ts';
import type { ReferenceCheck, SignedElement, XmlVerdict } from './verdict.ts';
import { base64Of, chooseSignature, readSignature, type ReferenceSpec, type SignatureSpec, type SignatureTree } from './xmldsig-spec.ts';
import { attachmentRefusal, attachmentTarget, concludeSignature, digestRefusal, readTrust, xmlDraft, type Refusal, type Trust, type VerifyXmlOptions, type XmlAttachment } from './xmldsig-trust.ts';
import {
  attachmentTransforms,
  digest,
  digestAlgorithms,
  namespaces,
  signatureAlgorithms,
  idAttributes,
  transformName,
  transforms as transformUris,
  within,
} from './xmldsig-algorithms.ts';

const tokenProfile = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0';

/** Thrown inside this module when the input leaves the profiles: the caller then asks the reference. */
class NotCovered extends Error {}


// ---- the tree, read the way the reference reads its DOM ----

function childElements(parent: XmlElement, namespace: string, localName: string): XmlElement[] {
  const found: XmlElement[] = [];
  for (const child of parent.children) {
    if (child.type === 'element' && child.namespace === namespace && child.localName === localName) found.push(child);
  }
  return found;
}

const childElement = (parent: XmlElement, namespace: string, localName: string) => childElements(parent, namespace, localName)[0];

/** DOM getAttribute: by qualified name. */
function attribute(element: XmlElement, qualifiedName: string): string | undefined {
  for (const a of element.attributes) if (a.qualifiedName === qualifiedName) return a.value;
  return undefined;
}

/** DOM textContent: the text of every descendant, comments and processing instructions left out. */
function textContent(element: XmlElement): string {
  let text = '';
  for (const child of element.children) {
    if (child.type === 'text') text += child.value;
    else if (child.type === 'element') text += textContent(child);
  }
  return text;
}

function isInside(element: XmlElement, ancestor: XmlElement): boolean {
  for (let node: XmlElement | undefined = element; node; node = node.parent) if (node === ancestor) return true;
  return false;
}

interface DocumentFacts {
  /**
   * Elements by each Id, ID or id attribute (any namespace), in document order, each element once per value. A
   * declaration such as xmlns:Id="x" counts too: to the reference's DOM it is an attribute with local name Id.
   */
  byId: Map<string, XmlElement[]>;
  /** Every ds:Signature, in document order. */
  signatures: XmlElement[];
  /** Local names of prefixed attributes: xml-crypto takes a listed one for a namespace declaration. */
  prefixedAttributeNames: Set<string>;
}

/**
 * One walk over the tree: the Id index, the signatures, and the constructs the reference's xml-crypto canonicalises
 * unlike the specifications (xmlns:xml declarations, processing instructions, names ordered differently in UTF-16
 * than by code point), for which the reference must answer.
 */
function survey(document: XmlDocument): DocumentFacts {
  const facts: DocumentFacts = { byId: new Map(), signatures: [], prefixedAttributeNames: new Set() };
  const index = (id: string, element: XmlElement) => {
    const list = facts.byId.get(id);
    if (!list) facts.byId.set(id, [element]);
    else if (!list.includes(element)) list.push(element);
  };
  const visit = (element: XmlElement) => {
    if (element.namespace === namespaces.ds && element.localName === 'Signature') facts.signatures.push(element);
    for (const declaration of element.namespaceDeclarations) {
      if (declaration.prefix === 'xml' || beyondBasicOrder(declaration.prefix)) throw new NotCovered();
      if (idAttributes.has(declaration.prefix)) index(declaration.uri, element);
    }
    for (const a of element.attributes) {
      if (beyondBasicOrder(a.namespace) || beyondBasicOrder(a.localName)) throw new NotCovered();
      if (a.prefix) facts.prefixedAttributeNames.add(a.localName);
      if (idAttributes.has(a.localName)) index(a.value, element);
    }
    for (const child of element.children) {
      if (child.type === 'element') visit(child);
      else if (child.type === 'processing-instruction') throw new NotCovered();
    }
  };
  visit(document.root);
  return facts;
}

/** UTF-16 order (the reference's) and code point order (ours) differ only from U+D800 up. */
function beyondBasicOrder(name: string): boolean {
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) >= 0xd800) return true;
  return false;
}

// ---- the signature ----

/** Our tree as the shared signature reader (engine/trust/xmldsig-spec.ts) walks it. */
export const fastTree: SignatureTree<XmlElement> = {
  children: childElements,
  attribute,
  text: textContent,
  namespacesInScope(element) {
    const scope = new Map<string, string>();
    for (let node: XmlElement | undefined = element; node; node = node.parent) {
      for (const declaration of node.namespaceDeclarations) if (!scope.has(declaration.prefix)) scope.set(declaration.prefix, declaration.uri);
    }
    return scope;
  },
  namespace: (element) => element.namespace,
  localName: (element) => element.localName,
  path: elementPath,
};

/** SHA-2 digests and signature hashes; SHA-1 and SHA-224 are the reference's. */
const coveredHashes = new Set(['sha256', 'sha384', 'sha512']);

function covered(spec: SignatureSpec<XmlElement>): boolean {
  const signature = signatureAlgorithms[spec.signatureMethod];
  if (!signature || signature.weak || !(signature.family === 'ed25519' || coveredHashes.has(signature.hash ?? ''))) return false;
  if (!isC14nAlgorithm(spec.canonicalization)) return false;
  return spec.references.every((ref) => {
    const digestAlgorithm = digestAlgorithms[ref.digestAlgorithm];
    if (!digestAlgorithm || !coveredHashes.has(digestAlgorithm.hash)) return false;
    // A MIME part: by the SwA transforms (AS4) or none (the decoded octets), as the reference takes them.
    if (ref.uri.toLowerCase().startsWith('cid:')) return ref.transforms.length === 0 || (ref.transforms.length === 1 && attachmentTransforms.has(ref.transforms[0]!.algorithm));
    if (ref.uri.startsWith('#xpointer(')) return false;
    // enveloped-signature, then at most one canonicalisation: the chains xml-crypto runs without re-parsing.
    const [first, ...rest] = ref.transforms.map((step) => step.algorithm);
    const chain = first === transformUris.envelopedSignature ? rest : first === undefined ? [] : [first, ...rest];
    return chain.length <= 1 && chain.every(isC14nAlgorithm);
  });
}


const isExclusive = (algorithm: C14nAlgorithm) => algorithm === EXC_C14N || algorithm === EXC_C14N_WITH_COMMENTS;

/**
 * The canonical form as the reference's canonicaliser makes it, or NotCovered where that differs from ours: inclusive
 * c14n below ancestors with xml:* attributes (the reference works on a detached copy), exc-c14n listing #default or
 * a prefixed attribute's local name, rendered comments holding markup characters, and an empty PrefixList on an
 * element whose own CanonicalizationMethod child carries one (xml-crypto then reads that).
 */
function canonical(element: XmlElement, algorithm: C14nAlgorithm, prefixes: string[], facts: DocumentFacts, exclude?: XmlElement): string {
  if (isExclusive(algorithm)) {
    if (prefixes.some((prefix) => prefix === '#default' || facts.prefixedAttributeNames.has(prefix))) throw new NotCovered();
    if (prefixes.length === 0) {
      const method = element.children.find((c) => c.type === 'element' && c.localName === 'CanonicalizationMethod') as XmlElement | undefined;
      if (method?.children.some((c) => c.type === 'element' && c.localName === 'InclusiveNamespaces')) throw new NotCovered();
    }
  } else {
    for (let ancestor = element.parent; ancestor; ancestor = ancestor.parent) {
      if (ancestor.attributes.some((a) => a.namespace === XML_NAMESPACE)) throw new NotCovered();
    }
  }
  if (algorithm === C14N_WITH_COMMENTS || algorithm === EXC_C14N_WITH_COMMENTS) assertPlainComments(element);
  return canonicalize(element, { algorithm, inclusivePrefixes: prefixes, ...(exclude ? { exclude } : {}) });
}

function assertPlainComments(element: XmlElement): void {
  for (const child of element.children) {
    if (child.type === 'comment' && /[&<>]/.test(child.value)) throw new NotCovered();
    if (child.type === 'element') assertPlainComments(child);
  }
}

/**
 * How a same-document reference's node-set becomes octets: by its last transform when that is a canonicalisation,
 * else by inclusive C14N (XMLDSig 4.4.3.2); comments dropped either way, as bare-name and "" URIs drop them (4.4.3.3).
 */
function referenceAlgorithm(ref: ReferenceSpec<XmlElement>): C14nAlgorithm {
  const last = ref.transforms.at(-1)?.algorithm ?? C14N;
  if (last === C14N_WITH_COMMENTS) return C14N;
  if (last === EXC_C14N_WITH_COMMENTS) return EXC_C14N;
  return isC14nAlgorithm(last) ? last : C14N;
}

function dereference(uri: string, document: XmlDocument, facts: DocumentFacts): XmlElement | Refusal {
  if (uri === '') return document.root;
  if (!uri.startsWith('#')) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `${uri.slice(0, 120)} is outside this message; external references are not fetched` };
  const id = uri.slice(1);
  const found = facts.byId.get(id) ?? [];
  if (found.length === 0) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `no element carries Id ${id.slice(0, 120)}` };
  if (found.length > 1) return { code: 'SWX_SIG_WRAPPED', detail: `${found.length} elements carry Id ${id.slice(0, 120)}: the signed one is ambiguous` };
  return found[0]!;
}

function checkReference(ref: ReferenceSpec<XmlElement>, document: XmlDocument, facts: DocumentFacts, signature: XmlElement, options: VerifyXmlOptions): XmlElement | XmlAttachment | Refusal {
  if (ref.uri.toLowerCase().startsWith('cid:')) {
    const attachment = attachmentTarget(ref.uri, options.attachments ?? []);
    if ('code' in attachment) return attachment;
    return attachmentRefusal(ref, attachment, options.limits) ?? attachment;
  }
  const target = dereference(ref.uri, document, facts);
  if ('code' in target) return target;
  const enveloped = ref.transforms[0]?.algorithm === transformUris.envelopedSignature;
  const algorithm = referenceAlgorithm(ref);
  const prefixes = ref.transforms.filter((step) => step.prefixes).at(-1)?.prefixes ?? [];
  const octets = canonical(target, algorithm, prefixes, facts, enveloped && isInside(signature, target) ? signature : undefined);
  return digestRefusal(digest(digestAlgorithms[ref.digestAlgorithm]!, octets), ref.digestValue) ?? target;
}

// ---- the key and its certificate ----

interface ResolvedKey { key: KeyObject; certificate: ParsedCert; carried: ParsedCert[]; source: 'X509Data' | 'BinarySecurityToken' }

function parsedCertificate(der: Buffer, where: string): ParsedCert | Refusal {
  try {
    return certificate(der);
  } catch (error) {
    return { code: 'SWX_BAD_REQUEST', detail: `${where} is not a readable certificate: ${(error as Error).message}` };
  }
}

/** KeyInfo as one X509Certificate, or a SecurityTokenReference to a BinarySecurityToken; other forms are the reference's. */
function resolveKey(signature: XmlElement, facts: DocumentFacts): ResolvedKey | Refusal {
  const keyInfo = childElement(signature, namespaces.ds, 'KeyInfo');
  if (!keyInfo || childElement(keyInfo, namespaces.ds, 'KeyName') || childElement(keyInfo, namespaces.ds, 'KeyValue')) throw new NotCovered();
  const x509Data = childElements(keyInfo, namespaces.ds, 'X509Data');
  const carried = x509Data.flatMap((data) => childElements(data, namespaces.ds, 'X509Certificate'));
  if (carried.length > 0) {
    const selectors = x509Data.some((data) => childElement(data, namespaces.ds, 'X509IssuerSerial') || childElement(data, namespaces.ds, 'X509SKI'));
    if (carried.length !== 1 || selectors) throw new NotCovered();
    const cert = parsedCertificate(base64Of(fastTree, carried[0]), 'X509Certificate 1');
    if ('code' in cert) return cert;
    return { key: cert.publicKey, certificate: cert, carried: [cert], source: 'X509Data' };
  }
  const reference = childElement(keyInfo, namespaces.wsse, 'SecurityTokenReference');
  const direct = reference ? childElement(reference, namespaces.wsse, 'Reference') : undefined;
  if (!direct) throw new NotCovered();
  const uri = attribute(direct, 'URI') ?? '';
  if (!uri.startsWith('#')) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `token reference ${uri.slice(0, 80)} is not to this message` };
  const targets = facts.byId.get(uri.slice(1)) ?? [];
  if (targets.length === 0) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `no security token with Id ${uri.slice(1, 81)}` };
  if (targets.length > 1) return { code: 'SWX_SIG_WRAPPED', detail: `${targets.length} elements carry Id ${uri.slice(1, 81)}` };
  const token = targets[0]!;
  const valueType = attribute(token, 'ValueType') ?? '';
  const encoding = attribute(token, 'EncodingType');
  if (token.namespace !== namespaces.wsse || token.localName !== 'BinarySecurityToken' || valueType !== `${tokenProfile}#X509v3`
    || (encoding !== undefined && !encoding.endsWith('#Base64Binary'))) {
    return { code: 'SWX_BAD_REQUEST', detail: `the token reference points to a ${token.localName} (${valueType || 'no ValueType'}), not to a base64 X.509 v3 BinarySecurityToken` };
  }
  const cert = parsedCertificate(base64Of(fastTree, token), 'the BinarySecurityToken');
  if ('code' in cert) return cert;
  return { key: cert.publicKey, certificate: cert, carried: [cert], source: 'BinarySecurityToken' };
}

/** The caller's pins and anchors; options the reference refuses (unreadable PEM) or keys by name are its to answer. */
function trustOf(options: VerifyXmlOptions): Trust {
  if (options.publicKeysPem !== undefined && typeof options.publicKeysPem !== 'string') throw new NotCovered();
  try {
    return readTrust(options);
  } catch {
    throw new NotCovered();
  }
}

/** What signing without the DOM needs of a document: its Id index and exclusive canonical forms, as the reference makes them. */
export interface CanonicalDocument {
  /** Elements by each Id, ID or id attribute (any namespace), as both verifiers find them. */
  byId(id: string): readonly XmlElement[];
  /** The element's exc-c14n form (no comments, no PrefixList); undefined where the reference's would differ. */
  exclusive(element: XmlElement): string | undefined;
}

/** The document as signing without the DOM reads it; undefined when it holds what the reference canonicalises otherwise. */
export function canonicalDocument(document: XmlDocument): CanonicalDocument | undefined {
  let facts: DocumentFacts;
  try {
    facts = survey(document);
  } catch {
    return undefined;
  }
  return {
    byId: (id) => facts.byId.get(id) ?? [],
    exclusive(element) {
      try {
        return canonical(element, EXC_C14N, [], facts);
      } catch {
        return undefined;
      }
    },
  };
}

// ---- the verdict ----

/**
 * Verifies the one signature of an XML message as verifyXml (engine/trust/xmldsig.ts) does, synchronously; undefined
 * when the message or the options leave the profiles this verifier covers, and the caller must ask verifyXml. Never throws.
 */
export function verifyXmlFast(xml: Buffer | string, options: VerifyXmlOptions = {}): XmlVerdict | undefined {
  try {
    return verify(xml, options);
  } catch {
    // NotCovered, or input hostile in a way nothing here foresaw (a certificate with an unreadable date): either way
    // the reference, which turns every input into a verdict, answers.
    return undefined;
  }
}

function verify(xml: Buffer | string, options: VerifyXmlOptions): XmlVerdict {
  const at = options.at ?? new Date();
  const policy = options.policy ?? 'live';
  if (!(at instanceof Date) || Number.isNaN(at.getTime()) || (policy !== 'live' && policy !== 'archive')) throw new NotCovered();
  if (typeof xml !== 'string' && !Buffer.isBuffer(xml)) throw new NotCovered();
  const trust = trustOf(options);

  const draft = xmlDraft();
  const { known, refuse } = draft;

  let document: XmlDocument;
  try {
    document = parseXml(xml, options.limits);
  } catch (error) {
    if (error instanceof XmlRefusal) return refuse(error.code, error.message);
    throw error;
  }
  const facts = survey(document);
  const signature = chooseSignature(fastTree, document.root, facts.signatures);
  if ('code' in signature) return refuse(signature.code, signature.detail);
  if (signature.parent?.namespace === namespaces.wsse && signature.parent.localName === 'Security') known.kind = 'soap-wss';

  const spec = readSignature(fastTree, signature);
  if ('code' in spec) return refuse(spec.code, spec.detail);
  // A Reference without URI, DigestMethod or DigestValue is the reference's to judge.
  if (spec.references.some((ref) => ref.malformed)) throw new NotCovered();
  if (!covered(spec)) throw new NotCovered();
  const algorithm = signatureAlgorithms[spec.signatureMethod]!;
  known.algorithms = {
    signature: algorithm.name,
    digest: [...new Set(spec.references.map((ref) => digestAlgorithms[ref.digestAlgorithm]!.name))],
    canonicalization: [...new Set([spec.canonicalization, ...spec.references.flatMap((ref) => ref.transforms.map((step) => step.algorithm)).filter(isC14nAlgorithm)].map(transformName))],
  };

  let failure: Refusal | undefined;
  const signedElements: SignedElement[] = [];
  const signedAttachments: string[] = [];
  known.references = spec.references.map((ref): ReferenceCheck => {
    const check: ReferenceCheck = {
      uri: ref.uri,
      digestAlgorithm: digestAlgorithms[ref.digestAlgorithm]!.name,
      transforms: ref.transforms.map((step) => transformName(step.algorithm)),
      valid: false,
    };
    const outcome = checkReference(ref, document, facts, signature, options);
    if ('code' in outcome) {
      failure ??= { code: outcome.code, detail: `reference ${ref.uri.slice(0, 120) || '""'}: ${outcome.detail}` };
      return { ...check, detail: outcome.detail };
    }
    if (!('type' in outcome)) {
      signedAttachments.push(outcome.contentId);
      return { ...check, valid: true };
    }
    const enveloped = ref.transforms.some((step) => step.algorithm === transformUris.envelopedSignature);
    const signaturePath = elementPath(signature);
    const targetPath = elementPath(outcome);
    signedElements.push({
      uri: ref.uri,
      namespace: outcome.namespace || null,
      localName: outcome.localName,
      path: targetPath,
      excludes: enveloped && within(signaturePath, targetPath) ? [signaturePath] : [],
    });
    return { ...check, valid: true };
  });
  if (failure) return refuse(failure.code, failure.detail);

  return concludeSignature(draft, {
    tree: fastTree,
    root: document.root,
    byId: (id) => facts.byId.get(id)?.[0],
    algorithm,
    signatureValue: spec.signatureValue,
    // Throws NotCovered where the reference's canonicaliser departs from ours: the reference then answers.
    signedInfo: () => canonical(spec.signedInfo, spec.canonicalization as C14nAlgorithm, spec.prefixes, facts),
    resolved: resolveKey(signature, facts),
    signedElements,
    signedAttachments,
    trust,
    at,
  });
}
