// The `swx` command line: every command with a one-line description in `swx --help`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { opsTokenPath, readOpsToken } from '../engine/admin.ts';
import { loadConfig } from '../engine/config.ts';
import { log } from '../engine/log.ts';
import { initPki, issueAgency } from '../engine/pki/index.ts';
import { AgencyClient } from '../connectors/rest/agency.ts';
import { startHub, type Hub } from './hub.ts';
import { checkDelivered, demoDir, sendDemoRound, startDemo, type SentMessage } from './demo.ts';

interface Command { summary: string; usage: string; run(args: string[]): Promise<number> }

const dataOption = { data: { type: 'string' as const, default: process.env.SWX_DATA ?? './data' } };

function adminUrl(): string {
  return process.env.SWX_ADMIN_URL ?? `http://127.0.0.1:${process.env.SWX_OPS_PORT ?? 7480}`;
}

/** The operator token: SWX_ADMIN_TOKEN (or the hub's own SWX_OPS_TOKEN), else the hub's <data>/ops-token. */
function adminToken(dataDir: string): string {
  const token = process.env.SWX_ADMIN_TOKEN || process.env.SWX_OPS_TOKEN || readOpsToken(resolve(dataDir));
  if (!token) throw new Error(`no operator token: ${opsTokenPath(resolve(dataDir))} does not exist; point --data (or SWX_DATA) at the hub's data folder, or set SWX_ADMIN_TOKEN`);
  return token;
}

async function adminRequest(dataDir: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = adminToken(dataDir);
  const response = await fetch(new URL(path, adminUrl()), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).catch((error: Error) => { throw new Error(`cannot reach the hub's operator API at ${adminUrl()} (${error.message}); is the hub running? set SWX_ADMIN_URL`); });
  const answer = await response.json() as Record<string, unknown>;
  if (!response.ok) throw new Error(`${answer.code ?? response.status}: ${answer.detail ?? JSON.stringify(answer)}`);
  return answer;
}

/** The operator API client of one command, with the token of the hub whose data folder is `dataDir`. */
function operator(dataDir: string) {
  return (method: string, path: string, body?: unknown) => adminRequest(dataDir, method, path, body);
}

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((part) => part.trim()).filter(Boolean);
}

/**
 * Resolves on the first SIGINT/SIGTERM; installed before the hub starts so that a signal during start-up still
 * stops it cleanly. Later signals only say that the drain is under way.
 */
