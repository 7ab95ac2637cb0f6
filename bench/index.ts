// `npm run bench -- <name> [--json]`: runs a bench and prints its figures with the machine's conditions.
import { parseArgs } from 'node:util';
import { cryptoBench } from './crypto.ts';
import { routeBench } from './route.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    messages: { type: 'string', default: '5000' },
    rates: { type: 'string', default: '100,200,400' },
    seconds: { type: 'string' },
    payload: { type: 'string', default: '4096' },
    concurrency: { type: 'string', default: '64' },
  },
});

const benches: Record<string, () => Promise<Record<string, unknown>>> = {
  route: () => routeBench({
    json: values.json!,
    messages: Number(values.messages),
    rates: values.rates!.split(',').map(Number),
    seconds: Number(values.seconds ?? 10),
    payloadBytes: Number(values.payload),
    concurrency: Number(values.concurrency),
  }),
  // --seconds: per measured row (default 2).
  crypto: () => cryptoBench({ json: values.json!, seconds: Number(values.seconds ?? 2) }),
};

const name = positionals[0];
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--json]`);
  process.exit(2);
}
const result = await benches[name]!();
console.log(values.json ? JSON.stringify(result) : `\n${JSON.stringify(result, null, 2)}`);
process.exit(0);
