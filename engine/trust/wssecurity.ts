// WS-Security (X.509 token profile) over a SOAP 1.1 or 1.2 envelope, for every protocol that signs that way: signing
// (signSoap through the DOM for any envelope; signedSecurityHeader for parts the caller wrote canonical, with no parse)
// and the inbound check. The check is strict on shape (one Security header, one Signature, its key a
// BinarySecurityToken of that header or a certificate the receiver gives, named by key identifier or issuer and
// serial, a Timestamp), on time (fresh, not from the future, not expired), on coverage (the Body and the Timestamp
// acted on are the elements signed: wrapping fails) and on replay. Encrypted attachments are decrypted first.
import { createHash, randomUUID } from 'node:crypto';
import type { SignatureInfo } from '../envelope.ts';
import { SwxError } from '../errors.ts';
import { elementChildren, elementPath, textOf } from '../xml/elements.ts';
import { parseXml, type XmlElement } from '../xml/parse.ts';
import { soapVersionOf, type SoapEnvelope } from '../xml/soap.ts';
import { certificate, certificates, type ParsedCert } from './certs.ts';
import { certificateReference, childElements, type CertificateReference } from './keyinfo.ts';
import { pemBlocks, toPem } from './x509.ts';
import { canonicalDocument } from './xmldsig-fast.ts';
import { decryptAttachments, namespaces as encryptionNamespaces, type DecryptionKey, type EncryptionProfile } from './xmlenc.ts';
import {
  addAttachmentReferences,
  addElementReferences,
  create,
  ds,
  guarded,
  pemCache,
  seal,
  securityHeader,
  signatureShell,
  signedElement,
  signer,
  uniqueById,
  verifyXml as verifyXmlInProcess,
  type VerifyXmlOptions,
  type XmlAttachment,
  type XmlVerdict,
} from './xmldsig.ts';
import { canonicalizations, digest, digestAlgorithms, namespaces, parseDocument, signatureAlgorithms, signWith, type DigestName, type SignatureName } from './xmldsig-algorithms.ts';

/** The WS-Security utility namespace, for the parts a connector writes with a wsu:Id to be signed. */
export const wsuNamespace = namespaces.wsu;
const xencNamespace = encryptionNamespaces.xenc;
const x509TokenType = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3';
const base64Binary = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

export interface SignSoapOptions {
  keyPem: string;
  certPem: string;
  parts?: readonly ('Body' | 'Timestamp')[];
  timestampTtlSeconds?: number;
  /** Further elements to sign by their Id (e.g. AS4's eb:Messaging). */
  ids?: readonly string[];
  /** MIME parts to sign with the SwA Attachment-Content-Signature-Transform. */
  attachments?: readonly XmlAttachment[];
  signatureAlgorithm?: SignatureName;
  digestAlgorithm?: DigestName;
  /** wsu:Created of the Timestamp (default now). */
  createdAt?: Date;
  /** How KeyInfo names the signer: a BinarySecurityToken in the header (default), or, for a partner that holds the
   *  certificate already, its X509 SubjectKeyIdentifier (`ski`) or issuer and serial (`issuer-serial`), with no token. */
  keyReference?: 'token' | CertificateReference;
}

/** A wsu:Id for the element, the one it has or a new one. */
function wsuId(element: Element, prefix: string): string {
  const existing = element.getAttributeNS(namespaces.wsu, 'Id');
  if (existing) return existing;
  const id = `${prefix}-${randomUUID()}`;
  element.setAttributeNS(namespaces.xmlns, 'xmlns:wsu', namespaces.wsu);
  element.setAttributeNS(namespaces.wsu, 'wsu:Id', id);
  return id;
}

/**
 * Signs a SOAP 1.1 or 1.2 envelope by the WS-Security X.509 token profile: BinarySecurityToken, a Signature over
 * Body and Timestamp (by wsu:Id, exc-c14n) and whatever else is asked for, KeyInfo as a SecurityTokenReference. An
 * envelope signSoapFast recognises is signed without the DOM, any other through it.
 */
export function signSoap(envelope: Buffer | string, options: SignSoapOptions): Promise<string> {
  return guarded(() => signSoapFast(envelope, options) ?? signSoapReference(envelope, options));
}

