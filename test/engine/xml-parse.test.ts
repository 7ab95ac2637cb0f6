// The hardened XML gate: on every conformance file and on tricky generated inputs it builds the same tree as xmldom
// (the DOM the reference verifier uses), and it refuses DTDs, entity tricks, malformed input and oversized input with
// the right SWX_XML_* code instead of crashing or expanding anything.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOMParser } from '@xmldom/xmldom';
import { byteOffset, defaultXmlLimits, maxStreamedMarkup, parseXml, xmlStream, XmlRefusal, type XmlElement, type XmlLimits, type XmlNode } from '../../engine/xml/parse.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const conformanceXml = (readdirSync(conformance, { recursive: true }) as string[]).filter((path) => path.endsWith('.xml')).sort();

// A neutral shape both trees are reduced to: adjacent text and CDATA form one run, as in c14n.
type Shape = string | { name: [string, string, string]; attributes: string[][]; declarations: string[][]; children: Shape[] };

function ourShape(node: XmlNode): Shape {
  switch (node.type) {
    case 'text': return `text:${node.value}`;
    case 'comment': return `comment:${node.value}`;
    case 'processing-instruction': return `pi:${node.target}:${node.data}`;
    case 'element': return {
      name: [node.namespace, node.prefix, node.localName],
      attributes: node.attributes.map((a) => [a.namespace, a.prefix, a.localName, a.value]),
      declarations: node.namespaceDeclarations.map((d) => [d.prefix, d.uri]),
      children: node.children.map(ourShape),
    };
  }
}

interface DomNode { nodeType: number; data?: string; nodeName: string; childNodes: ArrayLike<DomNode>; namespaceURI?: string | null; prefix?: string | null; localName?: string | null; attributes?: ArrayLike<DomNode & { value: string }>; target?: string }

function domShape(node: DomNode): Shape {
  if (node.nodeType === 8) return `comment:${node.data}`;
  if (node.nodeType === 7) return `pi:${node.target}:${node.data}`;
  const attributes = Array.from(node.attributes!);
  const isDeclaration = (a: DomNode) => a.nodeName === 'xmlns' || a.prefix === 'xmlns';
  const children: Shape[] = [];
  for (const child of Array.from(node.childNodes)) {
    if (child.nodeType === 3 || child.nodeType === 4) {
      const last = children.at(-1);
      if (typeof last === 'string' && last.startsWith('text:')) children[children.length - 1] = last + child.data;
      else children.push(`text:${child.data}`);
    } else children.push(domShape(child));
  }
  return {
    name: [node.namespaceURI ?? '', node.prefix ?? '', node.localName!],
    attributes: attributes.filter((a) => !isDeclaration(a)).map((a) => [a.namespaceURI ?? '', a.prefix ?? '', a.localName!, a.value]),
    declarations: attributes.filter(isDeclaration).map((a) => [a.prefix ? a.localName! : '', a.value]),
    children,
  };
}

function xmldom(xml: string): Shape[] {
  const fail = (message: string) => { throw new Error(`xmldom: ${message}`); };
  const document = new DOMParser({ errorHandler: { warning: () => {}, error: fail, fatalError: fail } }).parseFromString(xml, 'text/xml') as unknown as DomNode;
  return Array.from(document.childNodes).filter((n) => (n.nodeType === 7 && n.target !== 'xml') || n.nodeType === 8 || n.nodeType === 1).map(domShape);
}

const ours = (xml: Buffer | string) => parseXml(xml).children.map(ourShape);

function refusal(xml: Buffer | string, limits?: Partial<XmlLimits>): XmlRefusal {
  try {
    parseXml(xml, limits);
  } catch (error) {
    if (error instanceof XmlRefusal) return error;
    throw error;
  }
  throw new Error(`accepted: ${String(xml).slice(0, 80)}`);
}

