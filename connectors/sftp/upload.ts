// A file as an agency uploads it: written into the Object Store as it arrives (hashed on the way), never held whole,
// with backpressure: a write is answered only once the store has taken what came before, so a slow store slows the
// sender (whose SFTP client keeps a bounded number of writes outstanding) instead of filling memory. Detached
// signatures (NAME.p7s) are small and held whole.
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { SwxError } from '../../engine/errors.ts';
import type { Payloads, StoredPayload } from '../../engine/payloads.ts';

/** The largest detached signature held: a CMS SignedData with a certificate chain is a few KiB. */
export const maxSignatureBytes = 64 * 1024;
/** What the stream in front of the Object Store buffers before a write waits for it. */
const windowBytes = 1024 * 1024;

export interface Upload {
  readonly size: number;
  /** Appends at `offset`, which must be where the file ends: SFTP clients write in order. Resolves once taken in. */
  write(offset: number, data: Buffer): Promise<void>;
  /** The upload is complete (its handle closed): the stored body, or the held bytes. */
  finish(): Promise<StoredPayload | Buffer>;
  /** Abandoned: nothing is left stored. */
  abort(reason: string): void;
}

function checkOffset(offset: number, size: number): void {
  if (offset !== size) throw new SwxError('SWX_BAD_REQUEST', `writes must follow each other: this one is at byte ${offset}, the file ends at ${size} (no resumed or sparse uploads; upload the file again)`);
}

/** A body streamed to the Object Store. */
export function streamedUpload(payloads: Payloads): Upload {
  const body = new PassThrough({ highWaterMark: windowBytes });
  const stored = payloads.receive(body, []);
  let failure: Error | undefined;
  stored.catch((error: Error) => { failure = error; });
  let size = 0;
  return {
    get size() { return size; },
    async write(offset, data) {
      checkOffset(offset, size);
      if (failure) throw failure;
      size += data.length;
      if (!body.write(data)) await Promise.race([once(body, 'drain'), stored.then(() => undefined)]);
      if (failure) throw failure;
    },
    finish() {
      body.end();
      return stored;
    },
    abort(reason) {
      body.destroy(new Error(reason));
    },
  };
}

/** A detached signature, held whole. */
export function heldUpload(): Upload {
  const parts: Buffer[] = [];
  let size = 0;
  return {
    get size() { return size; },
    async write(offset, data) {
      checkOffset(offset, size);
      if (size + data.length > maxSignatureBytes) throw new SwxError('SWX_TOO_LARGE', `a detached signature is at most ${maxSignatureBytes} bytes`);
      size += data.length;
      parts.push(Buffer.from(data));
    },
    async finish() { return Buffer.concat(parts); },
    abort() { parts.length = 0; },
  };
}
