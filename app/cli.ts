// The `swx` command line: every command with a one-line description in `swx --help`.
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { opsTokenPath, readOpsToken } from '../engine/admin.ts';
import { registeredConnectors } from '../engine/connector.ts';
import { loadConfig, publicUrl } from '../engine/config.ts';
import { SwxError } from '../engine/errors.ts';
import { log } from '../engine/log.ts';
import { verifyBundle } from '../engine/evidence-bundle.ts';
import { evidenceStages } from '../engine/evidence.ts';
import { Keyring } from '../engine/keyring.ts';
import type { MessageStatus } from '../engine/status.ts';
import {
  importCertificates, initPki, issuableProfiles, issueCertificate, resignCrl, revokeCertificate, TrustStore,
  type ImportRole, type IssuableProfile, type KeyAlg, type RevocationReason,
} from '../engine/pki/index.ts';
import { AgencyClient, receiptSigned, receiveInbox } from '../connectors/rest/agency.ts';
import { ebms2Settings, endpointFromCpa, otherParty, parseCpa, partnerIdFor, partyOf } from '../connectors/ebms2/index.ts';
import { defaultCrlUrl } from './crl-distribution.ts';
// The hub loads every connector and the stores: imported when a command runs it, so that offline commands
// (verify, sign, pki, evidence verify) start in half the time.
import { sampleQuery } from './demo-data.ts';
import { askDemoQueries, demoDir, pullAgencies, pushInbox, sendDemoRound, startDemo, type AskedQuery, type DemoHub, type SentMessage } from './demo.ts';
import { checkDelivered } from './demo-check.ts';
import { receiveProtocol } from './demo-protocols.ts';
import { operatorApi, type Operator } from './operator.ts';
import { verifyCommand, verifyUsage } from './verify.ts';
import './connectors.ts';
import { prometheusRules } from '../dashboards/alerts.ts';

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

/** A binary download from the operator API (an evidence bundle). */
/**
 * A partner's endpoints from `swx partner add`: a JSON file of them (--endpoints), to which the shorthands add a REST
 * delivery URL (--endpoint) and a query URL over REST or SOAP (--query-endpoint, --query-protocol).
 */
function partnerEndpoints(values: { endpoints?: string; endpoint?: string; 'query-endpoint'?: string; 'query-protocol'?: string }): Record<string, Record<string, unknown>> {
  const endpoints = values.endpoints ? JSON.parse(readFileSync(values.endpoints, 'utf8')) as Record<string, Record<string, unknown>> : {};
  if (values.endpoint) endpoints.rest = { ...endpoints.rest, url: values.endpoint };
  if (values['query-endpoint']) {
    const protocol = values['query-protocol'] ?? 'rest';
    endpoints[protocol] = { ...endpoints[protocol], queryUrl: values['query-endpoint'] };
  }
  return endpoints;
}

/**
 * `swx partner import-cpa`: the other party of an ebMS 2.0 agreement registered as a partner, with the certificates the
 * CPA carries (and any given with --cert) and an ebms2 endpoint read from it. A partner already registered keeps its
 * other endpoints and certificates.
 */
async function importCpa(admin: Operator, file: string, values: { as?: string; party?: string; name?: string; cert?: string[] }, hubPartyIds: () => { id: string; type?: string }[]): Promise<unknown> {
  const cpa = parseCpa(readFileSync(file));
  // Without --party, the party that is not this hub (by its PartyIds in connectors.ebms2.partyIds).
  const party = values.party ? partyOf(cpa, values.party) : otherParty(cpa, hubPartyIds());
  const id = values.as ?? partnerIdFor(party);
  if (!id) throw new Error(`no partner id can be made from PartyId ${party.partyIds[0]!.id}: give one with --as`);
  const fromCpa = Object.values(party.certificates).flatMap((certificate) => (certificate.pem ? [certificate.pem] : []));
  const given = (values.cert ?? []).map((path) => readFileSync(path, 'utf8'));
  const existing = await admin('GET', `/api/partners/${encodeURIComponent(id)}`).catch((error: Error) => {
    if (error.message.startsWith('SWX_NOT_FOUND')) return undefined;
    throw error;
  }) as { name: string; certificates: string[]; endpoints: Record<string, Record<string, unknown> | undefined> } | undefined;
  const certificates = [...new Set([...(existing?.certificates ?? []), ...fromCpa, ...given].map((pem) => pem.trim() + '\n'))];
  if (certificates.length === 0) throw new Error(`CPA ${cpa.cpaid} carries no X.509 certificate for ${values.party ?? party.partyIds[0]!.id}: give its signing certificate with --cert`);
  const now = Date.now();
  if (Date.parse(cpa.end) < now || Date.parse(cpa.start) > now || cpa.status === 'proposed') {
    // Registered all the same (an operator may be preparing an agreement or keeping an old one's partner on record).
    console.error(`swx partner: note: CPA ${cpa.cpaid} is ${cpa.status}, valid from ${cpa.start} to ${cpa.end}`);
  }
  return admin('PUT', `/api/partners/${encodeURIComponent(id)}`, {
    ...existing,
    name: values.name ?? existing?.name ?? party.partyName ?? id,
    certificates,
    // The server trust is the operator's, not the agreement's: a new CPA keeps it.
    endpoints: { ...existing?.endpoints, ebms2: { ...endpointFromCpa(cpa, party), ...(existing?.endpoints.ebms2?.tls ? { tls: existing.endpoints.ebms2.tls } : {}) } },
  });
}

async function adminDownload(dataDir: string, path: string): Promise<Buffer> {
  const response = await fetch(new URL(path, adminUrl()), { headers: { authorization: `Bearer ${adminToken(dataDir)}` } })
    .catch((error: Error) => { throw new Error(`cannot reach the hub's operator API at ${adminUrl()} (${error.message}); is the hub running? set SWX_ADMIN_URL`); });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({})) as Record<string, unknown>;
    throw new Error(`${answer.code ?? response.status}: ${answer.detail ?? response.statusText}`);
  }
  return Buffer.from(await response.arrayBuffer());
}

/** The operator API client of one command, with the token of the hub whose data folder is `dataDir`. */
function operator(dataDir: string): Operator {
  // The token is looked for when a call is made: a usage error is reported as such, not as a missing token.
  return (method, path, body) => operatorApi(adminUrl(), adminToken(dataDir))(method, path, body);
}

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));
const shellQuote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/** list, show ID, history ID and remove ID of a registry collection of the operator API (topics, channels). */
async function registryVerb(admin: Operator, collection: string, verb: string | undefined, id: string | undefined, usage: string): Promise<number> {
  const path = `/api/${collection}${id ? `/${encodeURIComponent(id)}` : ''}`;
  if (verb === 'list' && !id) print(await admin('GET', path));
  else if (verb === 'show' && id) print(await admin('GET', path));
  else if (verb === 'history' && id) print(await admin('GET', `${path}/history`));
  else if (verb === 'remove' && id) print(await admin('DELETE', path));
  else throw new Error(usage);
  return 0;
}

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

