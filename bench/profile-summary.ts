// `node --import tsx bench/profile-summary.ts DIR [--top N]`: reads the .cpuprofile files a bench's --cpu-prof wrote
// (bench/cpu-profile.mjs) and prints, for the hub's main thread and for its worker threads apart, the share of busy
// time by area (self: where the sample was taken; inclusive: the area anywhere on its stack) and the functions with
// the most self and inclusive time. Shares, not milliseconds, are the finding on a busy machine.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Areas by where the code lives (first match wins); a frame in none of them is "other". */
const areas: [string, (name: string, url: string) => boolean][] = [
  ['idle', (name) => name === '(idle)' || name === '(program)'],
  ['gc', (name) => name === '(garbage collector)'],
  ['xml-crypto', (_, url) => url.includes('/xml-crypto/')],
  ['xmldom (DOM parse, DOM walk)', (_, url) => url.includes('/@xmldom/')],
  ['xpath', (_, url) => url.includes('/xpath/')],
  ['swx XML parser (engine/xml/parse)', (_, url) => url.includes('/engine/xml/parse')],
  ['swx c14n (engine/xml/c14n)', (_, url) => url.includes('/engine/xml/c14n')],
  ['swx xml (other)', (_, url) => url.includes('/engine/xml/')],
  ['xmldsig fast path', (_, url) => url.includes('/engine/trust/xmldsig-fast')],
  ['xmldsig reference + signing', (_, url) => /\/engine\/trust\/(xmldsig|wssecurity|keyinfo)/.test(url)],
  ['xmlenc (decrypt)', (_, url) => url.includes('/engine/trust/xmlenc')],
  ['certificates, trust', (_, url) => /\/engine\/trust\/|\/@peculiar\/|\/pkijs\/|\/asn1js\//.test(url)],
  ['node crypto', (_, url) => url.startsWith('node:internal/crypto')],
  ['signature pool (piscina)', (_, url) => url.includes('/piscina/') || url.includes('/engine/trust/pool')],
  ['NATS client', (_, url) => url.includes('/@nats-io/')],
  ['evidence', (_, url) => url.includes('/engine/evidence')],
  ['MIME', (_, url) => url.includes('/engine/mime/')],
  ['AS4 connector', (_, url) => url.includes('/connectors/as4/')],
  ['REST connector, delivery', (_, url) => url.includes('/connectors/rest') || url.includes('/engine/deliver')],
  ['swx engine (other)', (_, url) => url.includes('/engine/')],
  ['swx (other)', (_, url) => url.includes('/swx') || url.includes('/wt-') || url.includes('/app/') || url.includes('/connectors/')],
  ['TLS, HTTP, streams, net', (_, url) => /^node:(internal\/)?(_?tls|_?http|https|net|stream|streams|internal\/streams|internal\/http|internal\/tls|_stream)/.test(url) || url.startsWith('node:internal/streams') || url.startsWith('node:internal/http') || url.startsWith('node:internal/tls')],
  ['JSON, regexp, builtins (native)', (name, url) => url === '' && name !== ''],
  ['node (other)', (_, url) => url.startsWith('node:')],
];

const areaOf = (frame: ProfileNode['callFrame']) => areas.find(([, test]) => test(frame.functionName, frame.url))?.[0] ?? 'other';
const functionKey = (frame: ProfileNode['callFrame']) =>
  `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(engine|connectors|app|bench)\//, '$1/')}:${frame.lineNumber + 1}`;

interface Tally { total: number; areaSelf: Map<string, number>; areaInclusive: Map<string, number>; self: Map<string, number>; inclusive: Map<string, number> }

function tally(profiles: Profile[]): Tally {
  const result: Tally = { total: 0, areaSelf: new Map(), areaInclusive: new Map(), self: new Map(), inclusive: new Map() };
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    profile.samples.forEach((id, i) => {
      // A sample's time is the gap to the next one (V8 records the gap before each).
      const us = profile.timeDeltas[i + 1] ?? 0;
      const leaf = byId.get(id)!.callFrame;
      if (areaOf(leaf) === 'idle') return;
      result.total += us;
      add(result.areaSelf, areaOf(leaf), us);
      add(result.self, functionKey(leaf), us);
      const seenAreas = new Set<string>();
      const seenFunctions = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const frame = byId.get(at)!.callFrame;
        if (frame.functionName === '(root)') continue;
        seenAreas.add(areaOf(frame));
        seenFunctions.add(functionKey(frame));
      }
      for (const area of seenAreas) add(result.areaInclusive, area, us);
      for (const key of seenFunctions) add(result.inclusive, key, us);
    });
  }
  return result;
}

function print(title: string, result: Tally, top: number): void {
  const share = (us: number) => `${((100 * us) / result.total).toFixed(1).padStart(5)} %`;
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
  console.log(`\n== ${title}: ${(result.total / 1000).toFixed(0)} ms busy (idle left out)`);
  console.log('area: self, inclusive');
  for (const [area, us] of sorted(result.areaSelf)) console.log(`  ${share(us)}  ${share(result.areaInclusive.get(area) ?? 0)}  ${area}`);
  for (const [area, us] of sorted(result.areaInclusive)) if (!result.areaSelf.has(area)) console.log(`  ${share(0)}  ${share(us)}  ${area}`);
  console.log(`top ${top} functions by self time`);
  for (const [key, us] of sorted(result.self).slice(0, top)) console.log(`  ${share(us)}  ${key}`);
  console.log(`top ${top} functions by inclusive time`);
  for (const [key, us] of sorted(result.inclusive).slice(0, top)) console.log(`  ${share(us)}  ${key}`);
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' } } });
const dir = positionals[0];
if (!dir) {
  console.error('usage: node --import tsx bench/profile-summary.ts DIR [--top N]');
  process.exit(2);
}
const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
const read = (prefix: string) => files.filter((name) => name.startsWith(prefix)).map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Profile);
const main = tally(read('hub-'));
const workers = tally(read('worker-'));
print('hub main thread', main, Number(values.top));
print('worker threads (signature pool)', workers, Number(values.top));
const all = main.total + workers.total;
if (all > 0) console.log(`\nbusy time: main thread ${((100 * main.total) / all).toFixed(1)} %, worker threads ${((100 * workers.total) / all).toFixed(1)} %`);
