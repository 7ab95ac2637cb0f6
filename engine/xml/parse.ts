// The hardened XML gate: one pass over UTF-8 input into a light namespace-resolved tree. Any DTD is refused (so no
// entity is ever expanded beyond the five predefined ones) and every limit is enforced as the input is read.
import { SwxError } from '../errors.ts';

export interface XmlLimits {
  maxBytes: number;
  maxDepth: number;
  /** Per element, namespace declarations included. */
  maxAttributes: number;
  maxNameLength: number;
  /** Elements, text runs, comments and processing instructions together. */
  maxNodes: number;
  /** One text run, attribute value, comment or processing instruction. */
  maxTextLength: number;
}

/** Room for a 10 MB SOAP/ebMS message with an inline base64 payload; far beyond any real envelope's shape. */
export const defaultXmlLimits: XmlLimits = {
  maxBytes: 12 * 1024 * 1024,
  maxDepth: 64,
  maxAttributes: 64,
  maxNameLength: 256,
  maxNodes: 1_000_000,
  maxTextLength: 12 * 1024 * 1024,
};

export type XmlRefusalCode = 'SWX_XML_FORBIDDEN' | 'SWX_XML_LIMIT' | 'SWX_XML_MALFORMED';

export class XmlRefusal extends SwxError {
  declare readonly code: XmlRefusalCode;
  constructor(code: XmlRefusalCode, detail: string) {
    super(code, detail);
    this.name = 'XmlRefusal';
  }
}

export const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
export const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';

/** `prefix` '' is the default namespace; `uri` '' undeclares it (xmlns=""). */
export interface XmlNamespaceDeclaration { prefix: string; uri: string }

export interface XmlAttribute {
  qualifiedName: string;
  prefix: string;
  localName: string;
  /** '' for an unprefixed attribute. */
  namespace: string;
  /** Normalised as XML 1.0 §3.3.3 says for CDATA attributes (there is no DTD to say otherwise). */
  value: string;
}

export interface XmlElement {
  type: 'element';
  qualifiedName: string;
  prefix: string;
  localName: string;
  /** '' when the element is in no namespace. */
  namespace: string;
  /** In document order, namespace declarations excluded. */
  attributes: XmlAttribute[];
  namespaceDeclarations: XmlNamespaceDeclaration[];
  children: XmlNode[];
  parent: XmlElement | undefined;
  /** Offsets into `XmlDocument.source` (UTF-16 units; `byteOffset` converts): `<` of the start tag … after the end tag's `>`. */
  start: number;
  end: number;
  /** After the start tag's `>` … the end tag's `<` (both `end` for an empty-element tag). */
  contentStart: number;
  contentEnd: number;
}

/** Character data with references expanded and line ends normalised; CDATA sections and adjacent text form one run. */
export interface XmlText { type: 'text'; value: string }
export interface XmlComment { type: 'comment'; value: string }
export interface XmlProcessingInstruction { type: 'processing-instruction'; target: string; data: string }
export type XmlNode = XmlElement | XmlText | XmlComment | XmlProcessingInstruction;

export interface XmlDocument {
  /** The decoded input, byte order mark removed. */
  source: string;
  /** Whether the input began with a byte order mark (3 bytes before offset 0). */
  bom: boolean;
  root: XmlElement;
  /** Comments and processing instructions around the root, and the root, in document order. */
  children: XmlNode[];
}

/** The byte offset in the original UTF-8 input of a character offset in `document.source`. */
export function byteOffset(document: XmlDocument, offset: number): number {
  return (document.bom ? 3 : 0) + Buffer.byteLength(document.source.slice(0, offset), 'utf8');
}

