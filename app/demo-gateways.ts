// The agency side of the demo's other protocols, as an agency's own systems do it with the connectors' own message
// code: an AS4 gateway that sends signed UserMessages and receives the hub's (answering with its signed Receipt), an
// ebMS 2.0 MSH that receives the hub's messages (answering with its signed Acknowledgment), and an SFTP client (ssh2)
// that uploads signed files with their detached CMS signature and collects its deliveries from the hub's inbox folder,
// and an agency's own SFTP server (OpenSSH's sshd) that the hub pushes deliveries into and collects signed files from.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, watch, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, posix } from 'node:path';
import ssh2, { type SFTPWrapper } from 'ssh2';
import {
  as4Multipart, checkReceipt, decompress, newMessageId, originalMessageIdProperty, readAs4Body, readAs4Message, receiptEnvelope, signAs4, signedAttachment, signedReferences,
  soapContentType, swxPartyIdType as as4SwxPartyType, userMessageEnvelope, type As4Message,
} from '../connectors/as4/index.ts';
import { checkAs4Security } from '../connectors/as4/security.ts';
import { acknowledgmentXml, ebmsMultipart, originalMessageIdOf, readEbmsParts, signEbms } from '../connectors/ebms2/index.ts';
import { readEbmsBody } from '../connectors/ebms2/body.ts';
import { whole } from '../engine/http.ts';
import { swxPartyIdType } from '../connectors/ebms2/settings.ts';
import { keepDelivery, type AgencyCredentials, type InboxEntry } from '../connectors/rest/agency.ts';
import { outboxMessageId } from '../connectors/sftp/client/index.ts';
import { contained } from '../engine/http.ts';
import { thumbprint } from '../engine/pki/index.ts';
import { checkWsSecurity, signCms, verifyXml } from '../engine/trust/index.ts';
import { gatewayPartyId, gatewayPartyType } from './demo-protocols.ts';
import { startSshd } from './sshd.ts';

/** Largest message a demo gateway reads: the demo's messages are small JSON documents. */
const maxMessageBytes = 16 * 1024 * 1024;

export interface Gateway {
  port: number;
  /** Messages received per swx message id (a copy's MessageId names it), repeats included (the inbox keeps each id once). */
  deliveriesOf(id: string): number;
  close(): Promise<void>;
}

interface ReceiverOptions extends AgencyCredentials {
  id: string;
  hubSignCertPem: string;
  inboxDir: string;
  onMessage(entry: InboxEntry): void;
}

async function listen(server: Server, received: Map<string, number>): Promise<Gateway> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    deliveriesOf: (id) => received.get(id) ?? 0,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const count = (received: Map<string, number>, id: string) => received.set(id, (received.get(id) ?? 0) + 1);

const own = (credentials: AgencyCredentials) => ({ keyPem: credentials.keyPem, certPem: credentials.certPem });
const property = (message: As4Message, name: string) => (message.message.kind === 'user' ? message.message.properties.find((p) => p.name === name)?.value : undefined);

/**
 * The agency's AS4 MSH receiving from the hub over HTTPS (the hub's TLS client certificate is not asked for: the
 * WS-Security signature, checked to be the hub's signing certificate, says who sent): the payload kept, inflated
 * where compressed, and answered with the agency's signed non-repudiation Receipt.
 */
