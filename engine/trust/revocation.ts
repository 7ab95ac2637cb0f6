// Revocation status of a certificate: CRLs fetched from its distribution points (verified against the issuer, kept in
// memory and in the data folder until nextUpdate, refreshed ahead of it, served through a grace period when they cannot
// be refreshed), CRLs handed in (the hub CA's own, shared between hub processes), and optionally OCSP (RFC 6960).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createHash, randomBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../log.ts';
import { crlRefreshFailures, crlStaleSeconds } from '../metrics.ts';
import { certificate, type ParsedCert } from './certs.ts';
import { issuedBy } from './path.ts';
import { oid, toArrayBuffer, normaliseSerial, revocationReasons, type RevocationReason, pemBlocks } from './x509.ts';

export interface RevocationSettings {
  /** How long past its nextUpdate a CRL that cannot be refreshed still answers. */
  graceSeconds: number;
  /** Ask the OCSP responder a certificate names (authorityInfoAccess) before its CRL. */
  ocsp: boolean;
  /** A fetched CRL is fetched again at the latest this long after, even when its nextUpdate is later. */
  maxAgeSeconds: number;
  fetchTimeoutMs: number;
  /** Where fetched CRLs are kept across restarts (and where `swx pki crl` reads them); none: memory only. */
  cacheDir?: string;
}

export type RevocationStatus =
  | { status: 'good'; source: string; staleSeconds?: number }
  | { status: 'revoked'; source: string; revokedAt: string; reason?: RevocationReason }
  | { status: 'unknown'; detail: string }
  /** The certificate names no CRL distribution point or OCSP responder, and its issuer hands in no CRL. */
  | { status: 'unchecked'; detail: string };

/** What `swx pki crl` and the metrics show of one CRL in use. */
export interface CrlInfo {
  source: string;
  issuer: string;
  thisUpdate: string;
  nextUpdate: string;
  crlNumber?: string;
  entries: { serial: string; revokedAt: string; reason?: RevocationReason }[];
  /** current: before nextUpdate; stale: past it, within the grace period; expired: past the grace period. */
  state: 'current' | 'stale' | 'expired';
  staleSeconds: number;
  fetchedAt?: string;
  lastAttemptAt?: string;
  lastError?: string;
}

interface Revoked { at: number; reason?: RevocationReason }

/** What a responder said of one certificate, kept until `until`. */
interface OcspAnswer { finding: 'good' | Revoked | { detail: string }; source: string; until: number }

/** A CRL that parsed and verified against its issuer. */
export interface Crl {
  der: Buffer;
  issuer: ParsedCert;
  thisUpdate: number;
  nextUpdate: number;
  number?: bigint;
  revoked: Map<string, Revoked>;
}

interface Source {
  /** The URL, or a name for a CRL handed in. */
  label: string;
  url?: string;
  issuer: ParsedCert;
  crl?: Crl;
  fetchedAt?: number;
  lastAttemptAt?: number;
  lastError?: string;
  /** mtime of the cache file this process last wrote or read, to notice one `swx pki crl --refresh` wrote. */
  fileTime?: number;
  /** Last state alerted on (see observe). */
  state?: CrlInfo['state'];
  refreshing?: Promise<void>;
}

const crlExt = { deltaCrlIndicator: '2.5.29.27', issuingDistributionPoint: '2.5.29.28', certificateIssuer: '2.5.29.29', invalidityDate: '2.5.29.24' };
const ocspOid = { basic: '1.3.6.1.5.5.7.48.1.1', nonce: '1.3.6.1.5.5.7.48.1.2' };
const reasonNames = Object.fromEntries(Object.entries(revocationReasons).map(([name, code]) => [code, name as RevocationReason]));
/** Revocations that make every use of the key suspect, whenever it was made. */
const compromise = new Set<RevocationReason | undefined>(['keyCompromise', 'cACompromise', 'aACompromise']);
/** Revoked as of `at`: revoked at or before it, or for a compromise of the key (then no earlier use can be trusted either). */
const revokedAsOf = (entry: Revoked, at: number) => entry.at <= at || compromise.has(entry.reason);
const skewMs = 5 * 60 * 1000;
/** A failed fetch is not repeated sooner than this: a dead distribution point must not cost every request a timeout. */
const retryMs = 10_000;
const maxCrlBytes = 32 * 1024 * 1024;
const maxOcspBytes = 1024 * 1024;
const ocspCacheSize = 4096;