function stopSignal(): Promise<void> {
  return new Promise<void>((resolveSignal) => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) { console.error(`${signal}: already stopping, draining in-flight work`); return; }
      stopping = true;
      resolveSignal();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

function agencyCredentials(values: { data: string; as?: string; cert?: string; key?: string; ca?: string }) {
  const dir = values.as ? demoDir(resolve(values.data), values.as) : '';
  const path = (given: string | undefined, file: string) => given ?? join(dir, file);
  if (!values.as && !(values.cert && values.key && values.ca)) throw new Error('name the agency with --as AGENCY (demo credentials) or give --cert, --key and --ca');
  return {
    certPem: readFileSync(path(values.cert, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(path(values.key, 'key.pem'), 'utf8'),
    caPem: readFileSync(path(values.ca, 'ca.pem'), 'utf8'),
  };
}

const messageOptions = {
  ...dataOption,
  as: { type: 'string' as const },
  to: { type: 'string' as const },
  service: { type: 'string' as const },
  action: { type: 'string' as const },
  'content-type': { type: 'string' as const, default: 'application/octet-stream' },
  id: { type: 'string' as const },
  conversation: { type: 'string' as const },
  'ref-to': { type: 'string' as const },
  hub: { type: 'string' as const, default: process.env.SWX_HUB_URL ?? `https://localhost:${process.env.SWX_HTTP_PORT ?? 7443}` },
  cert: { type: 'string' as const },
  key: { type: 'string' as const },
  ca: { type: 'string' as const },
};

function outgoing(args: string[]) {
  const { values, positionals } = parseArgs({ args, options: messageOptions, allowPositionals: true });
  if (!values.to || !values.service || positionals.length !== 1) throw new Error('usage: --as AGENCY --to AGENCY --service SERVICE FILE');
  const client = new AgencyClient(values.hub!, agencyCredentials(values));
  const message = {
    to: values.to, service: values.service, action: values.action, contentType: values['content-type'],
    messageId: values.id, conversationId: values.conversation, refTo: values['ref-to'],
    body: positionals[0] === '-' ? readFileSync(0) : readFileSync(positionals[0]!),
  };
  return { client, message, file: positionals[0]! };
}

const commands: Record<string, Command> = {
  start: {
    summary: 'run the hub (embedded nats-server and chDB unless SWX_NATS_URL / SWX_CLICKHOUSE_URL are set)',
    usage: 'swx start [--data DIR]',
    async run(args) {
      const { values } = parseArgs({ args, options: dataOption });
      const signalled = stopSignal();
      const hub = await startHub(loadConfig(values.data));
      const token = hub.config.http.opsToken ? 'SWX_OPS_TOKEN' : opsTokenPath(hub.config.dataDir);
      console.log(`swx hub: agencies https://${hub.config.http.host}:${hub.agencyPort}, operator http://${hub.config.http.opsHost}:${hub.opsPort} (token: ${token}), NATS ${hub.natsUrl}`);
      await signalled;
      await hub.stop();
      return 0;
    },
  },
  demo: {
    summary: 'run the hub with demo agencies and traffic; --check sends one round, verifies delivery and evidence, and exits',
    usage: 'swx demo [--check] [--data DIR]',
    async run(args) {
      const { values } = parseArgs({ args, options: { ...dataOption, check: { type: 'boolean', default: false } } });
      // The demo prints its own account of what happened; JSON logs only for what goes wrong, unless asked.
      if (!process.env.SWX_LOG_LEVEL) log.level = 'warn';
      const config = loadConfig(values.data);
      const signalled = stopSignal();
      const hub = await startHub(config);
      const demo = await startDemo(hub);
      const stop = async () => { await demo.stop(); await hub.stop(); };
      try {
        const sent = await sendDemoRound(demo, 1);
        const result = await checkDelivered(hub, sent, 60_000);
        report(hub, sent, result);
        if (values.check) {
          await stop();
          console.log(JSON.stringify(summary(hub, sent, result)));
          return result.ok ? 0 : 1;
        }
      } catch (error) {
        await stop();
        throw error;
      }
      const sample = join(config.dataDir, 'demo', 'declaration.json');
      writeFileSync(sample, `${JSON.stringify({ declarationNo: 'AA/BE/13/101/0002', type: 'G1', trader: '12345675', value: 98000, currency: 'TWD' }, null, 2)}\n`);
      console.log([
        '', 'The hub keeps running. Send as an agency from another terminal:',
        `  npx swx send --as CUSTOMS --to BOFT --service customs.declaration --content-type application/json --data ${values.data} ${sample}`,
        `  npx swx evidence list --partner BOFT --data ${values.data}`,
        'Press Ctrl-C to stop (in-flight work is drained).',
      ].join('\n'));
      await signalled;
      await stop();
      return 0;
    },
  },
  send: {
    summary: 'send a signed message to the hub as an agency (mutual TLS + HTTP Message Signatures)',
    usage: 'swx send --as AGENCY --to AGENCY --service SERVICE [--action A] [--content-type T] [--id ID] [--conversation ID] [--ref-to ID] [--hub URL] [--cert PEM --key PEM --ca PEM] FILE',
    async run(args) {
      const { client, message } = outgoing(args);
      try {
        const answer = await client.send(message);
        print(answer.body);
        return answer.status === 202 ? 0 : 1;
      } finally {
        client.close();
      }
    },
  },
  sign: {
    summary: 'print the signed headers for a message and the equivalent curl command',
    usage: 'swx sign (same options as send) FILE',
    async run(args) {
      const { client, message, file } = outgoing(args);
      const { values } = parseArgs({ args, options: messageOptions, allowPositionals: true });
      const headers = client.signedHeaders(message);
      client.close();
      for (const [name, value] of Object.entries(headers)) console.log(`${name}: ${value}`);
      const dir = values.as ? demoDir(resolve(values.data), values.as) : '';
      const creds = values.as ? `--cert ${join(dir, 'cert.pem')} --key ${join(dir, 'key.pem')} --cacert ${join(dir, 'ca.pem')}` : `--cert ${values.cert} --key ${values.key} --cacert ${values.ca}`;
      const flags = Object.entries(headers).map(([name, value]) => `-H '${name}: ${value.replaceAll("'", "'\\''")}'`).join(' \\\n  ');
      console.log(`\ncurl ${creds} \\\n  ${flags} \\\n  --data-binary @${file} ${client.url()}`);
      return 0;
    },
  },
  pki: {
    summary: 'pki init [--agencies A,B] [--alg ecdsa|rsa] | pki issue AGENCY: make the PKI for a deployment or demo',
    usage: 'swx pki init [--data DIR] [--agencies A,B] [--alg ecdsa|rsa] [--hosts h1,h2] | swx pki issue AGENCY [--data DIR] [--alg ecdsa|rsa]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, agencies: { type: 'string' }, alg: { type: 'string' }, hosts: { type: 'string' },
      } });
      const dir = join(resolve(values.data), 'pki');
      const alg = values.alg as 'ecdsa' | 'rsa' | undefined;
      if (positionals[0] === 'init') print(await initPki(dir, { agencies: list(values.agencies), alg, hosts: list(values.hosts) }));
      else if (positionals[0] === 'issue' && positionals[1]) print(await issueAgency(dir, positionals[1], { alg }).then(({ certPath, keyPath, thumbprint }) => ({ certPath, keyPath, thumbprint })));
      else throw new Error(this.usage);
      return 0;
    },
  },
  partner: {
    summary: 'partner add|list|show|history|remove: manage agencies in the registry of a running hub',
    usage: 'swx partner add --id ID --name NAME --cert PEM [--endpoint https://...] | list | show ID | history ID | remove ID [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, id: { type: 'string' }, name: { type: 'string' }, cert: { type: 'string', multiple: true }, endpoint: { type: 'string' },
      } });
      const admin = operator(values.data);
      const [verb, id] = positionals;
      if (verb === 'add') {
        if (!values.id || !values.name || !values.cert) throw new Error(this.usage);
        print(await admin('PUT', `/api/partners/${encodeURIComponent(values.id)}`, {
          name: values.name,
          certificates: values.cert.map((file) => readFileSync(file, 'utf8')),
          ...(values.endpoint ? { endpoint: { protocol: 'rest', url: values.endpoint } } : {}),
        }));
      } else if (verb === 'list') print(await admin('GET', '/api/partners'));
      else if (verb === 'show' && id) print(await admin('GET', `/api/partners/${encodeURIComponent(id)}`));
      else if (verb === 'history' && id) print(await admin('GET', `/api/partners/${encodeURIComponent(id)}/history`));
      else if (verb === 'remove' && id) print(await admin('DELETE', `/api/partners/${encodeURIComponent(id)}`));
      else throw new Error(this.usage);
      return 0;
    },
  },
  service: {
    summary: 'service add|list: which agencies may use a service towards which',
    usage: 'swx service add --id ID --name NAME --from A,B --to C,D [--ttl SECONDS] | list [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, id: { type: 'string' }, name: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, ttl: { type: 'string' },
      } });
      const admin = operator(values.data);
      if (positionals[0] === 'add') {
        if (!values.id || !values.name || !values.from || !values.to) throw new Error(this.usage);
        print(await admin('PUT', `/api/services/${encodeURIComponent(values.id)}`, {
          name: values.name, rules: [{ from: list(values.from), to: list(values.to) }],
          ...(values.ttl ? { ttlSeconds: Number(values.ttl) } : {}),
        }));
      } else if (positionals[0] === 'list') print(await admin('GET', '/api/services'));
      else throw new Error(this.usage);
      return 0;
    },
  },
  dlq: {
    summary: 'dlq list | dlq resend SEQ: dead-lettered messages and operator resend',
    usage: 'swx dlq list | swx dlq resend SEQ [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: dataOption });
      const admin = operator(values.data);
      const [verb, seq] = positionals;
      if (verb === 'list') print(await admin('GET', '/api/dlq'));
      else if (verb === 'resend' && seq) print(await admin('POST', `/api/dlq/${encodeURIComponent(seq)}/resend`));
      else throw new Error(this.usage);
      return 0;
    },
  },
  evidence: {
    summary: 'evidence list [--message ID] [--conversation ID] [--partner ID]: evidence records from ClickHouse',
    usage: 'swx evidence list [--message ID] [--conversation ID] [--partner ID] [--limit N] [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, message: { type: 'string' }, conversation: { type: 'string' }, partner: { type: 'string' }, limit: { type: 'string' },
      } });
      const admin = operator(values.data);
      if (positionals[0] !== 'list') throw new Error(this.usage);
      const query = new URLSearchParams();
      if (values.message) query.set('messageId', values.message);
      if (values.conversation) query.set('conversationId', values.conversation);
      if (values.partner) query.set('partner', values.partner);
      if (values.limit) query.set('limit', values.limit);
      print(await admin('GET', `/api/evidence?${query}`));
      return 0;
    },
  },
};

