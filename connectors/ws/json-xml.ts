// JSON values as W3C XPath 3.1 fn:json-to-xml markup and back (https://www.w3.org/TR/xpath-functions-31/#json-to-xml-mapping),
// without loss: numbers keep their JSON form, strings with characters XML cannot carry are written escaped="true".
// The XML-to-JSON direction reads hostile input: element names, attributes, duplicate keys and size are checked.
import { SwxError } from '../../engine/errors.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';
import { jsonXmlNamespace } from './contract.ts';
import { escapeXml, hasNonXmlChar } from '../../engine/xml/text.ts';

export interface JsonXmlLimits {
  /** Nesting of maps and arrays. */
  maxDepth: number;
  /** Values in the whole document. */
  maxValues: number;
}

export const defaultJsonXmlLimits: JsonXmlLimits = { maxDepth: 32, maxValues: 100_000 };

const jsonNumber = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** A string as element content or key attribute; `escaped` when it needs JSON escapes to survive XML. */
function written(value: string, attribute: boolean): { text: string; escaped: boolean } {
  if (!hasNonXmlChar(value)) return { text: escapeXml(value, attribute), escaped: false };
  // JSON.stringify escapes controls and lone surrogates; U+FFFE and U+FFFF it leaves as they are.
  const json = JSON.stringify(value).slice(1, -1).replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  return { text: escapeXml(json, attribute), escaped: true };
}

/**
 * The fn:json-to-xml markup of a JSON value (as JSON.parse gives it), its root declaring the namespace as default.
 * Throws SWX_BAD_REQUEST for what JSON cannot hold (undefined, functions, non-finite numbers) or beyond `limits`.
 */
export function jsonToXml(value: unknown, limits: Partial<JsonXmlLimits> = {}): string {
  const { maxDepth, maxValues } = { ...defaultJsonXmlLimits, ...limits };
  let count = 0;
  const element = (item: unknown, depth: number, key: string | undefined, namespace: string): string => {
    if (++count > maxValues) throw new SwxError('SWX_BAD_REQUEST', `the record has more than ${maxValues} values`);
    // Written in exclusive-c14n form (attributes escaped < escaped-key < key, no empty-element tags), so that a
    // signer can digest the markup exactly as written.
    let keyAttributes = '';
    if (key !== undefined) {
      const { text, escaped } = written(key, true);
      keyAttributes = `${escaped ? ' escaped-key="true"' : ''} key="${text}"`;
    }
    const open = (name: string, escapedValue = '') => `<${name}${namespace}${escapedValue}${keyAttributes}`;
    if (item === null) return `${open('null')}></null>`;
    if (typeof item === 'boolean') return `${open('boolean')}>${item}</boolean>`;
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) throw new SwxError('SWX_BAD_REQUEST', 'the record holds a number JSON cannot carry');
      return `${open('number')}>${JSON.stringify(item)}</number>`;
    }
    if (typeof item === 'string') {
      const { text, escaped } = written(item, false);
      return `${open('string', escaped ? ' escaped="true"' : '')}>${text}</string>`;
    }
    if (typeof item === 'object') {
      if (depth >= maxDepth) throw new SwxError('SWX_BAD_REQUEST', `the record is nested deeper than ${maxDepth} levels`);
      if (Array.isArray(item)) return `${open('array')}>${item.map((child) => element(child, depth + 1, undefined, '')).join('')}</array>`;
      const entries = Object.entries(item as Record<string, unknown>).filter(([, child]) => child !== undefined);
      return `${open('map')}>${entries.map(([name, child]) => element(child, depth + 1, name, '')).join('')}</map>`;
    }
    throw new SwxError('SWX_BAD_REQUEST', `the record holds a ${typeof item}, which JSON cannot carry`);
  };
  return element(value, 0, undefined, ` xmlns="${jsonXmlNamespace}"`);
}

const refuse = (detail: string) => new SwxError('SWX_BAD_REQUEST', `record: ${detail}`);

function unescape(text: string, what: string): string {
  try {
    const value: unknown = JSON.parse(`"${text}"`);
    if (typeof value === 'string') return value;
  } catch { /* refused below */ }
  throw refuse(`${what} is marked escaped but is not a JSON string body`);
}

