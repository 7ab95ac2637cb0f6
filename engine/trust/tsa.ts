// RFC 3161 time-stamping: the hub's built-in TSA, a client for an external TSA, and verification of any TimeStampResp.
// Tokens are written and read as strict DER with der.ts and signed and checked with node:crypto and cached keys:
// a token costs about one signature either way, so stamping evidence stays a small share of a core.
import { createPrivateKey, hash, KeyObject, randomBytes, sign, verify } from 'node:crypto';
import { SwxError, type ErrorCode } from '../errors.ts';
import { certificate, type ParsedCert } from './certs.ts';
import { certificateFields, encodeAttribute, pathRefusalCached, readSignedData, sha256Algorithm, signatureAlgorithmOf, type SignedDataView } from './cms.ts';
import { context, Der, DerError, encode, encodeGeneralizedTime, encodeOid, encodeSetOf, encodeUnsigned, oidOf, readDer, smallIntegerOf, tags, timeOf } from './der.ts';
import { usageRefusal, validityRefusal } from './path.ts';
import { conclude, signerSummary, type AlgorithmPolicy, type SignatureVerdict } from './verdict.ts';
import { pemBlocks } from './x509.ts';

export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

/** Stable reason codes of a time-stamp verdict. */
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
  | 'SWX_CERT_UNTRUSTED'
  | 'SWX_CERT_USAGE'
  | 'SWX_SIG_WEAK_ALG'>;

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
  /** archive (default: tokens are kept for years) lists a SHA-1 imprint in verdict.weak; live refuses it (SWX_SIG_WEAK_ALG). */
  algorithmPolicy?: AlgorithmPolicy;
}

