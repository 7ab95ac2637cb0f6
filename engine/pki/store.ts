// On-disk layout of a PKI directory and the only code that reads or writes its files.
// Files are written once (temp file + hard link), so a second init or a racing process never replaces a key.
import { createHash, createPrivateKey, randomUUID, X509Certificate as NodeCertificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SwxError } from '../errors.ts';
import { pemBlocks } from '../trust/x509.ts';

/** A certificate with its private key, as the hub and the agencies use it for signing and TLS. */
export interface Credential {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** The certificate followed by its issuing CA (the CA's own chain is just itself). */
  chainPem: string;
  /** base64url SHA-256 of the certificate's DER; the id partners are registered under. */
  thumbprint: string;
  certPath: string;
  keyPath: string;
}

export interface PkiPaths {
  dir: string;
}

/** Roles the hub holds a credential for; agencies live under agencies/<ID>. */
export type HubRole = 'ca' | 'hub-sign' | 'hub-tls' | 'hub-enc' | 'tsa';

const agencyIdPattern = /^[A-Z][A-Z0-9-]{1,31}$/;

/** Refuses anything that is not a plain upper-case agency id, so an id can never walk out of the PKI folder. */
export function assertAgencyId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !agencyIdPattern.test(id)) {
    throw new SwxError(
      'SWX_BAD_REQUEST',
      `agency id ${JSON.stringify(id)} is not valid: use 2-32 characters A-Z, 0-9 and '-', starting with a letter (e.g. CUSTOMS, COA-DAI)`,
    );
  }
}

export function isAgencyId(id: string): boolean {
  return agencyIdPattern.test(id);
}

/** Where each file of a PKI lives, relative to its folder. */
export const layout = {
  folder: (dir: string, role: HubRole) => join(dir, role),
  agencyFolder: (dir: string, id: string) => {
    assertAgencyId(id);
    return join(dir, 'agencies', id);
  },
  agencies: (dir: string) => join(dir, 'agencies'),
  crl: (dir: string) => join(dir, 'crl.pem'),
  /** Outside CAs the deployment trusts, one <thumbprint>.pem each (`swx pki import --anchor|--intermediate`). */
  anchors: (dir: string) => join(dir, 'trust', 'anchors'),
  intermediates: (dir: string) => join(dir, 'trust', 'intermediates'),
  /** CRLs fetched from distribution points, kept across restarts. */
  crlCache: (dir: string) => join(dir, 'crl-cache'),
  /** Agency certificates issued by outside CAs, validated on import (no key: the agency holds it). */
  partnerFolder: (dir: string, id: string) => {
    assertAgencyId(id);
    return join(dir, 'partners', id);
  },
  /** Certificates of profiles other than 'agency', by profile and name. */
  issuedFolder: (dir: string, profile: string, name: string) => {
    assertAgencyId(name);
    return join(dir, 'issued', profile, name);
  },
  cert: (folder: string) => join(folder, 'cert.pem'),
  key: (folder: string) => join(folder, 'key.pem'),
  chain: (folder: string) => join(folder, 'chain.pem'),
};

/** Writes `text` to `path` only if nothing is there yet; returns what is on disk afterwards. */
export async function writeOnce(path: string, text: string, mode: number): Promise<{ text: string; created: boolean }> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, text, { mode, flag: 'wx' });
  try {
    await link(tmp, path);
    return { text, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { text: await readFile(path, 'utf8'), created: false };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Replaces `path` atomically (used for the CRL, which is re-signed in place). */
export async function writeReplace(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, text, { mode, flag: 'wx' });
  await rename(tmp, path);
}

export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** base64url (no padding) SHA-256 of a certificate's DER; a PEM string is read up to its first certificate. */
export function thumbprint(certPemOrDer: string | Uint8Array): string {
  let der: Uint8Array;
  if (typeof certPemOrDer === 'string') {
    const first = pemBlocks(certPemOrDer, 'CERTIFICATE')[0];
    if (!first) throw new SwxError('SWX_BAD_REQUEST', 'thumbprint: the string holds no PEM CERTIFICATE block; pass PEM text or DER bytes');
    der = first;
  } else {
    der = certPemOrDer;
  }
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * Reads a certificate and its key; chain.pem beside the certificate is used when present, else the certificate alone.
 * Refuses a key that does not belong to the certificate, so a half-replaced credential fails at start, not at first use.
 */
export function loadCredential(certPath: string, keyPath: string): Credential {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(certPath, 'utf8');
    keyPem = readFileSync(keyPath, 'utf8');
  } catch (error) {
    throw new SwxError('SWX_INTERNAL', `cannot read credential ${certPath} / ${keyPath}: ${(error as Error).message}; run \`swx pki init\` or fix the paths`, { cause: error });
  }
  let matches: boolean;
  try {
    matches = new NodeCertificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch (error) {
    throw new SwxError('SWX_INTERNAL', `credential ${certPath} / ${keyPath} is not a PEM certificate and private key: ${(error as Error).message}`, { cause: error });
  }
  if (!matches) {
    throw new SwxError('SWX_INTERNAL', `key ${keyPath} does not belong to certificate ${certPath}; restore the matching pair or re-issue it`);
  }
  const chainPath = join(dirname(certPath), 'chain.pem');
  const chainFile = existsSync(chainPath) ? readFileSync(chainPath, 'utf8') : undefined;
  // A chain.pem left over from an earlier certificate would present the wrong leaf; fall back to the certificate.
  const chainLeaf = chainFile ? pemBlocks(chainFile, 'CERTIFICATE')[0] : undefined;
  const chainPem = chainFile && chainLeaf && thumbprint(chainLeaf) === thumbprint(certPem) ? chainFile : certPem;
  return { certPem, keyPem, chainPem, thumbprint: thumbprint(certPem), certPath, keyPath };
}
