// RFC 3161 time-stamping: the hub's built-in TSA, a client for an external TSA, and verification of any TimeStampResp.
// pkijs builds and parses the ASN.1; signing and signature checks use node:crypto with cached keys (pkijs' WebCrypto path
// is slower and, in 3.x, rewrites eContent so that its own verify and openssl reject the token: see field notes).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createPrivateKey, hash, KeyObject, randomBytes, sign, verify, X509Certificate } from 'node:crypto';
import { SwxError, type ErrorCode } from '../errors.ts';
import { oid as pkiOid, toArrayBuffer } from '../pki/asn1.ts';
import { pemBlocks } from '../pki/store.ts';
import { pathRefusal, validityRefusal } from './path.ts';

export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

/** Stable reason codes of a time-stamp verdict (to be registered in engine/errors.ts with the rest of the trust core). */
export type TimeStampReason = Extract<ErrorCode,
  | 'SWX_TSP_MALFORMED'
  | 'SWX_TSP_NOT_GRANTED'
  | 'SWX_TSP_IMPRINT_MISMATCH'
  | 'SWX_TSP_NONCE_MISMATCH'
  | 'SWX_TSP_POLICY_MISMATCH'
  | 'SWX_TSP_SIGNER_UNKNOWN'
  | 'SWX_TSP_SIGNER_NOT_TSA'
  | 'SWX_TSP_CERT_ID_MISMATCH'
  | 'SWX_SIG_ALG_UNSUPPORTED'
  | 'SWX_SIG_INVALID'
  | 'SWX_CERT_EXPIRED'
  | 'SWX_CERT_UNTRUSTED'>;

/** The TSA's credential: PEM certificate (extendedKeyUsage timeStamping, critical) and its PKCS#8 PEM key. */
export interface TsaCredential {
  certPem: string;
  keyPem: string;
}

export interface TokenRequest {
  /** The message imprint: the hash of the time-stamped data, made with `hashAlgorithm`. */
  digest: Buffer;
  hashAlgorithm?: HashName;
  /** Echoed in the token; unsigned big-endian bytes. */
  nonce?: Buffer;
  /** Put the TSA certificate into the token (RFC 3161 certReq). Default true. */
  certReq?: boolean;
  /** TSA policy OID. */
  policy: string;
  tsa: TsaCredential;
  /** Unique per token issued by this TSA (RFC 3161 2.4.2); unsigned. */
  serial: bigint | Buffer;
  genTime?: Date;
}

export interface VerifyOptions {
  /** The time-stamped data; its hash is computed with the token's own imprint algorithm. */
  data?: Buffer;
  /** Or the imprint itself. One of data, digest or request is needed. */
  digest?: Buffer;
  /** Or the DER TimeStampReq the response answers: imprint, nonce, policy and certReq are checked against it. */
  request?: Buffer;
  nonce?: Buffer;
  policy?: string;
  /** Trust anchors the TSA certificate must chain to (PEM, any number of certificates). */
  trustedCertsPem?: string;
  /** Intermediates that may complete the chain, besides the certificates inside the token. */
  untrustedCertsPem?: string;
  /** Certificates the signer must be one of (pinning), as an alternative or in addition to anchors. */
  pinnedCertsPem?: string;
  /** Instant at which certificate validity is judged. Default: now. */
  at?: Date;
}

export interface TimeStampVerdict {
  /** Every check passed. With trust 'none' this proves integrity only: no anchor or pin was given. */
  valid: boolean;
  reason?: TimeStampReason;
  detail: string;
  trust: 'chain' | 'pinned' | 'none';
  genTime?: Date;
  /** Hex, lower case, no leading zeros. */
  serial?: string;
  policy?: string;
  /** Subject of the certificate that signed, e.g. "O=swx demo, CN=swx hub TSA". */
  signer?: string;
  hashAlgorithm?: HashName;
  nonce?: string;
}

export const oid = {
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  signingCertificate: '1.2.840.113549.1.9.16.2.12',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
} as const;

const hashOids: Record<string, HashName> = {
  '1.3.14.3.2.26': 'SHA-1',
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};
const hashOid = Object.fromEntries(Object.entries(hashOids).map(([id, name]) => [name, id])) as Record<HashName, string>;
const nodeHash = (name: HashName) => name.replace('-', '').toLowerCase(); // 'SHA-256' -> 'sha256'
const digestOf = (name: HashName, data: Uint8Array) => Buffer.from(hash(nodeHash(name), data, 'buffer'));