/** The envelope's declared encoding is UTF-8 (or none is declared), so its text is written back as it came. */
const utf8Declared = (source: string) => {
  const declaration = /^<\?xml\s[^?]*\?>/.exec(source)?.[0];
  return !declaration || !/encoding\s*=/.test(declaration) || /encoding\s*=\s*["']utf-8["']/i.test(declaration);
};

/**
 * signSoap without the DOM, for the envelopes the hub writes itself (an AS4 Receipt, an Error signal): one Header
 * without a Security block, one Body with a wsu:Id, each other id on exactly one element, no attachments, the
 * signer named by a BinarySecurityToken. The signed parts are canonicalised from swx's own parse
 * (xmldsig-fast.ts, which declines what xml-crypto canonicalises otherwise), signedSecurityHeader writes the
 * Security block, and it goes in before the Header's end tag, the rest of the text kept as it is. Undefined for
 * anything else, and for any input signedSecurityHeader refuses: signSoap then signs through the DOM, which says why.
 * The same Signature as that path (test/engine/wssecurity-fastsign.test.ts).
 */
export function signSoapFast(envelope: Buffer | string, options: SignSoapOptions): string | undefined {
  const parts = options.parts ?? ['Body', 'Timestamp'];
  if (options.attachments?.length || (options.keyReference ?? 'token') !== 'token') return undefined;
  if (parts.length !== 2 || !parts.includes('Body') || !parts.includes('Timestamp')) return undefined;
  try {
    const document = parseXml(envelope);
    const root = document.root;
    if (root.localName !== 'Envelope' || !soapVersionOf(root.namespace) || !utf8Declared(document.source)) return undefined;
    const headers = children(root, root.namespace, 'Header');
    const bodies = children(root, root.namespace, 'Body');
    const header = headers[0];
    if (headers.length !== 1 || bodies.length !== 1 || !header || header.contentEnd === header.end) return undefined;
    if (children(header, namespaces.wsse, 'Security').length > 0) return undefined;
    const bodyId = attribute(bodies[0]!, namespaces.wsu, 'Id');
    const canonical = canonicalDocument(document);
    if (bodyId === undefined || !canonical) return undefined;
    const signed: CanonicalPart[] = [];
    for (const id of [bodyId, ...(options.ids ?? [])]) {
      const found = canonical.byId(id);
      const text = found.length === 1 ? canonical.exclusive(found[0]!) : undefined;
      // The Envelope or the Header would hold the Signature: the DOM path signs those with enveloped-signature.
      if (text === undefined || found[0] === root || found[0] === header || (id === bodyId && found[0] !== bodies[0])) return undefined;
      signed.push({ id, canonical: text });
    }
    const security = signedSecurityHeader(signed, {
      keyPem: options.keyPem, certPem: options.certPem, soapNamespace: root.namespace,
      ...(options.timestampTtlSeconds !== undefined ? { timestampTtlSeconds: options.timestampTtlSeconds } : {}),
      ...(options.createdAt ? { createdAt: options.createdAt } : {}),
      ...(options.signatureAlgorithm ? { signatureAlgorithm: options.signatureAlgorithm } : {}),
      ...(options.digestAlgorithm ? { digestAlgorithm: options.digestAlgorithm } : {}),
    });
    return document.source.slice(0, header.contentEnd) + security + document.source.slice(header.contentEnd);
  } catch {
    return undefined;
  }
}

/** signSoap through the DOM and xml-crypto alone, for any envelope: what signSoapFast is tested against. Throws SwxError. */
export function signSoapReference(envelope: Buffer | string, options: SignSoapOptions): string {
  const sign = signer(options);
  const certDer = pemBlocks(options.certPem ?? '', 'CERTIFICATE')[0];
  if (!certDer) throw new SwxError('SWX_BAD_REQUEST', 'certPem holds no PEM CERTIFICATE block');
  const parts = options.parts ?? ['Body', 'Timestamp'];
  const ttl = options.timestampTtlSeconds ?? 300;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new SwxError('SWX_BAD_REQUEST', 'timestampTtlSeconds must be a positive number');
  const doc = parseDocument(envelope);
  const security = securityHeader(doc);
  const root = doc.documentElement;
  const bodies = childElements(root, root.namespaceURI!, 'Body');
  if (bodies.length !== 1) throw new SwxError('SWX_BAD_REQUEST', `the envelope has ${bodies.length} Body elements, not one`);

  const targets: { uri: string; element: Element }[] = [];
  if (parts.includes('Timestamp')) {
    const created = options.createdAt ?? new Date();
    if (Number.isNaN(created.getTime())) throw new SwxError('SWX_BAD_REQUEST', 'createdAt is not a valid Date');
    const timestamp = create(doc, namespaces.wsu, 'wsu:Timestamp');
    timestamp.setAttributeNS(namespaces.wsu, 'wsu:Id', `TS-${randomUUID()}`);
    timestamp.appendChild(create(doc, namespaces.wsu, 'wsu:Created', {}, created.toISOString()));
    timestamp.appendChild(create(doc, namespaces.wsu, 'wsu:Expires', {}, new Date(created.getTime() + ttl * 1000).toISOString()));
    security.appendChild(timestamp);
    targets.push({ uri: `#${timestamp.getAttributeNS(namespaces.wsu, 'Id')}`, element: timestamp });
  }
  const keyReference = options.keyReference ?? 'token';
  const tokenId = `X509-${randomUUID()}`;
  if (keyReference === 'token') {
    const token = create(doc, namespaces.wsse, 'wsse:BinarySecurityToken', { EncodingType: base64Binary, ValueType: x509TokenType }, certDer.toString('base64'));
    token.setAttributeNS(namespaces.wsu, 'wsu:Id', tokenId);
    security.appendChild(token);
  }
  if (parts.includes('Body')) targets.push({ uri: `#${wsuId(bodies[0]!, 'id')}`, element: bodies[0]! });
  targets.push(...uniqueById(doc, options.ids ?? []));
  if (targets.length === 0 && !options.attachments?.length) throw new SwxError('SWX_BAD_REQUEST', 'nothing to sign: parts, ids and attachments are all empty');

  const signature = signatureShell(doc, sign);
  security.appendChild(signature);
  addElementReferences(signature, targets, sign);
  addAttachmentReferences(signature, options.attachments ?? [], 'content', sign.digestUri);
  const keyInfo = ds(doc, 'KeyInfo');
  if (keyReference === 'token') {
    const reference = create(doc, namespaces.wsse, 'wsse:SecurityTokenReference');
    reference.appendChild(create(doc, namespaces.wsse, 'wsse:Reference', { URI: `#${tokenId}`, ValueType: x509TokenType }));
    keyInfo.appendChild(reference);
  } else if (keyReference === 'ski' || keyReference === 'issuer-serial') {
    keyInfo.appendChild(certificateReference(doc, certificate(certDer), keyReference));
  } else {
    throw new SwxError('SWX_BAD_REQUEST', `keyReference ${JSON.stringify(keyReference)} is not token, ski or issuer-serial`);
  }
  signature.appendChild(keyInfo);
  return seal(doc, signature.getAttribute('Id')!, sign, options.attachments ?? []);
}

/** An element the caller wrote itself, referenced by its wsu:Id: `canonical` is its exclusive-c14n form, byte for byte as it stands in the envelope. */
export interface CanonicalPart {
  id: string;
  canonical: string;
}

export interface SecurityHeaderOptions {
  keyPem: string;
  certPem: string;
  /** The envelope's SOAP namespace (1.1 or 1.2): mustUnderstand is written in it. */
  soapNamespace: string;
  timestampTtlSeconds?: number;
  /** wsu:Created of the Timestamp (default now). */
  createdAt?: Date;
  signatureAlgorithm?: SignatureName;
  digestAlgorithm?: DigestName;
}

const certificateBase64 = pemCache<string>(64);
const ncName = /^[A-Za-z_][A-Za-z0-9._-]*$/;
const exclusive = canonicalizations['exc-c14n'];

/**
 * The signed wsse:Security header block for parts the caller wrote in exclusive-c14n form, with no parse and no
 * xml-crypto: the Timestamp and the SignedInfo are written canonical here, the parts' text is digested as it is, and
 * the SignedInfo is signed once. The same Signature shape as signSoap (Timestamp first, then `parts` in order, each
 * with the exc-c14n transform), so every verifier reads both alike; signSoap is the reference it is tested against.
 */
export function signedSecurityHeader(parts: readonly CanonicalPart[], options: SecurityHeaderOptions): string {
  const sign = signer(options);
  const token = certificateBase64(options.certPem, (pem) => {
    const der = pemBlocks(pem, 'CERTIFICATE')[0];
    if (!der) throw new SwxError('SWX_BAD_REQUEST', 'certPem holds no PEM CERTIFICATE block');
    return der.toString('base64');
  });
  if (!soapVersionOf(options.soapNamespace)) throw new SwxError('SWX_BAD_REQUEST', 'soapNamespace is neither SOAP 1.1 nor SOAP 1.2');
  const ttl = options.timestampTtlSeconds ?? 300;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new SwxError('SWX_BAD_REQUEST', 'timestampTtlSeconds must be a positive number');
  const created = options.createdAt ?? new Date();
  if (Number.isNaN(created.getTime())) throw new SwxError('SWX_BAD_REQUEST', 'createdAt is not a valid Date');
  // Written into attributes unescaped: an id must be an NCName, as xs:ID wants anyway.
  const bad = parts.find((part) => !ncName.test(part.id));
  if (bad) throw new SwxError('SWX_BAD_REQUEST', `${JSON.stringify(bad.id.slice(0, 80))} is not an NCName, so not a wsu:Id`);

  const timestampId = `TS-${randomUUID()}`;
  const timestamp = `<wsu:Timestamp xmlns:wsu="${namespaces.wsu}" wsu:Id="${timestampId}"><wsu:Created>${created.toISOString()}</wsu:Created>`
    + `<wsu:Expires>${new Date(created.getTime() + ttl * 1000).toISOString()}</wsu:Expires></wsu:Timestamp>`;
  const digestAlgorithm = digestAlgorithms[sign.digestUri]!;
  const references = [{ id: timestampId, canonical: timestamp }, ...parts].map(({ id, canonical }) =>
    `<ds:Reference URI="#${id}"><ds:Transforms><ds:Transform Algorithm="${exclusive}"></ds:Transform></ds:Transforms>`
    + `<ds:DigestMethod Algorithm="${sign.digestUri}"></ds:DigestMethod>`
    + `<ds:DigestValue>${digest(digestAlgorithm, canonical).toString('base64')}</ds:DigestValue></ds:Reference>`).join('');
  // Canonical as it stands: the apex declares ds, empty elements are written as pairs, attributes are alone.
  const signedInfo = `<ds:SignedInfo xmlns:ds="${namespaces.ds}"><ds:CanonicalizationMethod Algorithm="${exclusive}"></ds:CanonicalizationMethod>`
    + `<ds:SignatureMethod Algorithm="${sign.uri}"></ds:SignatureMethod>${references}</ds:SignedInfo>`;
  const value = signWith(signatureAlgorithms[sign.uri]!, sign.key, signedInfo).toString('base64');
  const tokenId = `X509-${randomUUID()}`;
  const mustUnderstand = options.soapNamespace === namespaces.soap11 ? '1' : 'true';
  return `<wsse:Security xmlns:soap="${options.soapNamespace}" xmlns:wsse="${namespaces.wsse}" xmlns:wsu="${namespaces.wsu}" soap:mustUnderstand="${mustUnderstand}">`
    + timestamp
    + `<wsse:BinarySecurityToken EncodingType="${base64Binary}" ValueType="${x509TokenType}" wsu:Id="${tokenId}">${token}</wsse:BinarySecurityToken>`
    + `<ds:Signature xmlns:ds="${namespaces.ds}" Id="sig-${randomUUID()}">${signedInfo}<ds:SignatureValue>${value}</ds:SignatureValue>`
    + `<ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#${tokenId}" ValueType="${x509TokenType}"></wsse:Reference></wsse:SecurityTokenReference></ds:KeyInfo>`
    + '</ds:Signature></wsse:Security>';
}

/** verifyXml (xmldsig.ts), or the signature pool's, which runs it on a worker thread. */
export type VerifyXml = (xml: Buffer | string, options?: VerifyXmlOptions) => Promise<XmlVerdict>;

export interface WsSecurityCheckOptions {
  verifyXml?: VerifyXml;
  /** Claims `<signer thumbprint>:<digest of what the signature signs>`, false when it was claimed before; without it
   *  replays are not looked for. */
  replay?: { claim(key: string): boolean };
  /** How far in the future Created, and how far past Expires, may be (default 60 s). */
  clockSkewSeconds?: number;
  /** How old Created may be (default 300 s). */
  freshnessSeconds?: number;
  now?: () => number;
  /** The certificates (PEM) a signer named by KeyIdentifier or X509IssuerSerial, with no BinarySecurityToken, may be:
   *  the sender's, as registered. Without them such a message is refused (SWX_CERT_UNTRUSTED). */
  certificatesPem?: string;
  /** The MIME parts of a SOAP-with-attachments message, which the signature may reference by cid:. */
  attachments?: readonly XmlAttachment[];
  /** The hub's key and the profile agreed with the sender: parts the Security header says are encrypted are decrypted
   *  first and the signature is judged over their plaintext. Without it an encrypted message is refused
   *  (SWX_DECRYPT_KEY_MISSING). */
  decryption?: { key: DecryptionKey; profile: EncryptionProfile };
}

export interface WsSecurityResult {
  certificateDer: Buffer;
  certificatePem: string;
  /** base64url SHA-256 of the certificate DER, as the registry keys certificates. */
  thumbprint: string;
  verdict: XmlVerdict;
  signature: SignatureInfo;
  /** Paths of the SOAP header blocks the signature covers besides the Security header's Timestamp. */
  signedHeaders: string[];
  /** `<signer thumbprint>:<digest of what the signature signs>`: the same for a replay, however re-encoded. */
  replayKey: string;
  /** The attachments as the signature was judged over them: decrypted where they came encrypted. */
  attachments: XmlAttachment[];
}

const defaults = { clockSkewSeconds: 60, freshnessSeconds: 300 };

const children = (parent: XmlElement, namespace: string, localName: string) =>
  elementChildren(parent).filter((child) => child.namespace === namespace && child.localName === localName);

const attribute = (element: XmlElement, namespace: string, localName: string) =>
  element.attributes.find((a) => a.namespace === namespace && a.localName === localName)?.value;

/** xsd:dateTime with a time zone, as WS-Security's wsu:Created and wsu:Expires must be. */
function instant(element: XmlElement | undefined, what: string): number {
  const text = element ? textOf(element).trim() : '';
  const valid = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text);
  const at = valid ? Date.parse(text) : NaN;
  if (Number.isNaN(at)) throw new SwxError('SWX_BAD_REQUEST', `wsu:Timestamp needs ${what} as an xsd:dateTime with a time zone`);
  return at;
}

