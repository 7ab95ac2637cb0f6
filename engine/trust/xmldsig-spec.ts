// Reading a ds:Signature into what a verifier works on (SignedInfo, algorithms, references with their transforms), once
// for both verifiers: the reference walks an xmldom DOM, the fast path our own tree, each through a small adapter.
// Reading is the same judgement in both, so the same limits and refusals apply whichever answers.
import type { ErrorCode } from '../errors.ts';
import { soapVersionOf } from '../xml/soap.ts';
import { maxReferences, maxTransforms, namespaces, transforms as transformUris, type XPathFilter } from './xmldsig-algorithms.ts';

/** What the reader needs of a tree. */
export interface SignatureTree<E> {
  children(parent: E, namespace: string, localName: string): E[];
  /** By qualified name, undefined when absent. */
  attribute(element: E, qualifiedName: string): string | undefined;
  /** DOM textContent. */
  text(element: E): string;
  /** Prefix bindings in scope at the element ('' for the default namespace). */
  namespacesInScope(element: E): Map<string, string>;
  namespace(element: E): string;
  localName(element: E): string;
  /** "/Envelope/Header/Security": local names, with [n] where siblings share one. */
  path(element: E): string;
}

export interface TransformStep {
  algorithm: string;
  filter?: XPathFilter;
  /** exc-c14n InclusiveNamespaces PrefixList. */
  prefixes?: string[];
}

export interface ReferenceSpec<E> {
  element: E;
  uri: string;
  transforms: TransformStep[];
  digestAlgorithm: string;
  digestValue: Buffer;
  /** Why the Reference is not well-formed XMLDSig. */
  malformed?: string;
}

export interface SignatureSpec<E> {
  signedInfo: E;
  canonicalization: string;
  prefixes: string[];
  signatureMethod: string;
  signatureValue: Buffer;
  references: ReferenceSpec<E>[];
}

export type Refusal = { code: ErrorCode; detail: string };

export function base64Of<E>(tree: SignatureTree<E>, element: E | undefined): Buffer {
  return Buffer.from((element === undefined ? '' : tree.text(element)).replace(/\s+/g, ''), 'base64');
}

function readTransform<E>(tree: SignatureTree<E>, transform: E): TransformStep {
  const algorithm = tree.attribute(transform, 'Algorithm') ?? '';
  const step: TransformStep = { algorithm };
  if (algorithm === transformUris.xpathFilter) {
    const xpath = tree.children(transform, namespaces.ds, 'XPath')[0];
    const bindings = xpath === undefined ? new Map<string, string>() : tree.namespacesInScope(xpath);
    bindings.delete('');
    step.filter = { expression: xpath === undefined ? '' : tree.text(xpath), namespaces: Object.fromEntries(bindings) };
  }
  const inclusive = tree.children(transform, namespaces.excC14n, 'InclusiveNamespaces')[0];
  if (inclusive !== undefined) step.prefixes = (tree.attribute(inclusive, 'PrefixList') ?? '').split(/\s+/).filter(Boolean);
  return step;
}

function readReference<E>(tree: SignatureTree<E>, element: E): ReferenceSpec<E> {
  const list = tree.children(element, namespaces.ds, 'Transforms')[0];
  const digestMethod = tree.children(element, namespaces.ds, 'DigestMethod')[0];
  const digestValue = tree.children(element, namespaces.ds, 'DigestValue')[0];
  const uri = tree.attribute(element, 'URI');
  const spec: ReferenceSpec<E> = {
    element,
    uri: uri ?? '',
    transforms: list === undefined ? [] : tree.children(list, namespaces.ds, 'Transform').map((step) => readTransform(tree, step)),
    digestAlgorithm: digestMethod === undefined ? '' : tree.attribute(digestMethod, 'Algorithm') ?? '',
    digestValue: base64Of(tree, digestValue),
  };
  if (uri === undefined) spec.malformed = 'the Reference has no URI';
  else if (digestMethod === undefined) spec.malformed = 'the Reference has no DigestMethod';
  else if (digestValue === undefined) spec.malformed = 'the Reference has no DigestValue';
  return spec;
}

/** The parts of a ds:Signature a verifier reads, or why it is not one. */
export function readSignature<E>(tree: SignatureTree<E>, signature: E): SignatureSpec<E> | Refusal {
  const signedInfos = tree.children(signature, namespaces.ds, 'SignedInfo');
  if (signedInfos.length !== 1) return { code: 'SWX_SIG_INVALID', detail: `the Signature has ${signedInfos.length} SignedInfo elements, not one` };
  const signedInfo = signedInfos[0]!;
  const method = tree.children(signedInfo, namespaces.ds, 'CanonicalizationMethod')[0];
  const signatureMethod = tree.children(signedInfo, namespaces.ds, 'SignatureMethod')[0];
  if (method === undefined || signatureMethod === undefined) return { code: 'SWX_SIG_INVALID', detail: 'SignedInfo lacks its CanonicalizationMethod or SignatureMethod' };
  const references = tree.children(signedInfo, namespaces.ds, 'Reference');
  if (references.length === 0) return { code: 'SWX_SIG_INVALID', detail: 'SignedInfo has no Reference' };
  if (references.length > maxReferences) return { code: 'SWX_XML_LIMIT', detail: `SignedInfo has ${references.length} references; at most ${maxReferences} are processed` };
  const specs = references.map((reference) => readReference(tree, reference));
  const long = specs.find((spec) => spec.transforms.length > maxTransforms);
  if (long) return { code: 'SWX_XML_LIMIT', detail: `Reference ${long.uri.slice(0, 80)} has ${long.transforms.length} transforms; at most ${maxTransforms} are processed` };
  const signatureValue = tree.children(signature, namespaces.ds, 'SignatureValue');
  if (signatureValue.length !== 1) return { code: 'SWX_SIG_INVALID', detail: `the Signature has ${signatureValue.length} SignatureValue elements, not one` };
  const canonicalization = readTransform(tree, method);
  return {
    signedInfo,
    canonicalization: canonicalization.algorithm,
    prefixes: canonicalization.prefixes ?? [],
    signatureMethod: tree.attribute(signatureMethod, 'Algorithm') ?? '',
    signatureValue: base64Of(tree, signatureValue[0]),
    references: specs,
  };
}

/** The signature the message is signed with: in the SOAP header for an envelope, else the outermost one. */
export function chooseSignature<E>(tree: SignatureTree<E>, root: E, all: E[]): E | Refusal {
  let candidates: E[];
  if (soapVersionOf(tree.namespace(root)) && tree.localName(root) === 'Envelope') {
    candidates = tree.children(root, tree.namespace(root), 'Header').flatMap((header) => [
      ...tree.children(header, namespaces.ds, 'Signature'),
      ...tree.children(header, namespaces.wsse, 'Security').flatMap((security) => tree.children(security, namespaces.ds, 'Signature')),
    ]);
    if (candidates.length === 0) {
      return { code: 'SWX_SIG_MISSING', detail: `the SOAP header holds no signature${all.length ? ` (${all.length} inside the content are the content's own)` : ''}` };
    }
  } else {
    const depth = (element: E) => tree.path(element).split('/').length;
    const outermost = Math.min(...all.map(depth));
    candidates = all.filter((element) => depth(element) === outermost);
    if (candidates.length === 0) return { code: 'SWX_SIG_MISSING', detail: 'the XML holds no ds:Signature' };
  }
  if (candidates.length > 1) return { code: 'SWX_BAD_REQUEST', detail: `${candidates.length} signatures at the same level; exactly one is supported` };
  return candidates[0]!;
}
