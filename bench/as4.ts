// as4 bench: distinct, freshly signed and encrypted 4 KiB AS4 UserMessages from an agency's MSH through the whole
// pipeline on the embedded stack (receive → decrypt → verify → archive → route → deliver over REST), each answered with
// the hub's signed non-repudiation Receipt, which the MSH checks against the references it signed once the run is
// over. A message counts when its receiver has it. eDelivery AS4 2.0 (Ed25519, X25519) by default, 1.x (RSA-2048,
// RSA-OAEP) with --profile 1.x. The messages are signed and encrypted before the clock starts: the MSH's own crypto
// would otherwise take the cores the hub is measured on.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { addService, startHubProcess, tempDir } from '../app/hub-process.ts';
import {
  as4Multipart, checkReceipt, profiles, readAs4Message, signAs4, signedAttachment, signedReferences, swxPartyIdType, userMessageEnvelope,
  type ProfileName, type ReferenceCopy, type SignalMessage,
} from '../connectors/as4/index.ts';
import { issueCertificate, issuedFolder } from '../engine/pki/index.ts';
import { checkWsSecurity, encryptSoapAttachments } from '../engine/trust/index.ts';
import { arrivalKey, startBenchReceivers } from './agencies.ts';
import { conditions, percentile, treeCpuMs } from './conditions.ts';
import { routeBench } from './route.ts';

export interface As4BenchOptions { json: boolean; messages: number; concurrency: number; payloadBytes: number; profile: '2.0' | '1.x'; compareRoute: boolean }

const receiverIds = ['BOFT', 'BSMI', 'TFDA', 'NTA'];
const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
const hubParty = 'swx-hub';

