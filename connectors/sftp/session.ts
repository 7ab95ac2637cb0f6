// One agency's SFTP session over its virtual tree (tree.ts): listings drawn from the registry, uploads into its outbox
// streamed to the Object Store and taken once complete (take.ts), its receipts to read. Every request looks the agency
// up again, so disabling or removing it ends what it may do at once. Refusals that matter (traversal, symlinks,
// writing outside the outbox, overwriting a file in flight, the quota) are evidenced; a plain "no such file" is not.
import type { Readable } from 'node:stream';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';
import { SwxError } from '../../engine/errors.ts';
import { log } from '../../engine/log.ts';
import type { StoredPayload } from '../../engine/payloads.ts';
import type { Partner } from '../../engine/registry.ts';
import { sftpEndpoint, type SftpEndpoint } from './settings.ts';
import type { InboxFolder, InboxFolders } from './inbox.ts';
import type { Staging } from './staging.ts';
import { take, type TakeContext } from './take.ts';
import { pathParts, placeOf, subdirectories, type Place, type Target } from './tree.ts';
import { heldUpload, streamedUpload, type Upload } from './upload.ts';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;

/** Open handles one session may hold: a client needs a few. */
const maxHandles = 64;
/** Entries one READDIR answer carries. */
const entriesPerAnswer = 128;

export interface SessionContext extends TakeContext {
  staging: Staging;
  /** The hub-wide quota, when the agency's endpoint names none. */
  quotaBytes: number;
  /** The inbox folders of agencies that receive by pull. */
  inboxes: InboxFolders;
}

/** A file being uploaded in this session, until it is taken or abandoned. */
interface Staged {
  path: string;
  name: string;
  target: Target;
  upload: Upload;
  /** Bytes counted against the quota. */
  claimed: number;
  result?: StoredPayload | Buffer;
  failed?: SwxError;
}

type Handle =
  | { kind: 'dir'; entries: FileEntry[] }
  | { kind: 'write'; staged: Staged }
  | { kind: 'read'; bytes: Buffer }
  /** A payload in the inbox, read from where it is as the client asks, one request after the other. */
  | { kind: 'payload'; name: string; size: number; position: number; source?: Readable; chunks?: AsyncIterator<Buffer>; left: Buffer; queue: Promise<void> }
  /** NAME.p7s in the inbox: the acknowledgement of NAME, held until closed. */
  | { kind: 'ack'; name: string; upload: Upload };

const dirMode = 0o040755;
const fileMode = 0o100644;

function attributes(mode: number, size: number, at = new Date()): Attributes {
  const seconds = Math.floor(at.getTime() / 1000);
  return { mode, uid: 0, gid: 0, size, atime: seconds, mtime: seconds };
}

function entry(name: string, attrs: Attributes): FileEntry {
  const directory = (attrs.mode & 0o170000) === 0o040000;
  const date = new Date(attrs.mtime * 1000).toISOString().replace('T', ' ').slice(0, 16);
  return { filename: name, longname: `${directory ? 'drwxr-xr-x' : '-rw-r--r--'} 1 swx swx ${String(attrs.size).padStart(12)} ${date} ${name}`, attrs };
}

const isSignature = (name: string) => name.endsWith('.p7s');
const isPart = (name: string) => name.endsWith('.part');

/** The SFTP status for a refusal: what the client shows its user is the code and the detail. */
function statusOf(error: SwxError): number {
  if (error.code === 'SWX_NOT_FOUND') return STATUS_CODE.NO_SUCH_FILE;
  if (error.code === 'SWX_ACL_DENIED') return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
}

export class AgencySession {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  /** This session's uploads by path, until taken. */
  private readonly staged = new Map<string, Staged>();
  private closed = false;
  private readonly inbox: InboxFolder;