/** With certificate.trust 'none' a valid verdict proves integrity only: no anchor or pin was given. */
export interface TimeStampVerdict extends SignatureVerdict {
  code: 'SWX_OK' | TimeStampReason;
  kind: 'timestamp';
  /** The TSTInfo genTime (signedAt is the same instant, ISO). */
  genTime?: Date;
  /** Of the token, not of the certificate: hex, lower case, no leading zeros. */
  serial?: string;
  /** The TSA policy OID the token was issued under. */
  policy?: string;
  /** The imprint's hash algorithm. */
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
const digestOf = (name: HashName, data: Uint8Array) => hash(nodeHash(name), data, 'buffer');

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

/** Hex of an unsigned magnitude without leading zeros, for display and comparison ("0" for zero). */
const hexOf = (magnitude: Buffer) => magnitude.toString('hex').replace(/^0+(?=.)/, '');

/**
 * An INTEGER's contents read as an unsigned number, leading zero octets dropped: serials and nonces are opaque
 * numbers, and some TSAs write a nonce with its top bit set and no 00 before it (sigstore's mock answers DEADBEEF).
 */
function integerBytes(node: Der): Buffer {
  if (node.tag !== tags.integer) throw new DerError('not an INTEGER', node.start);
  const value = node.value;
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  return value.subarray(start);
}

/** The message imprint (RFC 3161 2.4.1): hash algorithm (no parameters) and digest. */
function messageImprint(hashAlgorithm: HashName, digest: Buffer): Buffer {
  if (!Buffer.isBuffer(digest) || digest.length !== digestLength[hashAlgorithm]) {
    throw new SwxError('SWX_BAD_REQUEST', `a ${hashAlgorithm} digest is ${digestLength[hashAlgorithm]} bytes, got ${Buffer.isBuffer(digest) ? digest.length : typeof digest}`);
  }
  return encode(tags.sequence, encode(tags.sequence, encodeOid(hashOid[hashAlgorithm])), encode(tags.octetString, digest));
}

// ---------------------------------------------------------------- the built-in TSA

/** The parts of every token that depend on the TSA only, encoded once. */
interface TsaSigner {
  key: KeyObject;
  certDer: Buffer;
  /** SignerInfo version, sid and digest algorithm: the SignerInfo's fixed start. */
  signerInfoHead: Buffer;
  signatureAlgorithm: Buffer;
  /** TSTInfo tsa [0] EXPLICIT GeneralName directoryName [4] EXPLICIT Name. */
  tsaName: Buffer;
  /** SigningCertificateV2 (RFC 5035), which `openssl ts -verify` insists on. */
  signingCertificate: Buffer;
}

const signers = new Map<string, TsaSigner>();

function tsaSigner(tsa: TsaCredential): TsaSigner {
  const cacheKey = `${tsa.certPem}\0${tsa.keyPem}`;
  const cached = signers.get(cacheKey);
  if (cached) return cached;
  const certDer = pemBlocks(tsa.certPem, 'CERTIFICATE')[0];
  if (!certDer) throw new SwxError('SWX_BAD_REQUEST', 'the TSA certificate holds no PEM CERTIFICATE block');
  const cert = certificate(certDer);
  let key: KeyObject;
  try {
    key = createPrivateKey(tsa.keyPem);
  } catch (error) {
    throw new SwxError('SWX_INTERNAL', `the TSA key is not a readable PEM private key: ${(error as Error).message}`, { cause: error });
  }
  if (!cert.x509.checkPrivateKey(key)) throw new SwxError('SWX_INTERNAL', 'the TSA key does not belong to the TSA certificate');
  const unfit = usageRefusal(cert, 'tsa');
  if (unfit) throw new SwxError('SWX_INTERNAL', `${unfit.detail} (RFC 3161 2.3); issue it with \`swx pki init\``);
  const signatureAlgorithm = signatureAlgorithmOf(key);
  if (!signatureAlgorithm) throw new SwxError('SWX_INTERNAL', `the TSA key is ${key.asymmetricKeyType}; use ECDSA or RSA`);
  const { serial, issuer, subject } = certificateFields(readDer(cert.der));
  // ESSCertIDv2: SHA-256 of the certificate (the default algorithm, so omitted), and its issuer (as a directoryName) and serial.
  const issuerSerial = encode(tags.sequence, encode(tags.sequence, encode(context(4, true), issuer.bytes)), serial.bytes);
  const essCertId = encode(tags.sequence, encode(tags.octetString, digestOf('SHA-256', cert.der)), issuerSerial);
  const signer: TsaSigner = {
    key,
    certDer: cert.der,
    signerInfoHead: Buffer.concat([encodeUnsigned(1n), encode(tags.sequence, issuer.bytes, serial.bytes), sha256Algorithm]),
    signatureAlgorithm,
    tsaName: encode(context(0, true), encode(context(4, true), subject.bytes)),
    signingCertificate: encodeAttribute(oid.signingCertificateV2, encode(tags.sequence, encode(tags.sequence, essCertId))),
  };
  if (signers.size > 64) signers.clear(); // a handful of TSAs at most; never grow without bound
  signers.set(cacheKey, signer);
  return signer;
}


/** Issues a granted TimeStampResp (DER) for one message imprint, signed by the given TSA credential. */
export function createTimeStampToken(request: TokenRequest): Buffer {
  const hashAlgorithm = request.hashAlgorithm ?? 'SHA-256';
  if (!(hashAlgorithm in hashOid) || hashAlgorithm === 'SHA-1') throw new SwxError('SWX_BAD_REQUEST', `imprint algorithm ${hashAlgorithm} is not accepted`);
  if (typeof request.policy !== 'string' || !/^[0-2](\.\d+)+$/.test(request.policy)) throw new SwxError('SWX_BAD_REQUEST', `TSA policy ${JSON.stringify(request.policy)} is not an OID`);
  if (typeof request.serial === 'bigint' && request.serial < 0n) throw new SwxError('SWX_BAD_REQUEST', 'a time-stamp serial must not be negative');
  const signer = tsaSigner(request.tsa);
  const tstInfo = encode(
    tags.sequence,
    encodeUnsigned(1n),
    encodeOid(request.policy),
    messageImprint(hashAlgorithm, request.digest),
    encodeUnsigned(request.serial),
    encodeGeneralizedTime(request.genTime ?? new Date()),
    ...(request.nonce ? [encodeUnsigned(request.nonce)] : []),
    signer.tsaName,
  );
  // DER orders the signed attributes; the signature covers them as that SET, and they travel as [0] IMPLICIT.
  const signedAttributes = encodeSetOf([
    encodeAttribute(oid.contentType, encodeOid(oid.tstInfo)),
    encodeAttribute(oid.messageDigest, encode(tags.octetString, digestOf('SHA-256', tstInfo))),
    signer.signingCertificate,
  ]);
  const signature = sign('sha256', signedAttributes, { key: signer.key, dsaEncoding: 'der' });
  signedAttributes[0] = context(0, true);
  const signerInfo = encode(tags.sequence, signer.signerInfoHead, signedAttributes, signer.signatureAlgorithm, encode(tags.octetString, signature));
  const signedData = encode(
    tags.sequence,
    encodeUnsigned(3n),
    encode(tags.set, sha256Algorithm),
    encode(tags.sequence, encodeOid(oid.tstInfo), encode(context(0, true), encode(tags.octetString, tstInfo))),
    ...(request.certReq === false ? [] : [encode(context(0, true), signer.certDer)]),
    encode(tags.set, signerInfo),
  );
  const token = encode(tags.sequence, encodeOid(oid.signedData), encode(context(0, true), signedData));
  return encode(tags.sequence, encode(tags.sequence, encodeUnsigned(0n)), token); // PKIStatusInfo: granted
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
  if (options.policy !== undefined && !/^[0-2](\.\d+)+$/.test(options.policy)) throw new SwxError('SWX_BAD_REQUEST', `TSA policy ${JSON.stringify(options.policy)} is not an OID`);
  return encode(
    tags.sequence,
    encodeUnsigned(1n),
    messageImprint(options.hashAlgorithm ?? 'SHA-256', digest),
    ...(options.policy ? [encodeOid(options.policy)] : []),
    ...(nonce ? [encodeUnsigned(nonce)] : []),
    ...((options.certReq ?? true) ? [encode(tags.boolean, Buffer.from([0xff]))] : []),
  );
}

/** hashAlgorithm and hashedMessage of a MessageImprint; the algorithm's parameters may be absent or NULL. */
function readImprint(node: Der | undefined): { algorithmId: string; digest: Buffer } {
  if (node?.tag !== tags.sequence || node.children.length !== 2) throw new DerError('a MessageImprint is SEQUENCE { hashAlgorithm, hashedMessage }', node?.start ?? 0);
  const algorithm = node.child(0, tags.sequence, 'hashAlgorithm');
  const params = algorithm.children[1];
  if (algorithm.children.length > 2 || (params && params.tag !== tags.null)) throw new DerError('hash algorithm with parameters', algorithm.start);
  return { algorithmId: oidOf(algorithm.child(0, tags.oid, 'hashAlgorithm')), digest: node.child(1, tags.octetString, 'hashedMessage').value };
}

/** Reads a DER TimeStampReq, e.g. one posted to the hub's own TSA endpoint. */
export function parseTimeStampRequest(der: Buffer): ParsedRequest {
  let parsed: Omit<ParsedRequest, 'hashAlgorithm'> & { algorithmId: string };
  try {
    if (!Buffer.isBuffer(der)) throw new DerError('not bytes', 0);
    const request = readDer(der);
    if (request.tag !== tags.sequence) throw new DerError('not a SEQUENCE', 0);
    const [versionNode, imprint, ...rest] = request.children;
    if (versionNode?.tag !== tags.integer || smallIntegerOf(versionNode) !== 1) throw new DerError('version is not 1', versionNode?.start ?? 0);
    const { algorithmId, digest } = readImprint(imprint);
    parsed = { algorithmId, digest: Buffer.from(digest), certReq: false };
    let next = rest.shift();
    if (next?.tag === tags.oid) { parsed.policy = oidOf(next); next = rest.shift(); }
    if (next?.tag === tags.integer) { parsed.nonce = Buffer.from(integerBytes(next)); next = rest.shift(); }
    if (next?.tag === tags.boolean) { parsed.certReq = next.value[0] === 0xff; next = rest.shift(); }
    if (next?.tag === context(0, true)) next = rest.shift(); // extensions: none is understood, none is acted on
    if (next) throw new DerError('unexpected field', next.start);
  } catch (error) {
    if (!(error instanceof DerError)) throw error;
    throw new SwxError('SWX_BAD_REQUEST', `not a DER TimeStampReq: ${error.message}`, { cause: error });
  }
  const hashAlgorithm = hashOids[parsed.algorithmId];
  if (!hashAlgorithm) throw new SwxError('SWX_BAD_REQUEST', `imprint algorithm ${parsed.algorithmId} is not supported`);
  const { algorithmId: _algorithmId, ...request } = parsed;
  return { hashAlgorithm, ...request };
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

interface TstInfo {
  policy: string;
  imprint: { algorithmId: string; digest: Buffer };
  serial: Buffer;
  genTime: Date;
  nonce?: Buffer;
}

/** TSTInfo (RFC 3161 2.4.2): version 1, policy, imprint, serial, genTime, then the optional fields in their order. */
function readTstInfo(content: Buffer): TstInfo {
  const info = readDer(content);
  if (info.tag !== tags.sequence) throw new DerError('TSTInfo is not a SEQUENCE', 0);
  const [versionNode, policy, imprint, serial, genTime, ...optional] = info.children;
  if (versionNode?.tag !== tags.integer || smallIntegerOf(versionNode) !== 1) throw new DerError('TSTInfo version is not 1', versionNode?.start ?? 0);
  if (policy?.tag !== tags.oid || serial?.tag !== tags.integer || genTime?.tag !== tags.generalizedTime) throw new DerError('TSTInfo fields out of shape', info.start);
  const parsed: TstInfo = { policy: oidOf(policy), imprint: readImprint(imprint), serial: integerBytes(serial), genTime: timeOf(genTime) };
  let next = optional.shift();
  if (next?.tag === tags.sequence) next = optional.shift(); // accuracy
  if (next?.tag === tags.boolean) next = optional.shift(); // ordering
  if (next?.tag === tags.integer) { parsed.nonce = integerBytes(next); next = optional.shift(); }
  if (next?.tag === context(0, true)) next = optional.shift(); // tsa name: informative, the signer is what counts
  if (next?.tag === context(1, true)) next = optional.shift(); // extensions
  if (next) throw new DerError('unexpected TSTInfo field', next.start);
  return parsed;
}

/** The token's SignedData and TSTInfo; a rejection (SWX_TSP_MALFORMED) for anything else. */
function parseToken(tokenDer: Buffer): { signedData: SignedDataView; tstInfo: TstInfo } {
  try {
    const signedData = readSignedData(tokenDer);
    if (signedData.eContentType !== oid.tstInfo || !signedData.eContent) return reject('SWX_TSP_MALFORMED', `the token encapsulates ${signedData.eContentType}, not a TSTInfo`);
    return { signedData, tstInfo: readTstInfo(signedData.eContent) };
  } catch (error) {
    if (error instanceof DerError) return reject('SWX_TSP_MALFORMED', `the time-stamp token is not a DER SignedData with one signer and a TSTInfo: ${error.message}`);
    throw error;
  }
}

/** Certificates that parse (cached by thumbprint), each once; unreadable ones cannot sign or chain and are skipped, as openssl does. */
function candidates(ders: Buffer[]): ParsedCert[] {
  const seen = new Set<string>();
  return ders.flatMap((der) => {
    let cert: ParsedCert;
    try {
      cert = certificate(der);
    } catch {
      return [];
    }
    if (seen.has(cert.thumbprint)) return [];
    seen.add(cert.thumbprint);
    return [cert];
  });
}

/** Issuer and serial of a certificate as encoded, read once per certificate. */
const issuerSerials = new Map<string, { issuer: Buffer; serial: Buffer }>();

function issuerSerialOf(cert: ParsedCert): { issuer: Buffer; serial: Buffer } {
  let found = issuerSerials.get(cert.thumbprint);
  if (!found) {
    const fields = certificateFields(readDer(cert.der));
    found = { issuer: fields.issuer.bytes, serial: integerBytes(fields.serial) };
    if (issuerSerials.size >= 256) issuerSerials.clear();
    issuerSerials.set(cert.thumbprint, found);
  }
  return found;
}

/** The certificate the SignerInfo names (never merely the first one in the bag: GHSA-3xxc-pwj6-jgrj). */
function findSigner(sid: SignedDataView['signerInfo']['sid'], pool: ParsedCert[]): ParsedCert {
  const match = pool.find((cert) => {
    if ('keyId' in sid) return sid.keyId.length > 0 && cert.subjectKeyId === sid.keyId.toString('hex');
    try {
      const own = issuerSerialOf(cert);
      return own.issuer.equals(sid.issuer.bytes) && own.serial.equals(integerBytes(sid.serial));
    } catch {
      return false; // a certificate whose own fields do not read as DER names no one
    }
  });
  return match ?? reject('SWX_TSP_SIGNER_UNKNOWN', 'the certificate named by the SignerInfo is neither in the token nor among the certificates given');
}

/** The one value of a signed attribute, or undefined when absent. */
function attributeValue(signedData: SignedDataView, type: string): Der | undefined {
  const found = signedData.signerInfo.attributes.filter((a) => a.type === type);
  if (found.length > 1 || (found[0] && found[0].values.length !== 1)) reject('SWX_SIG_INVALID', `signed attribute ${type} must occur once with one value`);
  return found[0]?.values[0];
}

/** RFC 3161 2.4.1 / RFC 5035: the signed attributes must identify the signer's certificate by hash. */
function checkCertId(signedData: SignedDataView, signer: ParsedCert): void {
  const v2 = attributeValue(signedData, oid.signingCertificateV2);
  const value = v2 ?? attributeValue(signedData, oid.signingCertificate);
  if (!value) return reject('SWX_TSP_CERT_ID_MISMATCH', 'the token has neither a SigningCertificate nor a SigningCertificateV2 attribute');
  // SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), policies OPTIONAL }: the first names the signer.
  const fields = value.children[0]?.children[0]?.children ?? [];
  let hashName: HashName = v2 ? 'SHA-256' : 'SHA-1';
  let i = 0;
  if (v2 && fields[0]?.tag === tags.sequence) {
    const algorithmId = fields[0].children[0]?.tag === tags.oid ? oidOf(fields[0].children[0]) : 'unreadable';
    hashName = hashOids[algorithmId] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `ESSCertIDv2 hash algorithm ${algorithmId} is not supported`);
    i = 1;
  }
  const certHash = fields[i];
  if (certHash?.tag !== tags.octetString) return reject('SWX_TSP_MALFORMED', 'the signing-certificate attribute has no certificate hash');
  if (!certHash.value.equals(digestOf(hashName, signer.der))) reject('SWX_TSP_CERT_ID_MISMATCH', `the signing-certificate attribute names another certificate than ${signer.subject}`);
}

function checkSignature(signedData: SignedDataView, signer: ParsedCert): void {
  const info = signedData.signerInfo;
  const digestName = hashOids[info.digestAlgorithm.oid] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `digest algorithm ${info.digestAlgorithm.oid} is not supported`);
  const scheme = signatureOids[info.signatureAlgorithm.oid] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `signature algorithm ${info.signatureAlgorithm.oid} is not supported`);
  const keyType = signer.publicKey.asymmetricKeyType;
  if (keyType !== scheme.key) reject('SWX_SIG_INVALID', `signature algorithm ${info.signatureAlgorithm.oid} does not fit the signer's ${keyType} key`);
  // RFC 3161 tokens always carry signed attributes: they bind the TSTInfo and the signer's certificate.
  if (!info.signedAttrs || info.attributes.length === 0) return reject('SWX_TSP_MALFORMED', 'the SignerInfo has no signed attributes');
  const contentType = attributeValue(signedData, oid.contentType);
  if (contentType?.tag !== tags.oid || oidOf(contentType) !== oid.tstInfo) reject('SWX_SIG_INVALID', 'the signed content-type attribute is not id-ct-TSTInfo');
  const messageDigest = attributeValue(signedData, oid.messageDigest);
  if (messageDigest?.tag !== tags.octetString || !messageDigest.value.equals(digestOf(digestName, signedData.eContent!))) {
    reject('SWX_SIG_INVALID', 'the signed message-digest attribute does not match the TSTInfo: the token was altered');
  }
  checkCertId(signedData, signer);
  // The signature covers the attributes as a DER SET (tag 0x31), not as the [0] IMPLICIT field they are sent in.
  const signedBytes = Buffer.from(info.signedAttrs.bytes);
  signedBytes[0] = tags.set;
  let ok: boolean;
  try {
    ok = verify(nodeHash(scheme.hash ?? digestName), signedBytes, { key: signer.publicKey, dsaEncoding: 'der' }, info.signature);
  } catch {
    ok = false;
  }
  if (!ok) reject('SWX_SIG_INVALID', `the signature of ${signer.subject} does not verify`);
}

