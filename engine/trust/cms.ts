// CMS SignedData (RFC 5652) sign and verify, attached or detached, on pkijs as the reference implementation.
// verifyCms turns every failure, hostile input included, into a verdict with a stable SWX_* code; it never throws.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createHash, X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../errors.ts';
import { toArrayBuffer } from '../pki/asn1.ts';
import { importKey, type KeyPair } from '../pki/keys.ts';
import { pemBlocks, thumbprint } from '../pki/store.ts';
import { pathRefusal, validityRefusal } from './path.ts';

const oids = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
} as const;

const algorithmNames: Record<string, string> = {
  '1.3.14.3.2.26': 'SHA-1',
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
  '1.2.840.113549.1.1.1': 'RSA-PKCS1-v1_5',
  '1.2.840.113549.1.1.5': 'RSA-PKCS1-v1_5-SHA1',
  '1.2.840.113549.1.1.11': 'RSA-PKCS1-v1_5-SHA256',
  '1.2.840.113549.1.1.12': 'RSA-PKCS1-v1_5-SHA384',
  '1.2.840.113549.1.1.13': 'RSA-PKCS1-v1_5-SHA512',
  '1.2.840.113549.1.1.10': 'RSA-PSS',
  '1.2.840.10045.2.1': 'ECDSA',
  '1.2.840.10045.4.3.2': 'ECDSA-SHA256',
  '1.2.840.10045.4.3.3': 'ECDSA-SHA384',
  '1.2.840.10045.4.3.4': 'ECDSA-SHA512',
};

/** Stable reasons a CMS signature is refused (SWX_OK when it is accepted). */
export type CmsCode = 'SWX_OK' | Extract<ErrorCode,
  | 'SWX_BAD_REQUEST'
  | 'SWX_SIG_INVALID'
  | 'SWX_DIGEST_MISMATCH'
  | 'SWX_CERT_EXPIRED'
  | 'SWX_CERT_UNTRUSTED'
  | 'SWX_SIG_KEY_MISMATCH'>;

export interface SignCmsOptions {
  data: Buffer;
  certPem: string;
  /** PKCS#8 (or SEC1 / PKCS#1) PEM; ECDSA P-256 or RSA. */
  keyPem: string;
  /** Extra certificates to include (e.g. chain.pem); the signer certificate is not repeated. */
  chainPem?: string;
  /** Leave the content out of the message; the receiver supplies it to verifyCms. */
  detached?: boolean;
  signingTime?: Date;
}

export interface VerifyCmsOptions {
  /** The content of a detached signature. */
  data?: Buffer;
  /** Trust anchors; when given, the signer certificate must chain to one of them (through certificates in the message). */
  trustedCertsPem?: string[];
  /** The partner's registered certificate; the signer certificate must be exactly this one. */
  pinnedCertPem?: string;
  /** When certificate validity is judged (default now). */
  at?: Date;
}

export interface CmsSigner {
  subject: string;
  serial: string;
  /** base64url SHA-256 of the certificate's DER. */
  thumbprint: string;
}

export interface CmsVerdict {
  valid: boolean;
  code: CmsCode;
  /** What failed, in words; empty when valid. */
  detail: string;
  /** Present once the signer certificate was found in the message. */
  signer?: CmsSigner;
  signingTime?: Date;
  /** Present once the SignerInfo was parsed. */
  algorithms?: { digest: string; signature: string };
  detached: boolean;
  /** The content the signature covers (eContent, or the detached data), when the verdict is valid. */
  content?: Buffer;
}

const keyCache = new Map<string, Promise<KeyPair>>();
const keyCacheLimit = 64;

/** Keys are imported once per PEM: importing costs more than an ECDSA signature. */
function signingKey(keyPem: string): Promise<KeyPair> {
  let key = keyCache.get(keyPem);
  if (!key) {
    if (keyCache.size >= keyCacheLimit) keyCache.delete(keyCache.keys().next().value!);
    key = importKey(keyPem, 'CMS signing key');
    key.catch(() => keyCache.delete(keyPem));
    keyCache.set(keyPem, key);
  }
  return key;
}

function certificatesOf(pem: string): pkijs.Certificate[] {
  return pemBlocks(pem, 'CERTIFICATE').map((der) => pkijs.Certificate.fromBER(toArrayBuffer(der)));
}

function attribute(type: string, value: asn1js.BaseBlock): pkijs.Attribute {
  return new pkijs.Attribute({ type, values: [value] });
}

function asn1Time(date: Date): asn1js.BaseBlock {
  return date.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate: date }) : new asn1js.GeneralizedTime({ valueDate: date });
}