/** Signature algorithms a TSA may use: key type and the hash, when the OID fixes it. */
const signatureOids: Record<string, { key: 'ec' | 'rsa'; hash?: HashName }> = {
  '1.2.840.10045.4.3.2': { key: 'ec', hash: 'SHA-256' },
  '1.2.840.10045.4.3.3': { key: 'ec', hash: 'SHA-384' },
  '1.2.840.10045.4.3.4': { key: 'ec', hash: 'SHA-512' },
  [oid.ecPublicKey]: { key: 'ec' },
  [oid.rsaEncryption]: { key: 'rsa' },
  '1.2.840.113549.1.1.5': { key: 'rsa', hash: 'SHA-1' },
  '1.2.840.113549.1.1.11': { key: 'rsa', hash: 'SHA-256' },
  '1.2.840.113549.1.1.12': { key: 'rsa', hash: 'SHA-384' },
  '1.2.840.113549.1.1.13': { key: 'rsa', hash: 'SHA-512' },
};

const digestLength: Record<HashName, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

// ---------------------------------------------------------------- DER helpers

/** A positive INTEGER from unsigned big-endian bytes (DER: minimal, with a 0x00 only when the top bit is set). */
function unsignedInteger(value: bigint | Buffer): asn1js.Integer {
  if (typeof value === 'bigint' && value < 0n) throw new SwxError('SWX_BAD_REQUEST', 'a time-stamp serial must not be negative');
  const digits = typeof value === 'bigint' ? value.toString(16) : '';
  let bytes = typeof value === 'bigint' ? Buffer.from(digits.length % 2 ? `0${digits}` : digits, 'hex') : value;
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return new asn1js.Integer({ valueHex: toArrayBuffer(bytes) });
}

/** An INTEGER's magnitude as unsigned big-endian bytes, without leading zero bytes. */
function integerBytes(value: asn1js.Integer): Buffer {
  const bytes = Buffer.from(value.valueBlock.valueHexView);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  return bytes.subarray(start);
}

/** Hex of an INTEGER's magnitude without leading zeros, for display and comparison. */
function integerHex(value: asn1js.Integer): string {
  const bytes = Buffer.from(value.valueBlock.valueHexView);
  return bytes.length ? BigInt(`0x${bytes.toString('hex')}`).toString(16) : '0';
}

const algorithm = (algorithmId: string, nullParams = false) =>
  new pkijs.AlgorithmIdentifier({ algorithmId, ...(nullParams ? { algorithmParams: new asn1js.Null() } : {}) });

function messageImprint(hashAlgorithm: HashName, digest: Buffer): pkijs.MessageImprint {
  if (digest.length !== digestLength[hashAlgorithm]) {
    throw new SwxError('SWX_BAD_REQUEST', `a ${hashAlgorithm} digest is ${digestLength[hashAlgorithm]} bytes, got ${digest.length}`);
  }
  return new pkijs.MessageImprint({ hashAlgorithm: algorithm(hashOid[hashAlgorithm]), hashedMessage: new asn1js.OctetString({ valueHex: toArrayBuffer(digest) }) });
}

function firstCertificate(pem: string, what: string): Buffer {
  const der = pemBlocks(pem, 'CERTIFICATE')[0];
  if (!der) throw new SwxError('SWX_BAD_REQUEST', `${what} holds no PEM CERTIFICATE block`);
  return der;
}

// ---------------------------------------------------------------- the built-in TSA

interface TsaSigner {
  cert: pkijs.Certificate;
  key: KeyObject;
  digestAlgorithm: pkijs.AlgorithmIdentifier;
  signatureAlgorithm: pkijs.AlgorithmIdentifier;
  sid: pkijs.IssuerAndSerialNumber;
  tsaName: pkijs.GeneralName;
  /** SigningCertificateV2, which `openssl ts -verify` insists on; the same for every token. */
  signingCertificate: pkijs.Attribute;
}

// Keyed by the PEM texts: parsing a certificate and key costs more than signing a token, so it is done once per TSA.
const signers = new Map<string, TsaSigner>();

/** ESSCertIDv2 (RFC 5035) of the TSA certificate: SHA-256 of its DER (the default algorithm, so omitted) and its issuer and serial. */
function signingCertificateV2(certDer: Buffer, cert: pkijs.Certificate): pkijs.Attribute {
  const directoryName = new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 4 }, value: [cert.issuer.toSchema()] });
  const issuerSerial = new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [directoryName] }), new asn1js.Integer({ valueHex: cert.serialNumber.valueBlock.valueHexView })] });
  const essCertId = new asn1js.Sequence({ value: [new asn1js.OctetString({ valueHex: toArrayBuffer(digestOf('SHA-256', certDer)) }), issuerSerial] });
  return new pkijs.Attribute({ type: oid.signingCertificateV2, values: [new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [essCertId] })] })] });
}

