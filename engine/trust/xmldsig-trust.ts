// How an XML signature is concluded once its references check out, shared by the reference verifier (xmldsig.ts) and
// the fast one (xmldsig-fast.ts) so that both reach the same verdict: the SignatureValue, the place of what
// is signed, and the signer (pins, path to an anchor, validity at the instant that matters, usage for signing). The
// caller's PEM texts are read once and remembered (decoding costs more than the verification it serves).
import { createPublicKey, type KeyObject } from 'node:crypto';
import { SwxError, type ErrorCode } from '../errors.ts';
import type { Attachment } from '../mime/index.ts';
import { XmlRefusal, type XmlLimits } from '../xml/parse.ts';
import { soapVersionOf } from '../xml/soap.ts';
import { certificates, type ParsedCert } from './certs.ts';
import type { ResolvedKey } from './keyinfo.ts';
import { buildPath, usageRefusal } from './path.ts';
import { signerSummary, uncheckedCaveat, type AlgorithmPolicy, type CertificateStatus, type SignedElement, type SignerSummary, type XmlVerdict } from './verdict.ts';
import { attachmentDigest, keyMismatch, namespaces, verifyWith, type AttachmentDigests } from './xmldsig-algorithms.ts';
import type { SignatureTree } from './xmldsig-spec.ts';

export type Refusal = { code: ErrorCode; detail: string };

/** The trust options of a verification, as verifyXml and verifyXmlFast take them. */
export interface TrustOptions {
  pinnedCertsPem?: string;
  publicKeysPem?: string | Record<string, string>;
  trustedCertsPem?: string;
  untrustedCertsPem?: string;
}

/** A MIME part a reference may name by `cid:`: the attachment shape engine/mime gives (Content-ID without <>). */
/** A MIME part a signature references by cid:, held whole, or (`digests`, body empty) digested as it streamed. */
export type XmlAttachment = Attachment & { digests?: AttachmentDigests };

/** The MIME part a cid: Reference URI names among `attachments`, as both verifiers and the signer resolve it. */
export function attachmentTarget(uri: string, attachments: readonly XmlAttachment[]): XmlAttachment | Refusal {
  let contentId: string;
  try {
    contentId = decodeURIComponent(uri.slice(4));
  } catch {
    return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `${uri.slice(0, 120)} is not a valid cid: URL` };
  }
  const parts = attachments.filter((part) => part.contentId === contentId);
  if (parts.length === 0) return { code: 'SWX_SIG_REF_UNRESOLVED', detail: `no attachment with Content-ID <${contentId.slice(0, 120)}>` };
  if (parts.length > 1) return { code: 'SWX_SIG_WRAPPED', detail: `${parts.length} attachments carry Content-ID <${contentId.slice(0, 120)}>` };
  return parts[0]!;
}

/** The judgement of a cid: reference's digest, the same in both verifiers: undefined when it matches. */
export function attachmentRefusal(
  ref: { transforms: readonly { algorithm: string }[]; digestAlgorithm: string; digestValue: Buffer },
  attachment: XmlAttachment,
  limits?: Partial<XmlLimits>,
): Refusal | undefined {
  let computed: Buffer | undefined;
  try {
    computed = attachmentDigest(attachment, ref.transforms[0]?.algorithm, ref.digestAlgorithm, limits);
  } catch (error) {
    if (error instanceof XmlRefusal) return { code: error.code, detail: `the attachment: ${error.message}` };
    throw error;
  }
  if (!computed) return { code: 'SWX_SIG_ALG_UNSUPPORTED', detail: `the attachment <${attachment.contentId.slice(0, 120)}> was too large to hold and is digested as it streamed with SHA-256, not ${ref.digestAlgorithm.slice(0, 120)}` };
  return digestRefusal(computed, ref.digestValue);
}

/** A Reference whose computed digest is not the one it states. */
export function digestRefusal(computed: Buffer, stated: Buffer): Refusal | undefined {
  if (computed.equals(stated)) return undefined;
  return { code: 'SWX_DIGEST_MISMATCH', detail: `computed digest ${computed.toString('base64')}, the Reference says ${stated.toString('base64')}` };
}

