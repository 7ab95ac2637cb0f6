// ebms2 bench: distinct 4 KiB ebMS 2.0 messages from an agency's MSH, signed (XMLDSig as ebMS 2.0 profiles it, RSA-SHA256,
// over the envelope and the payload part), with AckRequested and SyncReply, through the whole pipeline on the embedded
// stack to REST receivers; each answered on the connection with the hub's signed Acknowledgment, whose signature and
// RefToMessageId the MSH checks after the run (bench/msh.ts).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHubProcess, tempDir } from '../app/hub-process.ts';
import {
  ackRequestedXml, ebmsMultipart, envelopeXml, manifestXml, messageHeaderXml, readEbmsParts, signEbms, swxPartyIdType, swxServiceType, syncReplyXml,
} from '../connectors/ebms2/index.ts';
import { entityOf, messageParts } from '../engine/mime/index.ts';
import { issueCertificate } from '../engine/pki/index.ts';
import { verifyXml } from '../engine/trust/index.ts';
import { whole } from '../engine/http.ts';
import { benchPayload } from './payload.ts';
import { runMshBench, type MshOptions } from './msh.ts';

const hubType = 'urn:swx:hub';
const rsaSha256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

export async function ebms2Bench(options: MshOptions): Promise<Record<string, unknown>> {
  const dataDir = tempDir('bench-ebms2');
  writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ connectors: { ebms2: { partyIds: [{ id: 'swx-hub', type: hubType }] } } }));
  // ebMS 2.0 signs with RSA.
  const hub = await startHubProcess({ dataDir, env: { SWX_LOG_LEVEL: 'warn', SWX_PKI_ALG: 'rsa' } });
  const pkiDir = join(dataDir, 'pki');
  const hubSign = readFileSync(join(pkiDir, 'hub-sign', 'cert.pem'), 'utf8');
  const msh = await issueCertificate(pkiDir, 'GATEWAY', { alg: 'rsa' });
  const channel = {
    transport: 'HTTP', url: 'https://localhost:9/msh', syncReplyMode: 'mshSignalsOnly', ackRequested: 'always', ackSignatureRequested: 'always', duplicateElimination: 'always',
    reliability: { retries: 3, retryIntervalMs: 2000, persistDurationMs: 24 * 3600 * 1000 }, signature: { algorithm: rsaSha256, weak: false },
  };
  const put = await hub.admin('PUT', '/api/partners/GATEWAY', {
    name: 'An agency\'s ebMS 2.0 MSH', certificates: [msh.certPem],
    endpoints: { ebms2: {
      cpaId: 'gateway-swx', partyIds: [{ id: 'gateway', type: 'urn:example:party' }], roles: ['sender'], defaultChannel: 'c1', channels: { c1: channel },
      services: [{ service: 'bench.ebms2', role: 'sender', canSend: [{ action: 'Submit', channels: ['c1'] }], canReceive: [] }],
    } },
  });
  if (put.status !== 200) throw new Error(`registering the MSH: ${JSON.stringify(put.body)}`);

  return runMshBench({
    bench: 'ebms2', hub, caPem: readFileSync(join(pkiDir, 'ca', 'cert.pem'), 'utf8'), path: '/ebms2', headers: { soapaction: '"ebXML"' },
    service: 'bench.ebms2', sender: 'GATEWAY',
    async prepare(n, to) {
      const messageId = `bench-${n}-${randomBytes(6).toString('hex')}@gateway.example`;
      const part = { contentId: `payload-${n}@gateway.example`, contentType: 'application/octet-stream', body: benchPayload(n, options.payloadBytes) };
      const header = messageHeaderXml({
        from: { partyIds: [{ id: 'gateway', type: 'urn:example:party' }] },
        to: { partyIds: [{ id: 'swx-hub', type: hubType }, { id: to, type: swxPartyIdType }] },
        cpaId: 'gateway-swx', conversationId: `conv-${n}`, service: { value: 'bench.ebms2', type: swxServiceType }, action: 'Submit',
        messageId, timestamp: new Date(), duplicateElimination: true,
      });
      const signed = await signEbms(envelopeXml([header, ackRequestedXml(true), syncReplyXml()], [manifestXml([{ contentId: part.contentId }])]), [
        { contentId: part.contentId, headers: { 'content-type': part.contentType }, body: part.body },
      ], { keyPem: msh.keyPem, certPem: msh.certPem });
      const multipart = ebmsMultipart(signed.xml, [part]);
      return { messageId, to, body: await whole(multipart.body), contentType: multipart.contentType };
    },
    async check(message, answer) {
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      const parts = messageParts(entityOf({ 'content-type': answer.contentType }, answer.body));
      const signal = readEbmsParts(parts, { at: false });
      const verdict = await verifyXml(parts.root.body, { pinnedCertsPem: hubSign });
      if (!verdict.valid) throw new Error(`the Acknowledgment's signature: ${verdict.detail}`);
      if (signal.acknowledgment?.refToMessageId !== message.messageId) throw new Error(`no Acknowledgment of ${message.messageId} in the answer`);
    },
    conditions: {
      signature: 'RSA-2048 SHA-256, ebMS 2.0 XMLDSig profile (enveloped, XPath actor filter, one reference per attachment), both ways',
      path: 'agency MSH → POST /ebms2 (signed, AckRequested, SyncReply) → hub → REST delivery to 4 receivers; the hub\'s signed Acknowledgment on each answer',
    },
  }, options);
}