export async function startAs4Gateway(options: ReceiverOptions): Promise<Gateway> {
  const hubThumbprint = thumbprint(options.hubSignCertPem);
  const received = new Map<string, number>();
  const server = createServer({ cert: options.certPem, key: options.keyPem }, contained(async (req, res) => {
    const body = await readAs4Body(req, String(req.headers['content-type'] ?? ''), maxMessageBytes);
    const message = readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) });
    const user = message.message;
    if (user.kind !== 'user') throw new Error(`${options.id}'s gateway takes UserMessages only`);
    const security = await checkAs4Security(message, { profile: 'eDelivery-AS4-1.15', attachments: body.attachments });
    if (security.thumbprint !== hubThumbprint) throw new Error(`signed by ${security.thumbprint}, not the hub's signing certificate`);
    const part = user.parts[0]!;
    const attachment = part.location.kind === 'attachment' ? body.attachments.find((a) => a.contentId === (part.location as { contentId: string }).contentId) : undefined;
    if (!attachment) throw new Error('the payload is not an attachment of the message');
    // The hub gzips what compresses; a binary payload streamed from its store travels as it is.
    const payload = part.compressionType ? await whole(decompress((async function* () { yield attachment.body; })(), part)) : attachment.body;
    // One receiver's copy of a topic's or channel's message travels under its own MessageId and names the swx message.
    const id = property(message, originalMessageIdProperty) ?? user.messageInfo.messageId;
    count(received, id);
    const entry = keepDelivery(options.inboxDir, {
      id, from: property(message, 'originalSender') ?? '', service: user.collaboration.service.value,
      action: user.collaboration.action, conversationId: user.collaboration.conversationId,
      ...(user.messageInfo.refToMessageId ? { refToMessageId: user.messageInfo.refToMessageId } : {}),
      contentType: part.mimeType ?? 'application/octet-stream', receivedAt: user.messageInfo.timestamp,
    }, payload);
    if (entry) options.onMessage(entry);
    const receipt = Buffer.from(await signAs4(receiptEnvelope(message), own(options)));
    res.writeHead(200, { 'content-type': soapContentType, 'content-length': String(receipt.length) });
    res.end(receipt);
  }));
  return listen(server, received);
}

/** What an agency's gateway sends: the swx service, its action and the document. */
export interface GatewayMessage { service: string; action: string; body: Buffer; contentType: string; to?: string; refTo?: string }

/**
 * Sends a UserMessage from the agency's AS4 gateway to the hub at `hubUrl` + /as4, signed over Messaging, Body and the
 * payload, To the hub's PartyId, the swx receiver (if any) in finalRecipient; the hub's Receipt must be signed by the
 * hub's signing certificate and copy every reference signed. Resolves with the MessageId, the swx message id.
 */
export async function sendAs4(hubUrl: string, id: string, credentials: AgencyCredentials, hubSignCertPem: string, message: GatewayMessage): Promise<string> {
  const messageId = newMessageId(`${id.toLowerCase()}.demo`);
  const part = { contentId: `payload-${messageId}`, contentType: message.contentType, body: message.body };
  const role = 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole';
  const written = userMessageEnvelope({
    messageId,
    from: { partyIds: [{ id: gatewayPartyId(id), type: gatewayPartyType }], role },
    to: { partyIds: [{ id: 'swx', type: as4SwxPartyType }], role },
    collaboration: { agreementRef: { value: `urn:swx:agreement:${id.toLowerCase()}` }, service: { value: `urn:tw:gov:${message.service}` }, action: message.action, conversationId: messageId },
    ...(message.refTo ? { refToMessageId: message.refTo } : {}),
    properties: [{ name: 'originalSender', value: id }, ...(message.to ? [{ name: 'finalRecipient', value: message.to }] : [])],
    payloads: [{ contentId: part.contentId, mimeType: message.contentType }],
  });
  const xml = await signAs4(written, { ...own(credentials), attachments: [signedAttachment(part)] });
  const multipart = as4Multipart(xml, [{ ...part, body: (async function* () { yield part.body; })() }]);
  const answer = await post(`${hubUrl}/as4`, await whole(multipart.body), multipart.contentType, credentials.caPem);
  const signal = readAs4Message(answer.body);
  if (answer.status !== 200 || signal.message.kind !== 'signal' || !signal.message.receipt) {
    const errors = signal.message.kind === 'signal' ? signal.message.errors.map((error) => `${error.errorCode} ${error.detail ?? error.shortDescription ?? ''}`).join('; ') : '';
    throw new Error(`the hub answered ${id}'s AS4 message ${answer.status}: ${errors || 'no receipt'}`);
  }
  const sent = readAs4Message(Buffer.from(xml), { attachments: [part.contentId] });
  const invalid = checkReceipt(signal.message, { messageId, references: signedReferences(sent) }, true);
  if (invalid) throw new Error(`the hub's receipt for ${messageId}: ${invalid}`);
  const signer = await checkWsSecurity(signal.envelope, {});
  if (signer.thumbprint !== thumbprint(hubSignCertPem)) throw new Error(`the receipt for ${messageId} is not signed by the hub`);
  return messageId;
}