/** The options of a verification, as verifyXml and verifyXmlFast take them. */
export interface VerifyXmlOptions extends TrustOptions {
  attachments?: readonly XmlAttachment[];
  /** The instant certificate validity is judged at (default now). */
  at?: Date;
  /** live (default) refuses SHA-1 and DSA; archive accepts them and lists them in verdict.weak. */
  policy?: AlgorithmPolicy;
  limits?: Partial<XmlLimits>;
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

function summary(resolved: ResolvedKey): SignerSummary {
  const cert = resolved.certificate;
  if (!cert) return { subject: resolved.keyName ? `KeyName ${resolved.keyName}` : `bare ${resolved.key.asymmetricKeyType ?? ''} public key` };
  return signerSummary(cert);
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
function judgeCertificate(resolved: ResolvedKey, trust: Trust, at: Date): { status: CertificateStatus; refusal?: Refusal } {
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
    return { status: { ...base, status: 'unchecked', trust: 'none', detail: uncheckedCaveat } };
  }
  return { status: { ...base, status: 'valid', trust: level, ...(cert ? {} : { detail: 'a pinned bare public key; no certificate' }) } };
}

// ---- the end both verifiers share ----

/** A verdict being built: what is known so far, and the refusal that reports it. */
export interface XmlDraft {
  known: Omit<XmlVerdict, 'valid' | 'code' | 'detail'>;
  refuse(code: ErrorCode, detail: string): XmlVerdict;
}

export function xmlDraft(): XmlDraft {
  const known: XmlDraft['known'] = { kind: 'xmldsig', signedElements: [], signedAttachments: [] };
  // What is signed is reported only for a valid verdict.
  return { known, refuse: (code, detail) => ({ ...known, valid: false, code, detail, signedElements: [], signedAttachments: [] }) };
}

/** What a verifier hands over once every reference has checked out. */
export interface Checked<E> {
  tree: SignatureTree<E>;
  root: E;
  /** The first element carrying an Id. */
  byId(id: string): E | undefined;
  algorithm: Parameters<typeof verifyWith>[0];
  signatureValue: Buffer;
  /** SignedInfo canonicalised; asked for only once the key fits the algorithm. */
  signedInfo(): string;
  resolved: ResolvedKey | Refusal;
  signedElements: SignedElement[];
  signedAttachments: string[];
  trust: Trust;
  at: Date;
}

/** The key, the SignatureValue, the place of what is signed, the signing time and the signer, in this order. */
export function concludeSignature<E>(draft: XmlDraft, checked: Checked<E>): XmlVerdict {
  const { known, refuse } = draft;
  const { resolved, algorithm } = checked;
  if ('code' in resolved) return refuse(resolved.code, resolved.detail);
  known.signer = summary(resolved);
  const mismatch = keyMismatch(algorithm, resolved.key);
  if (mismatch) return refuse('SWX_SIG_INVALID', `the key from ${resolved.source} cannot check this signature: ${mismatch}`);
  if (checked.signatureValue.length === 0 || !verifyWith(algorithm, resolved.key, checked.signedInfo(), checked.signatureValue)) {
    return refuse('SWX_SIG_INVALID', `the SignatureValue does not verify over SignedInfo with the key from ${resolved.source}`);
  }
  const wrapped = misplaced(checked);
  if (wrapped) return refuse('SWX_SIG_WRAPPED', wrapped);
  const time = signedAt(checked);
  if (time) known.signedAt = time;

  const judged = judgeCertificate(resolved, checked.trust, checked.at);
  known.certificate = judged.status;
  if (judged.refusal) return refuse(judged.refusal.code, judged.refusal.detail);
  const caveat = judged.status.status === 'unchecked' ? judged.status.detail ?? '' : '';
  return { ...known, valid: true, code: 'SWX_OK', detail: caveat, signedElements: checked.signedElements, signedAttachments: checked.signedAttachments };
}

/** In an envelope, SOAP's own elements and the WS-Security Timestamp count only where SOAP puts them. */
function misplaced<E>({ tree, root, signedElements }: Checked<E>): string | undefined {
  const envelope = tree.namespace(root);
  if (!soapVersionOf(envelope)) return undefined;
  const expected: Record<string, string> = { Envelope: '/Envelope', Header: '/Envelope/Header', Body: '/Envelope/Body' };
  for (const element of signedElements) {
    const wanted = element.namespace === envelope ? expected[element.localName]
      : element.namespace === namespaces.wsu && element.localName === 'Timestamp' ? '/Envelope/Header/Security/Timestamp' : undefined;
    if (wanted && element.path !== wanted) return `the signed ${element.localName} is at ${element.path}, not at ${wanted}`;
  }
  return undefined;
}

/** wsu:Created of the signed WS-Security Timestamp, ISO. */
function signedAt<E>({ tree, byId, signedElements }: Checked<E>): string | undefined {
  const timestamp = signedElements.find((element) => element.namespace === namespaces.wsu && element.localName === 'Timestamp');
  if (!timestamp?.uri.startsWith('#')) return undefined;
  const element = byId(timestamp.uri.slice(1));
  const createdElement = element === undefined ? undefined : tree.children(element, namespaces.wsu, 'Created')[0];
  const created = createdElement === undefined ? undefined : tree.text(createdElement).trim();
  const time = created ? new Date(created) : undefined;
  return time && !Number.isNaN(time.getTime()) ? time.toISOString() : undefined;
}