function one(parent: XmlElement, namespace: string, localName: string, where: string): XmlElement {
  const found = children(parent, namespace, localName);
  if (found.length === 0) throw new SwxError('SWX_SIG_MISSING', `${where} holds no ${localName}: the message must be signed by the WS-Security X.509 token profile`);
  if (found.length > 1) throw new SwxError('SWX_BAD_REQUEST', `${where} holds ${found.length} ${localName} elements; exactly one is accepted`);
  return found[0]!;
}

/**
 * The BinarySecurityToken of `security` the signature's KeyInfo names; undefined when it names a certificate the
 * receiver holds instead (by KeyIdentifier or X509IssuerSerial).
 */
function signingToken(security: XmlElement, signature: XmlElement): Buffer | undefined {
  const keyInfo = children(signature, namespaces.ds, 'KeyInfo')[0];
  const reference = keyInfo && children(keyInfo, namespaces.wsse, 'SecurityTokenReference')[0];
  if (reference && children(reference, namespaces.wsse, 'Reference').length === 0
    && (children(reference, namespaces.wsse, 'KeyIdentifier').length > 0 || children(reference, namespaces.ds, 'X509Data').length > 0)) return undefined;
  const uri = reference && children(reference, namespaces.wsse, 'Reference')[0]?.attributes.find((a) => a.localName === 'URI' && a.namespace === '')?.value;
  if (!uri?.startsWith('#')) throw new SwxError('SWX_BAD_REQUEST', 'the Signature\'s KeyInfo must be a SecurityTokenReference to a BinarySecurityToken (Reference URI="#...") or to a known certificate (KeyIdentifier, X509IssuerSerial)');
  const tokens = children(security, namespaces.wsse, 'BinarySecurityToken').filter((token) => attribute(token, namespaces.wsu, 'Id') === uri.slice(1));
  const token = tokens[0];
  if (tokens.length !== 1 || !token) throw new SwxError('SWX_BAD_REQUEST', `the Security header holds ${tokens.length} BinarySecurityToken elements with wsu:Id ${uri.slice(1, 80)}; exactly one must`);
  if (attribute(token, '', 'ValueType') !== x509TokenType) throw new SwxError('SWX_BAD_REQUEST', 'the BinarySecurityToken must be an X.509v3 certificate (ValueType ...#X509v3)');
  const encoding = attribute(token, '', 'EncodingType');
  if (encoding !== undefined && encoding !== base64Binary) throw new SwxError('SWX_BAD_REQUEST', 'the BinarySecurityToken must be base64 (EncodingType ...#Base64Binary)');
  const text = textOf(token).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new SwxError('SWX_BAD_REQUEST', 'the BinarySecurityToken is not base64');
  return Buffer.from(text, 'base64');
}

