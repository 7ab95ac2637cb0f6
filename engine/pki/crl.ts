// The CA's certificate revocation list: issued empty by init, re-signed with each revocation or when it goes stale.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { SwxError } from '../errors.ts';
import { authorityKeyId, extension, time } from './asn1.ts';
import { loadAuthority, type Authority } from './issue.ts';
import { layout, readIfExists, writeOnce, writeReplace } from './store.ts';
import { normaliseSerial, oid, pemBlocks, revocationReasons, toArrayBuffer, toPem, type RevocationReason } from '../trust/x509.ts';

const day = 24 * 60 * 60 * 1000;
const backdate = 5 * 60 * 1000;
/** How long a CRL is current; init and revoke re-sign it, so a demo deployment never serves an expired one. */
export const crlValidityDays = 30;

function serialOf(entry: pkijs.RevokedCertificate): string {
  return normaliseSerial(Buffer.from(entry.userCertificate.valueBlock.valueHexView).toString('hex'));
}

function crlNumber(crl: pkijs.CertificateRevocationList): bigint {
  const ext = crl.crlExtensions?.extensions.find((e) => e.extnID === oid.crlNumber);
  const parsed = ext ? asn1js.fromBER(ext.extnValue.valueBlock.valueHexView) : undefined;
  return parsed?.result instanceof asn1js.Integer ? parsed.result.toBigInt() : 0n;
}

function revokedEntry(serial: string, at: Date, reason: RevocationReason): pkijs.RevokedCertificate {
  // Serials are positive integers: a leading zero byte keeps the DER INTEGER positive when the top bit is set.
  const bytes = Buffer.from(serial, 'hex');
  const positive = bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  const entry = new pkijs.RevokedCertificate({
    userCertificate: new asn1js.Integer({ valueHex: toArrayBuffer(positive) }),
    revocationDate: time(at),
  });
  // RFC 5280 5.3.1: the reason code is left out rather than given as unspecified.
  if (reason !== 'unspecified') {
    entry.crlEntryExtensions = new pkijs.Extensions({
      extensions: [extension(oid.crlReason, false, new asn1js.Enumerated({ value: revocationReasons[reason] }))],
    });
  }
  return entry;
}

async function signCrl(ca: Authority, entries: pkijs.RevokedCertificate[], number: bigint): Promise<string> {
  const now = Date.now();
  const crl = new pkijs.CertificateRevocationList({
    version: 1, // v2
    issuer: ca.cert.subject,
    thisUpdate: time(new Date(now - backdate)),
    nextUpdate: time(new Date(now + crlValidityDays * day)),
    crlExtensions: new pkijs.Extensions({
      extensions: [authorityKeyId(ca.cert), extension(oid.crlNumber, false, asn1js.Integer.fromBigInt(number))],
    }),
    // RFC 5280 5.1.2.6: an empty list is omitted, not encoded as an empty SEQUENCE.
    ...(entries.length ? { revokedCertificates: entries } : {}),
  });
  await crl.sign(ca.key.privateKey, 'SHA-256');
  return toPem(crl.toSchema().toBER(false), 'X509 CRL');
}

async function readCrl(path: string, ca: Authority): Promise<{ crl: pkijs.CertificateRevocationList; pem: string } | undefined> {
  const pem = await readIfExists(path);
  if (!pem) return undefined;
  let crl: pkijs.CertificateRevocationList;
  try {
    const der = pemBlocks(pem, 'X509 CRL')[0];
    if (!der) throw new Error('no X509 CRL block');
    crl = pkijs.CertificateRevocationList.fromBER(toArrayBuffer(der));
  } catch (error) {
    throw new SwxError('SWX_INTERNAL', `${path} is not a PEM CRL: ${(error as Error).message}; delete it to issue a fresh, empty CRL`, { cause: error });
  }
  if (!(await crl.verify({ issuerCertificate: ca.cert }))) {
    throw new SwxError('SWX_INTERNAL', `${path} is not signed by the CA in ${ca.credential.certPath}; delete it to issue a fresh, empty CRL`);
  }
  return { crl, pem };
}

const pending = new Map<string, Promise<unknown>>();

/** Runs CRL changes of one PKI folder one after the other within this process. */
function serialised<T>(dir: string, change: () => Promise<T>): Promise<T> {
  const run = (pending.get(dir) ?? Promise.resolve()).then(change);
  pending.set(dir, run.catch(() => undefined));
  return run;
}

/**
 * Keeps a current CRL: makes an empty one if there is none, and re-signs one that lapses within a day (or at once
 * with `force`) with the same entries and the next CRL number.
 */
export function ensureCrl(dir: string, ca: Authority, options: { force?: boolean } = {}): Promise<{ pem: string; created: boolean }> {
  return serialised(dir, async () => {
    const path = layout.crl(dir);
    const existing = await readCrl(path, ca);
    if (!existing) {
      const written = await writeOnce(path, await signCrl(ca, [], 1n), 0o644);
      return { pem: written.text, created: written.created };
    }
    const { crl } = existing;
    // Re-signed a day before it lapses, so a verifier with -crl_check never meets an expired list.
    if (!options.force && crl.nextUpdate && crl.nextUpdate.value.getTime() > Date.now() + day) return { pem: existing.pem, created: false };
    const pem = await signCrl(ca, crl.revokedCertificates ?? [], crlNumber(crl) + 1n);
    await writeReplace(path, pem, 0o644);
    return { pem, created: true };
  });
}

/**
 * Adds a certificate serial to the CRL and re-signs it; revoking an already revoked serial changes nothing.
 * Revocations within one process are serialised; two processes revoking at the same instant may lose one entry.
 */
export async function revoke(dir: string, serialHex: string, reason: RevocationReason = 'unspecified'): Promise<{ crlPem: string; serial: string; crlNumber: string; already: boolean }> {
  const serial = normaliseSerial(serialHex);
  if (!Object.hasOwn(revocationReasons, reason)) {
    throw new SwxError('SWX_BAD_REQUEST', `revocation reason ${JSON.stringify(reason)} is not one of ${Object.keys(revocationReasons).join(', ')}`);
  }
  const ca = await loadAuthority(dir);
  return serialised(dir, async () => {
    const path = layout.crl(dir);
    const existing = await readCrl(path, ca);
    const entries = existing?.crl.revokedCertificates ?? [];
    if (existing && entries.some((entry) => serialOf(entry) === serial)) {
      return { crlPem: existing.pem, serial, crlNumber: crlNumber(existing.crl).toString(), already: true };
    }
    const number = (existing ? crlNumber(existing.crl) : 0n) + 1n;
    const crlPem = await signCrl(ca, [...entries, revokedEntry(serial, new Date(), reason)], number);
    await writeReplace(path, crlPem, 0o644);
    return { crlPem, serial, crlNumber: number.toString(), already: false };
  });
}