function agencyCredentials(values: { data: string; as?: string; cert?: string; key?: string; ca?: string; 'hub-cert'?: string }) {
  const dir = values.as ? demoDir(resolve(values.data), values.as) : '';
  const path = (given: string | undefined, file: string) => given ?? join(dir, file);
  if (!values.as && !(values.cert && values.key && values.ca)) throw new Error('name the agency with --as AGENCY (demo credentials) or give --cert, --key and --ca');
  const hubCert = values['hub-cert'] ?? (values.as ? join(dir, 'hub-sign.pem') : undefined);
  return {
    certPem: readFileSync(path(values.cert, 'cert.pem'), 'utf8'),
    keyPem: readFileSync(path(values.key, 'key.pem'), 'utf8'),
    caPem: readFileSync(path(values.ca, 'ca.pem'), 'utf8'),
    hubSignCertPem: hubCert && existsSync(hubCert) ? readFileSync(hubCert, 'utf8') : undefined,
  };
}

/** Who an agency command acts as and which hub it asks: shared by send, sign and status. */
const agencyOptions = {
  ...dataOption,
  as: { type: 'string' as const },
  hub: { type: 'string' as const, default: process.env.SWX_HUB_URL ?? `https://localhost:${process.env.SWX_HTTP_PORT ?? 7443}` },
  cert: { type: 'string' as const },
  key: { type: 'string' as const },
  ca: { type: 'string' as const },
  'hub-cert': { type: 'string' as const },
};

const messageOptions = {
  ...agencyOptions,
  to: { type: 'string' as const },
  service: { type: 'string' as const },
  action: { type: 'string' as const },
  'content-type': { type: 'string' as const, default: 'application/octet-stream' },
  id: { type: 'string' as const },
  conversation: { type: 'string' as const },
  'ref-to': { type: 'string' as const },
  query: { type: 'string' as const },
  provider: { type: 'string' as const },
};

const agencyUsage = '[--hub URL] [--cert PEM --key PEM --ca PEM] [--hub-cert PEM (the hub signing certificate answers are checked against)]';

const sendUsage = [
  'swx send --as AGENCY [--to AGENCY] --service SERVICE [--action A] [--content-type T] [--id ID] [--conversation ID] [--ref-to ID] FILE',
  '  (no --to with --service notify.<topic> or exchange.<channel>: the message reaches every receiver or requester)',
  'swx send --as AGENCY --query DATASET [--provider AGENCY] [--id ID] NAME=VALUE...',
  `  common: ${agencyUsage}`,
].join('\n');

/** What `swx send` and `swx sign` were asked to send: a message (FILE) or a query (--query DATASET NAME=VALUE...). */
function outgoing(args: string[]) {
  const { values, positionals } = parseArgs({ args, options: messageOptions, allowPositionals: true });
  const credentials = agencyCredentials(values);
  const client = new AgencyClient(values.hub!, credentials, { hubSignCertPem: credentials.hubSignCertPem });
  if (values.query) {
    const keys: Record<string, string> = {};
    for (const pair of positionals) {
      const at = pair.indexOf('=');
      if (at < 1) throw new Error(`query keys are NAME=VALUE, not ${JSON.stringify(pair)}\n${sendUsage}`);
      keys[pair.slice(0, at)] = pair.slice(at + 1);
    }
    return { client, query: { dataset: values.query, keys, options: { provider: values.provider, queryId: values.id } } } as const;
  }
  if (!values.service || positionals.length !== 1) throw new Error(sendUsage);
  const message = {
    ...(values.to ? { to: values.to } : {}), service: values.service, action: values.action, contentType: values['content-type'],
    messageId: values.id, conversationId: values.conversation, refTo: values['ref-to'],
    body: positionals[0] === '-' ? readFileSync(0) : readFileSync(positionals[0]!),
  };
  return { client, message, file: positionals[0]! } as const;
}

/** `swx pki <verb>`: each verb works on <data>/pki with the folder's settings (revocation, CRL distribution point). */
async function pkiCommand(values: Record<string, string | boolean | undefined>, positionals: string[], usage: string): Promise<number> {
  const text = (name: string) => values[name] as string | undefined;
  const config = loadConfig(text('data'));
  const dir = join(config.dataDir, 'pki');
  const crlUrl = config.crlUrl ?? defaultCrlUrl(config.http.opsPort);
  const alg = text('alg') as KeyAlg | undefined;
  const [verb, subject] = positionals;
  if (verb === 'init') {
    print(await initPki(dir, { agencies: list(text('agencies')), alg, hosts: list(text('hosts')), crlUrl }));
  } else if (verb === 'issue' && subject) {
    const credential = await issueCertificate(dir, subject, {
      profile: text('profile') as IssuableProfile | undefined, alg, hosts: list(text('hosts')), crlUrl, renew: values.renew === true,
      ...(text('days') !== undefined ? { validityDays: Number(text('days')) } : {}),
    });
    const cert = new X509Certificate(credential.certPem);
    print({ certPath: credential.certPath, keyPath: credential.keyPath, thumbprint: credential.thumbprint, serial: cert.serialNumber.toLowerCase(), notAfter: new Date(cert.validTo).toISOString() });
  } else if (verb === 'revoke' && [subject, text('serial'), text('cert')].filter(Boolean).length === 1) {
    const target = subject ? { agency: subject } : text('serial') ? { serial: text('serial')! } : { certPem: readFileSync(text('cert')!, 'utf8') };
    print(await revokeCertificate(dir, target, (text('reason') ?? 'unspecified') as RevocationReason));
  } else if (verb === 'import' && subject && [values.anchor, values.intermediate, text('agency')].filter(Boolean).length === 1) {
    const role: ImportRole = values.anchor ? { as: 'anchor' } : values.intermediate ? { as: 'intermediate' } : { as: 'agency', id: text('agency')! };
    print(await importCertificates(dir, readFileSync(subject, 'utf8'), role, config.revocation));
  } else if (verb === 'crl') {
    const trust = await TrustStore.open(dir, config.revocation);
    if (values.refresh) {
      await resignCrl(dir);
      await trust.reload();
      await trust.revocation.refreshAll();
    }
    print({ distributionPoint: crlUrl, crls: trust.crlStatus() });
  } else {
    throw new Error(usage);
  }
  return 0;
}

