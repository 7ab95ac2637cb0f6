// Writing text into XML markup we build: escaped, and safe for characters XML 1.0 cannot carry.

// Outside XML 1.0 Char: C0 controls but tab, LF and CR; U+FFFE, U+FFFF; surrogates that are not in a pair.
const notXmlChar = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function hasNonXmlChar(value: string): boolean {
  notXmlChar.lastIndex = 0;
  return notXmlChar.test(value);
}

const textEntities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\r': '&#xD;', '\n': '&#xA;', '\t': '&#x9;' };

/**
 * Text or attribute content, escaped as canonical XML writes it (so markup we build is already in c14n form). CR is
 * always written as a reference (a parser would turn it into LF), and so are tab and LF in attributes (attribute
 * normalisation would turn them into spaces). Characters XML cannot carry become U+FFFD: callers that must keep them
 * (json-xml) escape them first.
 */
export function escapeXml(value: string, attribute = false): string {
  const special = attribute ? /[&<"\r\n\t]/g : /[&<>\r]/g;
  return value.replace(notXmlChar, '\uFFFD').replace(special, (c) => textEntities[c]!);
}