  constructor(
    private readonly sftp: SFTPWrapper, private readonly partnerId: string, private readonly context: SessionContext, private readonly end: () => void,
    /** How this session's login fell short of policy, allowed for the agency: carried into its transfers' evidence. */
    private readonly flags: readonly string[] = [],
  ) {
    this.inbox = context.inboxes.of(partnerId);
    const on = (event: string, handler: (id: number, ...args: any[]) => Promise<void> | void) => {
      sftp.on(event, (id: number, ...args: unknown[]) => {
        Promise.resolve().then(() => handler.call(this, id, ...args)).catch((error: unknown) => this.fail(id, error))
          // A reply on a channel the client already closed has no one to reach.
          .catch((error: unknown) => log.debug({ err: error, from: partnerId }, 'an SFTP reply could not be sent'));
      });
    };
    on('REALPATH', this.realpath);
    on('STAT', this.stat);
    on('LSTAT', this.stat);
    on('FSTAT', this.fstat);
    on('OPENDIR', this.opendir);
    on('READDIR', this.readdir);
    on('OPEN', this.open);
    on('WRITE', this.write);
    on('READ', this.read);
    on('CLOSE', this.close);
    on('RENAME', this.rename);
    on('REMOVE', this.remove);
    on('SETSTAT', this.setstat);
    on('FSETSTAT', this.setstat);
    on('MKDIR', () => { throw new SwxError('SWX_ACL_DENIED', 'the folders are the registry\'s: channels, topics, services and their receivers'); });
    on('RMDIR', () => { throw new SwxError('SWX_ACL_DENIED', 'the folders are the registry\'s: channels, topics, services and their receivers'); });
    on('READLINK', () => { throw new SwxError('SWX_NOT_FOUND', 'there are no links'); });
    on('SYMLINK', this.symlink);
    sftp.on('error', (error: Error) => {
      log.warn({ err: error.message, from: partnerId }, 'SFTP session ended on a protocol error');
      this.dispose();
    });
    sftp.on('close', () => this.dispose());
    // The client is done (EOF on the channel): close it, as OpenSSH's sftp-server exits, or the client waits.
    sftp.on('end', () => {
      this.dispose();
      sftp.end();
    });
  }

  /** The agency as registered now; a removed or disabled one has its session ended. */
  private partner(): Partner {
    const partner = this.context.registry.partner(this.partnerId);
    if (!partner || !partner.enabled) {
      this.end();
      throw new SwxError('SWX_ACL_DENIED', `${this.partnerId} is not an enabled partner`);
    }
    return partner;
  }

  private endpoint(partner: Partner): SftpEndpoint {
    return sftpEndpoint.parse(partner.endpoints.sftp ?? {});
  }

  private place(path: string, evidence = true): Promise<Place | undefined> | Place | undefined {
    const partner = this.partner();
    let parts: string[];
    try {
      parts = pathParts(path);
    } catch (error) {
      if (evidence && error instanceof SwxError) return this.refused(error).then(() => { throw error; });
      throw error;
    }
    return placeOf(this.context.registry, partner, parts);
  }

  /** Evidences a refusal of this agency (received, rejected with its code), as intake does for every protocol. */
  private async refused(error: SwxError, target?: Target): Promise<void> {
    await this.context.intake.reject({
      protocol: 'sftp', from: this.partnerId, payload: Buffer.alloc(0),
      ...(target ? { service: target.service, ...(target.to ? { to: target.to } : {}) } : {}),
    }, error).catch((evidenceError) => log.warn({ err: evidenceError, from: this.partnerId }, 'an SFTP refusal could not be evidenced'));
  }

  private fail(id: number, error: unknown): void {
    if (this.closed) return;
    if (!(error instanceof SwxError)) log.error({ err: error, from: this.partnerId }, 'SFTP request failed');
    const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not carry out this request; retry');
    this.sftp.status(id, statusOf(swx), `${swx.code}: ${swx.message}`);
  }

  private handle(handle: Handle): Buffer {
    if (this.handles.size >= maxHandles) throw new SwxError('SWX_BAD_REQUEST', `at most ${maxHandles} open files and folders per session`);
    const number = this.nextHandle++;
    this.handles.set(number, handle);
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(number);
    return bytes;
  }

