// JSON <-> fn:json-to-xml markup: lossless both ways for what JSON holds (nesting, numbers, any Unicode, characters
// XML cannot carry), and strict on hostile markup.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answer, sampleQuery } from '../../app/demo-data.ts';
import { SwxError } from '../../engine/errors.ts';
import { parseXml } from '../../engine/xml/parse.ts';
import { jsonToXml, xmlToJson } from '../../connectors/ws/json-xml.ts';

const roundTrip = (value: unknown) => xmlToJson(parseXml(jsonToXml(value)).root);
const fn = 'xmlns="http://www.w3.org/2005/xpath-functions"';

test('demo records survive the round trip', () => {
  for (const dataset of ['import-declaration-sea', 'company-registration']) {
    for (const query of sampleQuery(dataset, 5)) {
      const record = answer(dataset, query);
      assert.ok(record);
      assert.equal(roundTrip(record), record);
    }
  }
});

test('numbers, nesting, empty containers, Unicode and characters XML cannot carry survive', () => {
  const value = {
    numbers: [0, -0.5, 1e21, 9007199254740991, 1.5e-7, 12345.678],
    nested: [[[]], {}, [{ a: [null, true, false] }]],
    text: '台灣 🚢 <&>"\' \t\n\r end',
    controls: '\u0000\u0001\u001f\uFFFE\uFFFF\uD800 lone',
    'key with \u0001 and "quotes" & \r\n': 'x',
    '': 'empty key',
  };
  // As JSON.parse makes it from a hostile provider's answer: "__proto__" an own key.
  const input = JSON.parse(JSON.stringify(value).replace(/^\{/, '{"__proto__":"not a prototype",'));
  const back = roundTrip(input) as Record<string, unknown>;
  assert.is(JSON.stringify(back), JSON.stringify(input));
  assert.is(Object.getPrototypeOf(back), Object.prototype, '"__proto__" stays a key');
  assert.is(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, 'not a prototype');
  assert.match(jsonToXml({ s: '\u0001' }), '<string escaped="true" key="s">\\u0001</string>');
});

test('the markup is fn:json-to-xml as the W3C writes it, in canonical form (a signer digests it as written)', () => {
  assert.is(jsonToXml({ a: [1, 'x', null, true] }), `<map ${fn}><array key="a"><number>1</number><string>x</string><null></null><boolean>true</boolean></array></map>`);
});

const refused: [string, string][] = [
  ['element outside the namespace', `<map ${fn}><string xmlns="urn:other" key="a">x</string></map>`],
  ['unknown element', `<map ${fn}><date key="a">2024</date></map>`],
  ['map entry without a key', `<map ${fn}><string>x</string></map>`],
  ['duplicate key', `<map ${fn}><string key="a">x</string><number key="a">1</number></map>`],
  ['number that is not JSON', `<map ${fn}><number key="a">0x10</number></map>`],
  ['NaN', `<map ${fn}><number key="a">NaN</number></map>`],
  ['boolean that is not one', `<map ${fn}><boolean key="a">yes</boolean></map>`],
  ['text in a map', `<map ${fn}>loose<string key="a">x</string></map>`],
  ['element in a string', `<map ${fn}><string key="a"><b/></string></map>`],
  ['unknown attribute', `<map ${fn}><string key="a" type="x">x</string></map>`],
  ['bad escape', `<map ${fn}><string key="a" escaped="true">\\q</string></map>`],
];

for (const [name, xml] of refused) {
  test(`refused: ${name}`, () => {
    try {
      xmlToJson(parseXml(xml).root);
      assert.unreachable('accepted');
    } catch (error) {
      assert.instance(error, SwxError);
      assert.is((error as SwxError).code, 'SWX_BAD_REQUEST');
    }
  });
}

test('refused: deeper or larger than the limits', () => {
  const deep = `${`<array ${fn}>`}${'<array>'.repeat(10)}${'</array>'.repeat(10)}</array>`;
  assert.throws(() => xmlToJson(parseXml(deep).root, { maxDepth: 8 }), (e: SwxError) => e.code === 'SWX_BAD_REQUEST');
  const wide = `<array ${fn}>${'<null/>'.repeat(50)}</array>`;
  assert.throws(() => xmlToJson(parseXml(wide).root, { maxValues: 20 }), (e: SwxError) => e.code === 'SWX_BAD_REQUEST');
  assert.throws(() => jsonToXml(JSON.parse('['.repeat(40) + ']'.repeat(40))), (e: SwxError) => e.code === 'SWX_BAD_REQUEST');
});

test.run();