interface Prepared { messageId: string; to: string; body: Buffer; contentType: string; references: ReferenceCopy[] }

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function as4Bench(options: As4BenchOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const profile: ProfileName = options.profile === '2.0' ? 'eDelivery-AS4-2.0' : 'eDelivery-AS4-1.15';
  const dataDir = tempDir('bench-as4');
  writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ connectors: { as4: { partyId: { id: hubParty } } } }));
  if (profile === 'eDelivery-AS4-2.0') {
    // The hub certifies an Ed25519 key placed before its PKI is made: 2.0 signs with Ed25519.
    mkdirSync(join(dataDir, 'pki', 'hub-sign'), { recursive: true });
    writeFileSync(join(dataDir, 'pki', 'hub-sign', 'key.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  }
  const hub = await startHubProcess({ dataDir, env: { SWX_LOG_LEVEL: 'warn', ...(profile === 'eDelivery-AS4-1.15' ? { SWX_PKI_ALG: 'rsa' } : {}) } });
  const pkiDir = join(dataDir, 'pki');
  const caPem = readFileSync(join(pkiDir, 'ca', 'cert.pem'), 'utf8');
  const hubEncryption = readFileSync(join(pkiDir, profile === 'eDelivery-AS4-2.0' ? 'hub-enc' : 'hub-sign', 'cert.pem'), 'utf8');
  // The PKI certifies an Edwards-curve key placed in a leaf's folder as it is; it makes only ECDSA and RSA keys itself.
  const placed = (name: string, profileName: 'agency' | 'signing', type: 'ed25519' | 'x25519') => {
    const folder = issuedFolder(pkiDir, name, profileName);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'key.pem'), generateKeyPairSync(type as 'ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return issueCertificate(pkiDir, name, { profile: profileName });
  };
  const msh = profile === 'eDelivery-AS4-2.0' ? await placed('GATEWAY', 'agency', 'ed25519') : await issueCertificate(pkiDir, 'GATEWAY', { alg: 'rsa' });
  // What the hub would encrypt to, were it to send to this MSH (it does not here): X25519 under 2.0.
  const mshEncryption = profile === 'eDelivery-AS4-2.0' ? await placed('GATEWAY-ENC', 'signing', 'x25519') : msh;
  const receivers = await startBenchReceivers(hub, receiverIds);
  const put = await hub.admin('PUT', '/api/partners/GATEWAY', {
    name: 'An agency\'s AS4 MSH', certificates: [msh.certPem],
    endpoints: { as4: {
      url: 'https://localhost:9/as4', partyIds: [{ id: 'gateway', type: 'urn:example:party' }], profile,
      services: [{ service: 'urn:example:bench', type: 'urn:example', actions: ['Submit'], swx: 'bench.as4' }],
      security: { sign: true, encrypt: true, encryptionCertificate: mshEncryption.certPem },
    } },
  });
  if (put.status !== 200) throw new Error(`registering the MSH: ${JSON.stringify(put.body)}`);
  await addService(hub, 'bench.as4', ['GATEWAY'], receiverIds);

  let counter = 0;
  const prepare = async (): Promise<Prepared> => {
    const n = counter++;
    const messageId = `bench-${n}-${randomBytes(6).toString('hex')}@gateway.example`;
    const to = receiverIds[n % receiverIds.length]!;
    const payload = Buffer.alloc(options.payloadBytes, 0x20);
    Buffer.from(JSON.stringify({ n, nonce: randomBytes(16).toString('hex') })).copy(payload);
    const part = { contentId: `payload-${n}@gateway.example`, contentType: 'application/octet-stream', body: payload };
    const written = userMessageEnvelope({
      messageId,
      from: { partyIds: [{ id: 'gateway', type: 'urn:example:party' }], role },
      to: { partyIds: [{ id: hubParty, type: swxPartyIdType }], role },
      collaboration: { service: { value: 'urn:example:bench', type: 'urn:example' }, action: 'Submit', conversationId: `conv-${n}` },
      properties: [{ name: 'originalSender', value: 'GATEWAY' }, { name: 'finalRecipient', value: to }],
      payloads: [{ contentId: part.contentId, mimeType: 'application/octet-stream' }],
    });
    const signed = await signAs4(written, {
      keyPem: msh.keyPem, certPem: msh.certPem, attachments: [signedAttachment(part)],
      signatureAlgorithm: profile === 'eDelivery-AS4-2.0' ? 'ed25519' : 'rsa-sha256',
    });
    const references = signedReferences(readAs4Message(Buffer.from(signed), { attachments: [part.contentId] }));
    const sealed = await encryptSoapAttachments(signed, [part], { certPem: hubEncryption }, profile);
    const multipart = as4Multipart(sealed.envelope, sealed.parts);
    return { messageId, to, body: await collect(multipart.body), contentType: multipart.contentType, references };
  };

  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency, ca: caPem });
  const post = (message: Prepared) => new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = request(`https://localhost:${hub.agencyPort}/as4`, { method: 'POST', agent, headers: { 'content-type': message.contentType, 'content-length': String(message.body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(message.body);
  });
  const arrived = (message: Prepared) => receivers.arrivals.get(arrivalKey(message.to, message.messageId));

  /** Sends every message, `concurrency` at a time; each answer kept for checking, each send time for latency. */
  const run = async (batch: Prepared[]) => {
    const sentAt = new Map<string, number>();
    const answers = new Map<string, { status: number; body: Buffer }>();
    let next = 0;
    await Promise.all(Array.from({ length: options.concurrency }, async () => {
      while (next < batch.length) {
        const message = batch[next++]!;
        sentAt.set(message.messageId, performance.timeOrigin + performance.now());
        answers.set(message.messageId, await post(message));
      }
    }));
    const deadline = Date.now() + 120_000;
    while (batch.some((message) => arrived(message) === undefined) && Date.now() < deadline) await sleep(50);
    return { sentAt, answers };
  };

  say(`signing and encrypting ${options.messages + 200} messages (${profile}) before the clock starts…`);
  const warm = await Promise.all(Array.from({ length: 200 }, prepare));
  const batch: Prepared[] = [];
  for (let i = 0; i < options.messages; i++) batch.push(await prepare());
  say('warming up…');
  await run(warm);

  say(`closed loop: ${options.messages} messages, ${options.concurrency} in flight`);
  const cpuBefore = treeCpuMs(hub.proc.pid!);
  const started = performance.now();
  const { sentAt, answers } = await run(batch);
  const delivered = batch.filter((message) => arrived(message) !== undefined);
  const lastArrival = Math.max(...delivered.map((message) => arrived(message)!));
  const elapsed = (lastArrival - (performance.timeOrigin + started)) / 1000;
  const cpuMs = treeCpuMs(hub.proc.pid!) - cpuBefore;
  const latencies = delivered.map((message) => arrived(message)! - sentAt.get(message.messageId)!).sort((a, b) => a - b);

  say('checking every receipt: the hub\'s signature, and every reference the MSH signed copied…');
  let receiptsChecked = 0;
  const receiptProblems: string[] = [];
  for (const message of batch) {
    const answer = answers.get(message.messageId)!;
    try {
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      const signal = readAs4Message(answer.body);
      await checkWsSecurity(signal.envelope);
      const problem = checkReceipt(signal.message as SignalMessage, { messageId: message.messageId, references: message.references }, true);
      if (problem) throw problem;
      receiptsChecked++;
    } catch (error) {
      if (receiptProblems.length < 5) receiptProblems.push(`${message.messageId}: ${(error as Error).message}`);
    }
  }

  agent.destroy();
  receivers.stop();
  await hub.stop();
  const result: Record<string, unknown> = {
    bench: 'as4',
    profile,
    messages: batch.length,
    delivered: delivered.length,
    receipts_checked: receiptsChecked,
    ...(receiptProblems.length ? { receipt_problems: receiptProblems } : {}),
    msgs_per_s: Math.round(delivered.length / elapsed),
    p50_ms: Number(percentile(latencies, 50).toFixed(1)),
    p95_ms: Number(percentile(latencies, 95).toFixed(1)),
    p99_ms: Number(percentile(latencies, 99).toFixed(1)),
    cpu_ms_per_msg: Number((cpuMs / delivered.length).toFixed(3)),
  };
  say(`  ${result.msgs_per_s} msgs/s, p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms, p99 ${result.p99_ms} ms, hub CPU ${result.cpu_ms_per_msg} ms/msg; ${receiptsChecked}/${batch.length} receipts checked`);
  if (options.compareRoute) {
    say('the REST route in the same run, for comparison…');
    const route = await routeBench({ json: true, messages: options.messages, rates: [], seconds: 0, payloadBytes: options.payloadBytes, concurrency: options.concurrency });
    result.route_cpu_ms_per_msg = route.cpu_ms_per_msg;
    result.route_msgs_per_s = route.msgs_per_s;
    result.cpu_ratio_to_route = Number(((result.cpu_ms_per_msg as number) / (route.cpu_ms_per_msg as number)).toFixed(2));
    say(`  REST route: ${route.msgs_per_s} msgs/s, hub CPU ${route.cpu_ms_per_msg} ms/msg; AS4 costs ${result.cpu_ratio_to_route}× the route's CPU`);
  }
  result.conditions = conditions({
    payload_bytes: options.payloadBytes,
    profile: Object.values(profiles[profile]).join(' '),
    path: 'agency MSH → POST /as4 (signed, encrypted) → hub → REST delivery (RFC 9421, mutual TLS) to 4 receivers; the hub\'s signed Receipt on each answer',
    transport: 'HTTPS (server-authenticated for the MSH), keep-alive',
    processes: 'hub (+ its nats-server and chDB owner), bench MSH, receivers process: all on this machine',
    cpu_ms_per_msg_counts: 'hub process tree only; the MSH signs and encrypts every message before the clock starts',
  });
  return result;
}
