// A working PKI for a deployment or a demo (`swx pki init`): root CA, hub signing/TLS/TSA certificates, one per agency, a CRL.
// Real deployments import their own CA and agency certificates (`swx pki import`); the hub then reads them with loadCredential.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { SwxError } from '../errors.ts';
import { certificate } from '../trust/certs.ts';
import { issuedBy } from '../trust/path.ts';
import { ensureCrl, revoke } from './crl.ts';
import { ensureCa, ensureLeaf, issuableProfiles, loadAuthority, type IssuableProfile, type Issued, type LeafAlg, type LeafSpec } from './issue.ts';
import { assertKeyAlg, type KeyAlg } from './keys.ts';
import { assertAgencyId, isAgencyId, layout, loadCredential, readIfExists, type Credential, type PkiPaths } from './store.ts';
import { revocationReasons, type RevocationReason } from '../trust/x509.ts';
export { normaliseSerial } from '../trust/x509.ts';

export type { Credential, IssuableProfile, KeyAlg, PkiPaths, RevocationReason };
export { ensureCrl, issuableProfiles, revocationReasons, revoke };
export { assertAgencyId, loadCredential, thumbprint } from './store.ts';
export { importCertificates, type ImportResult, type ImportRole } from './import.ts';
export { TrustStore, type TrustSettings, type TrustShare } from './trust.ts';

/** What a certificate in the summary is: enough to print after `swx pki init` and to register partners by thumbprint. */
export interface CertSummary {
  subject: string;
  serial: string;
  thumbprint: string;
  alg: LeafAlg;
  notAfter: string;
  certPath: string;
  keyPath: string;
  /** false when the certificate was already on disk and kept. */
  created: boolean;
}

export interface PkiSummary {
  dir: string;
  ca: CertSummary;
  hubSign: CertSummary;
  hubTls: CertSummary;
  /** The hub's X25519 key agreement certificate (eDelivery AS4 2.0 encryption). */
  hubEnc: CertSummary;
  tsa: CertSummary;
  agencies: Record<string, CertSummary>;
  crlPath: string;
  crlCreated: boolean;
}

export interface InitOptions {
  agencies: string[];
  /** Key algorithm for certificates made now; kept ones keep theirs. Default 'ecdsa' (P-256). */
  alg?: KeyAlg;
  /** Names the CA and hub certificates, e.g. "swx hub" -> "swx hub Root CA". */
  hubName?: string;
  /** Extra DNS names or IP addresses for the hub TLS certificate; localhost, 127.0.0.1 and ::1 are always included. */
  hosts?: string[];
  /** Validity of the end-entity certificates made now (default 730); the CA gets 10 years, or longer if this asks for more. */
  validityDays?: number;
  /** CRL distribution point (http) written into the end-entity certificates made now. */
  crlUrl?: string;
}

export interface IssueOptions {
  /** Default 'agency' (files in agencies/<NAME>); other profiles go to issued/<profile>/<NAME>. */
  profile?: IssuableProfile;
  /** Default: the CA's own key algorithm. */
  alg?: KeyAlg;
  validityDays?: number;
  /** Extra DNS names or IP addresses for TLS-capable profiles. */
  hosts?: string[];
  /** CRL distribution point (http) written into the certificate. */
  crlUrl?: string;
  /** Issue a new key and certificate even if one exists; the old files move to retired/<serial>/ beside them. */
  renew?: boolean;
  /** Explicit dates are used as given (not clamped to the CA), so tests can make expired or not-yet-valid certificates. */
  notBefore?: Date;
  notAfter?: Date;
}

const defaults = { hubName: 'swx hub', leafDays: 730, caDays: 3650 };

function summarise(issued: Issued): CertSummary {
  const { credential } = issued;
  const cert = new X509Certificate(credential.certPem);
  return {
    subject: cert.subject.split('\n').join(', '),
    serial: cert.serialNumber.toLowerCase(),
    thumbprint: credential.thumbprint,
    alg: issued.alg,
    notAfter: new Date(cert.validTo).toISOString(),
    certPath: credential.certPath,
    keyPath: credential.keyPath,
    created: issued.created,
  };
}