/**
 * Requires the signature to cover `element` where it is. A signed element of that name elsewhere is a moved copy
 * (SWX_SIG_WRAPPED); none at all means it is not signed (SWX_SIG_MISSING).
 */
function requireSigned(verdict: XmlVerdict, element: XmlElement, what: string): string {
  const path = elementPath(element);
  if (signedElement(verdict, path)) return path;
  const elsewhere = verdict.signedElements.find((signed) => signed.localName === element.localName && signed.namespace === element.namespace);
  if (elsewhere) throw new SwxError('SWX_SIG_WRAPPED', `the signature covers a ${what} at ${elsewhere.path}, not the one at ${path} that would be acted on`);
  throw new SwxError('SWX_SIG_MISSING', `the signature does not cover the ${what}`);
}

/** What the signature commits to: the decoded DigestValues of its SignedInfo (a re-encoded SignatureValue keeps them). */
function signedDigest(signature: XmlElement): string {
  const hash = createHash('sha256');
  const signedInfo = children(signature, namespaces.ds, 'SignedInfo')[0];
  for (const reference of signedInfo ? children(signedInfo, namespaces.ds, 'Reference') : []) {
    for (const value of children(reference, namespaces.ds, 'DigestValue')) hash.update(Buffer.from(textOf(value).replace(/\s+/g, ''), 'base64'));
  }
  return hash.digest('base64url');
}

