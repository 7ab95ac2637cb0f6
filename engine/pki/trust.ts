// The deployment's trust store: trust anchors (the hub CA and imported outside CAs), intermediates and the hub CA's
// CRL, kept in the data folder and shared between hub processes through a TrustShare the hub hands it; and the one
// place that answers "is this certificate acceptable for purpose P at instant T" (path, validity, usage, revocation).
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../log.ts';
import { revocationUnknownAccepted } from '../metrics.ts';
import { certificate, certificates, type ParsedCert } from '../trust/certs.ts';
import { buildPath, usageRefusal, type CertificateCheck, type CertRefusal, type Purpose } from '../trust/path.ts';
import { Revocation, type CrlInfo, type RevocationSettings } from '../trust/revocation.ts';
import type { CertificateStatus } from '../trust/verdict.ts';
import { ensureCrl } from './crl.ts';
import { loadAuthority } from './issue.ts';
import { layout, readIfExists, writeReplace } from './store.ts';
import { toPem } from '../trust/x509.ts';

export interface TrustSettings extends Omit<RevocationSettings, 'cacheDir'> {
  /** Accept a certificate whose revocation status cannot be established (logged, counted); default refuses. */
  failOpen: boolean;
}

/**
 * Where hub processes share what their trust stores hold, each taking what the others put: `anchor.<thumbprint>` and
 * `intermediate.<thumbprint>` (a PEM certificate), `crl.<issuer thumbprint>` (a DER CRL of the hub CA).
 */
export interface TrustShare {
  /** Every entry held now. */
  entries(): Promise<{ key: string; value: Uint8Array }[]>;
  /** Hands `apply` each entry put after those `entries` returned, one at a time; returns what stops it. */
  follow(apply: (key: string, value: Uint8Array) => Promise<void>): Promise<() => void>;
  /** Stores `value` under `key` unless the key holds one already. */
  create(key: string, value: string): Promise<void>;
  put(key: string, value: Uint8Array): Promise<void>;
}

const pathCacheSize = 4096;
/** How often the data folder is looked at for a revocation or an import made by `swx pki` (the CLI needs no hub). */
const pollMs = 1_000;
/** How often the hub CA's CRL is checked for re-signing (it is re-signed when less than a day is left). */
const resignMs = 3_600_000;

const statusNames: Record<CertRefusal['code'], CertificateStatus['status']> = {
  SWX_CERT_EXPIRED: 'expired',
  SWX_CERT_UNTRUSTED: 'untrusted',
  SWX_CERT_USAGE: 'wrong-usage',
  SWX_CERT_REVOKED: 'revoked',
  SWX_CERT_REVOCATION_UNKNOWN: 'revocation-unknown',
};

async function certsIn(folder: string): Promise<ParsedCert[]> {
  const files = await readdir(folder).catch(() => [] as string[]);
  const out: ParsedCert[] = [];
  for (const file of files.filter((name) => name.endsWith('.pem')).sort()) {
    try {
      out.push(...certificates(await readFile(join(folder, file), 'utf8')));
    } catch (error) {
      log.error({ file: join(folder, file), err: (error as Error).message }, 'trust store file is not a PEM certificate; ignored');
    }
  }
  return out;
}

export class TrustStore implements CertificateCheck {
  private readonly anchors = new Map<string, ParsedCert>();
  private readonly intermediates = new Map<string, ParsedCert>();
  /** Hub CA CRLs as last seen (data folder or KV), by issuer thumbprint: adopted once their issuer is known. */
  private readonly crls = new Map<string, Buffer>();
  /** What the share holds for each hub CA CRL, as last seen or put. */
  private readonly shared = new Map<string, Buffer>();
  private readonly paths = new Map<string, ParsedCert[]>();
  private ownCa?: ParsedCert;
  private folderStamp = '';
  private reloading?: Promise<void>;
  private share?: TrustShare;
  private readonly stops: (() => void)[] = [];

  private constructor(
    private readonly dir: string,
    private readonly settings: TrustSettings,
    readonly revocation: Revocation,
    private readonly now: () => number,
  ) {}

  /**
   * Reads the PKI folder `dir`; with a share, also shares its anchors, intermediates and the hub CA's CRL with every
   * other hub process and takes theirs. `start()` then follows changes.
   */
  static async open(dir: string, settings: TrustSettings, options: { share?: TrustShare; now?: () => number } = {}): Promise<TrustStore> {
    const now = options.now ?? Date.now;
    const revocation = new Revocation({ ...settings, cacheDir: layout.crlCache(dir) }, now);
    const store = new TrustStore(dir, settings, revocation, now);
    await revocation.loadCache();
    await store.reload(true);
    if (options.share) await store.join(options.share);
    return store;
  }

