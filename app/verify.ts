// `swx verify FILE`: recognises any signed thing the hub understands (XMLDSig, SOAP/WS-Security, ebMS 2.0, AS4 — bare,
// as MIME, as an HTTP capture or as a mail — CMS, RFC 3161), verifies it with the trust core and prints one JSON verdict.
import { readFileSync } from 'node:fs';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { parseArgs } from 'node:util';
import * as asn1js from 'asn1js';
import { SwxError, type ErrorCode } from '../engine/errors.ts';
import { headerlessMultipart, messageParts, parseEntity, parseHeaderBlock, parseHttpMessage, startsWithStartLine, defaultMimeLimits, type Attachment, type MessageParts } from '../engine/mime/index.ts';
import {
  decryptAttachments,
  encryptedParts,
  encryptionProfileOf,
  encryptionProfiles,
  pemBlocks,
  toArrayBuffer,
  toPem,
  verifyCms,
  verifyTimeStampResponse,
  verifyTimeStampToken,
  verifyXml,
  type CmsVerdict,
  type EncryptedPartInfo,
  type EncryptionProfile,
  type SignatureVerdict,
  type TimeStampVerdict,
  type VerdictKind,
  type VerifyCmsOptions,
  type VerifyOptions as TimeStampOptions,
  type XmlVerdict,
} from '../engine/trust/index.ts';
import { oid as tspOid } from '../engine/trust/tsa.ts';
import { messagingKind } from '../engine/xml/soap.ts';

export type Detected = 'xml' | 'mime' | 'http-capture' | 'smtp-mail' | 'cms' | 'timestamp-response' | 'timestamp-token' | 'unknown';

export interface PartSummary {
  /** Without angle brackets; "" when the part has none. */
  contentId: string;
  contentType: string;
  /** After Content-Transfer-Encoding decoding. */
  bytes: number;
  root: boolean;
}

/**
 * The trust core's verdict as it gave it, plus what the file was found to be; `kind` is absent when no signed thing
 * was found. Each kind adds its own fields to the common ones.
 */
export interface FileVerdict extends Omit<SignatureVerdict, 'kind'> {
  detected: Detected;
  kind?: VerdictKind;
  /** The MIME parts of a MIME, HTTP or mail message, root first. */
  parts?: PartSummary[];
  /** The parts the Security header says are encrypted (WS-Security SwA), and whether they were decrypted to be judged. */
  encrypted?: (EncryptedPartInfo & { decrypted: boolean })[];
  /** XML: what the valid references cover (see engine/trust/xmldsig.ts). */
  signedElements?: XmlVerdict['signedElements'];
  signedAttachments?: string[];
  /** CMS: whether the content travelled apart from the signature. */
  detached?: CmsVerdict['detached'];
  /** RFC 3161: the token's own fields. */
  genTime?: TimeStampVerdict['genTime'];
  serial?: TimeStampVerdict['serial'];
  policy?: TimeStampVerdict['policy'];
  hashAlgorithm?: TimeStampVerdict['hashAlgorithm'];
  nonce?: TimeStampVerdict['nonce'];
}

export interface VerifyFileOptions {
  /** Certificates the signer's must be (PEM); for CMS the first one. */
  pinnedCertsPem?: string;
  /** Public keys an XML signature may be checked with (PEM SPKI), for signatures that carry only a KeyName. */
  publicKeysPem?: string;
  /** Trust anchors the signer must chain to. */
  trustedCertsPem?: string;
  /** Intermediates that may complete the chain, besides those the message carries. */
  untrustedCertsPem?: string;
  /** The time-stamped data (RFC 3161), or the content of a detached CMS signature. */
  data?: Buffer;
  /** When certificate validity is judged; default now. */
  at?: Date;
  /** 'archive' (default) accepts legacy SHA-1/DSA and lists them in `weak`; 'live' refuses them. */
  policy?: 'archive' | 'live';
  /** The recipient's private key (PEM) for encrypted attachments, and its certificate if at hand. */
  decryptionKeyPem?: string;
  decryptionCertPem?: string;
  /** The profile the encryption must follow; default the one the message's EncryptedKey uses. */
  encryptionProfile?: EncryptionProfile;
}

const signedDataOid = '1.2.840.113549.1.7.2';

/** The options do not fit the file (e.g. a time stamp without --data): the command line is wrong, not the file. */
export class UsageError extends Error {}

/**
 * Verifies the bytes of a file. A malformed or hostile input is an invalid verdict with its code; only options that
 * do not fit the file throw (UsageError).
 */