/** Signs `data` as a DER ContentInfo(SignedData) with SHA-256 and signed contentType, signingTime and messageDigest. */
export async function signCms(options: SignCmsOptions): Promise<Buffer> {
  const { data, certPem, keyPem, chainPem, detached = false, signingTime = new Date() } = options;
  const [cert] = certificatesOf(certPem);
  if (!cert) throw new TypeError('signCms: certPem holds no PEM CERTIFICATE block');
  const key = await signingKey(keyPem);
  const signerThumbprint = thumbprint(certPem);
  const extra = (chainPem ? pemBlocks(chainPem, 'CERTIFICATE') : [])
    .filter((der) => thumbprint(der) !== signerThumbprint)
    .map((der) => pkijs.Certificate.fromBER(toArrayBuffer(der)));

  const digest = createHash('sha256').update(data).digest();
  // DER orders a SET OF by encoding; pkijs writes attributes in the order given.
  const attributes = [
    attribute(oids.contentType, new asn1js.ObjectIdentifier({ value: oids.data })),
    attribute(oids.signingTime, asn1Time(signingTime)),
    attribute(oids.messageDigest, new asn1js.OctetString({ valueHex: toArrayBuffer(digest) })),
  ]
    .map((attr) => ({ attr, der: Buffer.from(attr.toSchema().toBER(false)) }))
    .sort((a, b) => Buffer.compare(a.der, b.der))
    .map(({ attr }) => attr);

  const encapContentInfo = new pkijs.EncapsulatedContentInfo({ eContentType: oids.data });
  // Set after construction: the constructor would turn it into a constructed (BER) OCTET STRING.
  if (!detached) encapContentInfo.eContent = new asn1js.OctetString({ valueHex: toArrayBuffer(data) });
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo,
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
      }),
    ],
    certificates: [cert, ...extra],
  });
  await signedData.sign(key.privateKey, 0, 'SHA-256');
  const contentInfo = new pkijs.ContentInfo({ contentType: oids.signedData, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false));
}

type Failure = Omit<CmsVerdict, 'valid' | 'code' | 'detail'>;

function refuse(code: Exclude<CmsCode, 'SWX_OK'>, detail: string, known: Failure): CmsVerdict {
  const { content: _content, ...rest } = known;
  return { ...rest, valid: false, code, detail };
}

const anchorCache = new Map<string, X509Certificate[]>();

/** Trust anchors are parsed once per PEM text (deployments pass the same few on every call). */
function parseCertPems(pems: string[]): X509Certificate[] {
  return pems.flatMap((pem) => {
    let certs = anchorCache.get(pem);
    if (!certs) {
      certs = pemBlocks(pem, 'CERTIFICATE').map((der) => new X509Certificate(der));
      if (anchorCache.size >= keyCacheLimit) anchorCache.delete(anchorCache.keys().next().value!);
      anchorCache.set(pem, certs);
    }
    return certs;
  });
}

const derCache = new WeakMap<pkijs.Certificate, Buffer>();

/** pkijs keeps no copy of the bytes it parsed; re-encoding costs ~0.6 ms, so it is done once per certificate. */
function derOf(cert: pkijs.Certificate): Buffer {
  let der = derCache.get(cert);
  if (!der) {
    der = Buffer.from(cert.toSchema().toBER(false));
    derCache.set(cert, der);
  }
  return der;
}

/**
 * asn1js reads each element by its own length and does not check that children exactly fill their parent, so a
 * message with inconsistent lengths would parse; openssl refuses it, and so do we (the verdict must not depend on
 * the parser). Indefinite lengths (BER, allowed in CMS) end at their end-of-contents marker and are not summed.
 */
function lengthsAgree(block: asn1js.AsnType, depth = 0): boolean {
  if (depth > 64) return false;
  const children = (block as asn1js.BaseBlock & { valueBlock: { value?: unknown } }).valueBlock.value;
  if (!block.idBlock.isConstructed || !Array.isArray(children)) return true;
  const base = block as asn1js.BaseBlock;
  if (!base.lenBlock.isIndefiniteForm) {
    const filled = (children as asn1js.BaseBlock[]).reduce((sum, child) => sum + child.blockLength, 0);
    if (filled !== base.lenBlock.length) return false;
  }
  return (children as asn1js.AsnType[]).every((child) => lengthsAgree(child, depth + 1));
}

const ecdsaSignatures = new Set(['1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4']);