export function parseXml(input: Buffer | string, limits?: Partial<XmlLimits>): XmlDocument {
  const limit = { ...defaultXmlLimits, ...limits };
  const { source, bom } = decode(input, limit);
  return new Parser(source, bom, limit).document();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
// Characters outside XML Char, as two plain (non-/u) scans, several times faster than one /u class: the forbidden
// BMP characters, then surrogates not in a pair (only possible in string input; the UTF-8 decoder never makes them).
const notXmlChar = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const surrogate = /[\uD800-\uDFFF]/;

function decode(input: Buffer | string, limit: XmlLimits): { source: string; bom: boolean } {
  const size = typeof input === 'string' && input.length <= limit.maxBytes ? Buffer.byteLength(input, 'utf8') : input.length;
  if (size > limit.maxBytes) throw new XmlRefusal('SWX_XML_LIMIT', `XML is larger than ${limit.maxBytes} bytes`);
  let source: string;
  if (typeof input === 'string') {
    source = input;
  } else {
    if ((input[0] === 0xfe && input[1] === 0xff) || (input[0] === 0xff && input[1] === 0xfe)) {
      throw new XmlRefusal('SWX_XML_MALFORMED', 'XML is UTF-16; only UTF-8 is accepted');
    }
    try {
      // The decoder drops a UTF-8 byte order mark; put it back so that both input kinds are handled alike below.
      source = (input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? '\uFEFF' : '') + utf8.decode(input);
    } catch {
      throw new XmlRefusal('SWX_XML_MALFORMED', 'XML is not valid UTF-8');
    }
  }
  const bom = source.charCodeAt(0) === 0xfeff;
  if (bom) source = source.slice(1);
  const bad = notXmlChar.exec(source) ?? (typeof input === 'string' && surrogate.test(source) ? loneSurrogate.exec(source) : null);
  if (bad) {
    const codePoint = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new XmlRefusal('SWX_XML_MALFORMED', `character U+${codePoint} is not allowed in XML (${where(source, bad.index)})`);
  }
  return { source, bom };
}

function where(source: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = source.indexOf('\n'); i >= 0 && i < offset; i = source.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

const nameStartChars = 'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D'
  + '\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const nameChars = `${nameStartChars}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
/** XML Name (colons included; the namespace rules are checked on the match). */
const namePattern = new RegExp(`[:${nameStartChars}][:${nameChars}]*`, 'uy');
const ncNameStart = new RegExp(`^[${nameStartChars}]`, 'u');

// ASCII fast paths for the name scans; anything beyond ASCII goes through the full patterns above.
function isAsciiNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a;
}
function isAsciiNameChar(c: number): boolean {
  return isAsciiNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
}
const xmlDeclaration = /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])(1\.[0-9]+)\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\3)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\5)?[ \t\r\n]*\?>/y;
const dtdDeclaration = /<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)|<!\[(?!CDATA\[)/iy;
const predefinedEntities = new Map([['lt', '<'], ['gt', '>'], ['amp', '&'], ['quot', '"'], ['apos', "'"]]);

const LT = 0x3c, AMP = 0x26, GT = 0x3e, SLASH = 0x2f, BANG = 0x21, QUESTION = 0x3f, EQUALS = 0x3d, QUOTE = 0x22, APOS = 0x27;
const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function isXmlChar(cp: number): boolean {
  return cp === 0x09 || cp === 0x0a || cp === 0x0d || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd)
    || (cp >= 0x10000 && cp <= 0x10ffff);
}

class Parser {
  protected pos = 0;
  private nodes = 0;
  /** The element whose content is being read; its parent chain is the stack of open elements. */
  protected current: XmlElement | undefined;
  private depth = 0;
  private readonly topLevel: XmlNode[] = [];
  protected root: XmlElement | undefined;

  constructor(protected s: string, private readonly bom: boolean, protected readonly limit: XmlLimits) {}

  document(): XmlDocument {
    const s = this.s;
    this.declaration();
    while (this.pos < s.length) {
      const lt = s.indexOf('<', this.pos);
      const textEnd = lt < 0 ? s.length : lt;
      if (textEnd > this.pos) this.characterData(this.pos, textEnd);
      if (lt < 0) break;
      this.pos = lt;
      this.markupAt();
    }
    this.finish();
    return { source: s, bom: this.bom, root: this.root!, children: this.topLevel };
  }

  /** The markup at `pos` (which is at a `<`), read whole. */
  protected markupAt(): void {
    const next = this.s.charCodeAt(this.pos + 1);
    if (next === SLASH) this.endTag();
    else if (next === BANG) this.markup();
    else if (next === QUESTION) this.processingInstruction();
    else this.startTag();
  }

  /** The checks once the input has ended. */
  protected finish(): void {
    const unclosed = this.current;
    if (unclosed) throw this.refuse('SWX_XML_MALFORMED', `<${unclosed.qualifiedName}> is not closed`, unclosed.start);
    if (!this.root) throw this.refuse('SWX_XML_MALFORMED', 'XML has no root element', this.s.length);
  }

  // What the tree keeps of each node; a streaming read (XmlStream) hands them on instead.
  protected opened(element: XmlElement, parent: XmlElement | undefined): void {
    if (parent) parent.children.push(element);
    else this.topLevel.push(element);
  }

  protected closed(_element: XmlElement): void {}

  protected appendText(value: string, at: number): void {
    const parent = this.current!;
    const last = parent.children[parent.children.length - 1];
    if (last?.type === 'text') {
      this.checkLength(last.value.length + value.length, 'text', at);
      last.value += value;
    } else {
      this.count();
      parent.children.push({ type: 'text', value });
    }
  }

  protected append(node: XmlComment | XmlProcessingInstruction): void {
    this.count();
    (this.current?.children ?? this.topLevel).push(node);
  }

  protected refuse(code: XmlRefusalCode, detail: string, at = this.pos): XmlRefusal {
    return new XmlRefusal(code, `${detail} (${this.locate(at)})`);
  }

  protected locate(at: number): string {
    return where(this.s, at);
  }

  protected declaration(): void {
    if (!this.s.startsWith('<?xml')) return;
    const next = this.s.charCodeAt(5);
    if (!isSpace(next) && next !== QUESTION) return; // a processing instruction such as <?xml-stylesheet …?>
    xmlDeclaration.lastIndex = 0;
    const match = xmlDeclaration.exec(this.s);
    if (!match) throw this.refuse('SWX_XML_MALFORMED', 'XML declaration is malformed');
    if (match[2] !== '1.0') throw this.refuse('SWX_XML_MALFORMED', `XML version ${match[2]} is not supported; only 1.0`);
    const encoding = match[4]?.toLowerCase();
    if (encoding !== undefined && encoding !== 'utf-8') {
      throw this.refuse('SWX_XML_MALFORMED', `encoding ${match[4]} is not supported; only UTF-8`);
    }
    this.pos = match[0].length;
  }

  protected count(): void {
    if (++this.nodes > this.limit.maxNodes) throw this.refuse('SWX_XML_LIMIT', `XML has more than ${this.limit.maxNodes} nodes`);
  }

  /** `what` and `name` are joined only for the refusal: this runs for every text and attribute value. */
  protected checkLength(length: number, what: string, at: number, name = ''): void {
    if (length > this.limit.maxTextLength) {
      throw this.refuse('SWX_XML_LIMIT', `${what}${name} is longer than ${this.limit.maxTextLength} characters`, at);
    }
  }

  protected characterData(from: number, to: number): void {
    if (!this.current) {
      for (let i = from; i < to; i++) {
        if (!isSpace(this.s.charCodeAt(i))) {
          throw this.refuse('SWX_XML_MALFORMED', 'text is not allowed outside the root element', i);
        }
      }
      return;
    }
    this.checkLength(to - from, 'text', from);
    const raw = this.s.slice(from, to);
    const cdataEnd = raw.indexOf(']]>');
    if (cdataEnd >= 0) throw this.refuse('SWX_XML_MALFORMED', "']]>' is not allowed in text", from + cdataEnd);
    const lines = raw.includes('\r') ? raw.replace(/\r\n?/g, '\n') : raw;
    this.appendText(lines.includes('&') ? this.expandReferences(lines, from) : lines, from);
  }

  /** The five predefined entities and character references; anything else would need a DTD, which is refused. */
  private expandReferences(text: string, at: number): string {
    let out = '';
    let from = 0;
    for (let amp = text.indexOf('&'); amp >= 0; amp = text.indexOf('&', from)) {
      const semicolon = text.indexOf(';', amp + 1);
      if (semicolon < 0) throw this.refuse('SWX_XML_MALFORMED', "'&' does not start a reference; write &amp;", at + amp);
      const body = text.slice(amp + 1, semicolon);
      out += text.slice(from, amp);
      const predefined = predefinedEntities.get(body);
      if (predefined !== undefined) {
        out += predefined;
      } else if (/^#[0-9]+$|^#x[0-9a-fA-F]+$/.test(body)) {
        const codePoint = body[1] === 'x' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
        if (!isXmlChar(codePoint)) {
          throw this.refuse('SWX_XML_MALFORMED', `character reference &${body.slice(0, 20)}; is not an XML character`, at + amp);
        }
        out += String.fromCodePoint(codePoint);
      } else {
        throw this.refuse('SWX_XML_MALFORMED', `reference &${body.slice(0, 40)}; is not one of the predefined entities (no DTD is accepted)`, at + amp);
      }
      from = semicolon + 1;
    }
    return out + text.slice(from);
  }

  private name(what: string): string {
    const s = this.s;
    let end = this.pos;
    if (isAsciiNameStart(s.charCodeAt(end))) while (isAsciiNameChar(s.charCodeAt(++end)));
    let name: string;
    if (end > this.pos && !(s.charCodeAt(end) >= 0x80)) {
      name = s.slice(this.pos, end);
    } else {
      namePattern.lastIndex = this.pos;
      const match = namePattern.exec(s);
      if (!match) throw this.refuse('SWX_XML_MALFORMED', `${what} name expected`);
      name = match[0];
    }
    if (name.length > this.limit.maxNameLength) {
      throw this.refuse('SWX_XML_LIMIT', `${what} name is longer than ${this.limit.maxNameLength} characters`);
    }
    this.pos += name.length;
    return name;
  }

  private skipSpace(): boolean {
    const from = this.pos;
    while (isSpace(this.s.charCodeAt(this.pos))) this.pos++;
    return this.pos > from;
  }

  private startTag(): void {
    const s = this.s;
    const start = this.pos;
    const parent = this.current;
    if (!parent && this.root) throw this.refuse('SWX_XML_MALFORMED', 'XML has more than one root element');
    if (this.depth >= this.limit.maxDepth) throw this.refuse('SWX_XML_LIMIT', `XML is nested deeper than ${this.limit.maxDepth} elements`);
    this.pos++;
    const qualifiedName = this.name('element');
    const colon = this.qualifiedNameColon(qualifiedName, start);
    const element: XmlElement = {
      type: 'element', qualifiedName, prefix: colon < 0 ? '' : qualifiedName.slice(0, colon), localName: colon < 0 ? qualifiedName : qualifiedName.slice(colon + 1),
      namespace: '', attributes: [], namespaceDeclarations: [], children: [], parent, start, end: -1, contentStart: -1, contentEnd: -1,
    };
    if (element.prefix === 'xmlns') throw this.refuse('SWX_XML_MALFORMED', `element <${qualifiedName}> may not use the xmlns prefix`, start);
    let selfClosing = false;
    for (let count = 0; ; count++) {
      const spaced = this.skipSpace();
      const c = s.charCodeAt(this.pos);
      if (c === GT) { this.pos++; break; }
      if (c === SLASH && s.charCodeAt(this.pos + 1) === GT) { this.pos += 2; selfClosing = true; break; }
      if (Number.isNaN(c)) throw this.refuse('SWX_XML_MALFORMED', `start tag <${qualifiedName}> is not closed`, start);
      if (!spaced) throw this.refuse('SWX_XML_MALFORMED', `whitespace expected before an attribute of <${qualifiedName}>`);
      if (count >= this.limit.maxAttributes) {
        throw this.refuse('SWX_XML_LIMIT', `<${qualifiedName}> has more than ${this.limit.maxAttributes} attributes`, start);
      }
      this.attribute(element);
    }
    this.resolveNames(element);
    this.count();
    if (!parent) this.root = element;
    this.opened(element, parent);
    element.contentStart = this.pos;
    if (selfClosing) {
      element.end = element.contentEnd = this.pos;
      this.closed(element);
    } else {
      this.current = element;
      this.depth++;
    }
  }

  /** Reads one attribute into the element: a namespace declaration, or an attribute whose namespace is resolved later. */
  private attribute(element: XmlElement): void {
    const s = this.s;
    const at = this.pos;
    const qualifiedName = this.name('attribute');
    const colon = this.qualifiedNameColon(qualifiedName, at);
    this.skipSpace();
    if (s.charCodeAt(this.pos) !== EQUALS) throw this.refuse('SWX_XML_MALFORMED', `'=' expected after attribute ${qualifiedName}`);
    this.pos++;
    this.skipSpace();
    const quote = s.charCodeAt(this.pos);
    if (quote !== QUOTE && quote !== APOS) throw this.refuse('SWX_XML_MALFORMED', `quoted value expected for attribute ${qualifiedName}`);
    const close = s.indexOf(quote === QUOTE ? '"' : "'", this.pos + 1);
    if (close < 0) throw this.refuse('SWX_XML_MALFORMED', `value of attribute ${qualifiedName} is not closed`);
    this.checkLength(close - this.pos - 1, 'value of attribute ', at, qualifiedName);
    let whitespace = false;
    let references = false;
    for (let i = this.pos + 1; i < close; i++) {
      const c = s.charCodeAt(i);
      if (c === LT) throw this.refuse('SWX_XML_MALFORMED', `'<' is not allowed in the value of attribute ${qualifiedName}`, i);
      if (c === AMP) references = true;
      else if (c === 0x09 || c === 0x0a || c === 0x0d) whitespace = true;
    }
    const literal = s.slice(this.pos + 1, close);
    // §3.3.3: line ends normalised, then each literal whitespace character becomes a space; references expand last.
    const spaced = whitespace ? literal.replace(/\r\n|[\t\n\r]/g, ' ') : literal;
    const value = references ? this.expandReferences(spaced, this.pos + 1) : spaced;
    this.pos = close + 1;
    const prefix = colon < 0 ? '' : qualifiedName.slice(0, colon);
    if (qualifiedName === 'xmlns' || prefix === 'xmlns') {
      const declared = colon < 0 ? '' : qualifiedName.slice(colon + 1);
      for (const other of element.namespaceDeclarations) if (other.prefix === declared) throw this.duplicate(qualifiedName, element, at);
      element.namespaceDeclarations.push(this.declare(declared, qualifiedName, value, at));
    } else {
      for (const other of element.attributes) if (other.qualifiedName === qualifiedName) throw this.duplicate(qualifiedName, element, at);
      element.attributes.push({ qualifiedName, prefix, localName: colon < 0 ? qualifiedName : qualifiedName.slice(colon + 1), namespace: '', value });
    }
  }

  private duplicate(qualifiedName: string, element: XmlElement, at: number): XmlRefusal {
    return this.refuse('SWX_XML_MALFORMED', `attribute ${qualifiedName} appears twice on <${element.qualifiedName}>`, at);
  }

  /** Namespaces in XML 1.0: at most one colon, with a non-empty NCName on either side; the colon's index, or -1. */
  private qualifiedNameColon(name: string, at: number): number {
    const colon = name.indexOf(':');
    if (colon < 0) return colon;
    if (colon === 0 || name.indexOf(':', colon + 1) >= 0 || !(isAsciiNameStart(name.charCodeAt(colon + 1)) || ncNameStart.test(name.slice(colon + 1)))) {
      throw this.refuse('SWX_XML_MALFORMED', `'${name}' is not a valid qualified name`, at);
    }
    return colon;
  }

  /** The element's and its prefixed attributes' namespaces, now that all its declarations are read. */
  private resolveNames(element: XmlElement): void {
    element.namespace = this.resolve(element, element.prefix, element.start);
    const attributes = element.attributes;
    for (let i = 0; i < attributes.length; i++) {
      const attribute = attributes[i]!;
      if (!attribute.prefix) continue;
      attribute.namespace = this.resolve(element, attribute.prefix, element.start);
      for (let j = 0; j < i; j++) {
        if (attributes[j]!.namespace === attribute.namespace && attributes[j]!.localName === attribute.localName) {
          throw this.refuse('SWX_XML_MALFORMED', `attribute {${attribute.namespace}}${attribute.localName} appears twice on <${element.qualifiedName}>`, element.start);
        }
      }
    }
  }

  private declare(prefix: string, qualifiedName: string, uri: string, at: number): XmlNamespaceDeclaration {
    const wrong = prefix === 'xmlns' ? 'the xmlns prefix may not be declared'
      : prefix === 'xml' && uri !== XML_NAMESPACE ? 'the xml prefix is bound to its own namespace only'
      : prefix !== 'xml' && uri === XML_NAMESPACE ? 'the XML namespace belongs to the xml prefix only'
      : uri === XMLNS_NAMESPACE ? 'the xmlns namespace may not be declared'
      : prefix && !uri ? 'a prefix may not be undeclared in XML 1.0'
      : undefined;
    if (wrong) throw this.refuse('SWX_XML_MALFORMED', `${qualifiedName}="${uri.slice(0, 80)}": ${wrong}`, at);
    return { prefix, uri };
  }

  /** The namespace bound to a prefix ('' = default) on this element or its nearest ancestor declaring it. */
  private resolve(element: XmlElement, prefix: string, at: number): string {
    if (prefix === 'xml') return XML_NAMESPACE;
    for (let scope: XmlElement | undefined = element; scope; scope = scope.parent) {
      for (const declaration of scope.namespaceDeclarations) if (declaration.prefix === prefix) return declaration.uri;
    }
    if (prefix) throw this.refuse('SWX_XML_MALFORMED', `namespace prefix ${prefix} is not declared`, at);
    return '';
  }

  private endTag(): void {
    const at = this.pos;
    this.pos += 2;
    const qualifiedName = this.name('end tag');
    this.skipSpace();
    if (this.s.charCodeAt(this.pos) !== GT) throw this.refuse('SWX_XML_MALFORMED', `end tag </${qualifiedName}> is not closed`);
    this.pos++;
    const element = this.current;
    if (!element) throw this.refuse('SWX_XML_MALFORMED', `end tag </${qualifiedName}> has no start tag`, at);
    if (element.qualifiedName !== qualifiedName) {
      throw this.refuse('SWX_XML_MALFORMED', `end tag </${qualifiedName}> does not match <${element.qualifiedName}>`, at);
    }
    element.contentEnd = at;
    element.end = this.pos;
    this.current = element.parent;
    this.depth--;
    this.closed(element);
  }

  private markup(): void {
    const s = this.s;
    const at = this.pos;
    if (s.startsWith('<!--', at)) {
      const end = s.indexOf('--', at + 4);
      if (end < 0) throw this.refuse('SWX_XML_MALFORMED', 'comment is not closed');
      if (s.charCodeAt(end + 2) !== GT) throw this.refuse('SWX_XML_MALFORMED', "'--' is not allowed inside a comment", end);
      this.checkLength(end - at - 4, 'comment', at);
      this.append({ type: 'comment', value: s.slice(at + 4, end).replace(/\r\n?/g, '\n') });
      this.pos = end + 3;
      return;
    }
    if (s.startsWith('<![CDATA[', at)) {
      if (!this.current) throw this.refuse('SWX_XML_MALFORMED', 'CDATA section outside the root element');
      const end = s.indexOf(']]>', at + 9);
      if (end < 0) throw this.refuse('SWX_XML_MALFORMED', 'CDATA section is not closed');
      this.cdataText(at + 9, end);
      this.pos = end + 3;
      return;
    }
    dtdDeclaration.lastIndex = at;
    if (dtdDeclaration.test(s)) {
      throw this.refuse('SWX_XML_FORBIDDEN', 'DOCTYPE and DTD declarations are not accepted (no entities, no external references)');
    }
    throw this.refuse('SWX_XML_MALFORMED', "'<!' starts neither a comment nor a CDATA section");
  }

  /** A CDATA section's content, or a piece of it: text, its line ends normalised. */
  protected cdataText(from: number, to: number): void {
    this.checkLength(to - from, 'CDATA section', from);
    this.appendText(this.s.slice(from, to).replace(/\r\n?/g, '\n'), from);
  }

  private processingInstruction(): void {
    const s = this.s;
    const at = this.pos;
    this.pos += 2;
    const target = this.name('processing instruction target');
    if (target.includes(':')) throw this.refuse('SWX_XML_MALFORMED', `processing instruction target ${target} may not contain ':'`, at);
    if (target.toLowerCase() === 'xml') throw this.refuse('SWX_XML_MALFORMED', 'XML declaration is only allowed at the very start', at);
    let data = '';
    if (!s.startsWith('?>', this.pos)) {
      if (!this.skipSpace()) throw this.refuse('SWX_XML_MALFORMED', `whitespace expected after processing instruction target ${target}`);
      const end = s.indexOf('?>', this.pos);
      if (end < 0) throw this.refuse('SWX_XML_MALFORMED', `processing instruction ${target} is not closed`, at);
      this.checkLength(end - this.pos, 'processing instruction ', at, target);
      data = s.slice(this.pos, end).replace(/\r\n?/g, '\n');
      this.pos = end;
    }
    this.pos += 2;
    this.append({ type: 'processing-instruction', target, data });
  }
}

/** What a streaming read reports, in document order. Elements come with their names resolved, `parent` being the
 *  element they open in; nothing of a closed element is kept. Text comes in pieces, from inside the root only. */
export interface XmlEvents {
  open(element: XmlElement): void;
  close(element: XmlElement): void;
  text(value: string): void;
  comment(node: XmlComment): void;
  instruction(node: XmlProcessingInstruction): void;
}

export interface XmlStream {
  write(chunk: Uint8Array): void;
  /** SWX_XML_MALFORMED when the document is not complete. */
  end(): void;
}

/** The longest markup (a start tag, comment or processing instruction) a streaming read waits for the end of. */
export const maxStreamedMarkup = 1024 * 1024;

/**
 * The same gate as parseXml over UTF-8 input that arrives in chunks, for documents too large to hold: every check and
 * limit applies as it does to a whole document (node and size limits aside, which guard a tree that is not built here),
 * and `events` hear each node as soon as it is read. Memory is the open elements and the markup not yet complete.
 */
export function xmlStream(events: XmlEvents, limits?: Partial<XmlLimits>): XmlStream {
  return new StreamParser(events, { ...defaultXmlLimits, maxBytes: Infinity, maxNodes: Infinity, ...limits });
}

const CR = 0x0d, BRACKET = 0x5d;

class StreamParser extends Parser implements XmlStream {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private started = false;
  private declared = false;
  private inCdata = false;
  /** Characters before the buffer, for positions in refusals. */
  private consumed = 0;
  private bytes = 0;

  constructor(private readonly events: XmlEvents, limit: XmlLimits) {
    super('', false, limit);
  }

  write(chunk: Uint8Array): void {
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if ((chunk[0] === 0xfe && chunk[1] === 0xff) || (chunk[0] === 0xff && chunk[1] === 0xfe)) {
        throw new XmlRefusal('SWX_XML_MALFORMED', 'XML is UTF-16; only UTF-8 is accepted');
      }
    }
    this.bytes += chunk.length;
    if (this.bytes > this.limit.maxBytes) throw new XmlRefusal('SWX_XML_LIMIT', `XML is larger than ${this.limit.maxBytes} bytes`);
    this.take(this.decoded(() => this.decoder.decode(chunk, { stream: true })), false);
  }

  end(): void {
    this.take(this.decoded(() => this.decoder.decode()), true);
    this.finish();
  }

  private decoded(decode: () => string): string {
    let text: string;
    try {
      text = decode();
    } catch {
      throw new XmlRefusal('SWX_XML_MALFORMED', 'XML is not valid UTF-8');
    }
    const bad = notXmlChar.exec(text);
    if (bad) {
      const codePoint = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new XmlRefusal('SWX_XML_MALFORMED', `character U+${codePoint} is not allowed in XML (character ${this.consumed + this.s.length + bad.index + 1})`);
    }
    return text;
  }

  private take(text: string, final: boolean): void {
    this.consumed += this.pos;
    this.s = this.s.slice(this.pos) + text;
    this.pos = 0;
    if (!this.declared) {
      const s = this.s;
      // Undecided while the buffer could still begin `<?xml ` (a declaration) or `<?xml-…` (an instruction).
      const undecided = s.length < 6 ? '<?xml'.startsWith(s.slice(0, 5)) : s.startsWith('<?xml') && (isSpace(s.charCodeAt(5)) || s.charCodeAt(5) === QUESTION) && s.indexOf('?>') < 0;
      if (undecided && !final) return this.waitFor(0, 'the XML declaration');
      this.declaration();
      this.declared = true;
    }
    this.run(final);
  }

  /** Reads what the buffer holds: whole markup, and text (in CDATA sections too) up to where a later chunk cannot change it. */
  private run(final: boolean): void {
    while (this.pos < this.s.length) {
      const s = this.s;
      if (this.inCdata) {
        const end = s.indexOf(']]>', this.pos);
        if (end < 0 && final) throw this.refuse('SWX_XML_MALFORMED', 'CDATA section is not closed');
        const to = end >= 0 ? end : settledEnd(s, this.pos, false);
        if (to > this.pos) this.cdataText(this.pos, to);
        if (end < 0) {
          this.pos = to;
          return;
        }
        this.pos = end + 3;
        this.inCdata = false;
        continue;
      }
      const lt = s.indexOf('<', this.pos);
      if (lt !== this.pos) {
        const to = lt >= 0 || final ? (lt >= 0 ? lt : s.length) : settledEnd(s, this.pos, true);
        if (to > this.pos) this.characterData(this.pos, to);
        this.pos = to;
        if (lt < 0) return;
        continue;
      }
      if (this.current && s.startsWith('<![CDATA[', lt)) {
        this.pos = lt + 9;
        this.inCdata = true;
        continue;
      }
      if (!final && !markupComplete(s, lt)) return this.waitFor(lt, 'markup');
      this.markupAt();
    }
  }

  private waitFor(at: number, what: string): void {
    if (this.s.length - at > maxStreamedMarkup) throw this.refuse('SWX_XML_LIMIT', `${what} is longer than ${maxStreamedMarkup} characters`, at);
  }

  /** Text and CDATA pass in pieces and are never held, so no run of them is too long; markup is bounded as it waits. */
  protected override checkLength(length: number, what: string, at: number, name = ''): void {
    if (what !== 'text' && what !== 'CDATA section') super.checkLength(length, what, at, name);
  }

  protected override locate(at: number): string {
    return `character ${this.consumed + at + 1}`;
  }

  protected override opened(element: XmlElement): void {
    this.events.open(element);
  }

  protected override closed(element: XmlElement): void {
    this.events.close(element);
  }

  protected override appendText(value: string): void {
    this.events.text(value);
  }

  protected override append(node: XmlComment | XmlProcessingInstruction): void {
    if (node.type === 'comment') this.events.comment(node);
    else this.events.instruction(node);
  }
}