export async function verifyFile(bytes: Buffer, options: VerifyFileOptions = {}): Promise<FileVerdict> {
  let detected: Detected = 'unknown';
  let parts: PartSummary[] | undefined;
  try {
    const start = firstSignificantByte(bytes);
    if (start === 0x3c /* < */) {
      detected = 'xml';
      return await verifyXmlMessage(bytes, [], options, detected);
    }
    const der = derOf(bytes);
    if (der) {
      const found = classifyDer(der);
      detected = found;
      if (found === 'timestamp-response') return { detected, ...verifyTimeStampResponse(der, timeStampOptions(options)) };
      if (found === 'timestamp-token') return { detected, ...verifyTimeStampToken(der, timeStampOptions(options)) };
      // The signed content is the caller's own file (--data) or inside the message: the verdict need not repeat it.
      const { content: _content, ...verdict } = await verifyCms(der, cmsOptions(options));
      return { detected, ...verdict };
    }
    const message = readMessage(bytes);
    detected = message.detected;
    parts = summarise(message.parts);
    const root = message.parts.root;
    if (firstSignificantByte(root.body) !== 0x3c) {
      return refusal(detected, 'SWX_SIG_MISSING', `the root part (${mediaTypeOf(root.contentType)}) is not an XML document, so it carries no XML signature`, parts);
    }
    return { ...(await verifyEncryptedMessage(root.body, message.parts.attachments, options, detected)), parts };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (error instanceof SwxError) return refusal(detected, error.code, error.message, parts);
    // A verifier that throws something else has a gap of its own: say so rather than blame the file.
    return refusal(detected, 'SWX_INTERNAL', `verification failed unexpectedly: ${(error as Error)?.message ?? String(error)}`, parts);
  }
}

function refusal(detected: Detected, code: ErrorCode, detail: string, parts?: PartSummary[]): FileVerdict {
  return { detected, valid: false, code, detail, ...(parts ? { parts } : {}) };
}

function firstSignificantByte(bytes: Buffer): number | undefined {
  let at = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (at < bytes.length && (bytes[at] === 0x20 || bytes[at] === 0x09 || bytes[at] === 0x0d || bytes[at] === 0x0a)) at += 1;
  return bytes[at];
}

/** DER of a binary CMS / time-stamp file, or of its PEM form ("CMS", "PKCS7"); undefined for anything else. */
function derOf(bytes: Buffer): Buffer | undefined {
  if (bytes[0] === 0x30) return bytes;
  const head = bytes.toString('latin1', 0, 64);
  if (!head.trimStart().startsWith('-----BEGIN ')) return undefined;
  const text = bytes.toString('latin1');
  const der = pemBlocks(text, 'CMS')[0] ?? pemBlocks(text, 'PKCS7')[0];
  if (!der) throw new SwxError('SWX_BAD_REQUEST', 'a PEM file without a CMS or PKCS7 block: nothing signed to verify');
  return der;
}

/**
 * A TimeStampResp is PKIStatusInfo (a SEQUENCE opening with the status INTEGER) and an optional ContentInfo; a
 * ContentInfo opens with its content type OID. Anything else (a certificate, a request) is not a signed thing.
 */
function classifyDer(der: Buffer): 'cms' | 'timestamp-response' | 'timestamp-token' {
  const parsed = asn1js.fromBER(toArrayBuffer(der));
  const notSigned = new SwxError('SWX_BAD_REQUEST', 'DER that is neither a CMS ContentInfo nor an RFC 3161 TimeStampResp (a certificate or a request?)');
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) throw notSigned;
  const [first, second, ...more] = parsed.result.valueBlock.value;
  if (first instanceof asn1js.Sequence && first.valueBlock.value[0] instanceof asn1js.Integer && !more.length) {
    if (second === undefined || (second instanceof asn1js.Sequence && second.valueBlock.value[0] instanceof asn1js.ObjectIdentifier)) return 'timestamp-response';
  }
  if (!(first instanceof asn1js.ObjectIdentifier)) throw notSigned;
  if (first.valueBlock.toString() !== signedDataOid) return 'cms';
  // ContentInfo -> [0] SignedData -> encapContentInfo -> eContentType
  const signedData = (second as asn1js.Constructed | undefined)?.valueBlock.value[0] as asn1js.Sequence | undefined;
  const encap = signedData?.valueBlock?.value?.[2] as asn1js.Sequence | undefined;
  const eContentType = encap?.valueBlock?.value?.[0];
  return eContentType instanceof asn1js.ObjectIdentifier && eContentType.valueBlock.toString() === tspOid.tstInfo ? 'timestamp-token' : 'cms';
}

interface ReadMessage { detected: 'mime' | 'http-capture' | 'smtp-mail'; parts: MessageParts }

