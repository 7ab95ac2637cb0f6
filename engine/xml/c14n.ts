// Canonical XML 1.0 and Exclusive XML Canonicalization 1.0 over the parse tree: the exact characters XMLDSig digests
// and signs, for a whole document or one element's subtree, optionally without one element (the enveloped signature);
// and exclusive c14n of a whole document as it streams, for XML too large to hold.
import { XML_NAMESPACE, xmlStream, type XmlAttribute, type XmlDocument, type XmlElement, type XmlLimits, type XmlNode, type XmlStream } from './parse.ts';

export const C14N = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';
export const C14N_WITH_COMMENTS = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments';
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const EXC_C14N_WITH_COMMENTS = 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments';
export type C14nAlgorithm = typeof C14N | typeof C14N_WITH_COMMENTS | typeof EXC_C14N | typeof EXC_C14N_WITH_COMMENTS;

export function isC14nAlgorithm(uri: string): uri is C14nAlgorithm {
  return uri === C14N || uri === C14N_WITH_COMMENTS || uri === EXC_C14N || uri === EXC_C14N_WITH_COMMENTS;
}

export interface C14nOptions {
  algorithm: C14nAlgorithm;
  /** Exclusive only: the InclusiveNamespaces PrefixList, handled by the inclusive rules; '#default' is the default namespace. */
  inclusivePrefixes?: readonly string[];
  /** Left out with everything in it: what the enveloped-signature transform removes. */
  exclude?: XmlElement;
}

/**
 * The canonical form of a document, or of the document subset made of one element and its descendants (the element's
 * in-scope namespaces and, for inclusive c14n, its ancestors' xml:* attributes carried onto it, as the spec requires).
 * Recurses once per level: the parse's maxDepth bounds it.
 */
export function canonicalize(node: XmlDocument | XmlElement, options: C14nOptions): string {
  const exclusive = options.algorithm === EXC_C14N || options.algorithm === EXC_C14N_WITH_COMMENTS;
  const comments = options.algorithm === C14N_WITH_COMMENTS || options.algorithm === EXC_C14N_WITH_COMMENTS;
  const writer = new Writer(exclusive, comments, new Set(exclusive ? options.inclusivePrefixes : []), options.exclude);
  if ('root' in node) writer.document(node);
  else writer.element(node, noBindings, true);
  return writer.out;
}

/** What canonicalStream writes into: canonical text as it is made, one call per input chunk at most. */
export type CanonicalSink = (text: string) => void;

/**
 * Exclusive XML Canonicalization 1.0 without comments of a whole document that arrives in chunks (engine/xml/parse.ts
 * xmlStream): the same text canonicalize gives for the document, handed to `sink` as the input is read, never held.
 */
export function canonicalStream(sink: CanonicalSink, limits?: Partial<XmlLimits>): XmlStream {
  const writer = new Writer(true, false, new Set(), undefined);
  const open: Bindings[] = [];
  let rootEnded = false;
  const stream = xmlStream({
    open(element) {
      open.push(writer.startTag(element, open.at(-1) ?? noBindings, open.length === 0));
    },
    close(element) {
      open.pop();
      writer.out += `</${element.qualifiedName}>`;
      rootEnded = open.length === 0;
    },
    text(value) {
      writer.out += escapeText(value);
    },
    comment() {},
    instruction(node) {
      // Around the root, a line feed apart from it (C14N §2.1), as Writer.document does.
      const around = open.length === 0;
      if (around && rootEnded) writer.out += '\n';
      writer.node(node, noBindings);
      if (around && !rootEnded) writer.out += '\n';
    },
  }, limits);
  const flush = () => {
    if (writer.out) sink(writer.out);
    writer.out = '';
  };
  return {
    write(chunk) {
      stream.write(chunk);
      flush();
    },
    end() {
      stream.end();
      flush();
    },
  };
}

/** Prefix ('' = default) → namespace, as rendered by the output ancestors (exclusive c14n only). */
type Bindings = ReadonlyMap<string, string>;
const noBindings: Bindings = new Map();