  private handleOf(bytes: Buffer): [number, Handle] {
    const number = bytes.length === 4 ? bytes.readUInt32BE() : 0;
    const handle = this.handles.get(number);
    if (!handle) throw new SwxError('SWX_BAD_REQUEST', 'no such handle');
    return [number, handle];
  }

  private async realpath(id: number, path: string): Promise<void> {
    const parts = pathParts(path === '' ? '.' : path);
    const absolute = `/${parts.join('/')}`;
    this.sftp.name(id, [{ filename: absolute, longname: absolute, attrs: attributes(dirMode, 0) }]);
  }

  /**
   * NAME.sha256 beside a file whose SHA-256 the hub knows (an upload once closed, a delivery in the inbox), in the
   * form `sha256sum -c` reads: how an agency asks for a file's digest without a shell. (The check-file extension
   * cannot be answered through ssh2's server, and OpenSSH's sftp does not ask it.)
   */
  private checksum(place: Place | undefined): Buffer | undefined {
    if (place?.kind !== 'file' || !place.name.endsWith('.sha256')) return undefined;
    const name = place.name.slice(0, -'.sha256'.length);
    const staged = place.parent.kind === 'drop' ? this.staged.get(`${place.parent.path}/${name}`)?.result : undefined;
    const sha256 = staged && !Buffer.isBuffer(staged) ? staged.sha256 : place.parent.kind === 'inbox' ? this.inbox.file(name)?.sha256 : undefined;
    return sha256 ? Buffer.from(`${sha256}  ${name}\n`) : undefined;
  }

  /** The attributes of a place: a folder, a file this session is uploading, a receipt, a delivery, a checksum. */
  private attributesOf(place: Place | undefined): Attributes | undefined {
    if (!place) return undefined;
    if (place.kind !== 'file') return attributes(dirMode, 0);
    const checksum = this.checksum(place);
    if (checksum) return attributes(fileMode, checksum.length);
    if (place.parent.kind === 'receipts') {
      const file = this.context.receipts.get(this.partnerId, place.name);
      return file && attributes(fileMode, file.bytes.length, file.at);
    }
    if (place.parent.kind === 'inbox') {
      const file = this.inbox.file(place.name);
      return file && attributes(fileMode, file.size);
    }
    const staged = this.staged.get(place.path);
    return staged && attributes(fileMode, staged.upload.size);
  }

  private async stat(id: number, path: string): Promise<void> {
    const attrs = this.attributesOf(await this.place(path));
    if (!attrs) throw new SwxError('SWX_NOT_FOUND', 'no such file or folder');
    this.sftp.attrs(id, attrs);
  }

  private async fstat(id: number, bytes: Buffer): Promise<void> {
    const [, handle] = this.handleOf(bytes);
    const size = handle.kind === 'write' ? handle.staged.upload.size : handle.kind === 'read' ? handle.bytes.length : handle.kind === 'payload' ? handle.size : 0;
    this.sftp.attrs(id, attributes(handle.kind === 'dir' ? dirMode : fileMode, size));
  }

  private async opendir(id: number, path: string): Promise<void> {
    const place = await this.place(path);
    if (!place || place.kind === 'file') throw new SwxError('SWX_NOT_FOUND', 'no such folder');
    const entries = subdirectories(this.context.registry, this.partner(), place).map((name) => entry(name, attributes(dirMode, 0)));
    if (place.kind === 'drop') {
      for (const staged of this.staged.values()) if (staged.target.dir === place.path) entries.push(entry(staged.name, attributes(fileMode, staged.upload.size)));
    }
    if (place.kind === 'receipts') {
      for (const [name, file] of this.context.receipts.list(this.partnerId)) entries.push(entry(name, attributes(fileMode, file.bytes.length, file.at)));
    }
    if (place.kind === 'inbox') {
      for (const file of await this.inbox.list()) entries.push(entry(file.name, attributes(fileMode, file.size)));
    }
    this.sftp.handle(id, this.handle({ kind: 'dir', entries: [entry('.', attributes(dirMode, 0)), entry('..', attributes(dirMode, 0)), ...entries] }));
  }