const commands: Record<string, Command> = {
  start: {
    summary: 'run the hub (embedded nats-server and chDB unless SWX_NATS_URL / SWX_CLICKHOUSE_URL are set)',
    usage: 'swx start [--data DIR]',
    async run(args) {
      const { values } = parseArgs({ args, options: dataOption });
      const signalled = stopSignal();
      const abort = new AbortController();
      void signalled.then(() => abort.abort());
      const { startHub } = await import('./hub.ts');
      const hub = await startHub(loadConfig(values.data), { abort: abort.signal }).catch((error: unknown) => {
        if (!abort.signal.aborted) throw error;
        console.error('swx hub: stopped while starting');
        return undefined;
      });
      if (!hub) return 1;
      const token = hub.config.http.opsToken ? 'SWX_OPS_TOKEN' : opsTokenPath(hub.config.dataDir);
      console.log(`swx hub: agencies https://${hub.config.http.host}:${hub.agencyPort}, operator http://${hub.config.http.opsHost}:${hub.opsPort} (token: ${token}), console https://${hub.config.console.host}:${hub.consolePort}, NATS ${hub.natsUrl}${hub.listening.map((line) => `, ${line}`).join('')}`);
      await signalled;
      await hub.stop();
      return 0;
    },
  },
  demo: {
    summary: 'run the hub with demo agencies (in a process of their own) and traffic; --check sends one round, verifies delivery and evidence, and exits',
    usage: 'swx demo [--check] [--data DIR]',
    async run(args) {
      const { values } = parseArgs({ args, options: { ...dataOption, check: { type: 'boolean', default: false } } });
      // The demo prints its own account of what happened; JSON logs only for what goes wrong, unless asked.
      if (!process.env.SWX_LOG_LEVEL) log.level = 'warn';
      const config = loadConfig(values.data);
      const signalled = stopSignal();
      const demo = await startDemo(config);
      console.log(`Console: ${demo.console.url} (sign in as ${demo.console.user}, password ${demo.console.password}; CA certificate ${join(config.dataDir, 'pki', 'ca', 'cert.pem')})`);
      try {
        const sent = await sendDemoRound(demo, 1);
        const asked = await askDemoQueries(demo, 1);
        const result = await checkDelivered(demo.hub, sent, asked, 60_000);
        report(demo.hub, sent, asked, result);
        if (values.check) {
          await demo.stop();
          console.log(JSON.stringify(summary(demo.hub, sent, asked, result)));
          return result.ok ? 0 : 1;
        }
      } catch (error) {
        await demo.stop();
        throw error;
      }
      const sample = join(config.dataDir, 'demo', 'declaration.json');
      writeFileSync(sample, `${JSON.stringify({ declarationNo: 'AA/BE/13/101/00002', type: 'G1', trader: '12345675', value: 98000, currency: 'TWD' }, null, 2)}\n`);
      const alert = join(config.dataDir, 'demo', 'alert.json');
      writeFileSync(alert, `${JSON.stringify({ case: 'FISH-0099', product: 'frozen squid', origin: 'AR', finding: 'cadmium 1.8 mg/kg' }, null, 2)}\n`);
      console.log([
        '', 'The hub keeps running. Send as an agency from another terminal:',
        `  npx swx send --as CUSTOMS --to BOFT --service customs.declaration --content-type application/json --data ${values.data} ${sample}`,
        `  npx swx send --as BOFT --query import-declaration-sea --data ${values.data} declarationNo=${sampleQuery('import-declaration-sea', 2)[1]!.declarationNo}`,
        `  npx swx send --as TFDA --service notify.fishery-safety --content-type application/json --data ${values.data} ${alert}   (reaches BSMI and FA)`,
        `  npx swx topic list --data ${values.data}; npx swx channel list --data ${values.data}`,
        `  npx swx evidence list --partner BOFT --data ${values.data}`,
        `  SOAP clients: WSDL at ${publicUrl(config, demo.hub.agencyPort)}/ws/query/<dataset>?wsdl (credentials in ${join(config.dataDir, 'demo', '<AGENCY>')})`,
        `  sftp -i ${join(values.data, 'demo', 'MPB', 'id_ed25519')} -o UserKnownHostsFile=${join(values.data, 'demo', 'known_hosts')} -P ${demo.sftp.port} MPB@localhost   (host key ${demo.sftp.fingerprint}; also CUSTOMS, FIA, ANWS)`,
        ...(receiveProtocol('TRADEVAN') === 'sftp-push' ? [`  ls ${pushInbox(config.dataDir, 'TRADEVAN')}   (what the hub pushed over SFTP to Trade-Van's own server; BOE's likewise)`] : []),
        'Press Ctrl-C to stop (in-flight work is drained).',
      ].join('\n'));
      const exited = await Promise.race([signalled.then(() => undefined), demo.exited]);
      if (exited) console.error(`${exited}; stopping the demo`);
      await demo.stop();
      return exited ? 1 : 0;
    },
  },
  'demo-agencies': {
    summary: 'the demo agencies\' receivers, inbox collectors and providers, in their own process (started by swx demo); prints their ports',
    usage: 'swx demo-agencies --hub URL --sftp-port PORT [--data DIR]   (after swx demo issued their credentials in <DIR>/demo/<AGENCY>/)',
    async run(args) {
      const { values } = parseArgs({ args, options: { ...dataOption, hub: { type: 'string' }, 'sftp-port': { type: 'string' } } });
      if (!values.hub || !values['sftp-port']) throw new Error(`the hub's agency URL and SFTP port are needed for the agencies that collect from their inbox: give --hub and --sftp-port\n${this.usage}`);
      const signalled = stopSignal();
      const { startDemoAgencies } = await import('./demo-agencies.ts');
      const agencies = await startDemoAgencies(resolve(values.data), values.hub, Number(values['sftp-port']));
      console.log(JSON.stringify({ endpoints: agencies.endpoints }));
      await signalled;
      await agencies.stop();
      return 0;
    },
  },
  send: {
    summary: 'send a signed message or ask a query as an agency (mutual TLS + HTTP Message Signatures)',
    usage: sendUsage,
    async run(args) {
      const request = outgoing(args);
      try {
        if (request.query) {
          const { dataset, keys, options } = request.query;
          const answer = await request.client.query(dataset, keys, options);
          print(answer.body);
          if (answer.status === 200 && !answer.signed) console.error('the answer\'s signature was not checked: give --hub-cert (the hub signing certificate)');
          return answer.status === 200 ? 0 : 1;
        }
        const answer = await request.client.send(request.message);
        print(answer.body);
        if (answer.status === 202 && !answer.signed) console.error('the receipt\'s signature was not checked: give --hub-cert (the hub signing certificate)');
        return answer.status === 202 ? 0 : 1;
      } finally {
        request.client.close();
      }
    },
  },
  status: {
    summary: 'what became of a message an agency sent: each receiver\'s state and signed receipt; exit 0 only when all delivered',
    usage: `swx status ID --as AGENCY [--from AGENCY (the sender, when asking as one of its receivers)] ${agencyUsage}`,
    async run(args) {
      const { values, positionals } = parseArgs({ args, options: { ...agencyOptions, from: { type: 'string' } }, allowPositionals: true });
      if (positionals.length !== 1) throw new Error(commands.status!.usage);
      const id = positionals[0]!;
      const credentials = agencyCredentials(values);
      const client = new AgencyClient(values.hub!, credentials, { hubSignCertPem: credentials.hubSignCertPem });
      try {
        const answer = await client.status(id, { from: values.from });
        print(answer.body);
        if (answer.status !== 200) return 1;
        if (!answer.signed) console.error('the answer\'s signature was not checked: give --hub-cert (the hub signing certificate)');
        const status = answer.body as unknown as MessageStatus;
        if (!status.archived) console.error(`${id}: accepted, not archived yet; ask again shortly`);
        let delivered = status.state === 'accepted' && status.receivers.length > 0;
        const verifies = 'receipt signature verifies';
        const committed = 'committed to its MQ queue manager (MQ gives no signed receipt)';
        for (const receiver of status.receivers) {
          // An MQ delivery's acknowledgement is its queue manager's commit, which the hub evidences: there is no signature to check.
          const receipt = receiver.receipt && (!receiver.receipt.signature ? committed : receiptSigned(receiver.receipt, id) ? verifies : 'receipt signature does NOT verify');
          console.error(`${receiver.to}: ${receiver.state}${receiver.code ? ` (${receiver.code})` : ''}${receipt ? `, ${receipt}` : ''}`);
          delivered &&= (receiver.state === 'delivered' || receiver.state === 'redelivered') && (receipt === verifies || receipt === committed);
        }
        return delivered ? 0 : 1;
      } finally {
        client.close();
      }
    },
  },
  sign: {
    summary: 'print the signed headers for a message or query and the equivalent curl command',
    usage: 'swx sign (same options as send) FILE | NAME=VALUE...',
    async run(args) {
      const request = outgoing(args);
      const { values } = parseArgs({ args, options: messageOptions, allowPositionals: true });
      const signed = request.query
        ? request.client.signedQuery(request.query.dataset, request.query.keys, request.query.options)
        : { url: request.client.url(), headers: request.client.signedHeaders(request.message), body: undefined };
      request.client.close();
      for (const [name, value] of Object.entries(signed.headers)) console.log(`${name}: ${value}`);
      const dir = values.as ? demoDir(resolve(values.data), values.as) : '';
      const creds = values.as ? `--cert ${join(dir, 'cert.pem')} --key ${join(dir, 'key.pem')} --cacert ${join(dir, 'ca.pem')}` : `--cert ${values.cert} --key ${values.key} --cacert ${values.ca}`;
      const flags = Object.entries(signed.headers).map(([name, value]) => `-H ${shellQuote(`${name}: ${value}`)}`).join(' \\\n  ');
      // A query's body is part of what is signed: curl must send exactly these bytes.
      const data = signed.body ? `--data-binary ${shellQuote(signed.body.toString('utf8'))}` : `--data-binary @${request.file}`;
      console.log(`\ncurl ${creds} \\\n  ${flags} \\\n  ${data} ${signed.url}`);
      return 0;
    },
  },
  receive: {
    summary: 'collect an agency\'s deliveries from its inbox (it receives by pull): store each, checked, then acknowledge it',
    usage: [
      'swx receive --as AGENCY [--out DIR] [--wait SECONDS] [--max N] [--once] [--hub URL] [--cert PEM --key PEM --ca PEM] [--hub-cert PEM]',
      '  stores each message as DIR/<id>.bin and DIR/<id>.json (default DIR ./inbox), its SHA-256 and the hub\'s signature',
      '  checked, and acknowledges it once written; prints one JSON line per message stored. Runs until Ctrl-C; --once stops',
      '  when the inbox is empty (after waiting up to --wait, default 20, for the first).',
    ].join('\n'),
    async run(args) {
      const { values } = parseArgs({ args, options: {
        ...messageOptions, out: { type: 'string', default: 'inbox' }, wait: { type: 'string', default: '20' }, max: { type: 'string' }, once: { type: 'boolean', default: false },
      } });
      const credentials = agencyCredentials(values);
      if (!credentials.hubSignCertPem) throw new Error(`the hub's signing certificate is needed to check what the inbox answers: give --hub-cert\n${this.usage}`);
      const client = new AgencyClient(values.hub!, credentials, { hubSignCertPem: credentials.hubSignCertPem });
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await receiveInbox(client, {
          inboxDir: resolve(values.out!), wait: Number(values.wait), ...(values.max ? { max: Number(values.max) } : {}), once: values.once, signal: stop.signal,
          onMessage: (entry) => console.log(JSON.stringify(entry)),
          onError: (error) => console.error(`the inbox could not be read or acknowledged (${error.message}); trying again in 5 s`),
        });
        for (const failure of result.failed) console.error(`${failure.id}: not acknowledged: ${failure.error}`);
        return result.failed.length > 0 ? 1 : 0;
      } finally {
        client.close();
      }
    },
  },
  pki: {
    summary: 'pki init|issue|revoke|import|crl: the deployment PKI: certificates, revocation, trusted outside CAs',
    usage: [
      'swx pki <init|issue|revoke|import|crl> [--data DIR] ...   (works on <DIR>/pki; a hub running there applies changes within seconds)',
      '',
      '  init [--agencies A,B] [--alg ecdsa|rsa] [--hosts h1,h2]',
      '      root CA, hub signing/TLS/TSA certificates, agency certificates and a CRL; existing files are kept',
      '  issue NAME [--profile agency|signing|tls-client|tls-server|tsa] [--alg ecdsa|rsa] [--days N] [--hosts h1,h2] [--renew]',
      '      a certificate from the hub CA with the CRL distribution point SWX_CRL_URL, in pki/agencies/NAME (agency profile)',
      '      or pki/issued/PROFILE/NAME; --renew replaces an existing one (the old files move to retired/SERIAL/; revoke the',
      '      old serial if it must stop working). Profiles:',
      ...Object.entries(issuableProfiles).map(([profile, what]) => `        ${profile.padEnd(11)} ${what}`),
      '  revoke AGENCY | --serial HEX | --cert FILE [--reason unspecified|keyCompromise|cACompromise|affiliationChanged|',
      '         superseded|cessationOfOperation|certificateHold|privilegeWithdrawn|aACompromise]',
      '      adds the certificate to the CA\'s CRL and re-signs it; the hub then refuses it with 401 SWX_CERT_REVOKED',
      '  import FILE --anchor | --intermediate | --agency ID',
      '      --anchor: trust an outside CA (every certificate in FILE must be a CA certificate valid now)',
      '      --intermediate: an outside intermediate CA; it must chain to a trusted anchor and not be revoked',
      '      --agency ID: an agency certificate from an outside CA (FILE: the certificate, then its chain), validated for',
      '      signing or TLS client use and written to pki/partners/ID/cert.pem for `swx partner add --cert`',
      '  crl [--refresh]',
      '      the hub CA\'s CRL (number, this and next update, entries) and the outside CRLs in use with their freshness;',
      '      --refresh re-signs the hub CRL and fetches every outside CRL again',
    ].join('\n'),
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, agencies: { type: 'string' }, alg: { type: 'string' }, hosts: { type: 'string' }, profile: { type: 'string' },
        days: { type: 'string' }, renew: { type: 'boolean' }, serial: { type: 'string' }, cert: { type: 'string' }, reason: { type: 'string' },
        anchor: { type: 'boolean' }, intermediate: { type: 'boolean' }, agency: { type: 'string' }, refresh: { type: 'boolean' },
      } });
      // The command prints its own JSON result (CRL freshness and errors included) on stdout; logs only when asked.
      if (!process.env.SWX_LOG_LEVEL) log.level = 'silent';
      return pkiCommand(values, positionals, this.usage).catch((error) => {
        // The stable code leads the message, as in the hub's replies (SWX_CERT_USAGE: ...).
        throw error instanceof SwxError ? new Error(`${error.code}: ${error.message}`) : error;
      });
    },
  },
  partner: {
    summary: 'partner add|list|show|history|remove: manage agencies in the registry of a running hub',
    usage: 'swx partner add --id ID --name NAME --cert PEM [--endpoint https://...] [--query-endpoint https://... [--query-protocol rest|soap]] [--endpoints FILE.json] [--prefer SERVICE=PROTOCOL]... [--receive push|pull] | list | show ID | history ID | remove ID\n'
      + '  | test ID   (tries each endpoint as deliveries reach it, no message sent; exit 1 when one fails)\n'
      + '  | import-cpa CPA.xml [--party PARTYID] [--as ID] [--name NAME] [--cert PEM]...\n'
      + '  | ssh-key add ID FILE.pub | ssh-key list ID | ssh-key remove ID FINGERPRINT   (the keys the agency logs in with over SFTP)   [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, id: { type: 'string' }, name: { type: 'string' }, cert: { type: 'string', multiple: true }, endpoint: { type: 'string' },
        'query-endpoint': { type: 'string' }, 'query-protocol': { type: 'string', default: 'rest' },
        endpoints: { type: 'string' }, prefer: { type: 'string', multiple: true }, receive: { type: 'string' },
        as: { type: 'string' }, party: { type: 'string' },
      } });
      const admin = operator(values.data);
      const [verb, id] = positionals;
      if (verb === 'ssh-key') {
        const [, action, partner, subject] = positionals;
        const path = `/api/partners/${encodeURIComponent(partner ?? '')}/ssh-keys`;
        if (action === 'add' && partner && subject) print(await admin('POST', path, { key: readFileSync(subject, 'utf8') }));
        else if (action === 'list' && partner && !subject) print(await admin('GET', path));
        else if (action === 'remove' && partner && subject) print(await admin('DELETE', `${path}/${encodeURIComponent(subject)}`));
        else throw new Error(this.usage);
        return 0;
      }
      if (verb === 'import-cpa') {
        if (!id) throw new Error(this.usage);
        const hubPartyIds = () => ebms2Settings.parse(loadConfig(values.data).connectors.ebms2 ?? {}).partyIds;
        print(await importCpa(admin, id, values, hubPartyIds).catch((error) => {
          throw error instanceof SwxError ? new Error(`${error.code}: ${error.message}`) : error;
        }));
      } else if (verb === 'add') {
        if (!values.id || !values.name || !values.cert) throw new Error(this.usage);
        print(await admin('PUT', `/api/partners/${encodeURIComponent(values.id)}`, {
          name: values.name,
          certificates: values.cert.map((file) => readFileSync(file, 'utf8')),
          endpoints: partnerEndpoints(values),
          preferred: Object.fromEntries((values.prefer ?? []).map((pair) => pair.split('=', 2))),
          ...(values.receive ? { receive: values.receive } : {}),
        }));
      } else if (verb === 'list') print(await admin('GET', '/api/partners'));
      else if (verb === 'show' && id) print(await admin('GET', `/api/partners/${encodeURIComponent(id)}`));
      else if (verb === 'history' && id) print(await admin('GET', `/api/partners/${encodeURIComponent(id)}/history`));
      else if (verb === 'remove' && id) print(await admin('DELETE', `/api/partners/${encodeURIComponent(id)}`));
      else if (verb === 'test' && id) {
        const tested = await admin('POST', `/api/partners/${encodeURIComponent(id)}/test`) as { results: { ok: boolean }[] };
        print(tested);
        return tested.results.every((result) => result.ok) ? 0 : 1;
      } else throw new Error(this.usage);
      return 0;
    },
  },
  connectors: {
    summary: 'connectors: the protocols this hub speaks, with their settings and partner endpoint fields',
    usage: 'swx connectors',
    run() {
      print(registeredConnectors().map((connector) => ({
        protocol: connector.protocol,
        summary: connector.summary,
        settings: z.toJSONSchema(connector.settings, { io: 'input' }),
        endpoint: z.toJSONSchema(connector.endpoint, { io: 'input' }),
      })));
      return Promise.resolve(0);
    },
  },
  catalogue: {
    summary: 'catalogue list|show|history|put|remove: the query datasets and who may ask whom (the access matrix)',
    usage: 'swx catalogue list | show ID | history ID | put FILE.json | remove ID [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: dataOption });
      const admin = operator(values.data);
      const [verb, subject] = positionals;
      const path = (id: string) => `/api/catalogue/${encodeURIComponent(id)}`;
      if (verb === 'list') print(await admin('GET', '/api/catalogue'));
      else if (verb === 'show' && subject) print(await admin('GET', path(subject)));
      else if (verb === 'history' && subject) print(await admin('GET', `${path(subject)}/history`));
      else if (verb === 'remove' && subject) print(await admin('DELETE', path(subject)));
      else if (verb === 'put' && subject) {
        const dataset = JSON.parse(readFileSync(subject, 'utf8')) as { id?: unknown };
        if (typeof dataset.id !== 'string') throw new Error(`${subject} must hold a dataset with its "id"`);
        print(await admin('PUT', path(dataset.id), dataset));
      } else throw new Error(this.usage);
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
  topic: {
    summary: 'topic add|list|show|history|remove: alert notification topics (Table 2), their notifiers and receivers',
    usage: 'swx topic add --id ID --name NAME [--name-zh NAME] --notifiers A,B --receivers C,D [--two-way] [--ttl SECONDS] | list | show ID | history ID | remove ID [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, id: { type: 'string' }, name: { type: 'string' }, 'name-zh': { type: 'string' }, notifiers: { type: 'string' },
        receivers: { type: 'string' }, 'two-way': { type: 'boolean', default: false }, ttl: { type: 'string' },
      } });
      const admin = operator(values.data);
      const [verb, id] = positionals;
      if (verb === 'add') {
        if (!values.id || !values.name || !values.notifiers || !values.receivers) throw new Error(this.usage);
        print(await admin('PUT', `/api/topics/${encodeURIComponent(values.id)}`, {
          name: values.name, ...(values['name-zh'] ? { nameZh: values['name-zh'] } : {}),
          notifiers: list(values.notifiers), receivers: list(values.receivers), twoWay: values['two-way'],
          ...(values.ttl ? { ttlSeconds: Number(values.ttl) } : {}),
        }));
      } else return registryVerb(admin, 'topics', verb, id, this.usage);
      return 0;
    },
  },
  channel: {
    summary: 'channel add|list|show|history|remove|join|leave|resend: bulk data exchange channels (Table 3), providers and requesters',
    usage: 'swx channel add --id ID --name NAME [--name-zh NAME] --dataset TEXT --providers A,B [--requesters C,D] [--ttl SECONDS] | list | show ID | history ID | remove ID\n'
      + '  | join ID AGENCY | leave ID AGENCY | resend ID --to AGENCY --since ISO-TIME   [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, id: { type: 'string' }, name: { type: 'string' }, 'name-zh': { type: 'string' }, dataset: { type: 'string' },
        providers: { type: 'string' }, requesters: { type: 'string' }, ttl: { type: 'string' }, to: { type: 'string' }, since: { type: 'string' },
      } });
      const admin = operator(values.data);
      const [verb, id, agency] = positionals;
      const path = (channel: string) => `/api/channels/${encodeURIComponent(channel)}`;
      if (verb === 'add') {
        if (!values.id || !values.name || !values.dataset || !values.providers) throw new Error(this.usage);
        print(await admin('PUT', path(values.id), {
          name: values.name, ...(values['name-zh'] ? { nameZh: values['name-zh'] } : {}), dataset: values.dataset,
          providers: list(values.providers), requesters: list(values.requesters),
          ...(values.ttl ? { ttlSeconds: Number(values.ttl) } : {}),
        }));
      } else if ((verb === 'join' || verb === 'leave') && id && agency) {
        print(await admin(verb === 'join' ? 'PUT' : 'DELETE', `${path(id)}/requesters/${encodeURIComponent(agency)}`));
      } else if (verb === 'resend' && id) {
        if (!values.to || !values.since) throw new Error(this.usage);
        print(await admin('POST', `${path(id)}/resend`, { requester: values.to, since: values.since }));
      } else return registryVerb(admin, 'channels', verb, id, this.usage);
      return 0;
    },
  },
  keys: {
    summary: 'keys rotate --keyring FILE [--id ID]: add an AES-256-GCM key for evidence at rest and make it current (creates the file)',
    usage: 'swx keys rotate --keyring FILE [--id ID]   then restart the hub; older keys stay in the file for reading',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { keyring: { type: 'string' }, id: { type: 'string' } } });
      if (positionals[0] !== 'rotate' || !values.keyring) throw new Error(this.usage);
      const id = Keyring.rotate(values.keyring, values.id);
      console.log(`${values.keyring}: key ${id} is now current; restart the hub (SWX_KEYRING=${values.keyring}) to seal new evidence with it`);
      return 0;
    },
  },
  messages: {
    summary: 'messages search [filters] | messages timeline ID: find messages by any id, partner, service, protocol, state and time; one message\'s life',
    usage: [
      'swx messages search [--key ID] [--key-kind message|conversation|ref_to|file|sha256] [--partner P] [--service S] [--protocol P] [--state S] [--since T] [--until T] [--limit N] [--cursor C] [--data DIR]',
      'swx messages timeline ID [--from SENDER] [--data DIR]',
    ].join('\n'),
    async run(args) {
      const names = ['key', 'key-kind', 'partner', 'sender', 'receiver', 'service', 'protocol', 'state', 'since', 'until', 'limit', 'cursor', 'from'] as const;
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...dataOption, ...Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])) } });
      const query = (keys: readonly string[]) => new URLSearchParams(keys.flatMap((name) => {
        const value = (values as Record<string, string | undefined>)[name];
        return value === undefined ? [] : [[name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), value]];
      })).toString();
      const [verb, id] = positionals;
      if (verb === 'search') print(await operator(values.data)('GET', `/api/messages?${query(names.filter((name) => name !== 'from'))}`));
      else if (verb === 'timeline' && id) print(await operator(values.data)('GET', `/api/messages/${encodeURIComponent(id)}/timeline?${query(['from'])}`));
      else throw new Error(this.usage);
      return 0;
    },
  },
  stats: {
    summary: 'stats traffic|trend|latency|errors|top-talkers [--since T] [--until T] [--grain G] [--by D,D] [--side S] [--limit N]: statistics from the rollups',
    usage: 'swx stats traffic|trend|latency|errors|top-talkers [--since T] [--until T] [--grain hour|day|month|year] [--by service,protocol,sender,receiver,stage,code] [--side sender|receiver] [--limit N] [--data DIR]',
    async run(args) {
      const names = ['since', 'until', 'grain', 'by', 'side', 'limit'] as const;
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...dataOption, ...Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])) } });
      const [panel] = positionals;
      if (!panel || !['traffic', 'trend', 'latency', 'errors', 'top-talkers'].includes(panel)) throw new Error(this.usage);
      const query = new URLSearchParams(names.flatMap((name) => ((values as Record<string, string | undefined>)[name] === undefined ? [] : [[name, (values as Record<string, string>)[name]!]])));
      print(await operator(values.data)('GET', `/api/stats/${panel}?${query}`));
      return 0;
    },
  },
  sample: {
    summary: 'sample load --messages N [--from DATE]: write a realistic year of traffic into the store (stop the hub first when its store is embedded)',
    usage: 'swx sample load --messages N [--from YYYY-MM-DD] [--seed N] [--data DIR]',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...dataOption, messages: { type: 'string' }, from: { type: 'string' }, seed: { type: 'string' } } });
      const messages = Number(values.messages);
      const from = values.from === undefined ? undefined : new Date(values.from);
      if (positionals[0] !== 'load' || !Number.isSafeInteger(messages) || messages < 1 || (from && Number.isNaN(from.getTime()))) throw new Error(this.usage);
      const config = loadConfig(values.data);
      const { openStore } = await import('../engine/store/index.ts');
      const { loadSample } = await import('./sample-load.ts');
      const store = await openStore({ dataDir: join(config.dataDir, 'chdb'), url: config.clickhouse.url, database: config.clickhouse.database, username: config.clickhouse.username, password: config.clickhouse.password });
      try {
        print(await loadSample(store, { messages, ...(from ? { from } : {}), ...(values.seed ? { seed: Number(values.seed) } : {}) }));
      } finally {
        await store.close();
      }
      return 0;
    },
  },
  alerts: {
    summary: 'alerts list | alerts rules: the alerts that hold now; a Prometheus alerting-rule file with this hub\'s thresholds',
    usage: 'swx alerts list [--data DIR] | swx alerts rules [--data DIR] > swx-alerts.yml',
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: dataOption });
      if (positionals[0] === 'rules') process.stdout.write(prometheusRules(loadConfig(values.data).alerts));
      else if (positionals[0] === 'list') print(await operator(values.data)('GET', '/api/alerts'));
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
  user: {
    summary: 'user add|passwd|list|disable|enable|roles|cert|token: console users, their roles, sign-in certificates and API tokens',
    usage: [
      'swx user add NAME --role ROLE[,ROLE…] [--password P] [--data DIR]   without --password one is made and printed once',
      'swx user passwd NAME [--password P]',
      'swx user list | swx user show NAME | swx user history NAME',
      'swx user disable NAME --reason TEXT | swx user enable NAME',
      'swx user roles NAME --role ROLE[,ROLE…]',
      'swx user cert NAME FILE.pem   a TLS client certificate (from the deployment\'s PKI) the user signs in with',
      'swx user token add NAME [--label TEXT] | swx user token list NAME | swx user token revoke NAME ID',
      'ROLE is admin, operator, auditor or analyst. Through the operator API: the first admin is added on the hub\'s machine with its operator token.',
    ].join('\n'),
    async run(args) {
      const { values, positionals } = parseArgs({
        args, allowPositionals: true,
        options: { ...dataOption, role: { type: 'string', multiple: true }, password: { type: 'string' }, reason: { type: 'string' }, label: { type: 'string' } },
      });
      const admin = operator(values.data);
      const [verb, name, third, fourth] = positionals;
      const path = (user: string) => `/api/users/${encodeURIComponent(user)}`;
      const roles = (values.role ?? []).flatMap((role) => role.split(',')).map((role) => role.trim()).filter(Boolean);
      const made = () => randomBytes(18).toString('base64url');
      if (verb === 'add' && name && roles.length) {
        const password = values.password ?? made();
        print(await admin('PUT', path(name), { roles, password }));
        if (!values.password) console.log(`password: ${password}`);
      } else if (verb === 'passwd' && name) {
        const password = values.password ?? made();
        print(await admin('PUT', `${path(name)}/password`, { password }));
        if (!values.password) console.log(`password: ${password}`);
      } else if (verb === 'list') print(await admin('GET', '/api/users'));
      else if (verb === 'show' && name) print(await admin('GET', path(name)));
      else if (verb === 'history' && name) print(await admin('GET', `${path(name)}/history`));
      else if (verb === 'disable' && name && values.reason) print(await admin('POST', `${path(name)}/disable`, { reason: values.reason }));
      else if (verb === 'enable' && name) print(await admin('POST', `${path(name)}/enable`, {}));
      else if (verb === 'roles' && name && roles.length) print(await admin('PUT', `${path(name)}/roles`, { roles }));
      else if (verb === 'cert' && name && third) print(await admin('POST', `${path(name)}/certificates`, { certificate: readFileSync(third, 'utf8') }));
      else if (verb === 'token' && name === 'add' && third) print(await admin('POST', `${path(third)}/tokens`, values.label ? { label: values.label } : {}));
      else if (verb === 'token' && name === 'list' && third) print(await admin('GET', `${path(third)}/tokens`));
      else if (verb === 'token' && name === 'revoke' && third && fourth) print(await admin('DELETE', `${path(third)}/tokens/${encodeURIComponent(fourth)}`));
      else throw new Error(this.usage);
      return 0;
    },
  },
  verify: {
    summary: 'verify a signed file (XMLDSig, SOAP, ebMS 2.0, AS4 — bare, MIME, HTTP capture or mail — CMS, RFC 3161): JSON verdict, exit 0 only when valid',
    usage: verifyUsage,
    run: verifyCommand,
  },
  evidence: {
    summary: 'evidence list|export|verify|stamping: browse evidence, export a message\'s bundle, check a bundle offline',
    usage: [
      'swx evidence list [--message ID] [--conversation ID] [--partner ID] [--stage STAGE] [--from ISO] [--to ISO] [--raw] [--limit N] [--data DIR]',
      'swx evidence export MESSAGE_ID --out FILE.tar [--data DIR]   bundle with VERIFY.md (openssl, python3 commands)',
      'swx evidence verify FILE.tar [--trusted CA.pem] [--trusted-tsa CA.pem]   checks a bundle without the hub; exit 0 only when valid',
      'swx evidence stamping [--data DIR]   the time-stamp backlog and TSA state',
      `STAGE is one of: ${Object.keys(evidenceStages).join(', ')}`,
    ].join('\n'),
    async run(args) {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: {
        ...dataOption, message: { type: 'string' }, conversation: { type: 'string' }, partner: { type: 'string' }, stage: { type: 'string' },
        from: { type: 'string' }, to: { type: 'string' }, raw: { type: 'boolean' }, limit: { type: 'string' },
        out: { type: 'string' }, trusted: { type: 'string' }, 'trusted-tsa': { type: 'string' },
      } });
      const [verb, subject] = positionals;
      if (verb === 'verify' && subject) {
        const read = (path: string | undefined) => path ? readFileSync(path, 'utf8') : undefined;
        const verdict = await verifyBundle(readFileSync(subject), { trustedPem: read(values.trusted), trustedTsaPem: read(values['trusted-tsa']) });
        print(verdict);
        return verdict.valid ? 0 : 1;
      }
      const admin = operator(values.data);
      if (verb === 'list') {
        const query = new URLSearchParams();
        const filters = { messageId: values.message, conversationId: values.conversation, partner: values.partner, stage: values.stage, from: values.from, to: values.to, limit: values.limit };
        for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
        if (values.raw) query.set('raw', 'true');
        print(await admin('GET', `/api/evidence?${query}`));
      } else if (verb === 'stamping') {
        print(await admin('GET', '/api/evidence/stamping'));
      } else if (verb === 'export' && subject && values.out) {
        const tar = await adminDownload(values.data, `/api/evidence/bundle/${encodeURIComponent(subject)}`);
        writeFileSync(values.out, tar);
        console.log(`${values.out}: ${tar.length} bytes; extract with \`tar -xf ${values.out}\` and follow VERIFY.md, or run \`swx evidence verify ${values.out}\``);
      } else {
        throw new Error(this.usage);
      }
      return 0;
    },
  },
};