function assertDays(days: unknown, setting: string): asserts days is number {
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 36500) {
    throw new SwxError('SWX_BAD_REQUEST', `${setting} must be a whole number of days from 1 to 36500, got ${JSON.stringify(days)}`);
  }
}

const hostnamePattern = /^(?=.{1,253}$)(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

function validateInit(options: InitOptions): Required<InitOptions> {
  const alg = options.alg ?? 'ecdsa';
  assertKeyAlg(alg);
  const validityDays = options.validityDays ?? defaults.leafDays;
  assertDays(validityDays, 'validityDays');
  const hubName = options.hubName ?? defaults.hubName;
  if (typeof hubName !== 'string' || !/^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,47}$/u.test(hubName)) {
    throw new SwxError('SWX_BAD_REQUEST', `hubName ${JSON.stringify(hubName)} must be 1-48 letters, digits, spaces, '.', '_' or '-'`);
  }
  const hosts = options.hosts ?? [];
  assertHosts(hosts);
  if (options.crlUrl !== undefined) assertCrlUrl(options.crlUrl);
  if (!Array.isArray(options.agencies)) throw new SwxError('SWX_BAD_REQUEST', 'agencies must be a list of agency ids');
  // Every id is checked before anything is written, so a typo leaves no half-made PKI behind.
  options.agencies.forEach(assertAgencyId);
  return { agencies: [...new Set(options.agencies)], alg, hubName, hosts, validityDays, crlUrl: options.crlUrl ?? '' };
}

function assertHosts(hosts: unknown[]): asserts hosts is string[] {
  for (const host of hosts) {
    if (typeof host !== 'string' || (!isIP(host) && !hostnamePattern.test(host))) {
      throw new SwxError('SWX_BAD_REQUEST', `host ${JSON.stringify(host)} is neither a DNS name nor an IP address`);
    }
  }
}

function assertCrlUrl(url: unknown): asserts url is string {
  // A distribution point is fetched without TLS by most verifiers (openssl -crl_download among them): http, no credentials.
  if (typeof url !== 'string' || !URL.canParse(url) || new URL(url).protocol !== 'http:' || new URL(url).username || url.length > 500) {
    throw new SwxError('SWX_BAD_REQUEST', `CRL distribution point ${JSON.stringify(url)} must be an http:// URL, e.g. http://hub.example:7480/pki/crl`);
  }
}

/**
 * Creates (idempotently: existing files are kept) a root CA, the hub's signing cert, the hub's TLS server cert
 * (SANs given + localhost, 127.0.0.1, ::1), a TSA cert (extendedKeyUsage timeStamping, critical), one cert per
 * agency id, and an (empty) CRL signed by the CA.
 */
export async function initPki(dir: string, options: InitOptions): Promise<PkiSummary> {
  const { agencies, alg, hubName, hosts, validityDays, crlUrl } = validateInit(options);
  const ca = await ensureCa(dir, alg, `${hubName} Root CA`, Math.max(defaults.caDays, validityDays));
  const leaf = (folder: string, profile: LeafSpec['profile'], commonName: string, extra: Partial<LeafSpec> = {}) =>
    ensureLeaf(ca, { folder, profile, commonName, alg, validityDays, ...(crlUrl ? { crlUrl } : {}), ...extra });
  const [hubSign, hubTls, hubEnc, tsa, ...issued] = await Promise.all([
    leaf(layout.folder(dir, 'hub-sign'), 'hub-sign', `${hubName} signing`),
    leaf(layout.folder(dir, 'hub-tls'), 'hub-tls', `${hubName} TLS`, { hosts }),
    leaf(layout.folder(dir, 'hub-enc'), 'hub-enc', `${hubName} encryption`, { alg: 'x25519' }),
    leaf(layout.folder(dir, 'tsa'), 'tsa', `${hubName} TSA`),
    ...agencies.map((id) => leaf(layout.agencyFolder(dir, id), 'agency', id)),
  ]);
  const crl = await ensureCrl(dir, ca);
  return {
    dir,
    ca: summarise({ credential: ca.credential, alg: ca.key.alg, created: ca.created }),
    hubSign: summarise(hubSign!),
    hubTls: summarise(hubTls!),
    hubEnc: summarise(hubEnc!),
    tsa: summarise(tsa!),
    agencies: Object.fromEntries(agencies.map((id, i) => [id, summarise(issued[i]!)])),
    crlPath: layout.crl(dir),
    crlCreated: crl.created,
  };
}