/**
 * RFC 5652 rules pkijs does not enforce, on fields the signature does not cover: versions, the digest algorithm being
 * announced, its parameters absent or NULL, and an ECDSA signature value that is one DER SEQUENCE of two INTEGERs.
 */
function shapeProblem(signedData: pkijs.SignedData, signerInfo: pkijs.SignerInfo): string | undefined {
  if (![1, 3, 4, 5].includes(signedData.version)) return `SignedData version ${signedData.version} is not defined`;
  const bySki = !(signerInfo.sid instanceof pkijs.IssuerAndSerialNumber);
  if (signerInfo.version !== (bySki ? 3 : 1)) return `SignerInfo version ${signerInfo.version} does not match its signer identifier`;
  const digest = signerInfo.digestAlgorithm;
  if (!signedData.digestAlgorithms.some((alg) => alg.algorithmId === digest.algorithmId)) return 'the digest algorithm of the signer is not announced in SignedData';
  for (const alg of [digest, ...signedData.digestAlgorithms]) {
    if (alg.algorithmParams !== undefined && !(alg.algorithmParams instanceof asn1js.Null)) return `digest algorithm ${alg.algorithmId} has parameters`;
  }
  if (ecdsaSignatures.has(signerInfo.signatureAlgorithm.algorithmId)) {
    const value = signerInfo.signature.valueBlock.valueHexView;
    const parsed = asn1js.fromBER(value);
    const ok =
      parsed.offset === value.byteLength &&
      parsed.result instanceof asn1js.Sequence &&
      parsed.result.valueBlock.value.length === 2 &&
      parsed.result.valueBlock.value.every((part) => part instanceof asn1js.Integer) &&
      lengthsAgree(parsed.result);
    if (!ok) return 'the ECDSA signature value is not a DER SEQUENCE of two INTEGERs';
  }
  return undefined;
}

function timeOf(attr: pkijs.Attribute | undefined): Date | undefined {
  const value = attr?.values[0];
  if (value instanceof asn1js.UTCTime || value instanceof asn1js.GeneralizedTime) return value.toDate();
  return undefined;
}