/**
 * Checks the WS-Security of a SOAP message; rejects with an SwxError (SWX_SIG_MISSING, SWX_SIG_EXPIRED,
 * SWX_SIG_WRAPPED, SWX_REPLAY, the verifier's codes, SWX_BAD_REQUEST for a malformed Security header). Who the
 * signer is (registered, to which partner, trusted) is the caller's question: the result names the certificate.
 */
export async function checkWsSecurity(envelope: SoapEnvelope, options: WsSecurityCheckOptions = {}): Promise<WsSecurityResult> {
  const skew = (options.clockSkewSeconds ?? defaults.clockSkewSeconds) * 1000;
  const freshness = (options.freshnessSeconds ?? defaults.freshnessSeconds) * 1000;
  const now = (options.now ?? Date.now)();
  if (!envelope.header) throw new SwxError('SWX_SIG_MISSING', 'the message has no SOAP Header, so no WS-Security signature');
  const security = one(envelope.header, namespaces.wsse, 'Security', 'the SOAP Header');
  const signature = one(security, namespaces.ds, 'Signature', 'the Security header');
  const timestamp = one(security, namespaces.wsu, 'Timestamp', 'the Security header');

  // Time first: it costs nothing, and a stale message is refused whatever its signature.
  const created = instant(children(timestamp, namespaces.wsu, 'Created')[0], 'Created');
  const expires = instant(children(timestamp, namespaces.wsu, 'Expires')[0], 'Expires');
  const createdAt = new Date(created).toISOString();
  if (created > now + skew) throw new SwxError('SWX_SIG_EXPIRED', `wsu:Created ${createdAt} is in the future beyond the allowed clock skew`);
  if (created < now - freshness - skew) throw new SwxError('SWX_SIG_EXPIRED', `wsu:Created ${createdAt} is older than ${freshness / 1000} s`);
  if (expires < now - skew) throw new SwxError('SWX_SIG_EXPIRED', `wsu:Expires ${new Date(expires).toISOString()} has passed`);

  const token = signingToken(security, signature);
  let named: ParsedCert;
  try {
    // Parsed once per certificate (engine/trust/certs.ts): a peer signs every message with the same one.
    if (token) named = certificate(token);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the BinarySecurityToken is not an X.509 certificate: ${(error as Error).message}`);
  }
  if (!token && !options.certificatesPem) {
    throw new SwxError('SWX_CERT_UNTRUSTED', 'the signer is named by key identifier or issuer and serial, with no BinarySecurityToken, and no certificate it may be was given');
  }
  // Sign-then-encrypt: the signature digests the plaintext, so encrypted parts are opened first.
  let attachments = [...(options.attachments ?? [])];
  if (children(security, xencNamespace, 'EncryptedData').length > 0) {
    if (!options.decryption) throw new SwxError('SWX_DECRYPT_KEY_MISSING', 'the message\'s parts are encrypted and no decryption key was given');
    attachments = await decryptAttachments(envelope.raw, attachments, options.decryption.key, { profile: options.decryption.profile });
  }
  // Pinned to the token the KeyInfo names, so the verdict's signer is that certificate and no other; a certificate named
  // by identifier is resolved among those given, and must be one of them.
  const keys = token ? { pinnedCertsPem: toPem(token, 'CERTIFICATE') } : { untrustedCertsPem: options.certificatesPem! };
  const verdict = await (options.verifyXml ?? verifyXmlInProcess)(envelope.raw, { ...keys, ...(attachments.length ? { attachments } : {}) });
  if (!verdict.valid) throw new SwxError(verdict.code === 'SWX_OK' ? 'SWX_SIG_INVALID' : verdict.code, `WS-Security signature: ${verdict.detail}`);
  if (!token) {
    const given = certificates(options.certificatesPem!).find((cert) => cert.thumbprint === verdict.signer?.thumbprint);
    if (!given) throw new SwxError('SWX_SIG_INVALID', 'the signature was not checked with a certificate given for its key identifier');
    named = given;
  }
  const print = named!.thumbprint;
  const certificateDer = named!.der;
  const certificatePem = toPem(certificateDer, 'CERTIFICATE');
  if (verdict.signer?.thumbprint !== print) throw new SwxError('SWX_SIG_INVALID', 'the signature was not checked with the BinarySecurityToken its KeyInfo names');
  const covered = [requireSigned(verdict, envelope.body, 'soap:Body'), requireSigned(verdict, timestamp, 'wsu:Timestamp')];
  const signedHeaders = elementChildren(envelope.header).filter((block) => block !== security).map(elementPath)
    .filter((path) => signedElement(verdict, path));

  const replayKey = `${print}:${signedDigest(signature)}`;
  if (options.replay && !options.replay.claim(replayKey)) {
    throw new SwxError('SWX_REPLAY', `this signed message (signer ${print}, created ${createdAt}) was received before`);
  }
  const value = textOf(children(signature, namespaces.ds, 'SignatureValue')[0] ?? signature).replace(/\s+/g, '');
  return {
    certificateDer,
    certificatePem,
    thumbprint: print,
    verdict,
    signedHeaders,
    replayKey,
    attachments,
    signature: {
      scheme: 'xmldsig',
      algorithm: verdict.algorithms?.signature ?? '',
      keyId: print,
      certThumbprint: print,
      covered: [...covered, ...signedHeaders],
      value,
      createdAt,
      certificate: certificatePem,
    },
  };
}