class Writer {
  out = '';
  constructor(
    private readonly exclusive: boolean,
    private readonly comments: boolean,
    private readonly inclusivePrefixes: ReadonlySet<string>,
    private readonly exclude: XmlElement | undefined,
  ) {}

  document(document: XmlDocument): void {
    let afterRoot = false;
    for (const node of document.children) {
      if (node === document.root) {
        if (node !== this.exclude) this.element(node, noBindings, true);
        afterRoot = true;
      } else if (node.type !== 'comment' || this.comments) {
        // Nodes around the root are separated from it by one line feed each (C14N §2.1, document order).
        if (afterRoot) this.out += '\n';
        this.node(node, noBindings);
        if (!afterRoot) this.out += '\n';
      }
    }
  }

  node(node: XmlNode, rendered: Bindings): void {
    switch (node.type) {
      case 'element':
        if (node !== this.exclude) this.element(node, rendered, false);
        break;
      case 'text':
        this.out += escapeText(node.value);
        break;
      case 'comment':
        if (this.comments) this.out += `<!--${node.value}-->`;
        break;
      case 'processing-instruction':
        this.out += node.data ? `<?${node.target} ${node.data}?>` : `<?${node.target}?>`;
        break;
    }
  }

  element(element: XmlElement, rendered: Bindings, apex: boolean): void {
    const inner = this.startTag(element, rendered, apex);
    for (const child of element.children) this.node(child, inner);
    this.out += `</${element.qualifiedName}>`;
  }

  /** Writes the element's start tag; the bindings its content is written under. */
  startTag(element: XmlElement, rendered: Bindings, apex: boolean): Bindings {
    const namespaces = this.exclusive ? exclusiveNamespaces(element, rendered, apex, this.inclusivePrefixes) : inclusiveNamespaces(element, apex);
    let tag = `<${element.qualifiedName}`;
    if (namespaces.length > 1) namespaces.sort((a, b) => compareCodePoints(a[0], b[0]));
    for (const [prefix, uri] of namespaces) tag += `${prefix ? ` xmlns:${prefix}` : ' xmlns'}="${escapeAttribute(uri)}"`;
    const attributes = apex && !this.exclusive ? withInheritedXmlAttributes(element) : element.attributes;
    for (const attribute of attributes.length > 1 ? [...attributes].sort(compareAttributes) : attributes) {
      tag += ` ${attribute.qualifiedName}="${escapeAttribute(attribute.value)}"`;
    }
    this.out += `${tag}>`;
    if (!this.exclusive || !namespaces.length) return rendered;
    const inner = new Map(rendered);
    for (const [prefix, uri] of namespaces) inner.set(prefix, uri);
    return inner;
  }
}

/** The namespace in scope for a prefix ('' = default) at an element; '' when none. */
function lookup(element: XmlElement | undefined, prefix: string): string {
  for (let scope = element; scope; scope = scope.parent) {
    for (const declaration of scope.namespaceDeclarations) if (declaration.prefix === prefix) return declaration.uri;
  }
  return '';
}

/**
 * C14N 1.0: the apex renders every namespace in scope; below it, an element renders what it binds differently from its
 * parent, xmlns="" included. The xml namespace is never rendered.
 */
function inclusiveNamespaces(element: XmlElement, apex: boolean): [string, string][] {
  const namespaces: [string, string][] = [];
  if (apex) {
    const seen = new Set<string>(['xml']);
    for (let scope: XmlElement | undefined = element; scope; scope = scope.parent) {
      for (const { prefix, uri } of scope.namespaceDeclarations) {
        if (seen.has(prefix)) continue;
        seen.add(prefix);
        if (uri) namespaces.push([prefix, uri]);
      }
    }
    return namespaces;
  }
  for (const { prefix, uri } of element.namespaceDeclarations) {
    if (prefix !== 'xml' && uri !== lookup(element.parent, prefix)) namespaces.push([prefix, uri]);
  }
  return namespaces;
}