/**
 * The agency's ebMS 2.0 MSH receiving from the hub: the message's signature checked against the hub's signing
 * certificate (its references cover the header and the payload), the payload kept, and the signed Acknowledgment,
 * repeating those references, sent back on the connection as the agreement's SyncReply asks.
 */
export async function startEbms2Gateway(options: ReceiverOptions): Promise<Gateway> {
  const received = new Map<string, number>();
  const server = createServer({ cert: options.certPem, key: options.keyPem }, contained(async (req, res) => {
    const parts = await readEbmsBody(req, String(req.headers['content-type'] ?? ''), maxMessageBytes);
    const message = readEbmsParts(parts);
    const verdict = await verifyXml(parts.root.body, { pinnedCertsPem: options.hubSignCertPem, attachments: parts.attachments });
    if (!verdict.valid) throw new Error(`the hub's ebMS message does not verify: ${verdict.detail}`);
    const payload = parts.attachments.find((attachment) => attachment.contentId === message.manifest[0]?.contentId);
    if (!payload) throw new Error('the Manifest names no attachment of the message');
    const id = originalMessageIdOf(message.header) ?? message.header.messageId;
    count(received, id);
    const swxParty = (side: 'from' | 'to') => message.header[side].partyIds.find((party) => party.type === swxPartyIdType)?.id ?? '';
    const entry = keepDelivery(options.inboxDir, {
      id, from: swxParty('from'), service: message.header.service.value, action: message.header.action,
      conversationId: message.header.conversationId, ...(message.header.refToMessageId ? { refToMessageId: message.header.refToMessageId } : {}),
      contentType: String(payload.headers['content-type'] ?? 'application/octet-stream'), receivedAt: message.header.timestamp,
    }, payload.body);
    if (entry) options.onMessage(entry);
    const acknowledgment = acknowledgmentXml(message, { receivedAt: new Date(), from: { partyIds: [{ id: gatewayPartyId(options.id), type: gatewayPartyType }] } });
    const signed = await signEbms(acknowledgment, [], own(options));
    const multipart = ebmsMultipart(signed.xml, []);
    const answer = await whole(multipart.body);
    res.writeHead(200, { 'content-type': multipart.contentType, 'content-length': String(answer.length), soapaction: '"ebXML"' });
    res.end(answer);
  }));
  return listen(server, received);
}

function post(url: string, body: Buffer, contentType: string, caPem: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca: caPem, headers: { 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Where an agency's SFTP client logs in: the hub's SFTP server, its host key pinned (the OpenSSH public key line). */
export interface SftpLogin { host: string; port: number; user: string; privateKey: Buffer; hostKey: string }

/**
 * An SFTP session of the agency on the hub's server, ended when `use` settles or `signal` aborts; rejects when the
 * connection closes under it (the hub stopped), as requests in flight then get no answer.
 */
export async function sftpSession<T>(login: SftpLogin, use: (sftp: SFTPWrapper) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const connection = new ssh2.Client();
  const closed = new Promise<never>((_resolve, reject) => connection.once('close', () => reject(new Error('the SFTP connection closed'))));
  closed.catch(() => undefined);
  const end = () => connection.end();
  signal?.addEventListener('abort', end, { once: true });
  const pinned = login.hostKey.split(' ').slice(0, 2).join(' ');
  await new Promise<void>((resolve, reject) => {
    connection.once('ready', resolve).once('error', reject).connect({
      host: login.host, port: login.port, username: login.user, privateKey: login.privateKey,
      hostVerifier: (key: Buffer) => `ssh-ed25519 ${key.toString('base64')}` === pinned,
    });
  });
  try {
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => connection.sftp((error, opened) => (error ? reject(error) : resolve(opened))));
    return await Promise.race([use(sftp), closed]);
  } finally {
    signal?.removeEventListener('abort', end);
    connection.end();
  }
}

const call = <T>(run: (done: (error: Error | null | undefined, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value as T))));

