// POSIX ustar archives, the container evidence bundles travel in: `tar -xf` opens them on any system, with no
// swx installed. Only regular files; reading refuses anything else and any path that could leave the folder.
import { SwxError } from './errors.ts';

export interface TarEntry { path: string; data: Buffer }

const block = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(path: string, size: number, mtime: number): Buffer {
  const name = Buffer.from(path, 'utf8');
  if (name.length > 100) throw new SwxError('SWX_BAD_REQUEST', `tar entry name longer than 100 bytes: ${path}`);
  const out = Buffer.alloc(block);
  name.copy(out, 0);
  out.write(octal(0o644, 8), 100, 'ascii');
  out.write(octal(0, 8), 108, 'ascii');
  out.write(octal(0, 8), 116, 'ascii');
  out.write(octal(size, 12), 124, 'ascii');
  out.write(octal(mtime, 12), 136, 'ascii');
  out.write('        ', 148, 'ascii');
  out.write('0', 156, 'ascii');
  out.write('ustar\0', 257, 'ascii');
  out.write('00', 263, 'ascii');
  let sum = 0;
  for (const byte of out) sum += byte;
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return out;
}

export function writeTar(entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [];
  for (const { path, data } of entries) {
    parts.push(header(path, data.length, mtime), data, Buffer.alloc((block - (data.length % block)) % block));
  }
  parts.push(Buffer.alloc(2 * block));
  return Buffer.concat(parts);
}

const safePath = /^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._\-/]{1,100}$/;

/** Reads a ustar archive of regular files; a wrong checksum, a link, or a path with `..` or a leading `/` is refused. */
export function readTar(archive: Buffer, limits = { maxEntries: 10_000 }): TarEntry[] {
  const entries: TarEntry[] = [];
  for (let offset = 0; offset + block <= archive.length; ) {
    const head = archive.subarray(offset, offset + block);
    if (head.every((byte) => byte === 0)) return entries;
    const field = (start: number, length: number) => head.subarray(start, start + length).toString('ascii').replace(/\0.*$/s, '').trim();
    const stored = parseInt(field(148, 8), 8);
    let sum = 0;
    head.forEach((byte, index) => { sum += index >= 148 && index < 156 ? 32 : byte; });
    if (stored !== sum) throw new SwxError('SWX_BAD_REQUEST', `not a tar archive, or damaged at byte ${offset} (header checksum)`);
    const path = head.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const type = field(156, 1) || '0';
    const size = parseInt(field(124, 12) || '0', 8);
    if (type !== '0') throw new SwxError('SWX_BAD_REQUEST', `tar entry ${path} is not a regular file (type ${type})`);
    if (!safePath.test(path)) throw new SwxError('SWX_BAD_REQUEST', `tar entry name ${JSON.stringify(path)} is not a plain relative path`);
    if (!Number.isSafeInteger(size) || offset + block + size > archive.length) throw new SwxError('SWX_BAD_REQUEST', `tar entry ${path} is truncated`);
    if (entries.length >= limits.maxEntries) throw new SwxError('SWX_TOO_LARGE', `more than ${limits.maxEntries} entries`);
    entries.push({ path, data: archive.subarray(offset + block, offset + block + size) });
    offset += block + Math.ceil(size / block) * block;
  }
  throw new SwxError('SWX_BAD_REQUEST', 'tar archive ends without its end-of-archive blocks (truncated)');
}
