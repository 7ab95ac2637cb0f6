// as4 bench: distinct 4 KiB AS4 UserMessages from an agency's MSH, signed and their payloads encrypted, through the
// whole pipeline on the embedded stack (receive → decrypt → verify → archive → route → deliver over REST), each
// answered with the hub's signed non-repudiation Receipt, whose signature and copied references the MSH checks after
// the run (bench/msh.ts). eDelivery AS4 2.0 (Ed25519, X25519) by default, 1.x (RSA-2048, RSA-OAEP) with --profile 1.x.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHubProcess, tempDir } from '../app/hub-process.ts';
import {
  as4Multipart, checkReceipt, profiles, readAs4Message, signAs4, signedAttachment, signedReferences, swxPartyIdType, userMessageEnvelope,
  type ProfileName, type ReferenceCopy, type SignalMessage,
} from '../connectors/as4/index.ts';
import { issueCertificate, issuedFolder } from '../engine/pki/index.ts';
import { checkWsSecurity, encryptSoapAttachments } from '../engine/trust/index.ts';
import { whole } from '../engine/http.ts';
import { benchPayload } from './payload.ts';
import { runMshBench, type MshMessage, type MshOptions } from './msh.ts';
import { cpuProfileEnv } from './profile.ts';

export interface As4BenchOptions extends MshOptions {
  profile: '2.0' | '1.x';
  /** The size of the one large attachment sent after the closed loop (0: none). */
  attachmentBytes: number;
  /** The hub writes V8 CPU profiles of its main thread and its worker threads here (bench/cpu-profile.mjs). */
  profileDir?: string;
}

const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
const hubParty = 'swx-hub';

interface As4Sent extends MshMessage { references: ReferenceCopy[] }