/**
 * Exclusive C14N 1.0: a namespace is rendered where an element visibly uses it (its own prefix, its attributes'
 * prefixes) and the output ancestors have not rendered the same binding; PrefixList prefixes follow the inclusive rules.
 */
function exclusiveNamespaces(element: XmlElement, rendered: Bindings, apex: boolean, inclusivePrefixes: ReadonlySet<string>): [string, string][] {
  const namespaces: [string, string][] = [];
  if (!isListed(inclusivePrefixes, element.prefix) && (rendered.get(element.prefix) ?? '') !== element.namespace) {
    addNamespace(namespaces, element.prefix, element.namespace);
  }
  for (const attribute of element.attributes) {
    if (attribute.prefix && !isListed(inclusivePrefixes, attribute.prefix) && rendered.get(attribute.prefix) !== attribute.namespace) {
      addNamespace(namespaces, attribute.prefix, attribute.namespace);
    }
  }
  if (inclusivePrefixes.size && apex) {
    for (const token of inclusivePrefixes) {
      const prefix = token === '#default' ? '' : token;
      const uri = lookup(element, prefix);
      if (uri) addNamespace(namespaces, prefix, uri);
    }
  } else if (inclusivePrefixes.size) {
    for (const { prefix, uri } of element.namespaceDeclarations) {
      if (isListed(inclusivePrefixes, prefix) && uri !== lookup(element.parent, prefix)) addNamespace(namespaces, prefix, uri);
    }
  }
  return namespaces;
}

function isListed(inclusivePrefixes: ReadonlySet<string>, prefix: string): boolean {
  return inclusivePrefixes.has(prefix || '#default');
}

function addNamespace(namespaces: [string, string][], prefix: string, uri: string): void {
  if (prefix !== 'xml' && !namespaces.some((n) => n[0] === prefix)) namespaces.push([prefix, uri]);
}

/** C14N 1.0 §2.4: the apex of a subset carries the xml:* attributes (xml:lang, xml:space…) it inherits from its ancestors. */
function withInheritedXmlAttributes(element: XmlElement): readonly XmlAttribute[] {
  let attributes: XmlAttribute[] | undefined;
  for (let ancestor = element.parent; ancestor; ancestor = ancestor.parent) {
    for (const attribute of ancestor.attributes) {
      if (attribute.namespace !== XML_NAMESPACE) continue;
      const current = attributes ?? element.attributes;
      if (current.some((a) => a.namespace === XML_NAMESPACE && a.localName === attribute.localName)) continue;
      attributes = [...current, attribute];
    }
  }
  return attributes ?? element.attributes;
}

function compareAttributes(a: XmlAttribute, b: XmlAttribute): number {
  return compareCodePoints(a.namespace, b.namespace) || compareCodePoints(a.localName, b.localName);
}

/** Code point order, which UTF-16 order matches except between surrogates and U+E000–U+FFFF. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

const textSpecials = /[&<>\r]/;
const attributeSpecials = /[&<"\t\n\r]/;

// One replaceAll per special character present: native string replacement, several times faster than one regular
// expression with a replacer function on text full of `&` and `<` (an XML payload's canonical form is made here).
function escapeText(text: string): string {
  if (!textSpecials.test(text)) return text;
  let out = text.includes('&') ? text.replaceAll('&', '&amp;') : text;
  if (out.includes('<')) out = out.replaceAll('<', '&lt;');
  if (out.includes('>')) out = out.replaceAll('>', '&gt;');
  return out.includes('\r') ? out.replaceAll('\r', '&#xD;') : out;
}

function escapeAttribute(value: string): string {
  if (!attributeSpecials.test(value)) return value;
  let out = value.includes('&') ? value.replaceAll('&', '&amp;') : value;
  if (out.includes('<')) out = out.replaceAll('<', '&lt;');
  if (out.includes('"')) out = out.replaceAll('"', '&quot;');
  if (out.includes('\t')) out = out.replaceAll('\t', '&#x9;');
  if (out.includes('\n')) out = out.replaceAll('\n', '&#xA;');
  return out.includes('\r') ? out.replaceAll('\r', '&#xD;') : out;
}
