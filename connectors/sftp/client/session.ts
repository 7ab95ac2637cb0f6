// One SFTP session on an agency's own server: the SSH handshake refuses any host key but the pinned one (never trust
// on first use), the hub logs in with its own client key, and the session's calls are promises. Errors carry what the
// callers decide on: a pinned-key mismatch, a login refused, or the SFTP status code of a failed call.
import { Writable } from 'node:stream';
import { Client, type SFTPWrapper, type Stats, type FileEntryWithStats } from 'ssh2';
import { fingerprintOf } from '../../../engine/ssh-key.ts';
import type { SftpClientEndpoint } from './endpoint.ts';

/** SFTP status codes (draft-ietf-secsh-filexfer-02) the client acts on. */
export const sftpStatus = { eof: 1, noSuchFile: 2, permissionDenied: 3, failure: 4 } as const;

/** The host key presented was not the pinned one: the server is not the agency's, or its key changed. */
export class HostKeyMismatch extends Error {
  constructor(readonly presented: string, readonly pinned: string) {
    super(`host key ${presented} is not the pinned ${pinned}: refused (a changed key must be pinned anew by an operator)`);
  }
}

/**
 * Read and write requests kept in flight on one file, as OpenSSH's sftp keeps 64: with one at a time, each 32 KiB
 * waits a round trip, and a push ran at about 10 MiB/s on an idle machine.
 */
const requestsInFlight = 32;
const requestBytes = 32 * 1024;

/** The SFTP status code of a failed call, if it was one. */
export const statusOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
};

export class SftpSession {
  /**
   * Rejects once the connection is gone: a call in flight on a connection that died may never be answered (a write
   * stream waits for ever), so callers race their work against it.
   */
  readonly lost: Promise<never>;

  private constructor(private readonly client: Client, readonly sftp: SFTPWrapper, readonly fingerprint: string) {
    this.lost = new Promise<never>((_resolve, reject) => {
      client.once('close', () => reject(new Error('the SSH connection closed')));
      client.on('error', (error) => reject(error));
    });
    this.lost.catch(() => undefined);
  }

