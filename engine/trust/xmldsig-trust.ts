// How an XML signature's signer is judged, shared by the reference verifier (xmldsig.ts) and the fast one
// (engine/xml/xmldsig-fast.ts) so that both reach the same verdict: pins, path to an anchor, validity at the instant
// that matters, usage for signing. The caller's PEM texts are read once and remembered (decoding costs more than the
// verification it serves).
import { createPublicKey, type KeyObject } from 'node:crypto';
import { SwxError, type ErrorCode } from '../errors.ts';
import { certificates, type ParsedCert } from './certs.ts';
import type { ResolvedKey } from './keyinfo.ts';
import { buildPath, usageRefusal } from './path.ts';
import type { CertificateStatus, SignerSummary } from './verdict.ts';

export type Refusal = { code: ErrorCode; detail: string };

/** The trust options of a verification, as verifyXml and verifyXmlFast take them. */
export interface TrustOptions {
  pinnedCertsPem?: string;
  publicKeysPem?: string | Record<string, string>;
  trustedCertsPem?: string;
  untrustedCertsPem?: string;
}

function byPem<T>(read: (pem: string) => T): (pem: string) => T {
  const cache = new Map<string, T>();
  return (pem) => {
    let value = cache.get(pem);
    if (value === undefined) {
      value = read(pem);
      if (cache.size >= 256) cache.delete(cache.keys().next().value!);
      cache.set(pem, value);
    }
    return value;
  };
}

const certificatesOf = byPem(certificates);
const publicKeyOf = byPem((pem) => createPublicKey(pem));

export function summary(resolved: ResolvedKey): SignerSummary {
  const cert = resolved.certificate;
  if (!cert) return { subject: resolved.keyName ? `KeyName ${resolved.keyName}` : `bare ${resolved.key.asymmetricKeyType ?? ''} public key` };
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serial,
    thumbprint: cert.thumbprint,
    validFrom: new Date(cert.notBefore).toISOString(),
    validTo: new Date(cert.notAfter).toISOString(),
  };
}

export interface Trust {
  pinned?: ParsedCert;
  pinnedRest: ParsedCert[];
  pinnedKey?: KeyObject;
  namedKeys?: Record<string, KeyObject>;
  anchors: ParsedCert[];
  untrusted: ParsedCert[];
}

function publicKey(pem: string, what: string): KeyObject {
  try {
    return publicKeyOf(pem);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `${what} is not a PEM public key or certificate: ${(error as Error).message}`);
  }
}

function readCerts(pem: string | undefined, what: string): ParsedCert[] {
  if (pem === undefined) return [];
  const parsed = certificatesOf(pem);
  if (parsed.length === 0) throw new SwxError('SWX_BAD_REQUEST', `${what} holds no PEM CERTIFICATE block`);
  return parsed;
}

export function readTrust(options: TrustOptions): Trust {
  const [pinned, ...pinnedRest] = readCerts(options.pinnedCertsPem, 'pinnedCertsPem');
  const keys = options.publicKeysPem;
  return {
    ...(pinned ? { pinned } : {}),
    pinnedRest,
    ...(typeof keys === 'string' ? { pinnedKey: publicKey(keys, 'publicKeysPem') } : {}),
    ...(keys && typeof keys === 'object'
      ? { namedKeys: Object.fromEntries(Object.entries(keys).map(([name, pem]) => [name, publicKey(pem, `publicKeysPem[${JSON.stringify(name)}]`)])) }
      : {}),
    anchors: readCerts(options.trustedCertsPem, 'trustedCertsPem'),
    untrusted: readCerts(options.untrustedCertsPem, 'untrustedCertsPem'),
  };
}

/** Pins, path to an anchor, validity at `at`, usage for signing. */
export function judgeCertificate(resolved: ResolvedKey, trust: Trust, at: Date): { status: CertificateStatus; refusal?: Refusal } {
  const base = { at: at.toISOString() };
  const refuse = (code: ErrorCode, status: CertificateStatus['status'], detail: string, level: CertificateStatus['trust']) =>
    ({ status: { ...base, status, trust: level, detail }, refusal: { code, detail } });
  const signer = resolved.certificate;
  let level: CertificateStatus['trust'] = 'none';
  if (trust.pinned) {
    if (signer ? !signer.der.equals(trust.pinned.der) : !resolved.key.equals(trust.pinned.publicKey)) {
      return refuse('SWX_SIG_KEY_MISMATCH', 'untrusted', `signed by ${signer?.subject ?? 'another key'}, not by the pinned certificate ${trust.pinned.subject}`, 'none');
    }
    level = 'pinned';
  }
  const namedKey = resolved.keyName ? trust.namedKeys?.[resolved.keyName] : undefined;
  for (const [pin, what] of [[trust.pinnedKey, 'the pinned public key'], [namedKey, `the key named ${resolved.keyName}`]] as const) {
    if (!pin) continue;
    if (!resolved.key.equals(pin)) return refuse('SWX_SIG_KEY_MISMATCH', 'untrusted', `the signing key is not ${what}`, 'none');
    level = 'pinned';
  }
  const cert = signer ?? (level === 'pinned' && trust.pinned ? trust.pinned : undefined);
  if (trust.anchors.length > 0) {
    if (!cert) return refuse('SWX_CERT_UNTRUSTED', 'untrusted', 'the signature carries a bare public key, which cannot chain to a trust anchor', level);
    const found = buildPath(cert, [...resolved.carried, ...trust.pinnedRest, ...trust.untrusted], trust.anchors, at.getTime());
    if (!('path' in found)) {
      const status = found.code === 'SWX_CERT_EXPIRED' ? 'expired' : found.code === 'SWX_CERT_USAGE' ? 'wrong-usage' : 'untrusted';
      return refuse(found.code, status, found.detail, 'none');
    }
    level = 'chain';
  } else if (cert && !(at.getTime() >= cert.notBefore && at.getTime() <= cert.notAfter)) {
    return refuse('SWX_CERT_EXPIRED', 'expired',
      `${cert.subject} is valid from ${new Date(cert.notBefore).toISOString()} to ${new Date(cert.notAfter).toISOString()}, not at ${at.toISOString()}`, level);
  }
  const usage = cert ? usageRefusal(cert, 'agency-signing') : undefined;
  if (usage) return refuse(usage.code, 'wrong-usage', usage.detail, level);
  if (level === 'none') {
    return { status: { ...base, status: 'unchecked', trust: 'none', detail: 'neither a pin nor a trust anchor was given: integrity and the embedded certificate\'s validity only, not who signed' } };
  }
  return { status: { ...base, status: 'valid', trust: level, ...(cert ? {} : { detail: 'a pinned bare public key; no certificate' }) } };
}