/**
 * Uploads `name` into `folder` of the agency's tree as an agency's file transfer does on the hub's server: its detached
 * CMS signature NAME.p7s, then NAME.part renamed to NAME (answered once the hub took the file), then the hub's receipt.
 * Resolves with the swx message id the receipt names.
 */
export async function uploadSigned(sftp: SFTPWrapper, credentials: AgencyCredentials, folder: string, name: string, data: Buffer): Promise<string> {
  const path = posix.join(folder, name);
  const signature = await signCms({ data, ...own(credentials), detached: true });
  await call<void>((done) => sftp.writeFile(`${path}.p7s`, signature, done));
  await call<void>((done) => sftp.writeFile(`${path}.part`, data, done));
  await call<void>((done) => sftp.rename(`${path}.part`, path, done));
  const receipt = JSON.parse((await call<Buffer>((done) => sftp.readFile(`/receipts/${name}.receipt.json`, done))).toString('utf8')) as { id: string };
  return receipt.id;
}

/**
 * Collects an agency's deliveries from `/inbox/` on the hub's server until closed: each NAME.json read for its facts,
 * NAME (the payload) checked against their SHA-256 and kept, then acknowledged by uploading NAME.p7s, the agency's
 * detached signature over the payload, which is the delivery's receipt. Stored in the order the folder lists them.
 */
export function startSftpCollector(login: SftpLogin, credentials: AgencyCredentials, inboxDir: string, onMessage: (entry: InboxEntry) => void, onError: (error: Error) => void) {
  let stopped = false;
  const stopping = new AbortController();
  let wake: () => void = () => undefined;
  const collecting = (async () => {
    while (!stopped) {
      await sftpSession(login, async (sftp) => {
        while (!stopped) {
          const names = (await call<{ filename: string }[]>((done) => sftp.readdir('/inbox', done))).map((file) => file.filename);
          for (const facts of names.filter((name) => name.endsWith('.json'))) {
            const name = facts.slice(0, -'.json'.length);
            const described = JSON.parse((await call<Buffer>((done) => sftp.readFile(`/inbox/${facts}`, done))).toString('utf8')) as {
              id: string; from: string; service: string; action: string; conversationId: string; refTo?: string; contentType: string; sha256: string; receivedAt: string;
            };
            const payload = await call<Buffer>((done) => sftp.readFile(`/inbox/${name}`, done));
            const entry = keepDelivery(inboxDir, {
              id: described.id, from: described.from, service: described.service, action: described.action, conversationId: described.conversationId,
              ...(described.refTo ? { refToMessageId: described.refTo } : {}), contentType: described.contentType, receivedAt: described.receivedAt,
            }, payload);
            if (entry && entry.sha256 !== described.sha256) throw new Error(`inbox/${name}: SHA-256 ${entry.sha256}, the hub lists ${described.sha256}`);
            if (entry) onMessage(entry);
            const signature = await signCms({ data: payload, ...own(credentials), detached: true });
            await call<void>((done) => sftp.writeFile(`/inbox/${name}.p7s`, signature, done));
          }
          if (names.length === 0) await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 500); });
        }
      }, stopping.signal).catch(async (error: unknown) => {
        if (stopped) return;
        onError(error as Error);
        await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 5_000); });
      });
    }
  })();
  return {
    async close() {
      stopped = true;
      stopping.abort();
      wake();
      await collecting;
    },
  };
}