type DemoResult = Awaited<ReturnType<typeof checkDelivered>>;

/** The demo's messages by kind: direct, notifications (notify.<topic>) and channel items (exchange.<channel>). */
function demoKinds(sent: SentMessage[]) {
  const under = (prefix: string) => sent.filter((m) => m.service.startsWith(prefix));
  const items = under('exchange.');
  const channels = new Map<string, SentMessage[]>();
  for (const item of items) channels.set(item.service, [...channels.get(item.service) ?? [], item]);
  return { direct: sent.filter((m) => !m.service.startsWith('notify.') && !m.service.startsWith('exchange.')), notifications: under('notify.'), items, channels };
}

const settled = (messages: SentMessage[], result: DemoResult) => messages.filter((m) => !result.failed.has(m.id)).length;

/** The messages meant for each agency that receives by pull. */
const pulledBy = (sent: SentMessage[]) => new Map([...pullAgencies].map((id) => [id, sent.filter((m) => m.to.includes(id))]));

/** How the report names each protocol. */
const protocolNames: Record<string, string> = {
  rest: 'REST', 'rest-pull': 'REST pull', 'sftp-pull': 'SFTP pull', 'sftp-push': 'SFTP push', 'sftp-outbox': 'SFTP outbox (polled)', sftp: 'SFTP upload', as4: 'AS4', ebms2: 'ebMS 2.0', mq: 'MQ',
};