function tsaSigner(tsa: TsaCredential): TsaSigner {
  const cacheKey = `${tsa.certPem}\0${tsa.keyPem}`;
  const cached = signers.get(cacheKey);
  if (cached) return cached;
  const certDer = firstCertificate(tsa.certPem, 'the TSA certificate');
  const cert = EncodedCertificate.fromBER(toArrayBuffer(certDer)) as EncodedCertificate;
  let key: KeyObject;
  try {
    key = createPrivateKey(tsa.keyPem);
  } catch (error) {
    throw new SwxError('SWX_INTERNAL', `the TSA key is not a readable PEM private key: ${(error as Error).message}`, { cause: error });
  }
  if (!new X509Certificate(certDer).checkPrivateKey(key)) throw new SwxError('SWX_INTERNAL', 'the TSA key does not belong to the TSA certificate');
  if (!hasTimeStampingUsage(cert)) {
    throw new SwxError('SWX_INTERNAL', 'the TSA certificate lacks a critical extendedKeyUsage of only timeStamping (RFC 3161 2.3); issue it with `swx pki init`');
  }
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'rsa') throw new SwxError('SWX_INTERNAL', `the TSA key is ${type}; use ECDSA or RSA`);
  const signer: TsaSigner = {
    cert,
    key,
    digestAlgorithm: algorithm(hashOid['SHA-256']),
    signatureAlgorithm: type === 'ec' ? algorithm('1.2.840.10045.4.3.2') : algorithm('1.2.840.113549.1.1.11', true),
    sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
    tsaName: new pkijs.GeneralName({ type: 4, value: cert.subject }),
    signingCertificate: signingCertificateV2(certDer, cert),
  };
  if (signers.size > 64) signers.clear(); // a handful of TSAs at most; never grow without bound
  signers.set(cacheKey, signer);
  return signer;
}

function hasTimeStampingUsage(cert: pkijs.Certificate): boolean {
  const eku = cert.extensions?.find((ext) => ext.extnID === pkiOid.extKeyUsage);
  if (!eku?.critical) return false;
  try {
    const purposes = pkijs.ExtKeyUsage.fromBER(eku.extnValue.getValue()).keyPurposes;
    return purposes.length === 1 && purposes[0] === pkiOid.timeStamping;
  } catch {
    return false; // an unreadable extension grants nothing
  }
}

/** DER SET OF orders its elements by their encodings (X.690 11.6); what is signed must be exactly what is sent. */
function sortedAttributes(attributes: pkijs.Attribute[]): { attributes: pkijs.Attribute[]; der: Buffer } {
  const encoded = attributes.map((attribute) => ({ attribute, der: Buffer.from(attribute.toSchema().toBER()) }));
  encoded.sort((a, b) => Buffer.compare(a.der, b.der));
  const body = Buffer.concat(encoded.map((e) => e.der));
  // SET tag and DER length, then the sorted elements: the exact bytes the SignerInfo will carry under [0].
  const length = body.length < 0x80 ? Buffer.from([body.length]) : lengthOctets(body.length);
  return { attributes: encoded.map((e) => e.attribute), der: Buffer.concat([Buffer.from([0x31]), length, body]) };
}