  private async readdir(id: number, bytes: Buffer): Promise<void> {
    const [, handle] = this.handleOf(bytes);
    if (handle.kind !== 'dir') throw new SwxError('SWX_BAD_REQUEST', 'not a folder handle');
    if (handle.entries.length === 0) {
      this.sftp.status(id, STATUS_CODE.EOF);
      return;
    }
    this.sftp.name(id, handle.entries.splice(0, entriesPerAnswer));
  }

  private async open(id: number, path: string, flags: number): Promise<void> {
    const place = await this.place(path);
    if (!(flags & OPEN_MODE.WRITE)) {
      const checksum = this.checksum(place);
      if (checksum) {
        this.sftp.handle(id, this.handle({ kind: 'read', bytes: checksum }));
        return;
      }
      if (place?.kind === 'file' && place.parent.kind === 'receipts') {
        const file = this.context.receipts.get(this.partnerId, place.name);
        if (file) {
          this.sftp.handle(id, this.handle({ kind: 'read', bytes: file.bytes }));
          return;
        }
      }
      const delivery = place?.kind === 'file' && place.parent.kind === 'inbox' ? this.inbox.file(place.name) : undefined;
      if (delivery) {
        const handle: Handle = delivery.bytes
          ? { kind: 'read', bytes: delivery.bytes }
          : { kind: 'payload', name: delivery.name, size: delivery.size, position: 0, left: Buffer.alloc(0), queue: Promise.resolve() };
        this.sftp.handle(id, this.handle(handle));
        return;
      }
      if (place?.kind === 'file' && this.staged.has(place.path)) throw new SwxError('SWX_ACL_DENIED', 'a file being uploaded cannot be read back; its SHA-256 is in its receipt once it is taken');
      throw new SwxError('SWX_NOT_FOUND', 'no such file');
    }
    if (place?.kind === 'file' && place.parent.kind === 'inbox' && this.inbox.acknowledges(place.name)) {
      this.sftp.handle(id, this.handle({ kind: 'ack', name: place.name, upload: heldUpload() }));
      return;
    }
    if (place?.kind !== 'file' || place.parent.kind !== 'drop') {
      const error = new SwxError('SWX_ACL_DENIED', 'files are written only into the outbox: /outbox/<channel>/, /outbox/<topic>/ or /outbox/<service>/<RECEIVER>/, as the listing shows');
      await this.refused(error);
      throw error;
    }
    const target = place.parent.target;
    const partner = this.partner();
    const endpoint = this.endpoint(partner);
    if (endpoint.completion === 'rename' && !isPart(place.name) && !isSignature(place.name)) {
      throw new SwxError('SWX_ACL_DENIED', `${partner.id} completes its uploads by rename: write ${place.name}.part, then rename it to ${place.name} (and upload ${place.name}.p7s, its detached CMS signature, before that)`);
    }
    try {
      this.context.staging.claimPath(partner.id, place.path);
    } catch (error) {
      if (error instanceof SwxError) await this.refused(error, target);
      throw error;
    }
    const signature = isSignature(place.name) || place.name.endsWith('.p7s.part');
    const staged: Staged = { path: place.path, name: place.name, target, upload: signature ? heldUpload() : streamedUpload(this.context.payloads), claimed: 0 };
    this.staged.set(place.path, staged);
    this.sftp.handle(id, this.handle({ kind: 'write', staged }));
  }