// Fields only mail has (RFC 5322 requires From; relays add Received and Return-Path); an HTTP capture has framing and
// routing fields instead.
const mailFields = ['from', 'received', 'return-path'];
const httpFields = ['host', 'server', 'transfer-encoding', 'content-length', 'soapaction', 'user-agent'];

function readMessage(bytes: Buffer): ReadMessage {
  if (startsWithStartLine(bytes)) return { detected: 'http-capture', parts: messageParts(parseHttpMessage(bytes).entity) };
  const headerless = headerlessMultipart(bytes);
  if (headerless) return { detected: 'mime', parts: messageParts(headerless) };
  if (!/^[!-9;-~]+:/.test(bytes.toString('latin1', 0, 200))) throw new SwxError('SWX_BAD_REQUEST', 'not XML, CMS, RFC 3161, MIME, mail or an HTTP capture');
  const { headers } = parseHeaderBlock(bytes, 0, defaultMimeLimits, 'message headers');
  if (mailFields.some((name) => name in headers)) return { detected: 'smtp-mail', parts: messageParts(parseEntity(bytes)) };
  if (httpFields.some((name) => name in headers)) return { detected: 'http-capture', parts: messageParts(parseHttpMessage(bytes).entity) };
  if (!('content-type' in headers)) throw new SwxError('SWX_BAD_REQUEST', 'header fields without Content-Type: not MIME, mail or an HTTP capture');
  return { detected: 'mime', parts: messageParts(parseEntity(bytes)) };
}

const mediaTypeOf = (type: { type: string; subtype: string }) => `${type.type}/${type.subtype}`;

function summarise(parts: MessageParts): PartSummary[] {
  const root = parts.root;
  return [
    { contentId: root.contentId ?? '', contentType: mediaTypeOf(root.contentType), bytes: root.body.length, root: true },
    ...parts.attachments.map((part) => ({
      contentId: part.contentId,
      contentType: part.headers['content-type']?.split(';')[0]?.trim().toLowerCase() ?? 'text/plain',
      bytes: part.body.length,
      root: false,
    })),
  ];
}

async function verifyXmlMessage(xml: Buffer, attachments: Attachment[], options: VerifyFileOptions, detected: Detected): Promise<FileVerdict> {
  const verdict = await verifyXml(xml, {
    attachments,
    policy: options.policy ?? 'archive',
    ...(options.pinnedCertsPem ? { pinnedCertsPem: options.pinnedCertsPem } : {}),
    ...(options.publicKeysPem ? { publicKeysPem: options.publicKeysPem } : {}),
    ...(options.trustedCertsPem ? { trustedCertsPem: options.trustedCertsPem } : {}),
    ...(options.untrustedCertsPem ? { untrustedCertsPem: options.untrustedCertsPem } : {}),
    ...(options.at ? { at: options.at } : {}),
  });
  if (verdict.code === 'SWX_SIG_MISSING') return refusal(detected, verdict.code, verdict.detail);
  // The verifier has refused what the XML gate refuses; only a document that passed it is read again for its kind.
  const passedGate = !['SWX_XML_FORBIDDEN', 'SWX_XML_LIMIT', 'SWX_XML_MALFORMED'].includes(verdict.code);
  const { valid, code, detail, kind, signedElements, signedAttachments, ...rest } = verdict;
  return { detected, valid, code, detail, kind: (passedGate ? messagingKind(xml) : undefined) ?? kind, ...rest, signedElements, signedAttachments };
}

/**
 * A SOAP message whose parts may be encrypted (sign-then-encrypt, as AS4 does): with a key the parts are decrypted and
 * every reference judged over the plaintext; without one the references to the envelope's own elements are judged
 * and the verdict says that the encrypted parts were not (SWX_DECRYPT_KEY_MISSING), rather than calling them altered.
 */