export async function as4Bench(options: As4BenchOptions): Promise<Record<string, unknown>> {
  const profile: ProfileName = options.profile === '2.0' ? 'eDelivery-AS4-2.0' : 'eDelivery-AS4-1.15';
  const v2 = profile === 'eDelivery-AS4-2.0';
  const dataDir = tempDir('bench-as4');
  writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ connectors: { as4: { partyId: { id: hubParty } } } }));
  const pkiDir = join(dataDir, 'pki');
  // The PKI certifies an Edwards-curve key placed in a leaf's folder as it is; it makes only ECDSA and RSA keys itself.
  const place = (folder: string, type: 'ed25519' | 'x25519') => {
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'key.pem'), generateKeyPairSync(type as 'ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  };
  // 2.0 signs with Ed25519: the hub's signing key too.
  if (v2) place(join(pkiDir, 'hub-sign'), 'ed25519');
  const hub = await startHubProcess({ dataDir, env: { SWX_LOG_LEVEL: 'warn', ...(v2 ? {} : { SWX_PKI_ALG: 'rsa' }), ...cpuProfileEnv(options.profileDir) } });
  const hubEncryption = readFileSync(join(pkiDir, v2 ? 'hub-enc' : 'hub-sign', 'cert.pem'), 'utf8');
  if (v2) place(issuedFolder(pkiDir, 'GATEWAY'), 'ed25519');
  const msh = await issueCertificate(pkiDir, 'GATEWAY', v2 ? {} : { alg: 'rsa' });
  // What the hub would encrypt to, were it to send to this MSH (it does not here): X25519 under 2.0.
  if (v2) place(issuedFolder(pkiDir, 'GATEWAY-ENC', 'signing'), 'x25519');
  const mshEncryption = v2 ? await issueCertificate(pkiDir, 'GATEWAY-ENC', { profile: 'signing' }) : msh;
  const put = await hub.admin('PUT', '/api/partners/GATEWAY', {
    name: 'An agency\'s AS4 MSH', certificates: [msh.certPem],
    endpoints: { as4: {
      url: 'https://localhost:9/as4', partyIds: [{ id: 'gateway', type: 'urn:example:party' }], profile,
      services: [{ service: 'urn:example:bench', type: 'urn:example', actions: ['Submit'], swx: 'bench.as4' }],
      security: { sign: true, encrypt: true, encryptionCertificate: mshEncryption.certPem },
    } },
  });
  if (put.status !== 200) throw new Error(`registering the MSH: ${JSON.stringify(put.body)}`);

  /**
   * One message whose attachment is `bytes` long, signed with the digest the MSH computed over it and encrypted as it
   * streams, sent with its length so that the hub streams it into its store: the hub process's peak RSS growth over its
   * RSS before, sampled every 50 ms until the receiver has the payload.
   */
  const largeAttachment = async (bytes: number, arrived: (to: string, messageId: string) => number | undefined) => {
    const block = randomBytes(1024 * 1024);
    const content = async function* () { for (let sent = 0; sent < bytes; sent += block.length) yield block.subarray(0, Math.min(block.length, bytes - sent)); };
    const digest = createHash('sha256');
    for await (const chunk of content()) digest.update(chunk);
    const messageId = `bench-large-${randomBytes(6).toString('hex')}@gateway.example`;
    const to = 'BOFT';
    const part = { contentId: 'large@gateway.example', contentType: 'application/octet-stream' };
    const written = userMessageEnvelope({
      messageId,
      from: { partyIds: [{ id: 'gateway', type: 'urn:example:party' }], role },
      to: { partyIds: [{ id: hubParty, type: swxPartyIdType }], role },
      collaboration: { service: { value: 'urn:example:bench', type: 'urn:example' }, action: 'Submit', conversationId: messageId },
      properties: [{ name: 'originalSender', value: 'GATEWAY' }, { name: 'finalRecipient', value: to }],
      payloads: [{ contentId: part.contentId, mimeType: 'application/octet-stream' }],
    });
    const attachment = { ...signedAttachment({ ...part, body: Buffer.alloc(0) }), digests: { content: digest.digest() } };
    const signed = await signAs4(written, { keyPem: msh.keyPem, certPem: msh.certPem, attachments: [attachment], signatureAlgorithm: v2 ? 'ed25519' : 'rsa-sha256' });
    const sealed = await encryptSoapAttachments(signed, [{ ...part, body: content(), size: bytes }], { certPem: hubEncryption }, profile);
    const multipart = as4Multipart(sealed.envelope, sealed.parts);
    if (multipart.length === undefined) throw new Error('the length of the large message is not known');
    const pid = hub.proc.pid!;
    const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    const before = rss();
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rss()); }, 50);
    const started = performance.now();
    try {
      const answer = await new Promise<number>((resolve, reject) => {
        const req = request(`https://localhost:${hub.agencyPort}/as4`, {
          method: 'POST', ca: caPem, headers: { 'content-type': multipart.contentType, 'content-length': String(multipart.length) },
        }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
        req.on('error', reject);
        multipart.body.pipe(req);
      });
      if (answer !== 200) throw new Error(`the large message was answered ${answer}`);
      const deadline = Date.now() + 30 * 60_000;
      while (arrived(to, messageId) === undefined && Date.now() < deadline) await sleep(200);
      if (arrived(to, messageId) === undefined) throw new Error('the large message did not reach its receiver');
    } finally {
      clearInterval(sampler);
    }
    return { peak_rss_mb_1gb: Math.round((peak - before) / 2 ** 20), large_seconds: Number(((performance.now() - started) / 1000).toFixed(1)) };
  };
  const caPem = readFileSync(join(pkiDir, 'ca', 'cert.pem'), 'utf8');

  const result = await runMshBench<As4Sent>({
    bench: 'as4', hub, caPem, path: '/as4', service: 'bench.as4', sender: 'GATEWAY',
    async prepare(n, to) {
      const messageId = `bench-${n}-${randomBytes(6).toString('hex')}@gateway.example`;
      const part = { contentId: `payload-${n}@gateway.example`, contentType: 'application/octet-stream', body: benchPayload(n, options.payloadBytes) };
      const written = userMessageEnvelope({
        messageId,
        from: { partyIds: [{ id: 'gateway', type: 'urn:example:party' }], role },
        to: { partyIds: [{ id: hubParty, type: swxPartyIdType }], role },
        collaboration: { service: { value: 'urn:example:bench', type: 'urn:example' }, action: 'Submit', conversationId: `conv-${n}` },
        properties: [{ name: 'originalSender', value: 'GATEWAY' }, { name: 'finalRecipient', value: to }],
        payloads: [{ contentId: part.contentId, mimeType: 'application/octet-stream' }],
      });
      const signed = await signAs4(written, { keyPem: msh.keyPem, certPem: msh.certPem, attachments: [signedAttachment(part)], signatureAlgorithm: v2 ? 'ed25519' : 'rsa-sha256' });
      const references = signedReferences(readAs4Message(Buffer.from(signed), { attachments: [part.contentId] }));
      const sealed = await encryptSoapAttachments(signed, [part], { certPem: hubEncryption }, profile);
      const multipart = as4Multipart(sealed.envelope, sealed.parts);
      return { messageId, to, body: await whole(multipart.body), contentType: multipart.contentType, references };
    },
    async check(message, answer) {
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      const signal = readAs4Message(answer.body);
      await checkWsSecurity(signal.envelope);
      const problem = checkReceipt(signal.message as SignalMessage, { messageId: message.messageId, references: message.references }, true);
      if (problem) throw problem;
    },
    async after(arrived) {
      if (!options.attachmentBytes) return {};
      return { ...await largeAttachment(options.attachmentBytes, arrived), attachment_bytes: options.attachmentBytes };
    },
    conditions: {
      profile: `${profile}: ${Object.values(profiles[profile]).join(' ')}`,
      path: 'agency MSH → POST /as4 (signed, payload encrypted) → hub → REST delivery to 4 receivers; the hub\'s signed Receipt on each answer',
      ...(options.profileDir ? { hub_cpu_profile: options.profileDir } : {}),
    },
  }, options);
  return { ...result, profile };
}
