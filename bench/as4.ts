// as4 bench: distinct 4 KiB AS4 UserMessages from an agency's MSH, signed and their payloads encrypted, through the
// whole pipeline on the embedded stack (receive → decrypt → verify → archive → route → deliver over REST), each
// answered with the hub's signed non-repudiation Receipt, whose signature and copied references the MSH checks after
// the run (bench/msh.ts). eDelivery AS4 2.0 (Ed25519, X25519) by default, 1.x (RSA-2048, RSA-OAEP) with --profile 1.x.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHubProcess, tempDir } from '../app/hub-process.ts';
import {
  as4Multipart, checkReceipt, profiles, readAs4Message, signAs4, signedAttachment, signedReferences, swxPartyIdType, userMessageEnvelope,
  type ProfileName, type ReferenceCopy, type SignalMessage,
} from '../connectors/as4/index.ts';
import { issueCertificate, issuedFolder } from '../engine/pki/index.ts';
import { checkWsSecurity, encryptSoapAttachments } from '../engine/trust/index.ts';
import { benchPayload, collect, runMshBench, type MshMessage, type MshOptions } from './msh.ts';

export interface As4BenchOptions extends MshOptions { profile: '2.0' | '1.x' }

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
  const hub = await startHubProcess({ dataDir, env: { SWX_LOG_LEVEL: 'warn', ...(v2 ? {} : { SWX_PKI_ALG: 'rsa' }) } });
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

  const result = await runMshBench<As4Sent>({
    bench: 'as4', hub, caPem: readFileSync(join(pkiDir, 'ca', 'cert.pem'), 'utf8'), path: '/as4', service: 'bench.as4', sender: 'GATEWAY',
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
      return { messageId, to, body: await collect(multipart.body), contentType: multipart.contentType, references };
    },
    async check(message, answer) {
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      const signal = readAs4Message(answer.body);
      await checkWsSecurity(signal.envelope);
      const problem = checkReceipt(signal.message as SignalMessage, { messageId: message.messageId, references: message.references }, true);
      if (problem) throw problem;
    },
    conditions: {
      profile: `${profile}: ${Object.values(profiles[profile]).join(' ')}`,
      path: 'agency MSH → POST /as4 (signed, payload encrypted) → hub → REST delivery to 4 receivers; the hub\'s signed Receipt on each answer',
    },
  }, options);
  return { ...result, profile };
}