/** The character content of a leaf: text only (comments and processing instructions are skipped). */
function leafText(element: XmlElement): string {
  let text = '';
  for (const child of element.children) {
    if (child.type === 'element') throw refuse(`<${element.localName}> may not contain elements`);
    if (child.type === 'text') text += child.value;
  }
  return text;
}

function attributesOf(element: XmlElement, keyed: boolean): { key?: string; escaped: boolean } {
  const allowed = new Set(keyed ? ['key', 'escaped-key'] : []);
  if (element.localName === 'string') allowed.add('escaped');
  const out: { key?: string; escaped: boolean } = { escaped: false };
  let escapedKey = false;
  for (const attribute of element.attributes) {
    if (attribute.namespace !== '') continue; // attributes in other namespaces are allowed and ignored
    if (!allowed.has(attribute.localName)) throw refuse(`attribute ${attribute.localName} is not allowed on <${element.localName}> here`);
    const flag = attribute.value.trim();
    if (attribute.localName !== 'key' && !['true', 'false', '1', '0'].includes(flag)) throw refuse(`${attribute.localName} must be a boolean`);
    if (attribute.localName === 'key') out.key = attribute.value;
    else if (attribute.localName === 'escaped') out.escaped = flag === 'true' || flag === '1';
    else escapedKey = flag === 'true' || flag === '1';
  }
  if (keyed && out.key === undefined) throw refuse(`<${element.localName}> in a map needs a key attribute`);
  if (out.key !== undefined && escapedKey) out.key = unescape(out.key, 'a key');
  return out;
}

/** The JSON value an fn:json-to-xml element stands for; throws SWX_BAD_REQUEST on anything else. */
export function xmlToJson(root: XmlElement, limits: Partial<JsonXmlLimits> = {}): unknown {
  const { maxDepth, maxValues } = { ...defaultJsonXmlLimits, ...limits };
  let count = 0;
  const value = (element: XmlElement, depth: number, keyed: boolean): { key?: string; value: unknown } => {
    if (element.namespace !== jsonXmlNamespace) throw refuse(`<${element.qualifiedName}> is not in the ${jsonXmlNamespace} namespace`);
    if (++count > maxValues) throw refuse(`more than ${maxValues} values`);
    const { key, escaped } = attributesOf(element, keyed);
    const at = (result: unknown) => (key === undefined ? { value: result } : { key, value: result });
    switch (element.localName) {
      case 'null':
        if (leafText(element).trim() !== '') throw refuse('<null> must be empty');
        return at(null);
      case 'boolean': {
        const text = leafText(element).trim();
        if (!['true', 'false', '1', '0'].includes(text)) throw refuse(`<boolean> holds ${JSON.stringify(text.slice(0, 20))}`);
        return at(text === 'true' || text === '1');
      }
      case 'number': {
        const text = leafText(element).trim();
        if (!jsonNumber.test(text)) throw refuse(`<number> holds ${JSON.stringify(text.slice(0, 40))}, not a JSON number`);
        return at(Number(text));
      }
      case 'string': {
        const text = leafText(element);
        return at(escaped ? unescape(text, 'a string') : text);
      }
      case 'array':
      case 'map': {
        if (depth >= maxDepth) throw refuse(`nested deeper than ${maxDepth} levels`);
        const items: XmlElement[] = [];
        for (const child of element.children) {
          if (child.type === 'element') items.push(child);
          else if (child.type === 'text' && child.value.trim() !== '') throw refuse(`<${element.localName}> may not contain text`);
        }
        if (element.localName === 'array') return at(items.map((item) => value(item, depth + 1, false).value));
        const map: Record<string, unknown> = {};
        for (const item of items) {
          const entry = value(item, depth + 1, true);
          if (Object.prototype.hasOwnProperty.call(map, entry.key!)) throw refuse(`key ${JSON.stringify(entry.key!.slice(0, 40))} appears twice in a map`);
          // defineProperty: a key such as "__proto__" must become data, not change the object's prototype.
          Object.defineProperty(map, entry.key!, { value: entry.value, enumerable: true, writable: true, configurable: true });
        }
        return at(map);
      }
      default:
        throw refuse(`<${element.localName}> is not one of map, array, string, number, boolean, null`);
    }
  };
  return value(root, 0, false).value;
}