/** Throws the path's refusal (or the signer's own validity, without anchors) as a rejection of the token. */
function checkChain(signer: ParsedCert, pool: ParsedCert[], anchors: ParsedCert[], at: Date): void {
  const refusal = anchors.length ? pathRefusalCached(signer, pool, anchors, at) : validityRefusal(signer.x509, at);
  if (!refusal) return;
  const reason = refusal.code === 'SWX_CERT_EXPIRED' || refusal.code === 'SWX_CERT_USAGE' ? refusal.code : 'SWX_CERT_UNTRUSTED';
  reject(reason, refusal.detail);
}

function checkImprint(tstInfo: TstInfo, options: VerifyOptions, request: ParsedRequest | undefined): HashName {
  const { algorithmId, digest: actual } = tstInfo.imprint;
  const hashAlgorithm = hashOids[algorithmId] ?? reject('SWX_SIG_ALG_UNSUPPORTED', `imprint algorithm ${algorithmId} is not supported`);
  const expected = options.data ? digestOf(hashAlgorithm, options.data) : (options.digest ?? request?.digest);
  if (!expected) throw new SwxError('SWX_BAD_REQUEST', 'verifying a time stamp needs the data, its digest or the request');
  if (request && request.hashAlgorithm !== hashAlgorithm) reject('SWX_TSP_IMPRINT_MISMATCH', `the request asked for ${request.hashAlgorithm}, the token has ${hashAlgorithm}`);
  if (!actual.equals(expected)) reject('SWX_TSP_IMPRINT_MISMATCH', `the token time-stamps ${hashAlgorithm} ${actual.toString('hex')}, not the given data`);
  return hashAlgorithm;
}