function lengthOctets(length: number): Buffer {
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** The TSA certificate, encoded once: pkijs would re-parse its TBS part every time a token includes it. */
class EncodedCertificate extends pkijs.Certificate {
  #schema: ReturnType<pkijs.Certificate['toSchema']> | undefined;
  override toSchema(encodeFlag?: boolean) {
    return (this.#schema ??= super.toSchema(encodeFlag));
  }
}

/** Issues a granted TimeStampResp (DER) for one message imprint, signed by the given TSA credential. */
export function createTimeStampToken(request: TokenRequest): Buffer {
  const hashAlgorithm = request.hashAlgorithm ?? 'SHA-256';
  if (!(hashAlgorithm in hashOid) || hashAlgorithm === 'SHA-1') throw new SwxError('SWX_BAD_REQUEST', `imprint algorithm ${hashAlgorithm} is not accepted`);
  if (!/^[0-2](\.\d+)+$/.test(request.policy)) throw new SwxError('SWX_BAD_REQUEST', `TSA policy ${JSON.stringify(request.policy)} is not an OID`);
  const signer = tsaSigner(request.tsa);
  const tstInfo = new pkijs.TSTInfo({
    version: 1,
    policy: request.policy,
    messageImprint: messageImprint(hashAlgorithm, request.digest),
    serialNumber: unsignedInteger(request.serial),
    genTime: request.genTime ?? new Date(),
    ...(request.nonce ? { nonce: unsignedInteger(request.nonce) } : {}),
    tsa: signer.tsaName,
  });
  const content = Buffer.from(tstInfo.toSchema().toBER());
  const signed = sortedAttributes([
    new pkijs.Attribute({ type: oid.contentType, values: [new asn1js.ObjectIdentifier({ value: oid.tstInfo })] }),
    new pkijs.Attribute({ type: oid.messageDigest, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(digestOf('SHA-256', content)) })] }),
    signer.signingCertificate,
  ]);
  const signature = sign('sha256', signed.der, { key: signer.key, dsaEncoding: 'der' });
  const signedData = new pkijs.SignedData({
    version: 3,
    digestAlgorithms: [signer.digestAlgorithm],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: oid.tstInfo }),
    ...(request.certReq === false ? {} : { certificates: [signer.cert] }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: signer.sid,
        digestAlgorithm: signer.digestAlgorithm,
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: signed.attributes }),
        signatureAlgorithm: signer.signatureAlgorithm,
        signature: new asn1js.OctetString({ valueHex: toArrayBuffer(signature) }),
      }),
    ],
  });
  // Set after construction: given to the constructor, pkijs 3 re-wraps it as a constructed OCTET STRING.
  signedData.encapContentInfo.eContent = new asn1js.OctetString({ valueHex: toArrayBuffer(content) });
  const response = new pkijs.TimeStampResp({
    status: new pkijs.PKIStatusInfo({ status: pkijs.PKIStatus.granted }),
    timeStampToken: new pkijs.ContentInfo({ contentType: oid.signedData, content: signedData.toSchema(true) }),
  });
  return Buffer.from(response.toSchema().toBER());
}

// ---------------------------------------------------------------- requests

export interface ParsedRequest {
  hashAlgorithm: HashName;
  digest: Buffer;
  nonce?: Buffer;
  certReq: boolean;
  policy?: string;
}

/** A DER TimeStampReq for a message imprint, asking for the TSA certificate in the token. */
export function timeStampRequest(digest: Buffer, nonce?: Buffer, options: { hashAlgorithm?: HashName; policy?: string; certReq?: boolean } = {}): Buffer {
  const request = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: messageImprint(options.hashAlgorithm ?? 'SHA-256', digest),
    certReq: options.certReq ?? true,
    ...(nonce ? { nonce: unsignedInteger(nonce) } : {}),
    ...(options.policy ? { reqPolicy: options.policy } : {}),
  });
  return Buffer.from(request.toSchema().toBER());
}

/** Reads a DER TimeStampReq, e.g. one posted to the hub's own TSA endpoint. */
export function parseTimeStampRequest(der: Buffer): ParsedRequest {
  let request: pkijs.TimeStampReq;
  try {
    request = pkijs.TimeStampReq.fromBER(toArrayBuffer(der));
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `not a DER TimeStampReq: ${(error as Error).message}`, { cause: error });
  }
  const hashAlgorithm = hashOids[request.messageImprint.hashAlgorithm.algorithmId];
  if (!hashAlgorithm) throw new SwxError('SWX_BAD_REQUEST', `imprint algorithm ${request.messageImprint.hashAlgorithm.algorithmId} is not supported`);
  return {
    hashAlgorithm,
    digest: Buffer.from(request.messageImprint.hashedMessage.valueBlock.valueHexView),
    ...(request.nonce ? { nonce: integerBytes(request.nonce) } : {}),
    certReq: request.certReq ?? false,
    ...(request.reqPolicy ? { policy: request.reqPolicy } : {}),
  };
}

// ---------------------------------------------------------------- verification

class Rejection extends Error {
  constructor(readonly reason: TimeStampReason, detail: string) {
    super(detail);
  }
}

const reject = (reason: TimeStampReason, detail: string): never => {
  throw new Rejection(reason, detail);
};

interface Parsed {
  signedData: pkijs.SignedData;
  content: Buffer;
  tstInfo: pkijs.TSTInfo;
}

function parseToken(contentInfo: pkijs.ContentInfo): Parsed {
  try {
    if (contentInfo.contentType !== oid.signedData) reject('SWX_TSP_MALFORMED', `the token is ${contentInfo.contentType}, not CMS SignedData`);
    const signedData = new pkijs.SignedData({ schema: contentInfo.content });
    const { eContentType, eContent } = signedData.encapContentInfo;
    if (eContentType !== oid.tstInfo || !eContent) reject('SWX_TSP_MALFORMED', `the token encapsulates ${eContentType}, not a TSTInfo`);
    const content = Buffer.from(eContent!.getValue());
    return { signedData, content, tstInfo: pkijs.TSTInfo.fromBER(toArrayBuffer(content)) };
  } catch (error) {
    if (error instanceof Rejection) throw error;
    throw new Rejection('SWX_TSP_MALFORMED', `the time-stamp token cannot be parsed: ${(error as Error).message}`);
  }
}