/** Hash for each signature algorithm a CRL or OCSP response may be signed with (null: the key type fixes it). */
const signatureHashes: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
};

function signatureHolds(tbs: Uint8Array, algorithm: string, signature: Uint8Array, key: KeyObject): boolean {
  if (!Object.hasOwn(signatureHashes, algorithm)) throw new Error(`signature algorithm ${algorithm} is not supported`);
  try {
    return verifySignature(signatureHashes[algorithm]!, tbs, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

function integerOf(ext: pkijs.Extension): asn1js.AsnType | undefined {
  const parsed = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
  return parsed.offset === -1 ? undefined : parsed.result;
}

/**
 * Parses a CRL (DER or PEM) and checks it is the issuer's: name, signature, cRLSign, a nextUpdate, and no critical
 * extension this reader cannot honour (delta CRLs, partitioned or indirect CRLs). Throws with the reason otherwise.
 */
export function parseCrl(bytes: Buffer, issuer: ParsedCert): Crl {
  const der = bytes.subarray(0, 32).toString('latin1').includes('-----BEGIN') ? pemBlocks(bytes.toString('latin1'), 'X509 CRL')[0] : bytes;
  if (!der) throw new Error('no X509 CRL block in the PEM text');
  let crl: pkijs.CertificateRevocationList;
  try {
    crl = pkijs.CertificateRevocationList.fromBER(toArrayBuffer(der));
  } catch (error) {
    throw new Error(`not a DER CRL: ${message(error)}`);
  }
  const issuerCert = pkijs.Certificate.fromBER(toArrayBuffer(issuer.der));
  if (!crl.issuer.isEqual(issuerCert.subject)) throw new Error(`the CRL is issued by someone other than ${issuer.subject}`);
  if (crl.signature.algorithmId !== crl.signatureAlgorithm.algorithmId) throw new Error('the CRL names two different signature algorithms');
  if (!signatureHolds(crl.tbsView, crl.signatureAlgorithm.algorithmId, crl.signatureValue.valueBlock.valueHexView, issuer.publicKey)) {
    throw new Error(`the CRL signature does not verify with the key of ${issuer.subject}`);
  }
  if (issuer.keyUsage && !issuer.keyUsage.has('cRLSign')) throw new Error(`${issuer.subject} may not sign CRLs (no cRLSign key usage)`);
  if (!crl.nextUpdate) throw new Error('the CRL has no nextUpdate');
  let number: bigint | undefined;
  for (const ext of crl.crlExtensions?.extensions ?? []) {
    if (ext.extnID === oid.crlNumber) {
      const value = integerOf(ext);
      if (value instanceof asn1js.Integer) number = value.toBigInt();
    } else if (ext.extnID === crlExt.deltaCrlIndicator) {
      throw new Error('a delta CRL is not a complete list');
    } else if (ext.extnID === crlExt.issuingDistributionPoint) {
      const scope = ext.parsedValue as pkijs.IssuingDistributionPoint | undefined;
      if (!scope || scope.onlyContainsUserCerts || scope.onlyContainsCACerts || scope.onlyContainsAttributeCerts || scope.onlySomeReasons !== undefined || scope.indirectCRL) {
        throw new Error('the CRL covers only part of what its issuer revokes (issuingDistributionPoint); partitioned CRLs are not read');
      }
    } else if (ext.critical && ext.extnID !== oid.authorityKeyIdentifier) {
      throw new Error(`the CRL carries critical extension ${ext.extnID}, which is not understood`);
    }
  }
  const revoked = new Map<string, Revoked>();
  for (const entry of crl.revokedCertificates ?? []) {
    let reason: RevocationReason | undefined;
    for (const ext of entry.crlEntryExtensions?.extensions ?? []) {
      if (ext.extnID === oid.crlReason) {
        const value = integerOf(ext);
        if (value instanceof asn1js.Enumerated) reason = reasonNames[value.valueBlock.valueDec];
      } else if (ext.critical && ext.extnID !== crlExt.invalidityDate) {
        // certificateIssuer (indirect CRLs) among them: the entry may be about another issuer's certificate.
        throw new Error(`a CRL entry carries critical extension ${ext.extnID}, which is not understood`);
      }
    }
    if (reason === 'removeFromCRL') continue;
    revoked.set(normaliseSerial(Buffer.from(entry.userCertificate.valueBlock.valueHexView).toString('hex')), { at: entry.revocationDate.value.getTime(), ...(reason ? { reason } : {}) });
  }
  return { der: Buffer.from(der), issuer, thisUpdate: crl.thisUpdate.value.getTime(), nextUpdate: crl.nextUpdate.value.getTime(), ...(number !== undefined ? { number } : {}), revoked };
}

/** GET or POST with a deadline and a size bound; only http and https. */
async function fetchBytes(url: string, init: RequestInit, limit: number, timeoutMs: number): Promise<Buffer> {
  if (!/^https?:\/\//i.test(url)) throw new Error(`${url} is not an http(s) URL`);
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status} from ${url}`);
  if (Number(response.headers.get('content-length') ?? 0) > limit) throw new Error(`${url} answers more than ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > limit) throw new Error(`${url} answers more than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

interface CacheMeta { url: string; issuer: string; fetchedAt?: number; lastAttemptAt?: number; lastError?: string }

export class Revocation {
  /** CRLs handed in, by issuer thumbprint: authoritative for that issuer's certificates. */
  private readonly handedIn = new Map<string, Source>();
  /** Fetched CRLs by URL and issuer. */
  private readonly fetched = new Map<string, Source>();
  private readonly ocspAnswers = new Map<string, OcspAnswer>();
  private readonly ocspAsking = new Map<string, Promise<OcspAnswer>>();
  private sweeper?: NodeJS.Timeout;

  constructor(private readonly settings: RevocationSettings, private readonly now: () => number = Date.now) {}

  /**
   * Takes a CRL from somewhere other than a distribution point (the hub CA's, from the data folder or NATS) as the
   * issuer's list. Kept only when it verifies and is not older than the one held (CRL number, then thisUpdate).
   */
  adopt(issuer: ParsedCert, bytes: Buffer, label: string): boolean {
    const crl = parseCrl(bytes, issuer);
    const held = this.handedIn.get(issuer.thumbprint)?.crl;
    if (held && (held.number ?? 0n) > (crl.number ?? 0n)) return false;
    if (held && (held.number ?? 0n) === (crl.number ?? 0n) && held.thisUpdate >= crl.thisUpdate) return false;
    this.handedIn.set(issuer.thumbprint, { label, issuer, crl, fetchedAt: this.now() });
    this.observe(this.handedIn.get(issuer.thumbprint)!);
    return true;
  }

  /** The CRL handed in for an issuer, if any. */
  handedInCrl(issuer: ParsedCert): Crl | undefined {
    return this.handedIn.get(issuer.thumbprint)?.crl;
  }

  /** Is `cert`, issued by `issuer`, revoked as of `at` (epoch ms)? A key-compromise revocation counts at any time. */
  async status(cert: ParsedCert, issuer: ParsedCert, at: number): Promise<RevocationStatus> {
    const handedIn = this.handedIn.get(issuer.thumbprint);
    if (handedIn) return this.judge(handedIn, cert, at);
    let ocspFailure: RevocationStatus | undefined;
    if (this.settings.ocsp && cert.ocspUrls.length) {
      const answer = await this.ocsp(cert, issuer, at);
      if (answer.status !== 'unknown') return answer;
      ocspFailure = answer;
    }
    if (!cert.crlUrls.length) {
      return ocspFailure ?? { status: 'unchecked', detail: `${cert.subject} names no CRL distribution point${this.settings.ocsp ? ' or OCSP responder' : ''}` };
    }
    let answer: RevocationStatus | undefined;
    for (const url of cert.crlUrls) {
      answer = this.judge(await this.source(url, issuer), cert, at);
      if (answer.status !== 'unknown') return answer;
    }
    return answer!;
  }

  private judge(source: Source, cert: ParsedCert, at: number): RevocationStatus {
    const { crl } = source;
    if (!crl) return { status: 'unknown', detail: `no CRL from ${source.label}: ${source.lastError ?? 'not fetched yet'}` };
    const late = this.now() - crl.nextUpdate;
    // Lists are rarely stale: then the gauge and alert follow every answer (else the sweep keeps them).
    if (late > 0) this.observe(source);
    if (late > this.settings.graceSeconds * 1000) {
      return {
        status: 'unknown',
        detail: `the CRL from ${source.label} was due for renewal at ${iso(crl.nextUpdate)} and has not been renewed${source.lastError ? ` (${source.lastError})` : ''}; the grace period of ${this.settings.graceSeconds} s is over`,
      };
    }
    const entry = crl.revoked.get(cert.serial);
    if (entry && revokedAsOf(entry, at)) {
      return { status: 'revoked', source: source.label, revokedAt: iso(entry.at), ...(entry.reason ? { reason: entry.reason } : {}) };
    }
    return { status: 'good', source: source.label, ...(late > 0 ? { staleSeconds: Math.round(late / 1000) } : {}) };
  }

  /** The fetched CRL for a distribution point: memory, else the data folder, else fetched now; refreshed when due. */
  private async source(url: string, issuer: ParsedCert): Promise<Source> {
    const key = `${url} ${issuer.thumbprint}`;
    let source = this.fetched.get(key);
    if (!source) {
      source = { label: url, url, issuer };
      this.fetched.set(key, source);
      await this.load(source);
    }
    const now = this.now();
    const usable = source.crl && now - source.crl.nextUpdate <= this.settings.graceSeconds * 1000;
    if (now >= this.refreshAt(source)) {
      const refresh = this.refresh(source);
      // With a usable list the answer does not wait for the network; without one it must.
      if (!usable) await refresh;
    }
    return source;
  }

  /** Ahead of nextUpdate (at 80 % of the list's lifetime), at the latest maxAgeSeconds after the last fetch. */
  private refreshAt(source: Source): number {
    if (source.lastAttemptAt !== undefined && source.lastError !== undefined) return source.lastAttemptAt + retryMs;
    const { crl, fetchedAt } = source;
    if (!crl || fetchedAt === undefined) return 0;
    const ahead = crl.thisUpdate + 0.8 * (crl.nextUpdate - crl.thisUpdate);
    return Math.max(fetchedAt + retryMs, Math.min(ahead, fetchedAt + this.settings.maxAgeSeconds * 1000));
  }

  private refresh(source: Source): Promise<void> {
    source.refreshing ??= this.fetch(source).finally(() => { source.refreshing = undefined; });
    return source.refreshing;
  }

  private async fetch(source: Source): Promise<void> {
    const attempt = this.now();
    source.lastAttemptAt = attempt;
    try {
      const crl = parseCrl(await fetchBytes(source.url!, { headers: { accept: 'application/pkix-crl' } }, maxCrlBytes, this.settings.fetchTimeoutMs), source.issuer);
      if (crl.thisUpdate > attempt + skewMs) throw new Error(`the CRL is dated ${iso(crl.thisUpdate)}, in the future`);
      // A distribution point that serves an older list than the one held (a stale mirror) does not roll it back.
      if (!source.crl || crl.thisUpdate >= source.crl.thisUpdate) source.crl = crl;
      source.fetchedAt = attempt;
      source.lastError = undefined;
    } catch (error) {
      source.lastError = message(error);
      crlRefreshFailures.inc({ crl: source.label });
      log.warn({ crl: source.label, err: source.lastError }, source.crl ? 'CRL refresh failed' : 'no usable CRL from the distribution point: revocation status of its certificates is unknown');
    }
    this.observe(source);
    await this.save(source);
  }

  /** Sets the staleness gauge, and alerts once each time a list goes stale, past its grace period, or current again. */
  private observe(source: Source): void {
    if (!source.crl) return;
    const late = this.now() - source.crl.nextUpdate;
    crlStaleSeconds.set({ crl: source.label }, Math.max(0, Math.round(late / 1000)));
    const state = late <= 0 ? 'current' : late <= this.settings.graceSeconds * 1000 ? 'stale' : 'expired';
    if (state === (source.state ?? 'current')) return;
    source.state = state;
    const facts = { crl: source.label, nextUpdate: iso(source.crl.nextUpdate), graceSeconds: this.settings.graceSeconds, lastError: source.lastError };
    if (state === 'stale') log.warn(facts, 'CRL past its nextUpdate and not refreshed: serving it within the grace period');
    else if (state === 'expired') log.error(facts, 'CRL past its grace period and not refreshed: revocation status of its certificates is unknown');
    else log.info(facts, 'CRL current again');
  }

  private cacheFile(source: Source): string | undefined {
    if (!this.settings.cacheDir || !source.url) return undefined;
    return join(this.settings.cacheDir, createHash('sha256').update(`${source.url} ${source.issuer.thumbprint}`).digest('base64url').slice(0, 32));
  }

  /** Writes the list (atomically) and what happened at the last attempt, for restarts and `swx pki crl`. */
  private async save(source: Source): Promise<void> {
    const file = this.cacheFile(source);
    if (!file) return;
    try {
      await mkdir(this.settings.cacheDir!, { recursive: true });
      const meta: CacheMeta & { issuerPem: string } = {
        url: source.url!, issuer: source.issuer.thumbprint, fetchedAt: source.fetchedAt, lastAttemptAt: source.lastAttemptAt, lastError: source.lastError,
        issuerPem: `-----BEGIN CERTIFICATE-----\n${source.issuer.der.toString('base64')}\n-----END CERTIFICATE-----\n`,
      };
      const replace = async (path: string, data: string | Buffer) => {
        await writeFile(`${path}.tmp`, data);
        await rename(`${path}.tmp`, path);
      };
      if (source.crl && source.fetchedAt === source.lastAttemptAt) await replace(`${file}.crl`, source.crl.der);
      await replace(`${file}.json`, JSON.stringify(meta));
      source.fileTime = (await stat(`${file}.crl`).catch(() => undefined))?.mtimeMs;
    } catch (error) {
      log.warn({ err: message(error), dir: this.settings.cacheDir }, 'cannot write the CRL cache');
    }
  }

  /** Reads the cached list of a source when the file is newer than what this process holds; it is verified again. */
  private async load(source: Source): Promise<void> {
    const file = this.cacheFile(source);
    if (!file) return;
    try {
      const info = await stat(`${file}.crl`).catch(() => undefined);
      if (!info || (source.fileTime !== undefined && info.mtimeMs <= source.fileTime)) return;
      const crl = parseCrl(await readFile(`${file}.crl`), source.issuer);
      const meta = JSON.parse(await readFile(`${file}.json`, 'utf8').catch(() => '{}')) as Partial<CacheMeta>;
      if (!source.crl || crl.thisUpdate >= source.crl.thisUpdate) {
        source.crl = crl;
        source.fetchedAt = typeof meta.fetchedAt === 'number' ? meta.fetchedAt : info.mtimeMs;
        source.lastError = undefined;
      }
      source.fileTime = info.mtimeMs;
      this.observe(source);
    } catch (error) {
      log.warn({ crl: source.label, err: message(error) }, 'cached CRL is unusable; fetching it again');
    }
  }

  /** Re-reads lists another process wrote, refreshes those that are due, and updates the staleness gauges. */
  async sweep(): Promise<void> {
    for (const source of this.fetched.values()) {
      // A refresh still running (started by a lookup) finishes first; then one that is due starts.
      await source.refreshing;
      await this.load(source);
      if (this.now() >= this.refreshAt(source)) await this.refresh(source);
      this.observe(source);
    }
    for (const source of this.handedIn.values()) this.observe(source);
  }

  /** Fetches every distribution point known now, due or not (`swx pki crl --refresh`). */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.fetched.values()].map((source) => this.refresh(source)));
  }

  /** Registers the distribution points cached in the data folder, so that they are listed and refreshed. */
  async loadCache(): Promise<void> {
    if (!this.settings.cacheDir) return;
    const files = await readdir(this.settings.cacheDir).catch(() => [] as string[]);
    for (const file of files.filter((name) => name.endsWith('.json'))) {
      try {
        const meta = JSON.parse(await readFile(join(this.settings.cacheDir, file), 'utf8')) as CacheMeta & { issuerPem: string };
        const issuer = certificate(meta.issuerPem);
        const key = `${meta.url} ${issuer.thumbprint}`;
        if (this.fetched.has(key)) continue;
        const source: Source = { label: meta.url, url: meta.url, issuer, ...(meta.lastAttemptAt ? { lastAttemptAt: meta.lastAttemptAt } : {}), ...(meta.lastError ? { lastError: meta.lastError } : {}) };
        this.fetched.set(key, source);
        await this.load(source);
        if (meta.lastError && meta.lastAttemptAt && meta.lastAttemptAt > (meta.fetchedAt ?? 0)) source.lastError = meta.lastError;
      } catch (error) {
        log.warn({ file, err: message(error) }, 'CRL cache entry is unreadable; ignored');
      }
    }
  }

  start(intervalMs = 5_000): void {
    this.sweeper = setInterval(() => void this.sweep().catch((error) => log.warn({ err: message(error) }, 'CRL sweep failed')), intervalMs);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  /** Every CRL in use: handed in first, then fetched. */
  list(): CrlInfo[] {
    const now = this.now();
    return [...this.handedIn.values(), ...this.fetched.values()].map((source) => {
      const crl = source.crl;
      const late = crl ? now - crl.nextUpdate : Infinity;
      return {
        source: source.label,
        issuer: source.issuer.subject,
        thisUpdate: crl ? iso(crl.thisUpdate) : '',
        nextUpdate: crl ? iso(crl.nextUpdate) : '',
        ...(crl?.number !== undefined ? { crlNumber: crl.number.toString() } : {}),
        entries: crl ? [...crl.revoked].map(([serial, entry]) => ({ serial, revokedAt: iso(entry.at), ...(entry.reason ? { reason: entry.reason } : {}) })) : [],
        state: late <= 0 ? 'current' : late <= this.settings.graceSeconds * 1000 ? 'stale' : 'expired',
        staleSeconds: crl ? Math.max(0, Math.round(late / 1000)) : 0,
        ...(source.fetchedAt ? { fetchedAt: iso(source.fetchedAt) } : {}),
        ...(source.lastAttemptAt ? { lastAttemptAt: iso(source.lastAttemptAt) } : {}),
        ...(source.lastError ? { lastError: source.lastError } : {}),
      };
    });
  }

  // ------------------------------------------------------------------------------------------------ OCSP (RFC 6960)

  private async ocsp(cert: ParsedCert, issuer: ParsedCert, at: number): Promise<RevocationStatus> {
    let answer = this.ocspAnswers.get(cert.thumbprint);
    if (!answer || this.now() >= answer.until) {
      // Concurrent requests with the same certificate share one question to the responder.
      let asking = this.ocspAsking.get(cert.thumbprint);
      if (!asking) {
        asking = this.askResponders(cert, issuer).finally(() => this.ocspAsking.delete(cert.thumbprint));
        this.ocspAsking.set(cert.thumbprint, asking);
      }
      answer = await asking;
    }
    const { finding, source } = answer;
    if (finding === 'good') return { status: 'good', source };
    if ('detail' in finding) return { status: 'unknown', detail: finding.detail };
    if (revokedAsOf(finding, at)) return { status: 'revoked', source, revokedAt: iso(finding.at), ...(finding.reason ? { reason: finding.reason } : {}) };
    return { status: 'good', source };
  }

  private async askResponders(cert: ParsedCert, issuer: ParsedCert): Promise<OcspAnswer> {
    const failures: string[] = [];
    for (const url of cert.ocspUrls) {
      try {
        const answer = await this.askOcsp(url, cert, issuer);
        this.ocspAnswers.set(cert.thumbprint, answer);
        if (this.ocspAnswers.size > ocspCacheSize) this.ocspAnswers.delete(this.ocspAnswers.keys().next().value!);
        return answer;
      } catch (error) {
        failures.push(`${url}: ${message(error)}`);
      }
    }
    log.warn({ cert: cert.subject, failures }, 'OCSP gave no usable answer');
    // Remembered briefly, like a failed CRL fetch: a dead responder must not cost every request a timeout.
    const failed: OcspAnswer = { finding: { detail: `no usable OCSP answer for ${cert.subject} (${failures.join('; ')})` }, source: 'OCSP', until: this.now() + retryMs };
    this.ocspAnswers.set(cert.thumbprint, failed);
    return failed;
  }

  private async askOcsp(url: string, cert: ParsedCert, issuer: ParsedCert): Promise<OcspAnswer> {
    const issuerCert = pkijs.Certificate.fromBER(toArrayBuffer(issuer.der));
    const id = new pkijs.CertID();
    // SHA-1 CertIDs are what every responder answers (openssl's default too); the hash only names the certificate.
    await id.createForCertificate(pkijs.Certificate.fromBER(toArrayBuffer(cert.der)), { hashAlgorithm: 'SHA-1', issuerCertificate: issuerCert });
    const nonce = new asn1js.OctetString({ valueHex: toArrayBuffer(randomBytes(16)) }).toBER(false);
    const request = new pkijs.OCSPRequest();
    request.tbsRequest.requestList = [new pkijs.Request({ reqCert: id })];
    request.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: ocspOid.nonce, critical: false, extnValue: nonce })];
    const bytes = await fetchBytes(url, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
      body: Buffer.from(request.toSchema(true).toBER(false)),
    }, maxOcspBytes, this.settings.fetchTimeoutMs);

    const response = pkijs.OCSPResponse.fromBER(toArrayBuffer(bytes));
    const status = response.responseStatus.valueBlock.valueDec;
    if (status !== 0) throw new Error(`the responder answered status ${status} (${['successful', 'malformedRequest', 'internalError', 'tryLater', '', 'sigRequired', 'unauthorized'][status] ?? 'unknown'})`);
    if (response.responseBytes?.responseType !== ocspOid.basic) throw new Error('the answer is not a basic OCSP response');
    const basic = pkijs.BasicOCSPResponse.fromBER(toArrayBuffer(response.responseBytes.response.valueBlock.valueHexView));
    const responder = this.responder(basic, issuer, issuerCert);
    if (!signatureHolds(basic.tbsResponseData.tbsView, basic.signatureAlgorithm.algorithmId, basic.signature.valueBlock.valueHexView, responder.publicKey)) {
      throw new Error(`the response signature does not verify with the key of ${responder.subject}`);
    }
    const echoed = basic.tbsResponseData.responseExtensions?.find((ext) => ext.extnID === ocspOid.nonce);
    if (echoed && !Buffer.from(echoed.extnValue.valueBlock.valueHexView).equals(Buffer.from(nonce))) throw new Error('the response answers another request (nonce)');
    const single = basic.tbsResponseData.responses.find((candidate) => candidate.certID.isEqual(id));
    if (!single) throw new Error('the response does not cover this certificate');
    const now = this.now();
    const thisUpdate = single.thisUpdate.getTime();
    if (thisUpdate > now + skewMs) throw new Error(`the response is dated ${iso(thisUpdate)}, in the future`);
    if (single.nextUpdate && single.nextUpdate.getTime() < now) throw new Error(`the response was due for renewal at ${iso(single.nextUpdate.getTime())}`);
    // Without our nonce echoed, only a recent answer (a pre-signed one) shows the status as of now.
    if (!echoed && now - thisUpdate > this.settings.maxAgeSeconds * 1000) throw new Error(`the response (without our nonce) is from ${iso(thisUpdate)}, too old`);
    const source = `OCSP ${url}`;
    // Kept until the responder's nextUpdate, or (none given, as openssl ocsp answers) for at most maxAgeSeconds.
    const until = Math.min(single.nextUpdate?.getTime() ?? Infinity, now + this.settings.maxAgeSeconds * 1000);
    const tag = (single.certStatus as asn1js.BaseBlock).idBlock.tagNumber;
    if (tag === 0) return { finding: 'good', source, until };
    if (tag === 1) {
      // RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
      const [time, reasonBlock] = (single.certStatus as asn1js.Constructed).valueBlock.value as [asn1js.BaseBlock, asn1js.Constructed | undefined];
      if (!(time instanceof asn1js.GeneralizedTime)) throw new Error('the revoked status carries no revocation time');
      const reasonValue = reasonBlock?.valueBlock.value?.[0];
      const reason = reasonValue instanceof asn1js.Enumerated ? reasonNames[reasonValue.valueBlock.valueDec] : undefined;
      return { finding: { at: time.toDate().getTime(), ...(reason ? { reason } : {}) }, source, until };
    }
    return { finding: { detail: `the OCSP responder ${url} does not know ${cert.subject}` }, source, until: now + retryMs };
  }

  /**
   * Who may answer for the issuer (RFC 6960 4.2.2.2): the issuer itself, or a responder certificate in the response
   * issued directly by the issuer, valid now, with the id-kp-OCSPSigning extended key usage.
   */
  private responder(basic: pkijs.BasicOCSPResponse, issuer: ParsedCert, issuerCert: pkijs.Certificate): ParsedCert {
    const id = basic.tbsResponseData.responderID as pkijs.RelativeDistinguishedNames | asn1js.OctetString;
    const names = (cert: pkijs.Certificate) => id instanceof asn1js.OctetString
      ? Buffer.from(id.valueBlock.valueHexView).equals(createHash('sha1').update(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest())
      : id.isEqual(cert.subject);
    if (names(issuerCert)) return issuer;
    const delegate = (basic.certs ?? []).find((cert) => cert instanceof pkijs.Certificate && names(cert));
    if (!delegate) throw new Error('the responder is neither the issuer nor a responder certificate the response carries');
    const parsed = certificate(new Uint8Array(delegate.toSchema().toBER(false)));
    if (!issuedBy(parsed, issuer)) throw new Error(`the responder certificate ${parsed.subject} is not issued by ${issuer.subject}`);
    if (!parsed.extKeyUsage?.includes(oid.ocspSigning)) throw new Error(`the responder certificate ${parsed.subject} lacks the OCSPSigning extended key usage`);
    const now = this.now();
    if (!(now >= parsed.notBefore && now <= parsed.notAfter)) throw new Error(`the responder certificate ${parsed.subject} is outside its validity period`);
    return parsed;
  }
}
