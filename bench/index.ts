// `npm run bench -- <name> [--json]`: runs a bench and prints its figures with the machine's conditions.
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { as4Bench } from './as4.ts';
import { consoleBench } from './console.ts';
import { cryptoBench } from './crypto.ts';
import { ebms2Bench } from './ebms2.ts';
import { exchangeBench, exchangeCases } from './exchange.ts';
import type { MshOptions } from './msh.ts';
import { defaultRates, queryBench } from './query.ts';
import { floorBench } from './query-floor.ts';
import { routeBench } from './route.ts';
import { searchBench } from './search.ts';
import { sftpBench, sftpBenchSizes } from './sftp.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    record: { type: 'boolean', default: false },
    // Each bench has its own default: route 5000, as4 and ebms2 3000, search 750000.
    messages: { type: 'string' },
    repeats: { type: 'string', default: '30' },
    rates: { type: 'string' },
    seconds: { type: 'string' },
    payload: { type: 'string', default: '4096' },
    concurrency: { type: 'string', default: '64' },
    protocols: { type: 'string', default: 'rest,soap' },
    'cpu-prof': { type: 'string' },
    mandated: { type: 'boolean', default: false },
    soap: { type: 'boolean', default: false },
    cases: { type: 'string' },
    requesters: { type: 'string', default: '20' },
    size: { type: 'string' },
    profile: { type: 'string', default: '2.0' },
    compare: { type: 'string' },
    rows: { type: 'string' },
    data: { type: 'string' },
  },
});

/** A size such as 1048576, 1M, 1MiB or 1G: binary units. */
function bytesOf(text: string): number {
  const match = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!match) throw new Error(`--size: a number of bytes, or with K, M or G, not ${text}`);
  return Number(match[1]) * 1024 ** ' KMG'.indexOf((match[2] || ' ').toUpperCase());
}

/** The options of the benches of an agency's MSH (as4, ebms2). */
function mshOptions(): MshOptions {
  if (values.compare !== undefined && values.compare !== 'route') throw new Error(`--compare: route, not ${values.compare}`);
  return { json: values.json!, messages: Number(values.messages ?? 3000), concurrency: Number(values.concurrency), payloadBytes: Number(values.payload), compareRoute: values.compare === 'route' };
}

const benches: Record<string, () => Promise<Record<string, unknown>>> = {
  route: () => routeBench({
    json: values.json!,
    messages: Number(values.messages ?? 5000),
    rates: (values.rates ?? '100,200,400').split(',').map(Number),
    seconds: Number(values.seconds ?? 10),
    payloadBytes: Number(values.payload),
    concurrency: Number(values.concurrency),
  }),
  // --cases 4KiB,1MiB,1GiB (default all), --requesters N (default 20), --cpu-prof DIR as for query.
  exchange: () => exchangeBench({
    json: values.json!,
    requesters: Number(values.requesters),
    cases: values.cases ? values.cases.split(',').map((name) => {
      const spec = exchangeCases.find((candidate) => candidate.name === name);
      if (!spec) throw new Error(`--cases: ${exchangeCases.map((candidate) => candidate.name).join(', ')}, not ${name}`);
      return spec;
    }) : exchangeCases,
    ...(values['cpu-prof'] ? { profileDir: values['cpu-prof'] } : {}),
  }),
  // --profile 2.0 (default) or 1.x; --compare route runs the REST route's closed loop in the same run; --size of the one
  // large attachment sent after it (default 1G; 0 for none); --cpu-prof DIR as for query, worker threads included.
  as4: () => {
    if (values.profile !== '2.0' && values.profile !== '1.x') throw new Error(`--profile: 2.0 or 1.x, not ${values.profile}`);
    return as4Bench({
      ...mshOptions(), profile: values.profile, attachmentBytes: values.size ? bytesOf(values.size) : 1024 ** 3,
      ...(values['cpu-prof'] ? { profileDir: values['cpu-prof'] } : {}),
    });
  },
  // --compare route as for as4.
  ebms2: () => ebms2Bench(mshOptions()),
  // --size BYTES[,BYTES] (default 1 MiB and 1 GiB; K, M, G suffixes in binary units), --requesters N (default 20: half
  // SFTP push to a local sshd, half REST pull), --cpu-prof DIR as for query.
  sftp: () => sftpBench({
    json: values.json!,
    requesters: Number(values.requesters),
    sizes: values.size ? values.size.split(',').map(bytesOf) : sftpBenchSizes,
    ...(values['cpu-prof'] ? { profileDir: values['cpu-prof'] } : {}),
  }),
  // --messages (default 750000, about 3 million evidence rows), --repeats per case (default 30).
  search: () => searchBench({ json: values.json!, messages: Number(values.messages ?? 750_000), repeats: Number(values.repeats) }),
  // --rows: evidence rows loaded by swx sample load (default 5,000,000), --repeats per case (default 30); --data DIR
  // keeps the loaded folder, and times one already loaded as it is.
  console: () => consoleBench({ json: values.json!, rows: Number(values.rows ?? 5_000_000), repeats: Number(values.repeats), ...(values.data ? { dataDir: values.data } : {}) }),
  // --seconds: per measured row (default 2).
  crypto: () => cryptoBench({ json: values.json!, seconds: Number(values.seconds ?? 2) }),
  // --rates: one list for every protocol (default REST 100,500,1000 and SOAP 100,200,500); --seconds per rate (default 5);
  // --protocols rest,soap; --cpu-prof DIR: the hub writes a V8 CPU profile there when it stops.
  query: () => queryBench({
    json: values.json!,
    protocols: values.protocols!.split(',').map((protocol) => {
      if (protocol !== 'rest' && protocol !== 'soap') throw new Error(`--protocols: rest or soap, not ${protocol}`);
      return protocol;
    }),
    rates: values.rates ? { rest: values.rates.split(',').map(Number), soap: values.rates.split(',').map(Number) } : defaultRates,
    seconds: Number(values.seconds ?? 5),
    ...(values['cpu-prof'] ? { profileDir: values['cpu-prof'] } : {}),
  }),
  // The query bench's shape with nothing of the hub in it (bench/query-floor.ts): --rates (default 100,500,1000), --seconds
  // (default 5); --mandated adds the signatures and evidence every query requires, --soap the same over SOAP.
  'query-floor': () => floorBench({
    json: values.json!,
    kind: values.soap ? 'soap' : values.mandated ? 'rest' : 'plain',
    rates: (values.rates ?? '100,500,1000').split(',').map(Number),
    seconds: Number(values.seconds ?? 5),
  }),
};

const name = positionals[0];
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--json]`);
  process.exit(2);
}
const result = await benches[name]!();
console.log(values.json ? JSON.stringify(result) : `\n${JSON.stringify(result, null, 2)}`);
// --record keeps the run in bench/results/<name>.jsonl with the commit it measured: the figures' history lives there.
if (values.record) {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
  appendFileSync(new URL(`./results/${name}.jsonl`, import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), commit: dirty ? `${commit}+changes` : commit, ...result })}\n`);
}
process.exit(0);