interface Candidate {
  der: Buffer;
  x509: X509Certificate;
  pkijs: pkijs.Certificate;
}

// Parsing a certificate with pkijs costs ~2 ms, more than everything else in a verification; the same TSA and
// anchor certificates come back with every token, so parsed ones are kept (a bounded set, cleared when full).
const parsedCertificates = new Map<string, Candidate | null>();

function candidates(ders: Buffer[]): Candidate[] {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const der of ders) {
    const key = der.toString('base64');
    if (seen.has(key)) continue;
    seen.add(key);
    let parsed = parsedCertificates.get(key);
    if (parsed === undefined) {
      try {
        parsed = { der, x509: new X509Certificate(der), pkijs: pkijs.Certificate.fromBER(toArrayBuffer(der)) };
      } catch {
        parsed = null; // unreadable: it cannot be the signer or a link of its chain; ignored, as openssl does
      }
      if (parsedCertificates.size >= 256) parsedCertificates.clear();
      parsedCertificates.set(key, parsed);
    }
    if (parsed) out.push(parsed);
  }
  return out;
}

/** A parsed certificate's DER from its original TBS bytes, without pkijs re-parsing them. */
function certificateDer(cert: pkijs.Certificate): Buffer {
  const body = Buffer.concat([
    Buffer.from(cert.tbsView),
    Buffer.from(cert.signatureAlgorithm.toSchema().toBER()),
    Buffer.from(cert.signatureValue.toBER()),
  ]);
  return Buffer.concat([Buffer.from([0x30]), body.length < 0x80 ? Buffer.from([body.length]) : lengthOctets(body.length), body]);
}

/** The contents of one DER TLV (tag and length stripped). */
function contentOf(tlv: Buffer): Buffer {
  if (tlv.length < 2) return Buffer.alloc(0);
  const first = tlv[1]!;
  const header = first < 0x80 ? 2 : 2 + (first & 0x7f);
  return tlv.subarray(header);
}

function skiFromSid(tlv: Buffer): Buffer | undefined {
  if (tlv[0] === 0x80) return contentOf(tlv);
  if (tlv[0] === 0xa0) {
    const inner = contentOf(tlv);
    return inner[0] === 0x04 ? contentOf(inner) : undefined;
  }
  return undefined;
}

/** The certificate the SignerInfo names (never merely the first one in the bag: GHSA-3xxc-pwj6-jgrj). */
function findSigner(signerInfo: pkijs.SignerInfo, pool: Candidate[]): Candidate {
  const sid = signerInfo.sid;
  // subjectKeyIdentifier [0]: pkijs keeps it as a raw block, primitive (implicit) or wrapping an OCTET STRING.
  const keyId = sid instanceof pkijs.IssuerAndSerialNumber ? undefined : skiFromSid(Buffer.from((sid as asn1js.BaseBlock).valueBeforeDecodeView));
  const match = pool.find((c) => {
    if (sid instanceof pkijs.IssuerAndSerialNumber) {
      return c.pkijs.issuer.isEqual(sid.issuer) && integerHex(c.pkijs.serialNumber) === integerHex(sid.serialNumber);
    }
    const ski = c.pkijs.extensions?.find((ext) => ext.extnID === pkiOid.subjectKeyIdentifier);
    return ski !== undefined && keyId !== undefined && keyId.length > 0 && contentOf(Buffer.from(ski.extnValue.valueBlock.valueHexView)).equals(keyId);
  });
  return match ?? reject('SWX_TSP_SIGNER_UNKNOWN', 'the certificate named by the SignerInfo is neither in the token nor among the certificates given');
}

function attributeValue(attributes: pkijs.Attribute[], type: string): asn1js.AsnType | undefined {
  const found = attributes.filter((a) => a.type === type);
  if (found.length > 1 || (found[0] && found[0].values.length !== 1)) reject('SWX_SIG_INVALID', `signed attribute ${type} must occur once with one value`);
  return found[0]?.values[0];
}