/** Maps pkijs' SignedDataVerifyError codes onto ours. */
function fromPkijs(error: pkijs.SignedDataVerifyError): { code: Exclude<CmsCode, 'SWX_OK'>; detail: string } {
  if (/digest doesn't match/i.test(error.message)) return { code: 'SWX_DIGEST_MISMATCH', detail: 'the content does not match the signed messageDigest' };
  switch (error.code) {
    case 1:
    case 2:
    case 3:
      return { code: 'SWX_CERT_UNTRUSTED', detail: `signer certificate not found: ${error.message}` };
    case 7:
    case 8:
    case 9:
    case 10:
      return { code: 'SWX_BAD_REQUEST', detail: error.message };
    default:
      return { code: 'SWX_SIG_INVALID', detail: error.message };
  }
}

/** Verifies a DER ContentInfo(SignedData) with one signer; never throws. */
export async function verifyCms(der: Buffer, options: VerifyCmsOptions = {}): Promise<CmsVerdict> {
  const known: Failure = { detached: false };
  try {
    return await verify(der, options, known);
  } catch (error) {
    return refuse('SWX_BAD_REQUEST', `not a CMS SignedData we can read: ${(error as Error)?.message ?? String(error)}`, known);
  }
}

async function verify(der: Buffer, options: VerifyCmsOptions, known: Failure): Promise<CmsVerdict> {
  const at = options.at ?? new Date();
  if (!Buffer.isBuffer(der) || der.length === 0) return refuse('SWX_BAD_REQUEST', 'empty or non-binary CMS input', known);
  const parsed = asn1js.fromBER(toArrayBuffer(der));
  if (parsed.offset === -1) return refuse('SWX_BAD_REQUEST', `not DER: ${parsed.result.error}`, known);
  if (parsed.offset !== der.length) return refuse('SWX_BAD_REQUEST', `${der.length - parsed.offset} bytes after the ContentInfo`, known);
  if (!lengthsAgree(parsed.result)) return refuse('SWX_BAD_REQUEST', 'an ASN.1 length does not match what it contains', known);
  const contentInfo = new pkijs.ContentInfo({ schema: parsed.result });
  if (contentInfo.contentType !== oids.signedData) return refuse('SWX_BAD_REQUEST', `content type ${contentInfo.contentType} is not SignedData`, known);
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });

  const eContent = signedData.encapContentInfo.eContent;
  known.detached = !eContent;
  if (signedData.signerInfos.length !== 1) return refuse('SWX_BAD_REQUEST', `${signedData.signerInfos.length} signers; exactly one is supported`, known);
  const signerInfo = signedData.signerInfos[0]!;
  known.algorithms = {
    digest: algorithmNames[signerInfo.digestAlgorithm.algorithmId] ?? signerInfo.digestAlgorithm.algorithmId,
    signature: algorithmNames[signerInfo.signatureAlgorithm.algorithmId] ?? signerInfo.signatureAlgorithm.algorithmId,
  };
  const shapeError = shapeProblem(signedData, signerInfo);
  if (shapeError) return refuse('SWX_BAD_REQUEST', shapeError, known);
  const attrs = signerInfo.signedAttrs?.attributes ?? [];
  known.signingTime = timeOf(attrs.find((attr) => attr.type === oids.signingTime));
  if (!known.signingTime) delete known.signingTime;
  if (!signerInfo.signedAttrs) return refuse('SWX_BAD_REQUEST', 'the signature has no signed attributes', known);
  const contentType = attrs.find((attr) => attr.type === oids.contentType)?.values[0];
  if (!(contentType instanceof asn1js.ObjectIdentifier) || contentType.getValue() !== signedData.encapContentInfo.eContentType) {
    return refuse('SWX_SIG_INVALID', 'the signed contentType attribute does not name the encapsulated content type', known);
  }

  let content: Buffer;
  if (eContent) {
    if (!(eContent instanceof asn1js.OctetString)) return refuse('SWX_BAD_REQUEST', 'eContent is not an OCTET STRING', known);
    content = Buffer.from(eContent.getValue());
    if (options.data && !options.data.equals(content)) return refuse('SWX_DIGEST_MISMATCH', 'the data given differs from the content the message carries', known);
  } else {
    if (!options.data) return refuse('SWX_BAD_REQUEST', 'detached signature: the signed data must be given', known);
    content = options.data;
  }

  const pinned = options.pinnedCertPem ? pemBlocks(options.pinnedCertPem, 'CERTIFICATE')[0] : undefined;
  if (options.pinnedCertPem && !pinned) return refuse('SWX_BAD_REQUEST', 'pinnedCertPem holds no PEM CERTIFICATE block', known);
  // The pinned certificate stands in for a signer certificate the message leaves out.
  if (pinned && !signedData.certificates?.length) signedData.certificates = [pkijs.Certificate.fromBER(toArrayBuffer(pinned))];

  let result: Awaited<ReturnType<pkijs.SignedData['verify']>>;
  try {
    // pkijs reads an empty buffer as "no data", so an empty detached content is refused (SWX_BAD_REQUEST).
    result = await signedData.verify({ signer: 0, data: toArrayBuffer(content), extendedMode: true, checkChain: false });
  } catch (error) {
    if (error instanceof pkijs.SignedDataVerifyError) {
      if (error.signerCertificate) known.signer = describe(error.signerCertificate);
      const { code, detail } = fromPkijs(error);
      return refuse(code, detail, known);
    }
    return refuse('SWX_SIG_INVALID', `verification failed: ${(error as Error)?.message ?? String(error)}`, known);
  }
  if (result.signerCertificate) known.signer = describe(result.signerCertificate);
  if (!result.signatureVerified || !result.signerCertificate) return refuse('SWX_SIG_INVALID', 'the signature does not verify with the signer certificate', known);

  const signerCert = new X509Certificate(derOf(result.signerCertificate));
  if (pinned && !pinned.equals(signerCert.raw)) {
    return refuse('SWX_SIG_KEY_MISMATCH', `signed by ${known.signer?.subject}, not by the pinned certificate`, known);
  }
  if (options.trustedCertsPem) {
    const anchors = parseCertPems(options.trustedCertsPem);
    const pool = (signedData.certificates ?? [])
      .filter((cert): cert is pkijs.Certificate => cert instanceof pkijs.Certificate)
      .map((cert) => (cert === result.signerCertificate ? signerCert : new X509Certificate(derOf(cert))));
    const failure = pathRefusal(signerCert, pool, anchors, at);
    if (failure) return refuse(failure.code, failure.detail, known);
  } else {
    const invalid = validityRefusal(signerCert, at);
    if (invalid) return refuse(invalid.code, invalid.detail, known);
  }
  return { ...known, valid: true, code: 'SWX_OK', detail: '', content };
}

function describe(cert: pkijs.Certificate): CmsSigner {
  const der = derOf(cert);
  const node = new X509Certificate(der);
  return { subject: node.subject.split('\n').join(', '), serial: node.serialNumber.toLowerCase(), thumbprint: thumbprint(der) };
}
