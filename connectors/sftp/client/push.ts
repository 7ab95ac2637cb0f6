// SFTP push: the hub delivers a message as a file into the agency's inbox folder on the agency's own SFTP server.
// The server's host key must be the pinned one; the file is written under a temporary name, checked whole by
// SHA-256 (re-read over SFTP: OpenSSH's sftp-server offers no check-file extension) and only then renamed to its
// final name, so the agency never sees a partial or corrupt file. A transfer cut short resumes from the size the
// temporary file already has. The agency's server signs nothing: the receipt is the hub's own record of the
// transfer (file, size, SHA-256, the host key it spoke to), CMS-signed by the hub.
import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Envelope } from '../../../engine/envelope.ts';
import type { HubIdentity } from '../../../engine/identity.ts';
import { log } from '../../../engine/log.ts';
import { deliveryDeadlineMs, DeliveryError, type OutgoingPayload, type Outbound, type Receipt } from '../../../engine/outbound.ts';
import type { Partner } from '../../../engine/registry.ts';
import { signCms } from '../../../engine/trust/index.ts';
import { tempNameOf, type SftpClientEndpoint } from './endpoint.ts';
import { HostKeyMismatch, SftpSession, sftpStatus, statusOf } from './session.ts';

export interface SftpClientOptions {
  /** The hub's SSH client key of this name (see SftpClientEndpoint.clientKey), as an OpenSSH or PEM private key. */
  clientKey(name: string): Promise<Buffer> | Buffer;
}

export interface SftpPushOptions extends SftpClientOptions {
  /** The hub's signing key: the receipt of a transfer is the hub's signed record of it. */
  signing: HubIdentity['signing'];
  /** The delivery timeout; a large payload gets more at the slowest rate allowed (deliveryDeadlineMs). */
  timeoutMs: number;
}

const extensions: [RegExp, string][] = [
  [/^application\/(pkcs7-mime|x-pkcs7-mime|cms)\b/i, '.p7m'],
  [/^application\/([a-z0-9.+-]*\+)?json\b/i, '.json'],
  [/^(application|text)\/([a-z0-9.+-]*\+)?xml\b/i, '.xml'],
  [/^application\/pdf\b/i, '.pdf'],
  [/^application\/zip\b/i, '.zip'],
  [/^text\/csv\b/i, '.csv'],
  [/^text\/plain\b/i, '.txt'],
  // A payload package (several payloads of one AS4 or ebMS 2.0 message): a MIME multipart/related body.
  [/^multipart\/related\b/i, '.mime'],
];

/** The file name a delivery is written under: its message id and an extension from its content type. */
export function fileNameOf(envelope: Pick<Envelope, 'id' | 'contentType'>): string {
  return `${envelope.id}${extensions.find(([type]) => type.test(envelope.contentType))?.[1] ?? '.bin'}`;
}

/** What the hub signs as the receipt of a transfer. */
export interface TransferRecord {
  messageId: string;
  to: string;
  server: string;
  hostKey: string;
  file: string;
  size: number;
  sha256: string;
  /** The transfer found the file already complete under its final name: a repeat whose first receipt was lost. */
  duplicate: boolean;
  /** Bytes already on the server under the temporary name when this transfer began, checked to be the payload's first bytes. */
  resumedFrom: number;
  /** Bytes this transfer wrote: the size less what it resumed from. */
  written: number;
  /** Bytes of a partial file that were not the payload's first bytes, written over from the start. */
  discarded: number;
  at: string;
}

/** A failed SFTP call as a delivery failure: permission denied is the agency's refusal, anything else may pass. */
function failure(partner: string, what: string, error: unknown): DeliveryError {
  if (error instanceof DeliveryError) return error;
  if (statusOf(error) === sftpStatus.permissionDenied) {
    return new DeliveryError(false, 'SWX_DELIVERY_REJECTED', `${partner}'s SFTP server refused ${what}: permission denied`);
  }
  return new DeliveryError(true, 'SWX_UNAVAILABLE', `${partner} over SFTP, ${what}: ${(error as Error).message}`);
}

