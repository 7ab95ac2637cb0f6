// SFTP outbox polling: the hub lists an agency's outbox folder on the agency's own SFTP server every interval and
// takes each complete file (never a temporary name; either its size and time unchanged across two listings, or its
// name.p7s present, as the endpoint says). The file streams into the Object Store with its SHA-256 computed on the
// way, its detached CMS signature name.p7s is checked by that digest against the agency's registered certificate, and it is handed
// to intake under an id derived from the agency, its path and its SHA-256. The remote file is removed (or moved to
// the done folder) only once intake resolved, i.e. JetStream acknowledged: a crash before that takes it again, and
// intake answers the repeat as a duplicate. A refusal is evidenced and the file moved to the error folder with
// name.error.json beside it.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCodes, SwxError } from '../../../engine/errors.ts';
import { log } from '../../../engine/log.ts';
import type { Payloads, StoredPayload } from '../../../engine/payloads.ts';
import type { Registry } from '../../../engine/registry.ts';
import type { Intake, RefusedSubmission, Submission } from '../../../engine/submission.ts';
import { checkDetachedSignature, type CertificateCheck, type PayloadVerifiers } from '../../../engine/trust/index.ts';
import { isTempName, type SftpClientEndpoint } from './endpoint.ts';
import { openSession, type SftpClientOptions } from './push.ts';
import type { SftpSession } from './session.ts';

export interface SftpOutboxPollerOptions extends SftpClientOptions {
  intake: Intake;
  registry: Registry;
  payloads: Payloads;
  /** Judges the agency's signing certificate: path, validity, usage, revocation. */
  trust: CertificateCheck;
  /** The signature checks (the signature pool's, off the event loop). */
  signatures: PayloadVerifiers;
  /** The largest file taken: a larger one is refused SWX_TOO_LARGE and moved to the error folder. */
  maxFileBytes: number;
}

/** What one listing found and did, for tests and logs. */
export interface PollResult { taken: string[]; refused: string[]; waiting: string[] }

const signatureSuffix = '.p7s';
const errorSuffix = '.error.json';

const contentTypes: [RegExp, string][] = [
  [/\.json$/i, 'application/json'], [/\.xml$/i, 'application/xml'], [/\.(p7m|p7s|cms)$/i, 'application/pkcs7-mime'],
  [/\.csv$/i, 'text/csv'], [/\.txt$/i, 'text/plain'], [/\.pdf$/i, 'application/pdf'], [/\.zip$/i, 'application/zip'],
];
const contentTypeOf = (name: string) => contentTypes.find(([ending]) => ending.test(name))?.[1] ?? 'application/octet-stream';

/** The id of a file taken from an agency's outbox: the same file at the same path is the same message. */
export function outboxMessageId(partner: string, path: string, sha256: string): string {
  return `sftp:${createHash('sha256').update(`${partner}\0${path}\0${sha256}`).digest('base64url')}`;
}

export class SftpOutboxPoller {
  private readonly stopping = new AbortController();
  private running?: Promise<void>;
  /** size:mtime of each file at the last listing: a file unchanged across two is complete. */
  private seen = new Map<string, string>();
  /** Why the last listing failed, until one succeeds: the connector's health names it. */
  private failing?: string;