/**
 * Issues (or returns the existing) cert for one agency: CN=<id>, O=swx demo, usable for signing, as a TLS client and
 * as a TLS receiver on localhost. Files <dir>/agencies/<ID>/cert.pem, key.pem (PKCS#8, 0600), chain.pem (cert + CA).
 */
export function issueAgency(dir: string, id: string, options: Omit<IssueOptions, 'profile'> = {}): Promise<Credential> {
  return issueCertificate(dir, id, { ...options, profile: 'agency' });
}

/** The folder of a certificate `swx pki issue` makes: agencies/<NAME> for the agency profile, issued/<profile>/<NAME> else. */
export function issuedFolder(dir: string, name: string, profile: IssuableProfile = 'agency'): string {
  return profile === 'agency' ? layout.agencyFolder(dir, name) : layout.issuedFolder(dir, profile, name);
}

/**
 * Issues (or returns the existing) certificate of a profile for `name` (CN=<name>, O=swx demo), signed by the CA:
 * cert.pem, key.pem (PKCS#8, 0600) and chain.pem (cert + CA) in its folder. With `renew`, a new key and certificate
 * replace the existing ones, which are kept under retired/<serial>/ (revoke the old serial separately if it must stop).
 */
export async function issueCertificate(dir: string, name: string, options: IssueOptions = {}): Promise<Credential> {
  assertAgencyId(name);
  const profile = options.profile ?? 'agency';
  if (!Object.hasOwn(issuableProfiles, profile)) {
    throw new SwxError('SWX_BAD_REQUEST', `profile ${JSON.stringify(profile)} is not one of ${Object.keys(issuableProfiles).join(', ')}`);
  }
  if (options.alg !== undefined) assertKeyAlg(options.alg);
  const validityDays = options.validityDays ?? defaults.leafDays;
  assertDays(validityDays, 'validityDays');
  assertHosts(options.hosts ?? []);
  if (options.crlUrl !== undefined) assertCrlUrl(options.crlUrl);
  for (const [label, date] of [['notBefore', options.notBefore], ['notAfter', options.notAfter]] as const) {
    if (date !== undefined && (!(date instanceof Date) || Number.isNaN(date.getTime()))) {
      throw new SwxError('SWX_BAD_REQUEST', `${label} must be a valid Date`);
    }
  }
  if (options.notBefore && options.notAfter && options.notAfter <= options.notBefore) {
    throw new SwxError('SWX_BAD_REQUEST', 'notAfter must be later than notBefore');
  }
  const ca = await loadAuthority(dir);
  const folder = issuedFolder(dir, name, profile);
  if (options.renew) await retire(folder);
  const issued = await ensureLeaf(ca, {
    folder,
    profile,
    commonName: name,
    alg: options.alg ?? ca.key.alg,
    validityDays,
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.crlUrl ? { crlUrl: options.crlUrl } : {}),
    ...(options.notBefore ? { notBefore: options.notBefore } : {}),
    ...(options.notAfter ? { notAfter: options.notAfter } : {}),
  });
  return issued.credential;
}

/** Moves a folder's certificate, key and chain to retired/<serial>/, so that the next issue makes new ones. */
async function retire(folder: string): Promise<void> {
  const certPem = await readIfExists(layout.cert(folder));
  if (!certPem) return;
  const target = join(folder, 'retired', new X509Certificate(certPem).serialNumber.toLowerCase());
  await mkdir(target, { recursive: true, mode: 0o700 });
  for (const file of [layout.cert(folder), layout.key(folder), layout.chain(folder)]) {
    if (existsSync(file)) await rename(file, join(target, file.slice(folder.length + 1)));
  }
}

/** Re-signs the CA's CRL now (same entries, next number, fresh thisUpdate and nextUpdate). */
export async function resignCrl(dir: string): Promise<void> {
  await ensureCrl(dir, await loadAuthority(dir), { force: true });
}