function report(hub: Hub, sent: SentMessage[], result: { ok: boolean; missingInbox: string[]; missingEvidence: string[] }): void {
  for (const message of sent) {
    const done = !result.missingInbox.includes(message.id) && !result.missingEvidence.includes(message.id);
    console.log(`${done ? 'delivered' : 'PENDING  '}  ${message.from.padEnd(8)} → ${message.to.padEnd(8)} ${message.service.padEnd(24)} ${message.id}`);
  }
  console.log(`\n${sent.length - new Set([...result.missingInbox, ...result.missingEvidence]).size}/${sent.length} delivered and evidenced.`);
  console.log(`Agencies: https://localhost:${hub.agencyPort}/v1/messages · operator API, /metrics, /healthz: http://127.0.0.1:${hub.opsPort} · data: ${hub.config.dataDir}`);
}

function summary(hub: Hub, sent: SentMessage[], result: { ok: boolean; missingInbox: string[]; missingEvidence: string[] }) {
  return {
    ok: result.ok,
    sent: sent.length,
    delivered: sent.length - result.missingInbox.length,
    evidenced: sent.length - result.missingEvidence.length,
    messageIds: sent.map((m) => m.id),
    missingInbox: result.missingInbox,
    missingEvidence: result.missingEvidence,
    dataDir: hub.config.dataDir,
  };
}

function help(): void {
  console.log('swx — exchange hub for signed cross-agency trade data\n\nUsage: swx <command> [options]\n\nCommands:');
  for (const [name, command] of Object.entries(commands)) console.log(`  ${name.padEnd(9)} ${command.summary}`);
  console.log('\nRun `swx <command> --help` for its options. Settings: see README (SWX_* environment variables).');
}

const [name, ...rest] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || name === 'help') {
  help();
} else if (!commands[name]) {
  console.error(`unknown command '${name}'`);
  help();
  process.exitCode = 2;
} else if (rest.includes('--help') || rest.includes('-h')) {
  console.log(`${commands[name].summary}\n\nusage: ${commands[name].usage}`);
} else {
  try {
    process.exitCode = await commands[name].run(rest);
  } catch (error) {
    console.error(`swx ${name}: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
// Every command has finished its own orderly shutdown by now; a stray keep-alive handle must not hold the shell.
process.exit(process.exitCode ?? 0);