  /** `work`, failed as soon as the connection is lost. */
  whileConnected<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.lost]);
  }

  /** Logs in to the endpoint's server with `privateKey`, the host key checked against the pin before anything else. */
  static open(endpoint: SftpClientEndpoint, privateKey: Buffer): Promise<SftpSession> {
    const client = new Client();
    let mismatch: HostKeyMismatch | undefined;
    let presented = '';
    return new Promise<SftpSession>((resolve, reject) => {
      const fail = (error: Error) => { client.end(); reject(mismatch ?? error); };
      client.once('error', fail);
      client.once('ready', () => {
        client.sftp((error, sftp) => {
          if (error) return fail(error);
          client.removeListener('error', fail);
          resolve(new SftpSession(client, sftp, presented));
        });
      });
      client.connect({
        host: endpoint.host,
        port: endpoint.port,
        username: endpoint.user,
        privateKey,
        readyTimeout: endpoint.connectTimeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          presented = fingerprintOf(key);
          if (presented === endpoint.hostKeyFingerprint) return true;
          mismatch = new HostKeyMismatch(presented, endpoint.hostKeyFingerprint);
          return false;
        },
      });
    });
  }

  stat(path: string): Promise<Stats | undefined> {
    return new Promise((resolve, reject) => this.sftp.stat(path, (error, stats) => {
      if (error && statusOf(error) === sftpStatus.noSuchFile) resolve(undefined);
      else if (error) reject(error);
      else resolve(stats);
    }));
  }

  list(path: string): Promise<FileEntryWithStats[]> {
    return new Promise((resolve, reject) => this.sftp.readdir(path, (error, list) => (error ? reject(error) : resolve(list))));
  }

  rename(from: string, to: string): Promise<void> {
    return new Promise((resolve, reject) => this.sftp.rename(from, to, (error) => (error ? reject(error) : resolve())));
  }

  /** Renames over a file already at `to`, with OpenSSH's posix-rename where the server offers it (plain rename refuses). */
  replace(from: string, to: string): Promise<void> {
    const posixRename = (this.sftp as unknown as { ext_openssh_rename?: (a: string, b: string, cb: (error?: Error) => void) => void }).ext_openssh_rename;
    if (!posixRename) return this.rename(from, to);
    return new Promise((resolve, reject) => posixRename.call(this.sftp, from, to, (error) => (error ? reject(error) : resolve())));
  }

  unlink(path: string): Promise<void> {
    return new Promise((resolve, reject) => this.sftp.unlink(path, (error) => (error ? reject(error) : resolve())));
  }

  /** Makes the folder and any missing parent; one that exists is fine. */
  async mkdirs(path: string): Promise<void> {
    if (path === '/' || (await this.stat(path))?.isDirectory()) return;
    await this.mkdirs(path.slice(0, path.lastIndexOf('/')) || '/');
    await new Promise<void>((resolve, reject) => this.sftp.mkdir(path, (error) => (error && statusOf(error) !== sftpStatus.failure ? reject(error) : resolve())));
  }

  /** Writes `bytes` to a new file (replacing one there). */
  writeFile(path: string, bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sftp.writeFile(path, bytes, (error) => (error ? reject(error) : resolve())));
  }

  private open(path: string, flags: 'r' | 'w' | 'r+'): Promise<Buffer> {
    return new Promise((resolve, reject) => this.sftp.open(path, flags, (error, handle) => (error ? reject(error) : resolve(handle))));
  }

  private close(handle: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sftp.close(handle, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * A Writable onto `path` from byte `start` (`w` makes the file anew, `r+` writes into the one there), with up to
   * `requestsInFlight` write requests outstanding; it finishes once every write is answered and the file closed.
   */
  async writer(path: string, start: number, flags: 'w' | 'r+'): Promise<Writable> {
    const handle = await this.open(path, flags);
    const sftp = this.sftp;
    let position = start;
    let outstanding = 0;
    let failed: Error | undefined;
    let wake: (() => void) | undefined;
    const settle = (error?: Error | null) => {
      if (error) failed ??= error;
      outstanding -= 1;
      const waiting = wake;
      wake = undefined;
      waiting?.();
    };
    const whileAbove = async (limit: number) => {
      while (outstanding > limit && !failed) await new Promise<void>((resolve) => { wake = resolve; });
      if (failed) throw failed;
    };
    return new Writable({
      write(chunk: Buffer, _encoding, done) {
        (async () => {
          for (let offset = 0; offset < chunk.length; offset += requestBytes) {
            await whileAbove(requestsInFlight - 1);
            const piece = chunk.subarray(offset, offset + requestBytes);
            outstanding += 1;
            sftp.write(handle, piece, 0, piece.length, position, settle);
            position += piece.length;
          }
        })().then(() => done(), done);
      },
      final: (done) => {
        whileAbove(0).then(() => this.close(handle)).then(() => done(), done);
      },
      destroy: (error, done) => {
        if (!error) return done(null);
        this.close(handle).then(() => done(error), () => done(error));
      },
    });
  }

  /**
   * The bytes of `path` from byte `start` on, in order, read with up to `requestsInFlight` requests outstanding; a read
   * answered short (a server's own limit) has the rest of its range read before the next is given.
   */
  async *reader(path: string, start = 0): AsyncGenerator<Buffer> {
    const handle = await this.open(path, 'r');
    const read = (at: number, length: number) => new Promise<Buffer>((resolve, reject) => {
      this.sftp.read(handle, Buffer.allocUnsafe(length), 0, length, at, (error, bytes, buffer) => (error ? reject(error) : resolve(buffer.subarray(0, bytes))));
    });
    const pending: { at: number; answer: Promise<Buffer> }[] = [];
    let next = start;
    const request = () => {
      pending.push({ at: next, answer: read(next, requestBytes) });
      pending.at(-1)!.answer.catch(() => undefined);
      next += requestBytes;
    };
    try {
      for (let i = 0; i < requestsInFlight; i++) request();
      for (;;) {
        const { at, answer } = pending.shift()!;
        let piece = await answer;
        for (let got = piece.length; ; got += piece.length) {
          if (piece.length === 0) return; // the end of the file
          yield piece;
          if (got === requestBytes) break;
          piece = await read(at + got, requestBytes - got);
        }
        request();
      }
    } finally {
      await Promise.allSettled(pending.map(({ answer }) => answer));
      await this.close(handle).catch(() => undefined);
    }
  }

  /** Closes the connection; `abrupt` drops the socket as a failed network would. */
  end(abrupt = false): void {
    if (abrupt) (this.client as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
    this.client.end();
  }
}