/** The common ending (verdict.ts): the TSA certificate's standing, the caveat without pin or anchor, the algorithm policy. */
function concluded(verdict: TimeStampVerdict, options: VerifyOptions): TimeStampVerdict {
  return conclude(verdict, {
    trust: options.trustedCertsPem ? 'chain' : options.pinnedCertsPem ? 'pinned' : 'none',
    at: options.at ?? new Date(),
    policy: options.algorithmPolicy ?? 'archive',
    algorithms: verdict.hashAlgorithm ? [verdict.hashAlgorithm] : [],
  });
}

function parseRequestOrReject(der: Buffer): ParsedRequest {
  try {
    return parseTimeStampRequest(der);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the request given to check the response against: ${(error as Error).message}`, { cause: error });
  }
}

/** Verifies a TimeStampToken (the CMS ContentInfo alone, as kept with evidence). */
export function verifyTimeStampToken(tokenDer: Buffer, options: VerifyOptions): TimeStampVerdict {
  const at = options.at ?? new Date();
  const known: Omit<TimeStampVerdict, 'valid' | 'code' | 'detail'> = { kind: 'timestamp' };
  let verdict: TimeStampVerdict;
  try {
    const request = options.request ? parseRequestOrReject(options.request) : undefined;
    if (!Buffer.isBuffer(tokenDer)) reject('SWX_TSP_MALFORMED', 'the time-stamp token is not bytes');
    const { signedData, tstInfo } = parseToken(tokenDer);
    Object.assign(known, {
      genTime: tstInfo.genTime,
      signedAt: tstInfo.genTime.toISOString(),
      serial: hexOf(tstInfo.serial),
      policy: tstInfo.policy,
      ...(tstInfo.nonce ? { nonce: hexOf(tstInfo.nonce) } : {}),
    });
    known.hashAlgorithm = checkImprint(tstInfo, options, request);
    const expectedNonce = options.nonce ?? request?.nonce;
    if (expectedNonce && (!tstInfo.nonce || hexOf(tstInfo.nonce) !== hexOf(expectedNonce))) {
      reject('SWX_TSP_NONCE_MISMATCH', 'the token does not echo the nonce of the request: it may be a replay');
    }
    const policy = options.policy ?? request?.policy;
    if (policy && tstInfo.policy !== policy) reject('SWX_TSP_POLICY_MISMATCH', `the token is under policy ${tstInfo.policy}, not ${policy}`);
    const embedded = (signedData.certificates ?? []).map((node) => node.bytes);
    if (request?.certReq && embedded.length === 0) reject('SWX_TSP_MALFORMED', 'the request asked for the TSA certificate, the token has none');
    const given = (pem?: string) => (pem ? pemBlocks(pem, 'CERTIFICATE') : []);
    const anchors = candidates(given(options.trustedCertsPem));
    const pinned = candidates(given(options.pinnedCertsPem));
    const pool = candidates([...embedded, ...given(options.untrustedCertsPem)]);
    const signer = findSigner(signedData.signerInfo.sid, [...pool, ...pinned, ...anchors]);
    known.signer = signerSummary(signer);
    checkSignature(signedData, signer);
    const unfit = usageRefusal(signer, 'tsa');
    if (unfit) reject('SWX_TSP_SIGNER_NOT_TSA', unfit.detail);
    if (pinned.length && !pinned.some((p) => p.thumbprint === signer.thumbprint)) reject('SWX_CERT_UNTRUSTED', `${signer.subject} is not the pinned TSA certificate`);
    checkChain(signer, pool, anchors, at);
    verdict = { ...known, valid: true, code: 'SWX_OK', detail: '' };
  } catch (error) {
    if (!(error instanceof Rejection)) throw error;
    verdict = { ...known, valid: false, code: error.reason, detail: error.message };
  }
  return concluded(verdict, options);
}

/** The TimeStampToken inside a granted TimeStampResp, as its exact bytes; a rejection when there is none. */
function grantedToken(responseDer: Buffer): Buffer {
  let status: number;
  let statusInfo: Der;
  let token: Der | undefined;
  try {
    if (!Buffer.isBuffer(responseDer)) throw new DerError('not bytes', 0);
    // The token is read and checked on its own (verifyTimeStampToken); here only its bounds.
    const response = readDer(responseDer, { opaque: (tag, depth) => depth === 1 && tag === tags.sequence });
    if (response.tag !== tags.sequence || response.children.length < 1 || response.children.length > 2) throw new DerError('not SEQUENCE { status, timeStampToken }', 0);
    statusInfo = readDer(response.child(0, tags.sequence, 'PKIStatusInfo').bytes);
    const statusNode = statusInfo.child(0, tags.integer, 'status');
    if (statusNode.value.length > 1) throw new DerError('status out of range', statusNode.start);
    status = statusNode.value[0]!;
    token = response.children[1];
  } catch (error) {
    if (error instanceof DerError) return reject('SWX_TSP_MALFORMED', `not a DER TimeStampResp: ${error.message}`);
    throw error;
  }
  if (status !== 0 && status !== 1) {
    // PKIStatusInfo ::= SEQUENCE { status, statusString SEQUENCE OF UTF8String OPTIONAL, failInfo BIT STRING OPTIONAL }
    const texts = statusInfo.children.find((child) => child.tag === tags.sequence)?.children.map((text) => text.value.toString('utf8'));
    const failInfo = statusInfo.children.find((child) => child.tag === tags.bitString);
    const bits = failInfo ? ` failInfo ${failInfo.value.subarray(1).toString('hex')}` : '';
    return reject('SWX_TSP_NOT_GRANTED', `the TSA answered status ${status}${texts?.length ? ` (${texts.join('; ')})` : ''}${bits}`);
  }
  if (!token) return reject('SWX_TSP_MALFORMED', 'a granted TimeStampResp without a token');
  return token.bytes;
}

/** The TimeStampToken (DER ContentInfo) inside a granted TimeStampResp; throws when the TSA did not grant one. */
export function timeStampTokenOf(responseDer: Buffer): Buffer {
  try {
    return Buffer.from(grantedToken(responseDer));
  } catch (error) {
    if (error instanceof Rejection) throw new SwxError(error.reason, error.message);
    throw error;
  }
}

/** Verifies a DER TimeStampResp as `openssl ts -verify` does, plus the signer's identity, EKU and validity at `at`. */
export function verifyTimeStampResponse(responseDer: Buffer, options: VerifyOptions): TimeStampVerdict {
  let token: Buffer;
  try {
    token = grantedToken(responseDer);
  } catch (error) {
    if (!(error instanceof Rejection)) throw error;
    return concluded({ valid: false, code: error.reason, detail: error.message, kind: 'timestamp' }, options);
  }
  return verifyTimeStampToken(token, options);
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
  if (!verdict.valid) throw new SwxError('SWX_UNAVAILABLE', `time-stamp authority ${url} answered with an unusable token: ${verdict.code}: ${verdict.detail}`);
  return { response, token: timeStampTokenOf(response), verdict };
}