/** Opens a session on the partner's server; a host key that is not the pinned one is a permanent, logged refusal. */
export async function openSession(partner: string, endpoint: SftpClientEndpoint, options: SftpClientOptions): Promise<SftpSession> {
  try {
    return await SftpSession.open(endpoint, Buffer.from(await options.clientKey(endpoint.clientKey)));
  } catch (error) {
    if (error instanceof HostKeyMismatch) {
      log.error({ partner, host: endpoint.host, port: endpoint.port, presented: error.presented, pinned: error.pinned }, 'SFTP: the server presented a host key that is not the pinned one; refused');
      throw new DeliveryError(false, 'SWX_SIG_KEY_MISMATCH', `${partner}'s SFTP server ${endpoint.host}:${endpoint.port}: ${error.message}`);
    }
    throw failure(partner, `logging in to ${endpoint.host}:${endpoint.port}`, error);
  }
}

/** Hashes what `source` yields into `hash`, `limit` bytes at most; the bytes counted. */
async function hashInto(source: Readable, hash: Hash, limit = Infinity): Promise<number> {
  let size = 0;
  try {
    for await (const chunk of source) {
      const piece = (chunk as Buffer).subarray(0, limit - size);
      hash.update(piece);
      size += piece.length;
      if (size >= limit) break;
    }
  } finally {
    source.destroy();
  }
  return size;
}

/** The SHA-256 state and size of a remote file from byte `start` on, continuing `hash` (a copy of the prefix's). */
async function remoteDigest(session: SftpSession, path: string, start = 0, hash: Hash = createHash('sha256')): Promise<{ hash: Hash; size: number }> {
  const size = await hashInto(Readable.from(session.reader(path, start)), hash);
  return { hash, size: start + size };
}

/** The payload from byte `start` on: a ranged open where the payload has one, else its stream with the start skipped. */
function payloadFrom(payload: OutgoingPayload, start: number): Readable {
  if (start === 0) return payload.open();
  if (payload.held) return Readable.from([payload.held.subarray(start)]);
  if (payload.openAt) return payload.openAt(start);
  let skip = start;
  return payload.open().pipe(new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (skip >= chunk.length) { skip -= chunk.length; return done(); }
      const rest = chunk.subarray(skip);
      skip = 0;
      done(null, rest);
    },
  }));
}

/** Where a transfer starts: the offset, the SHA-256 state of the bytes before it, and the size of a partial file dropped. */
interface Resume { from: number; discarded: number; prefix?: Hash }

export class SftpPushOutbound implements Outbound {
  constructor(private readonly options: SftpPushOptions) {}

  async deliver(envelope: Envelope, payload: OutgoingPayload, partner: Partner, endpoint: SftpClientEndpoint): Promise<Receipt> {
    if (!endpoint.inboxDir) throw new DeliveryError(false, 'SWX_UNKNOWN_RECEIVER', `${partner.id} has no SFTP inbox folder`);
    const deadlineMs = deliveryDeadlineMs(this.options.timeoutMs, payload.size);
    const session = await openSession(partner.id, endpoint, this.options);
    const timer = setTimeout(() => session.end(true), deadlineMs);
    // Ends the payload's stream when the connection dies under a write that will never be answered.
    const abandon = new AbortController();
    try {
      const record = await session.whileConnected(this.transfer(session, envelope, payload, partner.id, endpoint, endpoint.inboxDir, abandon.signal));
      const signed = await signCms({ data: Buffer.from(JSON.stringify(record)), certPem: this.options.signing.certPem, keyPem: this.options.signing.keyPem });
      return { status: 200, duplicate: record.duplicate, raw: JSON.stringify({ transfer: record, hubSignature: signed.toString('base64') }) };
    } catch (error) {
      throw failure(partner.id, `delivering ${envelope.id}`, error);
    } finally {
      abandon.abort();
      clearTimeout(timer);
      session.end();
    }
  }