/** RFC 3161 2.4.1 / RFC 5035: the signed attributes must identify the signer's certificate by hash (and issuer/serial if present). */
function checkCertId(attributes: pkijs.Attribute[], signer: Candidate): void {
  const v2 = attributeValue(attributes, oid.signingCertificateV2);
  const v1 = attributeValue(attributes, oid.signingCertificate);
  const value = (v2 ?? v1) as asn1js.Sequence | undefined;
  if (!value) return reject('SWX_TSP_CERT_ID_MISMATCH', 'the token has neither a SigningCertificate nor a SigningCertificateV2 attribute');
  const first = (value.valueBlock.value[0] as asn1js.Sequence | undefined)?.valueBlock.value[0] as asn1js.Sequence | undefined;
  const fields = first?.valueBlock.value ?? [];
  let hashName: HashName = v2 ? 'SHA-256' : 'SHA-1';
  let i = 0;
  if (v2 && fields[0] instanceof asn1js.Sequence) {
    const algorithmId = new pkijs.AlgorithmIdentifier({ schema: fields[0] }).algorithmId;
    hashName = hashOids[algorithmId] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `ESSCertIDv2 hash algorithm ${algorithmId} is not supported`);
    i = 1;
  }
  const certHash = fields[i];
  if (!(certHash instanceof asn1js.OctetString)) return reject('SWX_TSP_MALFORMED', 'the signing-certificate attribute has no certificate hash');
  if (!Buffer.from(certHash.valueBlock.valueHexView).equals(digestOf(hashName, signer.der))) {
    reject('SWX_TSP_CERT_ID_MISMATCH', `the signing-certificate attribute names another certificate than ${subject(signer.x509)}`);
  }
}

const subject = (cert: X509Certificate) => cert.subject.split('\n').join(', ');

function checkSignature(signerInfo: pkijs.SignerInfo, content: Buffer, signer: Candidate): void {
  const digestName = hashOids[signerInfo.digestAlgorithm.algorithmId];
  if (!digestName) return reject('SWX_SIG_ALG_UNSUPPORTED', `digest algorithm ${signerInfo.digestAlgorithm.algorithmId} is not supported`);
  const algorithmId = signerInfo.signatureAlgorithm.algorithmId;
  const scheme = signatureOids[algorithmId] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `signature algorithm ${algorithmId} is not supported`);
  const keyType = signer.x509.publicKey.asymmetricKeyType;
  if (keyType !== scheme.key) reject('SWX_SIG_INVALID', `signature algorithm ${algorithmId} does not fit the signer's ${keyType} key`);
  const attributes = signerInfo.signedAttrs?.attributes;
  // RFC 3161 tokens always carry signed attributes: they bind the TSTInfo and the signer's certificate.
  if (!attributes?.length) return reject('SWX_TSP_MALFORMED', 'the SignerInfo has no signed attributes');
  const contentType = attributeValue(attributes, oid.contentType);
  if (!(contentType instanceof asn1js.ObjectIdentifier) || contentType.getValue() !== oid.tstInfo) reject('SWX_SIG_INVALID', 'the signed content-type attribute is not id-ct-TSTInfo');
  const messageDigest = attributeValue(attributes, oid.messageDigest);
  if (!(messageDigest instanceof asn1js.OctetString) || !Buffer.from(messageDigest.valueBlock.valueHexView).equals(digestOf(digestName, content))) {
    reject('SWX_SIG_INVALID', 'the signed message-digest attribute does not match the TSTInfo: the token was altered');
  }
  checkCertId(attributes, signer);
  // The signature covers the attributes as a DER SET (tag 0x31), not as the [0] IMPLICIT field they are sent in.
  const signedBytes = Buffer.from(signerInfo.signedAttrs!.encodedValue);
  signedBytes[0] = 0x31;
  const hashName = nodeHash(scheme.hash ?? digestName);
  const ok = verify(hashName, signedBytes, { key: signer.x509.publicKey, dsaEncoding: 'der' }, Buffer.from(signerInfo.signature.valueBlock.valueHexView));
  if (!ok) reject('SWX_SIG_INVALID', `the signature of ${subject(signer.x509)} does not verify`);
}

/** Throws the path's refusal as a rejection of the token. */
function checkChain(signer: Candidate, pool: Candidate[], anchors: Candidate[], at: Date): void {
  const refusal = anchors.length
    ? pathRefusal(signer.x509, pool.map((c) => c.x509), anchors.map((c) => c.x509), at)
    : validityRefusal(signer.x509, at);
  if (refusal) reject(refusal.code, refusal.detail);
}