async function verifyEncryptedMessage(xml: Buffer, attachments: Attachment[], options: VerifyFileOptions, detected: Detected): Promise<FileVerdict> {
  let encrypted: EncryptedPartInfo[] = [];
  if (firstSignificantByte(xml) === 0x3c) {
    try {
      encrypted = encryptedParts(xml);
    } catch (error) {
      // What the XML gate refuses is the signature verifier's to report, with its own code.
      if (!(error instanceof SwxError) || !error.code.startsWith('SWX_XML_')) throw error;
    }
  }
  if (encrypted.length === 0) return verifyXmlMessage(xml, attachments, options, detected);
  if (options.decryptionKeyPem) {
    const profile = options.encryptionProfile ?? encryptionProfileOf(xml) ?? 'eDelivery-AS4-1.15';
    const key = { keyPem: options.decryptionKeyPem, ...(options.decryptionCertPem ? { certPem: options.decryptionCertPem } : {}) };
    const plaintext = await decryptAttachments(xml, attachments, key, { profile });
    const verdict = await verifyXmlMessage(xml, plaintext, options, detected);
    return { ...verdict, encrypted: encrypted.map((part) => ({ ...part, decrypted: true })) };
  }
  const sealed = new Set(encrypted.map((part) => part.contentId));
  const verdict = await verifyXmlMessage(xml, attachments.filter((part) => !sealed.has(part.contentId)), options, detected);
  const isSealed = (uri: string) => uri.toLowerCase().startsWith('cid:') && sealed.has(decodeURIComponent(uri.slice(4)));
  const references = verdict.references?.map((reference) => (isSealed(reference.uri) ? { ...reference, detail: 'encrypted: not judged without the key to decrypt it (--key)' } : reference));
  const others = references?.filter((reference) => !isSealed(reference.uri)) ?? [];
  const list = [...sealed].map((id) => `<${id}>`).join(', ');
  const result: FileVerdict = { ...verdict, ...(references ? { references } : {}), encrypted: encrypted.map((part) => ({ ...part, decrypted: false })) };
  if (verdict.code === 'SWX_SIG_REF_UNRESOLVED' && others.every((reference) => reference.valid)) {
    return {
      ...result,
      valid: false,
      code: 'SWX_DECRYPT_KEY_MISSING',
      detail: `the parts ${list} are encrypted and no key was given to decrypt them (--key): the ${others.length} reference${others.length === 1 ? '' : 's'} to the message's own elements check out; the encrypted parts and the SignatureValue are not judged`,
    };
  }
  return result;
}

// ---------------------------------------------------------------- the command line as CMS and RFC 3161 options

function cmsOptions(options: VerifyFileOptions): VerifyCmsOptions {
  if (options.publicKeysPem) throw new UsageError('a public key (--cert) can only be given for an XML signature; CMS needs the signer certificate');
  if (options.untrustedCertsPem) throw new UsageError('intermediates (--untrusted) are not supported for CMS: the chain is built from the certificates in the message');
  return {
    policy: options.policy ?? 'archive',
    ...(options.data ? { data: options.data } : {}),
    ...(options.trustedCertsPem ? { trustedCertsPem: [options.trustedCertsPem] } : {}),
    ...(options.pinnedCertsPem ? { pinnedCertPem: options.pinnedCertsPem } : {}),
    ...(options.at ? { at: options.at } : {}),
  };
}

function timeStampOptions(options: VerifyFileOptions): TimeStampOptions {
  if (options.publicKeysPem) throw new UsageError('a public key (--cert) can only be given for an XML signature; a time stamp needs the TSA certificate');
  if (!options.data) throw new UsageError('an RFC 3161 time stamp is verified against the data it time-stamps: give it with --data FILE');
  return {
    data: options.data,
    algorithmPolicy: options.policy ?? 'archive',
    ...(options.trustedCertsPem ? { trustedCertsPem: options.trustedCertsPem } : {}),
    ...(options.untrustedCertsPem ? { untrustedCertsPem: options.untrustedCertsPem } : {}),
    ...(options.pinnedCertsPem ? { pinnedCertsPem: options.pinnedCertsPem } : {}),
    ...(options.at ? { at: options.at } : {}),
  };
}

// ---------------------------------------------------------------- the command

export const verifyUsage = 'swx verify FILE [--cert PEM] [--trusted PEM]... [--untrusted PEM]... [--data FILE] [--key PEM] [--profile eDelivery-AS4-1.15|eDelivery-AS4-2.0] [--at ISO-8601|EPOCH-SECONDS] [--policy archive|live]';

/** Certificates (PEM, any number, or one DER certificate) and public keys (PEM SPKI) from a key file. */
function readKeyFile(path: string, option: string): { certsPem: string; keysPem: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UsageError(`${option} ${path}: ${(error as Error).message}`);
  }
  const text = bytes.toString('latin1');
  const ders = text.includes('-----BEGIN ') ? pemBlocks(text, 'CERTIFICATE') : [bytes];
  const keys = text.includes('-----BEGIN ') ? pemBlocks(text, 'PUBLIC KEY') : [];
  try {
    for (const der of ders) new X509Certificate(der);
    for (const der of keys) createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (error) {
    throw new UsageError(`${option} ${path}: not a certificate or public key (${(error as Error).message})`);
  }
  if (!ders.length && !keys.length) throw new UsageError(`${option} ${path}: no CERTIFICATE or PUBLIC KEY block`);
  return { certsPem: ders.map((der) => toPem(der, 'CERTIFICATE')).join(''), keysPem: keys.map((der) => toPem(der, 'PUBLIC KEY')).join('') };
}