  private async transfer(session: SftpSession, envelope: Envelope, payload: OutgoingPayload, partner: string, endpoint: SftpClientEndpoint, inboxDir: string, signal: AbortSignal): Promise<TransferRecord> {
    const name = fileNameOf(envelope);
    const final = posix.join(inboxDir, name);
    const temp = posix.join(inboxDir, tempNameOf(endpoint, name));
    const record = (duplicate: boolean, resume: Resume = { from: 0, discarded: 0 }): TransferRecord => ({
      messageId: envelope.id, to: partner, server: `${endpoint.host}:${endpoint.port}`, hostKey: session.fingerprint,
      file: final, size: payload.size, sha256: payload.sha256, duplicate, resumedFrom: resume.from,
      written: duplicate ? 0 : payload.size - resume.from, discarded: resume.discarded, at: new Date().toISOString(),
    });

    // Already there whole (a repeat whose receipt was lost): nothing to write.
    const there = await session.stat(final).catch((error) => { throw failure(partner, `looking at ${final}`, error); });
    if (there && there.size === payload.size && (await remoteDigest(session, final)).hash.digest('hex') === payload.sha256) return record(true);

    const resume = await this.resumable(session, temp, payload).catch((error) => { throw failure(partner, `reading ${temp} back`, error); });
    if (resume.from < payload.size || !resume.prefix) {
      const written = async () => pipeline(payloadFrom(payload, resume.from), await session.writer(temp, resume.from, resume.from > 0 ? 'r+' : 'w'), { signal });
      await written().catch((error) => { throw failure(partner, `writing ${temp}`, error); });
    }
    // The bytes appended are read back and hashed on from the prefix's state: the whole file is checked, each byte read once.
    const written = await remoteDigest(session, temp, resume.from, resume.prefix).catch((error) => { throw failure(partner, `reading ${temp} back`, error); });
    const sha256 = written.hash.digest('hex');
    if (written.size !== payload.size || sha256 !== payload.sha256) {
      // Not what was sent (a server that corrupted the bytes, a file changed under us): start again.
      await session.unlink(temp).catch(() => undefined);
      throw new DeliveryError(true, 'SWX_DIGEST_MISMATCH', `${partner}'s SFTP server holds ${written.size} bytes with SHA-256 ${sha256} under ${temp}, not the ${payload.size} bytes sent; written again on the next attempt`);
    }
    await (there ? session.replace(temp, final) : session.rename(temp, final)).catch((error) => { throw failure(partner, `renaming ${temp} to ${final}`, error); });
    return record(false, resume);
  }

  /**
   * Where a transfer cut short may go on from: the size of the temporary file already there, only when its bytes are
   * the payload's own first bytes (SHA-256 of both prefixes). A partial file holding anything else (another payload
   * under the name, bytes the server corrupted, a file longer than the payload) is written afresh, never extended.
   */
  private async resumable(session: SftpSession, temp: string, payload: OutgoingPayload): Promise<Resume> {
    const partial = await session.stat(temp);
    if (!partial || partial.size === 0) return { from: 0, discarded: 0 };
    if (partial.size <= payload.size) {
      const remote = await remoteDigest(session, temp);
      const local = createHash('sha256');
      const size = remote.size <= payload.size ? await hashInto(payloadFrom(payload, 0), local, remote.size) : -1;
      if (size === remote.size && local.digest('hex') === remote.hash.copy().digest('hex')) return { from: remote.size, discarded: 0, prefix: remote.hash };
    }
    log.warn({ temp, size: partial.size }, 'SFTP push: the partial file on the server is not the start of this payload; written afresh');
    return { from: 0, discarded: partial.size };
  }
}