function report(hub: DemoHub, sent: SentMessage[], asked: AskedQuery[], result: DemoResult): void {
  const { direct, notifications, items, channels } = demoKinds(sent);
  for (const message of [...direct, ...notifications]) {
    const outcome = result.failed.has(message.id) ? 'PENDING  ' : 'delivered';
    console.log(`${outcome}  ${message.from.padEnd(12)} → ${message.to.join(',').padEnd(18)} ${message.service.padEnd(40)} ${message.id}${message.refTo ? ` (replies to ${message.refTo})` : ''}`);
  }
  for (const [service, channelItems] of channels) {
    const channel = service.slice('exchange.'.length);
    const inOrder = !result.notInOrder.some((lane) => lane.startsWith(`${channel} → `));
    const outcome = settled(channelItems, result) === channelItems.length && inOrder ? 'delivered' : 'PENDING  ';
    const providers = [...new Set(channelItems.map((item) => item.from))].join(',');
    const requesters = channelItems[0]!.to.length > 3 ? `${channelItems[0]!.to.length} requesters` : channelItems[0]!.to.join(',');
    console.log(`${outcome}  ${providers.padEnd(12)} ⇒ ${requesters.padEnd(18)} ${service.padEnd(40)} ${channelItems.length} items${inOrder ? ', in order' : ', NOT IN ORDER'}`);
  }
  for (const query of asked) {
    const done = query.status === 200 && query.found && query.signed && !result.missingEvidence.includes(query.queryId);
    const outcome = done ? 'answered ' : `FAILED ${query.code ?? query.status}`;
    console.log(`${outcome}  ${query.asker.padEnd(12)} ? ${query.provider.padEnd(18)} ${query.dataset.padEnd(40)} ${query.queryId} (provider answers over ${query.protocol.toUpperCase()})`);
  }
  const legs = new Map<string, { count: number; reason: string }>();
  for (const leg of result.skipped) {
    const key = `${leg.from.padEnd(12)} ⇒ ${leg.to.padEnd(18)} ${leg.service.padEnd(40)}`;
    legs.set(key, { count: (legs.get(key)?.count ?? 0) + 1, reason: leg.reason });
  }
  for (const [key, { count, reason }] of legs) console.log(`skipped    ${key} ${count} over MQ: ${reason}`);
  const failedQueries = new Set([...result.unanswered, ...result.missingEvidence]);
  const counts = (by: Record<string, number>) => Object.entries(by).map(([protocol, n]) => `${protocolNames[protocol] ?? protocol} ${n}`).join(', ');
  console.log([
    '',
    `${settled(direct, result)}/${direct.length} direct messages, ${settled(notifications, result)}/${notifications.length} notifications on ${new Set(notifications.map((m) => m.service)).size} topics`
      + ` and ${settled(items, result)}/${items.length} items on ${channels.size} channels (${channels.size - new Set(result.notInOrder.map((lane) => lane.split(' → ')[0])).size} in order at every requester)`
      + ` reached every receiver and were evidenced, ${sent.reduce((sum, m) => sum + m.to.length, 0)} deliveries in all;`,
    `${asked.filter((query) => !failedQueries.has(query.queryId)).length}/${asked.length} queries answered, signed and evidenced.`,
    `Received by pull, collected from the inbox and acknowledged: ${[...pulledBy(sent)].map(([id, meant]) => `${id} ${settled(meant, result)}/${meant.length} (${protocolNames[receiveProtocol(id)]})`).join(', ')};`
      + ' every other receiver by push to its endpoint.',
    `Sent by protocol: ${counts(result.sentBy)}; delivered by protocol: ${counts(result.deliveredBy)}`
      + `${result.skipped.length ? `; skipped: MQ ${result.skipped.length} (no MQ client library or queue manager here)` : ''}.`,
  ].join('\n'));
  if (result.stray.length > 0) console.log(`Delivered where not meant to be: ${result.stray.join(', ')}`);
  if (result.corrupt.length > 0) console.log(`Pushed over SFTP with a SHA-256 other than sent: ${result.corrupt.join(', ')}`);
  if (result.lostRefTo.length > 0) console.log(`Replies that arrived without their Ref-To: ${result.lostRefTo.join(', ')}`);
  if (result.notInOrder.length > 0) console.log(`Channel items not stored in the order published: ${result.notInOrder.join(', ')}`);
  console.log(`Agencies: https://localhost:${hub.agencyPort}/v1/messages, /v1/query/<dataset>, /ws/query/<dataset>?wsdl · operator API, /metrics, /healthz: http://127.0.0.1:${hub.opsPort} · data: ${hub.dataDir}`);
}