const isoInstant = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** `--at`: ISO 8601 (a date or date-time; UTC when no offset is given) or epoch seconds. */
export function parseInstant(value: string): Date {
  let instant: number;
  if (/^\d{1,12}$/.test(value)) instant = Number(value) * 1000;
  else {
    const match = isoInstant.exec(value);
    if (!match) throw new UsageError(`--at ${JSON.stringify(value)}: give an ISO 8601 instant (2023-08-29T10:56:50Z) or epoch seconds`);
    const utc = value.length === 10 ? `${value}T00:00:00Z` : match[1] ? value : `${value}Z`;
    instant = Date.parse(utc.replace(' ', 'T'));
  }
  if (!Number.isFinite(instant)) throw new UsageError(`--at ${JSON.stringify(value)} is not a valid instant`);
  return new Date(instant);
}

function commandOptions(args: string[]): { file: string; options: VerifyFileOptions } {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: {
      cert: { type: 'string' },
      trusted: { type: 'string', multiple: true },
      untrusted: { type: 'string', multiple: true },
      data: { type: 'string' },
      at: { type: 'string' },
      policy: { type: 'string', default: 'archive' },
      key: { type: 'string' },
      profile: { type: 'string' },
    } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('name exactly one FILE to verify');
  if (values.policy !== 'archive' && values.policy !== 'live') throw new UsageError(`--policy ${values.policy}: archive or live`);
  const options: VerifyFileOptions = { policy: values.policy, at: values.at === undefined ? new Date() : parseInstant(values.at) };
  if (values.cert) {
    const pinned = readKeyFile(values.cert, '--cert');
    if (pinned.certsPem) options.pinnedCertsPem = pinned.certsPem;
    if (pinned.keysPem) options.publicKeysPem = pinned.keysPem;
  }
  const certsOf = (paths: string[] | undefined, option: string) => (paths ?? []).map((path) => {
    const read = readKeyFile(path, option);
    if (read.keysPem) throw new UsageError(`${option} ${path}: a trust anchor or intermediate must be a certificate, not a bare public key`);
    return read.certsPem;
  }).join('');
  const trusted = certsOf(values.trusted, '--trusted');
  const untrusted = certsOf(values.untrusted, '--untrusted');
  if (trusted) options.trustedCertsPem = trusted;
  if (untrusted) options.untrustedCertsPem = untrusted;
  if (values.key) {
    let text: string;
    try {
      text = readFileSync(values.key, 'latin1');
    } catch (error) {
      throw new UsageError(`--key ${values.key}: ${(error as Error).message}`);
    }
    const keyDer = pemBlocks(text, 'PRIVATE KEY')[0] ?? pemBlocks(text, 'RSA PRIVATE KEY')[0];
    if (!keyDer) throw new UsageError(`--key ${values.key}: no PRIVATE KEY block (the recipient's decryption key, PEM, optionally followed by its certificate)`);
    const label = pemBlocks(text, 'PRIVATE KEY')[0] ? 'PRIVATE KEY' : 'RSA PRIVATE KEY';
    options.decryptionKeyPem = toPem(keyDer, label);
    const certs = pemBlocks(text, 'CERTIFICATE');
    if (certs.length) options.decryptionCertPem = toPem(certs[0]!, 'CERTIFICATE');
  }
  if (values.profile !== undefined) {
    if (!encryptionProfiles.includes(values.profile as EncryptionProfile)) throw new UsageError(`--profile ${values.profile}: ${encryptionProfiles.join(' or ')}`);
    options.encryptionProfile = values.profile as EncryptionProfile;
  }
  if (values.data) {
    try {
      options.data = readFileSync(values.data);
    } catch (error) {
      throw new UsageError(`--data ${values.data}: ${(error as Error).message}`);
    }
  }
  return { file: positionals[0]!, options };
}

/** Runs `swx verify`; prints the JSON verdict and returns the exit code: 0 valid, 1 not valid, 2 usage error. */
export async function verifyCommand(args: string[]): Promise<number> {
  try {
    const { file, options } = commandOptions(args);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      throw new UsageError(`${file}: ${(error as Error).message}`);
    }
    const verdict = await verifyFile(bytes, options);
    console.log(JSON.stringify({ file, ...verdict }, null, 2));
    return verdict.valid ? 0 : 1;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`swx verify: ${error.message}\nusage: ${verifyUsage}`);
    return 2;
  }
}