test('every conformance XML file gives the tree xmldom gives', () => {
  assert.ok(conformanceXml.length >= 19, `found ${conformanceXml.length} files`);
  for (const path of conformanceXml) {
    const bytes = readFileSync(join(conformance, path));
    assert.equal(ours(bytes), xmldom(bytes.toString('utf8')), path);
  }
});

const tricky: Record<string, string> = {
  'namespace redeclaration and default undeclaration': '<a xmlns="urn:1" xmlns:p="urn:p"><p:b xmlns:p="urn:q" p:x="1"><c xmlns=""><d xmlns="urn:2"/></c></p:b></a>',
  'attributes in several namespaces': '<r xmlns:b="urn:b" xmlns:a="urn:a" b:z="1" a:z="2" z="3" xml:lang="en" a:y="4"/>',
  'entities and character references': '<r a="&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;">&lt;&gt;&amp;&quot;&apos;&#x10FFFF;&#9;&#xD;</r>',
  'CR, LF and tab in attributes, literal and referenced': '<r a="1\r\n2\r3\n4\t5" b="&#13;&#10;&#9;" c=\'"\'/>',
  'CR LF in text, CDATA, comments and PIs': '<r>a\r\nb\rc<![CDATA[d\r\ne]]><!-- f\r\ng --><?p h\r\ni?></r>',
  'comments and PIs outside the root, whitespace around it': '<?xml version="1.0"?>\n<!-- before -->\n<?pi before?>\n<r/>\n<!-- after -->\n<?pi after ?>\n',
  'empty elements, both forms': '<r><a/><b></b><c   /></r>',
  'superfluous declarations': '<r xmlns:a="urn:a"><x xmlns:a="urn:a" xmlns=""><a:y xmlns:a="urn:a"/></x></r>',
  'xml prefix, declared or not': '<r xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:space="preserve"><s xml:lang="fr"/></r>',
  'markup characters in CDATA and attribute quotes': "<r q='a\"b' p=\"a'b\"><![CDATA[<not-a-tag> & ]]]]><![CDATA[>]]></r>",
  'non-ASCII names and text': '<données xmlns:é="urn:é" é:clé="valeur ✓">日本語 𝄞</données>',
  'whitespace inside tags': '<r  a = "1"\n\tb\t=\t\'2\' ></r >',
};

for (const [name, xml] of Object.entries(tricky)) {
  test(`same tree as xmldom: ${name}`, () => {
    assert.equal(ours(xml), xmldom(xml));
  });
}

test('element offsets slice the original, in characters and in bytes (BOM and multi-byte text)', () => {
  const source = '<?xml version="1.0" encoding="utf-8"?>\r\n<é:r xmlns:é="urn:é">\r\n  <a k="ü">𝄞</a><b/>\r\n  <c>x<d>y</d></c></é:r>';
  const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(source)]);
  const document = parseXml(bytes);
  assert.ok(document.bom);
  const elements: XmlElement[] = [];
  const collect = (element: XmlElement) => { elements.push(element); element.children.forEach((c) => c.type === 'element' && collect(c)); };
  collect(document.root);
  assert.equal(elements.map((e) => e.localName), ['r', 'a', 'b', 'c', 'd']);
  for (const element of elements) {
    const text = document.source.slice(element.start, element.end);
    assert.ok(text.startsWith(`<${element.qualifiedName}`) && text.endsWith(element.children.length ? `</${element.qualifiedName}>` : '>'), text);
    assert.equal(bytes.subarray(byteOffset(document, element.start), byteOffset(document, element.end)).toString('utf8'), text);
    assert.equal(document.source.slice(element.contentStart, element.contentEnd).length, element.contentEnd - element.contentStart);
  }
  const a = elements[1]!;
  assert.equal(document.source.slice(a.contentStart, a.contentEnd), '𝄞');
});