function summary(hub: DemoHub, sent: SentMessage[], asked: AskedQuery[], result: DemoResult) {
  const { notifications, items, channels } = demoKinds(sent);
  const sentIds = new Set(sent.map((m) => m.id));
  return {
    ok: result.ok,
    sent: sent.length,
    delivered: sent.length - result.missingInbox.length,
    evidenced: sent.length - result.missingEvidence.filter((id) => sentIds.has(id)).length,
    deliveries: sent.reduce((sum, m) => sum + m.to.length, 0),
    topics: new Set(notifications.map((m) => m.service)).size,
    notifications: notifications.length,
    replies: notifications.filter((m) => m.refTo).length,
    channels: channels.size,
    items: items.length,
    /** Deliveries to each agency that receives by pull. */
    pulled: Object.fromEntries([...pulledBy(sent)].map(([id, meant]) => [id, meant.length])),
    messageIds: sent.map((m) => m.id),
    missingInbox: result.missingInbox,
    missingEvidence: result.missingEvidence,
    stray: result.stray,
    /** Files pushed over SFTP whose SHA-256 is not what was sent. */
    corrupt: result.corrupt,
    notInOrder: result.notInOrder,
    lostRefTo: result.lostRefTo,
    /** Messages sent per protocol, and deliveries per protocol counted from what the receivers stored. */
    sentBy: result.sentBy,
    deliveredBy: result.deliveredBy,
    /** Deliveries the demo cannot make here (MQ), each with its reason. */
    skipped: result.skipped,
    queries: asked.length,
    answered: asked.length - result.unanswered.length,
    unanswered: result.unanswered,
    queryIds: asked.map((query) => query.queryId),
    dataDir: hub.dataDir,
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