/**
 * How far text in the buffer can be read before more arrives: not into a reference whose `;` has not come, nor past a
 * CR whose LF may follow or `]` that may begin `]]>`.
 */
function settledEnd(s: string, from: number, references: boolean): number {
  if (references) {
    const amp = s.lastIndexOf('&');
    if (amp >= from && s.indexOf(';', amp) < 0 && s.length - amp <= maxStreamedMarkup) return amp;
  }
  let end = s.length;
  if (s.charCodeAt(end - 1) === CR) return end - 1;
  if (end > from && s.charCodeAt(end - 1) === BRACKET) end--;
  if (end > from && s.charCodeAt(end - 1) === BRACKET) end--;
  return end;
}

/** Whether the markup at `at` has ended within the buffer, so that reading it cannot run out of input. */
function markupComplete(s: string, at: number): boolean {
  const next = s.charCodeAt(at + 1);
  if (next === SLASH) return s.indexOf('>', at) >= 0;
  if (next === QUESTION) return s.indexOf('?>', at + 2) >= 0;
  if (next === BANG) {
    if (s.length - at < 9) return false;
    if (!s.startsWith('<!--', at)) return true;
    const dashes = s.indexOf('--', at + 4);
    return dashes >= 0 && dashes + 2 < s.length;
  }
  if (Number.isNaN(next)) return false;
  let quote = 0;
  for (let i = at + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === QUOTE || c === APOS) {
      quote = c;
    } else if (c === GT) {
      return true;
    }
  }
  return false;
}