export type RevocationTarget = { agency: string } | { serial: string } | { certPem: string };

export interface Revoked {
  serial: string;
  subject?: string;
  reason: RevocationReason;
  crlNumber: string;
  crlPath: string;
  /** The serial was already on the CRL: nothing changed. */
  already: boolean;
}

/**
 * Revokes a certificate of this CA: an agency's current one, a serial, or a certificate (PEM) that must have been
 * issued by this CA. The CRL is re-signed in the data folder; a hub running on it picks it up within seconds.
 */
export async function revokeCertificate(dir: string, target: RevocationTarget, reason: RevocationReason = 'unspecified'): Promise<Revoked> {
  let serial: string;
  let subject: string | undefined;
  if ('serial' in target) {
    serial = target.serial;
  } else {
    const certPem = 'certPem' in target ? target.certPem : await readIfExists(layout.cert(layout.agencyFolder(dir, target.agency)));
    if (!certPem) throw new SwxError('SWX_NOT_FOUND', `agency ${'agency' in target ? target.agency : ''} has no certificate in ${layout.agencies(dir)}`);
    const cert = certificate(certPem);
    const ca = await loadAuthority(dir);
    if (!issuedBy(cert, certificate(ca.credential.certPem))) {
      throw new SwxError('SWX_BAD_REQUEST', `${cert.subject} was not issued by this CA (${ca.credential.certPath}); revoke it at the CA that issued it`);
    }
    serial = cert.serial;
    subject = cert.subject;
  }
  const result = await revoke(dir, serial, reason);
  return { serial: result.serial, ...(subject ? { subject } : {}), reason, crlNumber: result.crlNumber, crlPath: layout.crl(dir), already: result.already };
}

/** The hub's credentials and the current CRL, read at start; fails with what is missing or inconsistent and how to fix it. */
/**
 * Keeps or makes the hub's X25519 key agreement credential (`hub-enc`, issued by the CA) in a PKI made before it
 * existed: generated once, kept from then on.
 */
export async function ensureHubEncryption(dir: string): Promise<Credential> {
  const ca = await loadAuthority(dir);
  const issued = await ensureLeaf(ca, { folder: layout.folder(dir, 'hub-enc'), profile: 'hub-enc', commonName: `${defaults.hubName} encryption`, alg: 'x25519', validityDays: defaults.leafDays });
  return issued.credential;
}

export async function loadPki(dir: string): Promise<{ ca: Credential; hubSign: Credential; hubTls: Credential; hubEnc?: Credential; tsa: Credential; crlPem: string }> {
  const load = (role: 'ca' | 'hub-sign' | 'hub-tls' | 'hub-enc' | 'tsa') => {
    const folder = layout.folder(dir, role);
    return loadCredential(layout.cert(folder), layout.key(folder));
  };
  const crlPem = await readIfExists(layout.crl(dir));
  if (!crlPem) throw new SwxError('SWX_INTERNAL', `no CRL at ${layout.crl(dir)}; run \`swx pki init\` to make the PKI`);
  const ca = load('ca');
  const caCert = new X509Certificate(ca.certPem);
  const [hubSign, hubTls, tsa] = (['hub-sign', 'hub-tls', 'tsa'] as const).map((role) => {
    const credential = load(role);
    const cert = new X509Certificate(credential.certPem);
    if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
      throw new SwxError('SWX_INTERNAL', `${credential.certPath} was not issued by the CA in ${ca.certPath}; re-issue it with \`swx pki init\` after deleting its folder`);
    }
    return credential;
  }) as [Credential, Credential, Credential];
  const hubEnc = existsSync(layout.cert(layout.folder(dir, 'hub-enc'))) ? load('hub-enc') : undefined;
  return { ca, hubSign, hubTls, ...(hubEnc ? { hubEnc } : {}), tsa, crlPem };
}

/** Agency ids that have a folder under <dir>/agencies, sorted. */
export async function listAgencies(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(layout.agencies(dir), { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory() && isAgencyId(entry.name)).map((entry) => entry.name).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
