// The outside judges of what swx encrypts: the independent Python decrypter (test/engine/xmlenc_decrypt.py: lxml and
// python3-cryptography, nothing of swx's) over an SwA envelope and its ciphertext parts, and xmlsec1 --decrypt, which
// resolves no cid: and so is given one part as the self-contained EncryptedData it stands for (its EncryptedKey inside
// its KeyInfo, its ciphertext as the CipherValue).
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const decrypterPath = fileURLToPath(new URL('../engine/xmlenc_decrypt.py', import.meta.url));

const xenc = 'http://www.w3.org/2001/04/xmlenc#';
const ds = 'http://www.w3.org/2000/09/xmldsig#';

let count = 0;
function written(dir: string, content: string | Buffer, suffix: string): string {
  const path = join(dir, `f${++count}${suffix}`);
  writeFileSync(path, content);
  return path;
}

export interface PythonDecryption {
  status: number | null;
  err: string;
  /** The decrypter's JSON line: each part's MimeType and the algorithms it met. */
  report?: { parts: Record<string, { mimeType?: string }>; algorithms: string[] };
  plaintext: Map<string, Buffer>;
}

/** Decrypts every encrypted part of an SwA message with the Python decrypter under `keyPem`. */
export function decryptInPython(envelope: string | Buffer, keyPem: string, parts: readonly { contentId: string; body: Buffer }[]): PythonDecryption {
  const dir = mkdtempSync(join(tmpdir(), 'swx-xmlenc-judge-'));
  const files = parts.map((part) => ({ contentId: part.contentId, path: written(dir, part.body, '.bin') }));
  const result = spawnSync('/usr/bin/python3', [decrypterPath, written(dir, envelope, '.xml'), written(dir, keyPem, '.pem'), ...files.map((f) => `${f.contentId}=${f.path}`)], { cwd: dir });
  const plaintext = new Map<string, Buffer>();
  if (result.status === 0) for (const f of files) plaintext.set(f.contentId, readFileSync(`${f.path}.plain`));
  const out = result.stdout.toString();
  return { status: result.status, err: result.stderr.toString(), ...(result.status === 0 ? { report: JSON.parse(out) } : {}), plaintext };
}

/** The self-contained xenc:EncryptedData of one part of an SwA envelope, its ciphertext given. */
export function selfContained(envelope: string | Buffer, contentId: string, ciphertext: Buffer): string {
  const doc = new DOMParser().parseFromString(envelope.toString(), 'text/xml');
  const byName = (name: string) => Array.from(doc.getElementsByTagNameNS(xenc, name));
  const data = byName('EncryptedData').find((el) => decodeURIComponent(el.getElementsByTagNameNS(xenc, 'CipherReference')[0]?.getAttribute('URI') ?? '') === `cid:${contentId}`);
  const key = byName('EncryptedKey')[0];
  if (!data || !key) throw new Error(`the envelope has no EncryptedData for cid:${contentId} or no EncryptedKey`);
  const out = new DOMParser().parseFromString(`<xenc:EncryptedData xmlns:xenc="${xenc}" xmlns:ds="${ds}"/>`, 'text/xml');
  const root = out.documentElement!;
  root.setAttribute('MimeType', data.getAttribute('MimeType') ?? '');
  root.appendChild(out.importNode(data.getElementsByTagNameNS(xenc, 'EncryptionMethod')[0]!, true));
  const keyInfo = root.appendChild(out.createElementNS(ds, 'ds:KeyInfo'));
  const copy = keyInfo.appendChild(out.importNode(key, true)) as Element;
  for (const list of Array.from(copy.getElementsByTagNameNS(xenc, 'ReferenceList'))) copy.removeChild(list);
  const cipherData = root.appendChild(out.createElementNS(xenc, 'xenc:CipherData'));
  cipherData.appendChild(out.createElementNS(xenc, 'xenc:CipherValue')).appendChild(out.createTextNode(ciphertext.toString('base64')));
  return new XMLSerializer().serializeToString(out);
}

/** xmlsec1 --decrypt of one part under `keyPem`: its exit status and output (the plaintext on success). */
export function decryptWithXmlsec1(envelope: string | Buffer, keyPem: string, contentId: string, ciphertext: Buffer): { status: number | null; out: Buffer; err: string } {
  const dir = mkdtempSync(join(tmpdir(), 'swx-xmlsec1-judge-'));
  const result = spawnSync('xmlsec1', ['--decrypt', '--privkey-pem', written(dir, keyPem, '.pem'), written(dir, selfContained(envelope, contentId, ciphertext), '.xml')], { cwd: dir });
  return { status: result.status, out: result.stdout, err: result.stderr.toString() };
}