  constructor(
    private readonly partner: string,
    private readonly endpoint: SftpClientEndpoint & { outboxDir: string },
    private readonly options: SftpOutboxPollerOptions,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { signal } = this.stopping;
    while (!signal.aborted) {
      await this.poll().then(() => {
        if (this.failing) log.info({ partner: this.partner }, 'SFTP outbox: listed again after failing');
        this.failing = undefined;
      }, (error: Error) => {
        const failing = `${this.partner}'s outbox at ${this.endpoint.host}:${this.endpoint.port}: ${error.message}`;
        // Once at warn while the same failure lasts (the health says it meanwhile), not at every interval.
        (failing === this.failing ? log.debug : log.warn).call(log, { err: error, partner: this.partner }, 'SFTP outbox: the listing failed; tried again at the next interval');
        this.failing = failing;
      });
      await sleep(this.endpoint.pollIntervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Why the last listing failed, or undefined while the agency's outbox is reachable (or not yet tried). */
  get problem(): string | undefined { return this.failing; }

  private get errorDir(): string { return this.endpoint.errorDir ?? posix.join(this.endpoint.outboxDir, 'error'); }

  /** One listing of the outbox: takes every complete file. */
  async poll(): Promise<PollResult> {
    const session = await openSession(this.partner, this.endpoint, this.options);
    const result: PollResult = { taken: [], refused: [], waiting: [] };
    try {
      const files = await session.whileConnected(this.list(session, this.endpoint.outboxDir, []));
      const names = new Set(files.map((file) => file.path));
      const seen = new Map<string, string>();
      for (const file of files) {
        if (this.stopping.signal.aborted) break;
        if (file.name.endsWith(signatureSuffix) || file.name.endsWith(errorSuffix) || isTempName(this.endpoint, file.name)) continue;
        seen.set(file.path, file.state);
        const complete = this.endpoint.complete === 'signature' ? names.has(`${file.path}${signatureSuffix}`) : this.seen.get(file.path) === file.state;
        if (!complete) { result.waiting.push(file.path); continue; }
        const outcome = await session.whileConnected(this.take(session, file.path, file.folders, file.size, names.has(`${file.path}${signatureSuffix}`)));
        (outcome === 'taken' ? result.taken : result.refused).push(file.path);
      }
      this.seen = seen;
    } finally {
      session.end();
    }
    return result;
  }

  /** The regular files under `dir`, three folders deep at most, the done and error folders left out. */
  private async list(session: SftpSession, dir: string, folders: string[]): Promise<{ path: string; name: string; folders: string[]; size: number; state: string }[]> {
    const found: { path: string; name: string; folders: string[]; size: number; state: string }[] = [];
    for (const entry of await session.list(dir)) {
      const path = posix.join(dir, entry.filename);
      if (entry.attrs.isDirectory()) {
        if (folders.length < 2 && path !== this.errorDir && path !== this.endpoint.doneDir && !entry.filename.startsWith('.')) {
          found.push(...await this.list(session, path, [...folders, entry.filename]));
        }
      } else if (entry.attrs.isFile()) {
        found.push({ path, name: entry.filename, folders, size: entry.attrs.size, state: `${entry.attrs.size}:${entry.attrs.mtime}` });
      }
    }
    return found;
  }

  /** Takes one file: stored, checked, accepted and removed, or refused and moved to the error folder. */
  private async take(session: SftpSession, path: string, folders: string[], size: number, signed: boolean): Promise<'taken' | 'refused'> {
    const partial: RefusedSubmission = { protocol: 'sftp', from: this.partner, action: 'deliver', contentType: contentTypeOf(path), payload: Buffer.alloc(0), ...this.addressOf(folders) };
    let stored: StoredPayload | undefined;
    try {
      if (size > this.options.maxFileBytes) throw new SwxError('SWX_TOO_LARGE', `${size} bytes is over the ${this.options.maxFileBytes} an outbox file may have`);
      stored = await this.options.payloads.receive(session.sftp.createReadStream(path), []);
      partial.id = outboxMessageId(this.partner, posix.relative(this.endpoint.outboxDir, path), stored.sha256);
      partial.stored = stored;
      if (!partial.service) throw new SwxError('SWX_BAD_REQUEST', `${path} is not in a folder that names a service, channel or topic: <service>/<RECEIVER>/file, <channel>/file or <topic>/file`);
      if (!signed) throw new SwxError('SWX_SIG_MISSING', `${path} has no detached CMS signature ${posix.basename(path)}${signatureSuffix}`);
      const signature = await this.readAll(session, `${path}${signatureSuffix}`);
      // Checked by the SHA-256 computed as the file streamed in: the file is never held whole.
      const { registry, signatures, trust } = this.options;
      partial.payloadSignature = await checkDetachedSignature(signature, Buffer.from(stored.sha256, 'hex'), this.partner, {
        verifiers: signatures, keyByThumbprint: (print) => registry.keyByThumbprint(print), trust,
      });
      await this.options.intake.accept(partial as Submission);
    } catch (error) {
      if (!(error instanceof SwxError) || errorCodes[error.code].status >= 500) {
        // The hub's failure, not the file's: it stays where it is and is taken at the next listing.
        if (stored) await this.options.payloads.discard(stored).catch(() => undefined);
        throw error;
      }
      await this.refuse(session, path, partial, error);
      if (stored) await this.options.payloads.discard(stored).catch(() => undefined);
      return 'refused';
    }
    // Stored and acknowledged: only now does the file leave the agency's outbox.
    await this.settle(session, path, this.endpoint.doneDir);
    return 'taken';
  }

  /** Where the folders a file is in address it: <service>/<RECEIVER>, or a channel's or topic's id. */
  private addressOf(folders: string[]): Pick<Submission, 'service' | 'to'> | Record<string, never> {
    if (folders.length === 2) return { service: folders[0]!, to: folders[1]! };
    if (folders.length !== 1) return {};
    const [id] = folders as [string];
    if (this.options.registry.channel(id)) return { service: `exchange.${id}` };
    if (this.options.registry.topic(id)) return { service: `notify.${id}` };
    return { service: id };
  }

  /** Evidences a refusal and moves the file (and its signature) to the error folder, name.error.json beside it. */
  private async refuse(session: SftpSession, path: string, partial: RefusedSubmission, error: SwxError): Promise<void> {
    const id = await this.options.intake.reject(partial, error);
    log.warn({ partner: this.partner, path, id, code: error.code }, 'SFTP outbox: file refused and moved to the error folder');
    await session.mkdirs(this.errorDir);
    const report = { messageId: id, file: path, code: error.code, title: errorCodes[error.code].title, detail: error.message, at: new Date().toISOString() };
    await session.writeFile(posix.join(this.errorDir, `${posix.basename(path)}${errorSuffix}`), Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
    await this.settle(session, path, this.errorDir);
  }

  /** Moves the file and its signature into `dir`, or removes them when there is none. */
  private async settle(session: SftpSession, path: string, dir: string | undefined): Promise<void> {
    if (dir) await session.mkdirs(dir);
    for (const file of [path, `${path}${signatureSuffix}`]) {
      if (!(await session.stat(file))) continue;
      if (dir) await session.replace(file, posix.join(dir, posix.basename(file)));
      else await session.unlink(file);
    }
  }

  private async readAll(session: SftpSession, path: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of session.sftp.createReadStream(path)) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }
}