  private async write(id: number, bytes: Buffer, offset: number, data: Buffer): Promise<void> {
    const [, handle] = this.handleOf(bytes);
    if (handle.kind === 'ack') {
      await handle.upload.write(offset, data);
      this.sftp.status(id, STATUS_CODE.OK);
      return;
    }
    if (handle.kind !== 'write') throw new SwxError('SWX_BAD_REQUEST', 'not opened for writing');
    const { staged } = handle;
    if (staged.failed) throw staged.failed;
    try {
      this.context.staging.claimBytes(this.partnerId, data.length, this.endpoint(this.partner()).quotaBytes ?? this.context.quotaBytes);
      staged.claimed += data.length;
      await staged.upload.write(offset, data);
    } catch (error) {
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the upload could not be stored; upload the file again', { cause: error });
      if (!staged.failed) {
        staged.failed = swx;
        staged.upload.abort(swx.message);
        if (swx.code === 'SWX_TOO_LARGE') await this.refused(swx, staged.target);
      }
      throw swx;
    }
    this.sftp.status(id, STATUS_CODE.OK);
  }

  private async read(id: number, bytes: Buffer, offset: number, length: number): Promise<void> {
    const [, handle] = this.handleOf(bytes);
    if (handle.kind === 'payload') {
      // One read after the other, so that each continues the stream where the last ended.
      const reading = handle.queue.then(() => this.readPayload(id, handle, offset, length));
      handle.queue = reading.catch(() => undefined);
      return reading;
    }
    if (handle.kind !== 'read') throw new SwxError('SWX_BAD_REQUEST', 'not opened for reading');
    if (offset >= handle.bytes.length) {
      this.sftp.status(id, STATUS_CODE.EOF);
      return;
    }
    this.sftp.data(id, handle.bytes.subarray(offset, offset + length));
  }

  /** Reads a delivery's payload at `offset`: from the open stream when it continues it, else from a stream opened there. */
  private async readPayload(id: number, handle: Extract<Handle, { kind: 'payload' }>, offset: number, length: number): Promise<void> {
    if (offset !== handle.position || !handle.chunks) {
      handle.source?.destroy();
      handle.source = this.inbox.payload(handle.name, offset);
      handle.chunks = handle.source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      handle.left = Buffer.alloc(0);
      handle.position = offset;
    }
    while (handle.left.length < length) {
      const { done, value } = await handle.chunks.next();
      if (done) break;
      handle.left = handle.left.length ? Buffer.concat([handle.left, value]) : value;
    }
    if (handle.left.length === 0) {
      this.sftp.status(id, STATUS_CODE.EOF);
      return;
    }
    const part = handle.left.subarray(0, length);
    handle.left = handle.left.subarray(part.length);
    handle.position += part.length;
    this.sftp.data(id, part);
  }

  private async close(id: number, bytes: Buffer): Promise<void> {
    const [number, handle] = this.handleOf(bytes);
    this.handles.delete(number);
    if (handle.kind === 'payload') handle.source?.destroy();
    if (handle.kind === 'ack') {
      await this.inbox.acknowledge(handle.name, await handle.upload.finish() as Buffer, this.flags);
      this.sftp.status(id, STATUS_CODE.OK);
      return;
    }
    if (handle.kind !== 'write') {
      this.sftp.status(id, STATUS_CODE.OK);
      return;
    }
    const { staged } = handle;
    if (staged.failed) {
      this.discard(staged);
      throw staged.failed;
    }
    staged.result = await staged.upload.finish();
    // Completion by signature: the file, or its signature, closing second completes the pair.
    const partner = this.partner();
    if (this.endpoint(partner).completion === 'signature' && !isPart(staged.name)) {
      const dataName = isSignature(staged.name) ? staged.name.slice(0, -'.p7s'.length) : staged.name;
      const data = this.staged.get(`${staged.target.dir}/${dataName}`);
      const signature = this.staged.get(`${staged.target.dir}/${dataName}.p7s`);
      if (data?.result && signature?.result) {
        await this.complete(id, data, signature);
        return;
      }
    }
    this.sftp.status(id, STATUS_CODE.OK);
  }