  /** Follows the data folder (revocations and imports by `swx pki`), re-signs the hub CRL ahead of time, refreshes CRLs. */
  start(): void {
    const poll = setInterval(() => void this.reload().catch((error) => log.error({ err: (error as Error).message }, 'trust store reload failed')), pollMs);
    const resign = setInterval(() => void this.resign(), resignMs);
    poll.unref();
    resign.unref();
    this.revocation.start();
    this.stops.push(() => clearInterval(poll), () => clearInterval(resign), () => this.revocation.stop());
    void this.resign();
  }

  close(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  private async resign(): Promise<void> {
    if (!existsSync(layout.key(layout.folder(this.dir, 'ca')))) return;
    try {
      await ensureCrl(this.dir, await loadAuthority(this.dir));
    } catch (error) {
      log.error({ err: (error as Error).message }, 'the hub CA CRL cannot be re-signed');
    }
  }

  /** Re-reads the data folder when something in it changed (or when `force`), and shares what it holds. */
  reload(force = false): Promise<void> {
    // One reading at a time: the poll must not overlap a slow one.
    const run = (this.reloading ?? Promise.resolve()).then(() => this.read(force));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async read(force: boolean): Promise<void> {
    const files = [layout.cert(layout.folder(this.dir, 'ca')), layout.crl(this.dir), layout.anchors(this.dir), layout.intermediates(this.dir)];
    const stamp = (await Promise.all(files.map((file) => stat(file).then((info) => info.mtimeMs, () => 0)))).join(',');
    if (!force && stamp === this.folderStamp) return;
    this.folderStamp = stamp;
    const ownPem = await readIfExists(files[0]!);
    this.ownCa = ownPem ? certificate(ownPem) : undefined;
    const anchors = [...(this.ownCa ? [this.ownCa] : []), ...await certsIn(layout.anchors(this.dir))];
    const intermediates = await certsIn(layout.intermediates(this.dir));
    for (const cert of anchors) await this.add('anchor', cert);
    for (const cert of intermediates) await this.add('intermediate', cert);
    const crlPem = await readIfExists(files[1]!);
    if (crlPem && this.ownCa) await this.addCrl(this.ownCa.thumbprint, Buffer.from(crlPem));
  }

  private async add(role: 'anchor' | 'intermediate', cert: ParsedCert): Promise<void> {
    const notCa = usageRefusal(cert, 'ca');
    if (notCa) { log.error({ role, cert: cert.subject, detail: notCa.detail }, 'not a CA certificate; not trusted'); return; }
    const map = role === 'anchor' ? this.anchors : this.intermediates;
    if (!map.has(cert.thumbprint)) {
      map.set(cert.thumbprint, cert);
      this.paths.clear();
      for (const issuer of this.crls.keys()) this.adopt(issuer);
    }
    await this.share?.create(`${role}.${cert.thumbprint}`, toPem(cert.der, 'CERTIFICATE')).catch(() => undefined);
  }

  private async addCrl(issuerPrint: string, bytes: Buffer): Promise<void> {
    this.crls.set(issuerPrint, bytes);
    this.adopt(issuerPrint);
    await this.publishCrl(issuerPrint);
  }

  /** Puts the CRL in use for an issuer into the bucket when the bucket holds an older one (or none). */
  private async publishCrl(issuerPrint: string): Promise<void> {
    const issuer = this.anchors.get(issuerPrint) ?? this.intermediates.get(issuerPrint);
    const held = issuer ? this.revocation.handedInCrl(issuer) : undefined;
    if (!this.share || !held || this.shared.get(issuerPrint)?.equals(held.der)) return;
    this.shared.set(issuerPrint, held.der);
    await this.share.put(`crl.${issuerPrint}`, held.der).catch((error) => log.error({ err: (error as Error).message }, 'cannot share the CRL'));
  }

  /** Takes the CRL held for an issuer into the revocation checks; true when it is newer than the one in use. */
  private adopt(issuerPrint: string): boolean {
    const issuer = this.anchors.get(issuerPrint) ?? this.intermediates.get(issuerPrint);
    const bytes = this.crls.get(issuerPrint);
    if (!issuer || !bytes) return false;
    try {
      const previous = this.revocation.handedInCrl(issuer);
      const newer = this.revocation.adopt(issuer, bytes, `hub CA ${issuer.subject}`);
      if (newer && previous) log.info({ issuer: issuer.subject, crlNumber: this.revocation.handedInCrl(issuer)?.number?.toString() }, 'CRL in use updated');
      return newer;
    } catch (error) {
      log.error({ issuer: issuer.subject, err: (error as Error).message }, 'CRL is not valid; the previous one stays in use');
      return false;
    }
  }

  /** Joins the share of every hub process: takes what the others hold, then publishes what this folder holds. */
  private async join(share: TrustShare): Promise<void> {
    for (const { key, value } of await share.entries()) await this.apply(key, value);
    this.share = share;
    await this.reload(true);
    this.stops.push(await share.follow((key, value) => this.apply(key, value)));
  }

  private async apply(key: string, value: Uint8Array): Promise<void> {
    const [kind, print] = key.split(/\.(.*)/s) as [string, string];
    try {
      if (kind === 'crl') {
        this.shared.set(print, Buffer.from(value));
        this.crls.set(print, Buffer.from(value));
        // A folder holding a copy of this CA keeps the newest list, so a revocation or re-signing there builds on it.
        if (this.adopt(print) && this.ownCa && print === this.ownCa.thumbprint) {
          await writeReplace(layout.crl(this.dir), toPem(this.revocation.handedInCrl(this.ownCa)!.der, 'X509 CRL'), 0o644);
        }
        // A process that holds a newer list than the bucket (it was revoked while this one was away) puts it back.
        await this.publishCrl(print);
      } else if (kind === 'anchor' || kind === 'intermediate') {
        const cert = certificate(Buffer.from(value).toString('utf8'));
        if (cert.thumbprint !== print) throw new Error(`holds certificate ${cert.thumbprint}`);
        await this.add(kind, cert);
      }
    } catch (error) {
      log.error({ key, err: (error as Error).message }, 'trust store entry is invalid; ignored');
    }
  }

  /** The trust anchors and intermediates in use. */
  list(): { anchors: ParsedCert[]; intermediates: ParsedCert[] } {
    return { anchors: [...this.anchors.values()], intermediates: [...this.intermediates.values()] };
  }

  /** The DER CRL of this folder's CA, as its distribution point serves it. */
  ownCrl(): Buffer | undefined {
    return this.ownCa ? this.revocation.handedInCrl(this.ownCa)?.der : undefined;
  }

  /** Every CRL in use, the hub CA's first, with its freshness. */
  crlStatus(): CrlInfo[] {
    return this.revocation.list();
  }

  private path(cert: ParsedCert, at: number, carried: readonly ParsedCert[]) {
    const cached = carried.length ? undefined : this.paths.get(cert.thumbprint);
    if (cached && cached.every((c) => at >= c.notBefore && at <= c.notAfter)) return { path: cached };
    const found = buildPath(cert, [...this.intermediates.values(), ...carried], [...this.anchors.values()], at);
    if ('path' in found && !carried.length) {
      if (this.paths.size >= pathCacheSize) this.paths.clear();
      this.paths.set(cert.thumbprint, found.path);
    }
    return found;
  }

  /**
   * Whether `cert` is acceptable for `purpose` at `at` (epoch ms, default now): a path to a trust anchor (through the
   * known intermediates and those `carried` by the message) valid at `at`, the purpose allowed by its key usage, and
   * neither it nor an intermediate revoked. Undefined when acceptable; else the refusal with its SWX_CERT_* code.
   */
  async check(cert: ParsedCert, purpose: Purpose, at = this.now(), carried: readonly ParsedCert[] = []): Promise<CertRefusal | undefined> {
    const found = this.path(cert, at, carried);
    if (!('path' in found)) return found;
    const usage = usageRefusal(cert, purpose);
    if (usage) return usage;
    for (let i = 0; i < found.path.length - 1; i++) {
      const subject = found.path[i]!;
      const status = await this.revocation.status(subject, found.path[i + 1]!, at);
      if (status.status === 'revoked') {
        return { code: 'SWX_CERT_REVOKED', detail: `${subject.subject} (serial ${subject.serial}) was revoked on ${status.revokedAt}${status.reason ? ` (${status.reason})` : ''}, according to ${status.source}` };
      }
      if (status.status === 'unknown') {
        if (!this.settings.failOpen) return { code: 'SWX_CERT_REVOCATION_UNKNOWN', detail: status.detail };
        revocationUnknownAccepted.inc();
        log.warn({ cert: subject.subject, detail: status.detail }, 'revocation status unknown; accepted because SWX_REVOCATION_FAIL_OPEN is on');
      }
    }
    return undefined;
  }

  /** `check` as the certificate part of a SignatureVerdict. */
  async status(cert: ParsedCert, purpose: Purpose, at = this.now(), carried: readonly ParsedCert[] = []): Promise<CertificateStatus> {
    const refusal = await this.check(cert, purpose, at, carried);
    return { status: refusal ? statusNames[refusal.code] : 'valid', at: new Date(at).toISOString(), trust: 'chain', ...(refusal ? { detail: refusal.detail } : {}) };
  }
}