// The attacks a DTD makes possible, each refused before anything is expanded or fetched.
const forbidden: Record<string, string> = {
  'billion laughs': '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>',
  'external entity (XXE)': '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
  'external DTD': '<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd"><r/>',
  'parameter entity': '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://example.invalid/p"> %p;]><r/>',
  'bare DOCTYPE': '<!DOCTYPE r><r/>',
  'lower-case doctype': '<!doctype r><r/>',
  'DOCTYPE after a comment': '<!-- hi --><!DOCTYPE r><r/>',
  'ENTITY inside content': '<r><!ENTITY x "y"></r>',
  'ATTLIST inside content': '<r><!ATTLIST r a CDATA "d"></r>',
  'conditional section': '<r><![INCLUDE[<x/>]]></r>',
};
for (const [name, xml] of Object.entries(forbidden)) {
  test(`refused as SWX_XML_FORBIDDEN: ${name}`, () => {
    assert.is(refusal(xml).code, 'SWX_XML_FORBIDDEN');
  });
}

const malformed: Record<string, string | Buffer> = {
  'undeclared entity': '<r>&nbsp;</r>',
  'entity-like text without semicolon': '<r>AT&T</r>',
  'character reference to NUL': '<r>&#0;</r>',
  'character reference to a surrogate': '<r a="&#xD800;"/>',
  'character reference beyond Unicode': '<r>&#x110000;</r>',
  'huge character reference': `<r>&#${'9'.repeat(400)};</r>`,
  'raw control character': '<r>\u0001</r>',
  'U+FFFE': '<r>\uFFFE</r>',
  'invalid UTF-8': Buffer.from([0x3c, 0x72, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x72, 0x3e]),
  'UTF-16': Buffer.from('\uFEFF<r/>', 'utf16le'),
  'declared other encoding': '<?xml version="1.0" encoding="ISO-8859-1"?><r/>',
  'XML 1.1': '<?xml version="1.1"?><r/>',
  'XML declaration not first': ' <?xml version="1.0"?><r/>',
  'mismatched end tag': '<a><b></a></b>',
  'unclosed element': '<a><b></b>',
  'end tag without start': '<a></a></b>',
  'two roots': '<a/><b/>',
  'no root': '<!-- only a comment -->',
  'empty input': '',
  'text outside the root': '<a/>trailing',
  'duplicate attribute': '<a x="1" x="2"/>',
  'duplicate expanded attribute name': '<a xmlns:p="urn:x" xmlns:q="urn:x" p:x="1" q:x="2"/>',
  'duplicate namespace declaration': '<a xmlns:p="urn:1" xmlns:p="urn:2"/>',
  'undeclared element prefix': '<p:a/>',
  'undeclared attribute prefix': '<a p:x="1"/>',
  'prefix out of scope': '<a><b xmlns:p="urn:p"/><p:c/></a>',
  'undeclared prefix declaration': '<a xmlns:p=""/>',
  'xml prefix rebound': '<a xmlns:xml="urn:other"/>',
  'XML namespace on another prefix': '<a xmlns:x="http://www.w3.org/XML/1998/namespace"/>',
  'xmlns prefix declared': '<a xmlns:xmlns="urn:x"/>',
  'xmlns namespace declared': '<a xmlns:x="http://www.w3.org/2000/xmlns/"/>',
  'element with xmlns prefix': '<xmlns:a/>',
  'two colons in a name': '<a:b:c xmlns:a="urn:a"/>',
  'name starting with a digit': '<1a/>',
  'local name starting with a digit': '<a:1 xmlns:a="urn:a"/>',
  'less-than in an attribute': '<a x="<"/>',
  'unquoted attribute': '<a x=1/>',
  'attribute without value': '<a x/>',
  'attributes without whitespace between': '<a x="1"y="2"/>',
  'double hyphen in a comment': '<a><!-- a -- b --></a>',
  'comment ending in a hyphen': '<a><!-- a ---></a>',
  'unclosed comment': '<a><!-- a </a>',
  'CDATA end in text': '<a>]]></a>',
  'CDATA outside the root': '<![CDATA[x]]><a/>',
  'reserved PI target': '<a><?xml version="1.0"?></a>',
  'PI target with a colon': '<a><?a:b c?></a>',
  'unclosed start tag': '<a x="1"',
  'unclosed attribute value': '<a x="1/>',
};
for (const [name, xml] of Object.entries(malformed)) {
  test(`refused as SWX_XML_MALFORMED: ${name}`, () => {
    assert.is(refusal(xml).code, 'SWX_XML_MALFORMED');
  });
}