  private async rename(id: number, from: string, to: string): Promise<void> {
    const [source, target] = [await this.place(from), await this.place(to)];
    const staged = source?.kind === 'file' ? this.staged.get(source.path) : undefined;
    if (!staged || target?.kind !== 'file' || target.parent.kind !== 'drop' || target.parent.path !== staged.target.dir || `${target.name}.part` !== staged.name) {
      throw new SwxError('SWX_ACL_DENIED', 'the one rename is NAME.part to NAME in the same folder, once NAME.part is written and closed');
    }
    if (!staged.result) throw new SwxError('SWX_BAD_REQUEST', `${staged.name} is still open: close it before renaming it`);
    if (this.staged.has(target.path)) {
      const error = new SwxError('SWX_DUPLICATE_CONFLICT', `${target.name} is being uploaded already and is not complete: it cannot be overwritten`);
      await this.refused(error, staged.target);
      throw error;
    }
    // The file now goes by its final name.
    this.staged.delete(staged.path);
    this.context.staging.releasePath(this.partnerId, staged.path);
    this.context.staging.claimPath(this.partnerId, target.path);
    Object.assign(staged, { path: target.path, name: target.name });
    this.staged.set(target.path, staged);
    if (isSignature(target.name)) {
      this.sftp.status(id, STATUS_CODE.OK);
      return;
    }
    await this.complete(id, staged, this.staged.get(`${target.path}.p7s`));
  }

  /** Hands a complete file to intake with its signature and answers the request that completed it. */
  private async complete(id: number, data: Staged, signature: Staged | undefined): Promise<void> {
    const body = data.result as StoredPayload;
    const taken = await take(this.context, this.partnerId, data.target, data.name, body, signature?.result as Buffer | undefined, this.flags);
    // Taken or refused, the file and its signature leave the outbox; the body was handed on or removed.
    this.release(data);
    if (signature) this.release(signature);
    if (this.closed) return;
    if (taken.ok) this.sftp.status(id, STATUS_CODE.OK);
    else this.sftp.status(id, STATUS_CODE.FAILURE, `${taken.error.code}: ${taken.error.message} (receipts/${data.name}.error.json)`);
  }

  private async remove(id: number, path: string): Promise<void> {
    const place = await this.place(path);
    if (place?.kind === 'file' && place.parent.kind === 'receipts' && this.context.receipts.remove(this.partnerId, place.name)) {
      this.sftp.status(id, STATUS_CODE.OK);
      return;
    }
    const staged = place?.kind === 'file' ? this.staged.get(place.path) : undefined;
    if (staged && [...this.handles.values()].every((handle) => handle.kind !== 'write' || handle.staged !== staged)) {
      this.discard(staged);
      this.sftp.status(id, STATUS_CODE.OK);
      return;
    }
    throw new SwxError(staged ? 'SWX_BAD_REQUEST' : 'SWX_NOT_FOUND', staged ? 'the file is still open' : 'no such file');
  }

  private async setstat(id: number): Promise<void> {
    // Times and modes mean nothing in the virtual tree; clients that preserve them (put -p) are let be.
    this.sftp.status(id, STATUS_CODE.OK);
  }

  private async symlink(): Promise<void> {
    const error = new SwxError('SWX_ACL_DENIED', 'links cannot be made: the tree has files and folders only');
    await this.refused(error);
    throw error;
  }

  /** The file leaves this session's staging: its path and quota are free again (the body is handed on or gone). */
  private release(staged: Staged): void {
    this.staged.delete(staged.path);
    this.context.staging.releasePath(this.partnerId, staged.path);
    this.context.staging.releaseBytes(this.partnerId, staged.claimed);
    staged.claimed = 0;
  }

  /** An upload abandoned: what it stored is removed. */
  private discard(staged: Staged): void {
    this.release(staged);
    if (!staged.result) staged.upload.abort('the upload was abandoned');
    else if (!Buffer.isBuffer(staged.result)) {
      void this.context.payloads.discard(staged.result).catch((error) => log.warn({ err: error, ref: (staged.result as StoredPayload).payloadRef }, 'an abandoned upload could not be removed'));
    }
  }

  /** The session ended: uploads not taken are abandoned. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const staged of [...this.staged.values()]) this.discard(staged);
    for (const handle of this.handles.values()) if (handle.kind === 'payload') handle.source?.destroy();
    this.handles.clear();
  }
}