function checkImprint(tstInfo: pkijs.TSTInfo, options: VerifyOptions, request: ParsedRequest | undefined): HashName {
  const imprint = tstInfo.messageImprint;
  const hashAlgorithm = hashOids[imprint.hashAlgorithm.algorithmId] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `imprint algorithm ${imprint.hashAlgorithm.algorithmId} is not supported`);
  const actual = Buffer.from(imprint.hashedMessage.valueBlock.valueHexView);
  const expected = options.data ? digestOf(hashAlgorithm, options.data) : (options.digest ?? request?.digest);
  if (!expected) throw new SwxError('SWX_BAD_REQUEST', 'verifying a time stamp needs the data, its digest or the request');
  if (request && request.hashAlgorithm !== hashAlgorithm) reject('SWX_TSP_IMPRINT_MISMATCH', `the request asked for ${request.hashAlgorithm}, the token has ${hashAlgorithm}`);
  if (!actual.equals(expected)) reject('SWX_TSP_IMPRINT_MISMATCH', `the token time-stamps ${hashAlgorithm} ${actual.toString('hex')}, not the given data`);
  return hashAlgorithm;
}

/** Verifies a TimeStampToken (the CMS ContentInfo alone, as kept with evidence). */
export function verifyTimeStampToken(tokenDer: Buffer, options: VerifyOptions): TimeStampVerdict {
  let contentInfo: pkijs.ContentInfo;
  try {
    contentInfo = pkijs.ContentInfo.fromBER(toArrayBuffer(tokenDer));
  } catch (error) {
    return { valid: false, reason: 'SWX_TSP_MALFORMED', detail: `not a DER time-stamp token: ${(error as Error).message}`, trust: trustOf(options) };
  }
  return verifyContentInfo(contentInfo, options);
}

const trustOf = (options: VerifyOptions): TimeStampVerdict['trust'] => (options.trustedCertsPem ? 'chain' : options.pinnedCertsPem ? 'pinned' : 'none');