// Each limit: exactly at the limit is accepted, one over is refused with SWX_XML_LIMIT.
const nested = (depth: number) => '<a>'.repeat(depth) + '</a>'.repeat(depth);
const withAttributes = (n: number) => `<a xmlns:p="urn:p"${Array.from({ length: n - 1 }, (_, i) => ` a${i}="v"`).join('')}/>`;
const withNodes = (n: number) => `<r>${'<e/>'.repeat(n - 1)}</r>`;
const limitCases: [keyof XmlLimits, number, (n: number) => string][] = [
  ['maxDepth', 40, nested],
  ['maxAttributes', 20, withAttributes],
  ['maxNameLength', 30, (n) => `<${'n'.repeat(n)}/>`],
  ['maxNameLength', 30, (n) => `<r ${'n'.repeat(n)}="1"/>`],
  ['maxNodes', 50, withNodes],
  ['maxTextLength', 100, (n) => `<r>${'t'.repeat(n)}</r>`],
  ['maxTextLength', 100, (n) => `<r>${'t'.repeat(n - 10)}<![CDATA[${'c'.repeat(10)}]]></r>`],
  ['maxTextLength', 100, (n) => `<r a="${'v'.repeat(n)}"/>`],
  ['maxTextLength', 100, (n) => `<r><!--${'c'.repeat(n)}--></r>`],
  ['maxBytes', 64, (n) => `<r>${'é'.repeat((n - 7) / 2)}</r>`],
];
for (const [index, [limit, value, make]] of limitCases.entries()) {
  test(`${limit} ${value}: at the limit accepted, beyond it refused (case ${index + 1})`, () => {
    parseXml(make(value), { [limit]: value });
    assert.is(refusal(make(value + (limit === 'maxBytes' ? 2 : 1)), { [limit]: value }).code, 'SWX_XML_LIMIT');
  });
}

test('defaults hold a 10 MB message with an inline payload and refuse deeper nesting than 64', () => {
  const payload = 'QUJD'.repeat(2_500_000);
  const document = parseXml(`<Envelope><Body><Payload>${payload}</Payload></Body></Envelope>`);
  assert.is((document.root.children[0] as XmlElement).children.length, 1);
  parseXml(nested(defaultXmlLimits.maxDepth));
  assert.is(refusal(nested(defaultXmlLimits.maxDepth + 1)).code, 'SWX_XML_LIMIT');
});

test('a limit stops the parse where it is crossed, not after reading everything', () => {
  // The text after the over-deep element is malformed; the limit is reported first because parsing stopped there.
  assert.is(refusal(`${nested(5)}<<<`, { maxDepth: 3 }).code, 'SWX_XML_LIMIT');
  assert.is(refusal(`<r>${'<e/>'.repeat(20)}&bogus;`, { maxNodes: 10 }).code, 'SWX_XML_LIMIT');
});

// Hostile input never escapes as anything but XmlRefusal: every byte position of a real message, mutated.
test('mutated conformance messages are parsed or refused, never crash', () => {
  const original = readFileSync(join(conformance, 'phase4/testfiles/TestReceipt12.xml'), 'utf8');
  const replacements = ['<', '>', '&', '"', "'", ':', '/', '!', '?', ' ', '\u0000', '&#0;', ']]>', '<!DOCTYPE x>', 'é', ''];
  let accepted = 0;
  let refused = 0;
  for (let position = 0; position < original.length; position += 7) {
    for (const replacement of replacements) {
      const mutated = original.slice(0, position) + replacement + original.slice(position + 1);
      try {
        parseXml(mutated);
        accepted++;
      } catch (error) {
        if (!(error instanceof XmlRefusal)) throw new Error(`${String(error)} at ${position} with ${JSON.stringify(replacement)}`);
        refused++;
      }
    }
  }
  assert.ok(accepted > 0 && refused > 0, `${accepted} accepted, ${refused} refused`);
});