/** An agency's own SFTP server as the hub reaches it: where, as whom, its host key's fingerprint, the folder pushed into. */
export interface SftpPushServer { port: number; user: string; fingerprint: string; inboxDir: string; outboxDir: string; close(): Promise<void> }

/**
 * The agency's own SFTP server, OpenSSH's sshd in `dir`, which lets the hub log in with its client key (`hubKey`, the
 * public key line) and push deliveries into `inbox/`. The hub writes each under a temporary name (`.NAME.part`) and
 * renames it once whole, so a file under its final name is complete: the agency's system takes them in the order renamed
 * (`onArrival` with the file's name), as it watches the folder. Files already there when it starts
 * were taken before. Its `outbox/` is where the agency drops signed files for the hub to collect (dropSigned).
 */
export async function startSftpPushServer(dir: string, hubKey: string, onArrival: (name: string) => void): Promise<SftpPushServer> {
  const sshd = await startSshd(dir, [hubKey]);
  const inboxDir = join(sshd.root, 'inbox');
  const outboxDir = join(sshd.root, 'outbox');
  mkdirSync(inboxDir, { recursive: true });
  mkdirSync(outboxDir, { recursive: true });
  const finalNames = () => readdirSync(inboxDir).filter((name) => !name.startsWith('.'));
  const taken = new Set(finalNames());
  const take = () => {
    const arrived = finalNames().filter((name) => !taken.has(name)).flatMap((name) => {
      try { return [{ name, renamedAt: statSync(join(inboxDir, name), { bigint: true }).ctimeNs }]; } catch { return []; }
    }).sort((a, b) => (a.renamedAt < b.renamedAt ? -1 : a.renamedAt > b.renamedAt ? 1 : 0));
    for (const { name } of arrived) { taken.add(name); onArrival(name); }
  };
  const watcher = watch(inboxDir, take);
  take();
  return {
    port: sshd.port, user: sshd.user, fingerprint: sshd.fingerprint, inboxDir, outboxDir,
    async close() { watcher.close(); await sshd.stop(); },
  };
}

/**
 * Drops a signed file into `folder` of the agency's own outbox, as its system does for the hub to collect: the file, then
 * its detached CMS signature NAME.p7s, each written under a temporary name (`.NAME.part`, never taken) and renamed, the
 * signature's arrival marking the file complete. Resolves with the message id once the hub has taken it (file and
 * signature removed), or rejects with the refusal the hub left in the error folder.
 */
export async function dropSigned(id: string, outboxDir: string, folder: string, name: string, data: Buffer, credentials: AgencyCredentials): Promise<string> {
  const dir = join(outboxDir, folder);
  mkdirSync(dir, { recursive: true });
  const place = (file: string, bytes: Buffer) => {
    writeFileSync(join(dir, `.${file}.part`), bytes);
    renameSync(join(dir, `.${file}.part`), join(dir, file));
  };
  place(name, data);
  place(`${name}.p7s`, await signCms({ data, ...own(credentials), detached: true }));
  const refusal = join(outboxDir, 'error', `${name}.error.json`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (existsSync(refusal)) throw new Error(`the hub refused ${id}'s ${folder}/${name}: ${readFileSync(refusal, 'utf8')}`);
    if (!existsSync(join(dir, name)) && !existsSync(join(dir, `${name}.p7s`))) break;
    if (Date.now() > deadline) throw new Error(`the hub has not collected ${id}'s ${folder}/${name} from its outbox after 120 s`);
    await sleep(100);
  }
  return outboxMessageId(id, posix.join(folder, name), createHash('sha256').update(data).digest('hex'));
}