function verifyContentInfo(contentInfo: pkijs.ContentInfo, options: VerifyOptions): TimeStampVerdict {
  const at = options.at ?? new Date();
  const trust = trustOf(options);
  const verdict: TimeStampVerdict = { valid: false, detail: '', trust };
  try {
    const request = options.request ? parseRequestOrReject(options.request) : undefined;
    const { signedData, content, tstInfo } = parseToken(contentInfo);
    Object.assign(verdict, {
      genTime: tstInfo.genTime,
      serial: integerHex(tstInfo.serialNumber),
      policy: tstInfo.policy,
      ...(tstInfo.nonce ? { nonce: integerHex(tstInfo.nonce) } : {}),
    });
    verdict.hashAlgorithm = checkImprint(tstInfo, options, request);
    const expectedNonce = options.nonce ?? request?.nonce;
    if (expectedNonce && (!tstInfo.nonce || integerHex(tstInfo.nonce) !== integerHex(unsignedInteger(expectedNonce)))) {
      reject('SWX_TSP_NONCE_MISMATCH', 'the token does not echo the nonce of the request: it may be a replay');
    }
    const policy = options.policy ?? request?.policy;
    if (policy && tstInfo.policy !== policy) reject('SWX_TSP_POLICY_MISMATCH', `the token is under policy ${tstInfo.policy}, not ${policy}`);
    if (signedData.signerInfos.length !== 1) reject('SWX_TSP_MALFORMED', `a time-stamp token has exactly one SignerInfo, this one ${signedData.signerInfos.length}`);
    const embedded = (signedData.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
    if (request?.certReq && embedded.length === 0) reject('SWX_TSP_MALFORMED', 'the request asked for the TSA certificate, the token has none');
    const given = (pem?: string) => (pem ? pemBlocks(pem, 'CERTIFICATE') : []);
    const anchors = candidates(given(options.trustedCertsPem));
    const pinned = candidates(given(options.pinnedCertsPem));
    const pool = candidates([...embedded.map(certificateDer), ...given(options.untrustedCertsPem)]);
    const signerInfo = signedData.signerInfos[0]!;
    const signer = findSigner(signerInfo, [...pool, ...pinned, ...anchors]);
    verdict.signer = subject(signer.x509);
    checkSignature(signerInfo, content, signer);
    if (!hasTimeStampingUsage(signer.pkijs)) reject('SWX_TSP_SIGNER_NOT_TSA', `${verdict.signer} lacks a critical extendedKeyUsage of only timeStamping`);
    if (pinned.length && !pinned.some((p) => p.der.equals(signer.der))) reject('SWX_CERT_UNTRUSTED', `${verdict.signer} is not the pinned TSA certificate`);
    checkChain(signer, pool, anchors, at);
    verdict.valid = true;
    verdict.detail = trust === 'none' ? 'token intact, but no trust anchor or pinned certificate was given' : `time-stamped by ${verdict.signer}`;
  } catch (error) {
    if (!(error instanceof Rejection)) throw error;
    verdict.reason = error.reason;
    verdict.detail = error.message;
  }
  return verdict;
}

function parseRequestOrReject(der: Buffer): ParsedRequest {
  try {
    return parseTimeStampRequest(der);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the request given to check the response against: ${(error as Error).message}`, { cause: error });
  }
}

/** The TimeStampToken (DER ContentInfo) inside a granted TimeStampResp; throws when the TSA did not grant one. */
export function timeStampTokenOf(responseDer: Buffer): Buffer {
  return Buffer.from(grantedToken(responseDer).toSchema().toBER());
}

function grantedToken(responseDer: Buffer): pkijs.ContentInfo {
  let response: pkijs.TimeStampResp;
  try {
    response = pkijs.TimeStampResp.fromBER(toArrayBuffer(responseDer));
  } catch (error) {
    throw new Rejection('SWX_TSP_MALFORMED', `not a DER TimeStampResp: ${(error as Error).message}`);
  }
  const { status, statusStrings, failInfo } = response.status;
  if (status !== pkijs.PKIStatus.granted && status !== pkijs.PKIStatus.grantedWithMods) {
    const text = statusStrings?.map((s) => s.valueBlock.value).join('; ');
    const bits = failInfo ? ` failInfo ${Buffer.from(failInfo.valueBlock.valueHexView).toString('hex')}` : '';
    throw new Rejection('SWX_TSP_NOT_GRANTED', `the TSA answered status ${status}${text ? ` (${text})` : ''}${bits}`);
  }
  if (!response.timeStampToken) throw new Rejection('SWX_TSP_MALFORMED', 'a granted TimeStampResp without a token');
  return response.timeStampToken;
}

/** Verifies a DER TimeStampResp as `openssl ts -verify` does, plus the signer's identity, EKU and validity at `at`. */
export function verifyTimeStampResponse(responseDer: Buffer, options: VerifyOptions): TimeStampVerdict {
  let token: pkijs.ContentInfo;
  try {
    token = grantedToken(responseDer);
  } catch (error) {
    if (!(error instanceof Rejection)) throw error;
    return { valid: false, reason: error.reason, detail: error.message, trust: trustOf(options) };
  }
  return verifyContentInfo(token, options);
}

// ---------------------------------------------------------------- client

export interface ClientOptions extends Omit<VerifyOptions, 'data' | 'digest' | 'request' | 'nonce'> {
  hashAlgorithm?: HashName;
  timeoutMs?: number;
  /** Extra request headers, e.g. Authorization for a commercial TSA. */
  headers?: Record<string, string>;
}

const maxResponseBytes = 64 * 1024;

/**
 * Asks an external TSA (RFC 3161 over HTTP) to time-stamp a digest, with a fresh nonce, and checks the answer.
 * Returns the response, its token and the verdict; throws SWX_UNAVAILABLE when the TSA cannot be reached or answers
 * with anything but a valid token for this request.
 */
export async function requestTimeStamp(url: string, digest: Buffer, options: ClientOptions = {}): Promise<{ response: Buffer; token: Buffer; verdict: TimeStampVerdict }> {
  const nonce = randomBytes(8);
  const request = timeStampRequest(digest, nonce, { hashAlgorithm: options.hashAlgorithm ?? 'SHA-256', ...(options.policy ? { policy: options.policy } : {}) });
  let response: Buffer;
  try {
    const reply = await fetch(url, {
      method: 'POST',
      headers: { ...options.headers, 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
      body: new Uint8Array(request),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    if (!reply.ok) {
      await reply.body?.cancel();
      throw new Error(`HTTP ${reply.status}`);
    }
    // Content types vary between TSAs (some answer application/octet-stream), so the DER itself is what is checked.
    if (Number(reply.headers.get('content-length') ?? 0) > maxResponseBytes) throw new Error(`response larger than ${maxResponseBytes} bytes`);
    const body = Buffer.from(await reply.arrayBuffer());
    if (body.length > maxResponseBytes) throw new Error(`response of ${body.length} bytes exceeds ${maxResponseBytes}`);
    response = body;
  } catch (error) {
    throw new SwxError('SWX_UNAVAILABLE', `time-stamp authority ${url} failed: ${(error as Error).message}; evidence stays unstamped until it answers`, { cause: error });
  }
  const verdict = verifyTimeStampResponse(response, { ...options, request });
  if (!verdict.valid) throw new SwxError('SWX_UNAVAILABLE', `time-stamp authority ${url} answered with an unusable token: ${verdict.reason}: ${verdict.detail}`);
  return { response, token: timeStampTokenOf(response), verdict };
}