/** The streaming read's verdict on input split into chunks of `size` bytes: accepted (undefined) or its refusal's code. */
function streamedVerdict(xml: Buffer | string, size: number, limits?: Partial<XmlLimits>): string | undefined {
  const bytes = Buffer.isBuffer(xml) ? xml : Buffer.from(xml, 'utf8');
  const ignore = () => {};
  const stream = xmlStream({ open: ignore, close: ignore, text: ignore, comment: ignore, instruction: ignore }, limits);
  try {
    for (let at = 0; at < bytes.length; at += size) stream.write(bytes.subarray(at, at + size));
    stream.end();
    return undefined;
  } catch (error) {
    if (error instanceof XmlRefusal) return error.code;
    throw error;
  }
}

const treeVerdict = (xml: Buffer | string) => {
  try {
    parseXml(xml);
    return undefined;
  } catch (error) {
    if (error instanceof XmlRefusal) return error.code;
    throw error;
  }
};

test('streamed, in whole and in one-byte chunks, every forbidden and malformed document is refused with the same code', () => {
  for (const [name, xml] of [...Object.entries(forbidden), ...Object.entries(malformed)]) {
    for (const size of [1, 1 << 20]) assert.is(streamedVerdict(xml, size), treeVerdict(xml), `${name}, ${size}-byte chunks`);
  }
});

test('streamed, every conformance file is accepted, and each mutation of a message gets the tree\'s verdict', () => {
  for (const path of conformanceXml) assert.is(streamedVerdict(readFileSync(join(conformance, path)), 7), undefined, path);
  const original = readFileSync(join(conformance, 'phase4/testfiles/TestReceipt12.xml'), 'utf8');
  const replacements = ['<', '>', '&', '"', ':', '!', '?', '\r', '\u0000', '&#0;', ']]>', '<![CDATA[', '<!DOCTYPE x>', 'é', ''];
  let compared = 0;
  for (let position = 0; position < original.length; position += 11) {
    for (const replacement of replacements) {
      const mutated = original.slice(0, position) + replacement + original.slice(position + 1);
      assert.is(streamedVerdict(mutated, 13), treeVerdict(mutated), `${JSON.stringify(replacement)} at ${position}`);
      compared++;
    }
  }
  assert.ok(compared > 1000, `${compared} mutations`);
});

test('streamed, a text run beyond maxTextLength passes in pieces; markup that never ends is refused at its limit', () => {
  const long = `<r>${'x&amp;\r\n'.repeat(5000)}<![CDATA[${'y]'.repeat(5000)}]]></r>`;
  assert.is(streamedVerdict(long, 4096, { maxTextLength: 1000 }), undefined);
  assert.is(treeVerdict(long), undefined);
  assert.is(streamedVerdict(`<r a="${'v'.repeat(maxStreamedMarkup + 10)}`, 65536), 'SWX_XML_LIMIT');
  assert.is(streamedVerdict(`<r><!--${'c'.repeat(maxStreamedMarkup + 10)}`, 65536), 'SWX_XML_LIMIT');
  assert.is(streamedVerdict(nested(defaultXmlLimits.maxDepth + 1), 3), 'SWX_XML_LIMIT');
});

test('refusals name the place', () => {
  const error = refusal('<r>\n  <a>\n  </b>\n</r>');
  assert.match(error.message, /line 3, column 3/);
  assert.is(error.name, 'XmlRefusal');
  assert.is(error.status, 400);
});

test.run();
