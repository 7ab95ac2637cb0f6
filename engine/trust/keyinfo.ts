// Which key checks an XML signature: the one ds:KeyInfo carries (X509Data, a WS-Security token reference to a
// BinarySecurityToken or to a certificate by key identifier, KeyValue, KeyName) or the one the caller pins. Whether
// that key is trusted is judged afterwards, once the signature holds (xmldsig.ts).
import * as asn1js from 'asn1js';
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { certificate, type ParsedCert } from './certs.ts';
import { namespaces } from './xmldsig-algorithms.ts';

export interface KeySources {
  /** The first certificate of pinnedCertsPem. */
  pinned?: ParsedCert;
  /** publicKeysPem given as one key. */
  pinnedKey?: KeyObject;
  /** publicKeysPem given by ds:KeyName. */
  namedKeys?: Record<string, KeyObject>;
  /** Every certificate the caller gave: a token reference by key identifier or issuer and serial may name one. */
  known: ParsedCert[];
}

export interface ResolvedKey {
  key: KeyObject;
  /** The signer's certificate, when the key came with one. */
  certificate?: ParsedCert;
  /** Every certificate the signature carries, the signer's included; they help path building. */
  carried: ParsedCert[];
  keyName?: string;
  source: 'X509Data' | 'BinarySecurityToken' | 'KeyIdentifier' | 'KeyValue' | 'KeyName' | 'pinned certificate' | 'pinned key';
}

export interface KeyRefusal {
  code: 'SWX_CERT_UNTRUSTED' | 'SWX_SIG_KEY_MISMATCH' | 'SWX_BAD_REQUEST' | 'SWX_SIG_REF_UNRESOLVED' | 'SWX_SIG_WRAPPED';
  detail: string;
}

const tokenProfile = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0';
const messageSecurity11 = 'http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1';
const curves: Record<string, string> = {
  'urn:oid:1.2.840.10045.3.1.7': 'P-256',
  'urn:oid:1.3.132.0.34': 'P-384',
  'urn:oid:1.3.132.0.35': 'P-521',
};

export function childElements(parent: Element, namespace: string, localName: string): Element[] {
  return Array.from(parent.childNodes).filter(
    (node): node is Element => node.nodeType === node.ELEMENT_NODE && (node as Element).namespaceURI === namespace && (node as Element).localName === localName,
  );
}

export function childElement(parent: Element, namespace: string, localName: string): Element | undefined {
  return childElements(parent, namespace, localName)[0];
}

function base64Of(element: Element | undefined): Buffer {
  return Buffer.from((element?.textContent ?? '').replace(/\s+/g, ''), 'base64');
}

class KeyInfoProblem extends Error {
  constructor(readonly refusal: KeyRefusal) {
    super(refusal.detail);
  }
}

const problem = (code: KeyRefusal['code'], detail: string) => new KeyInfoProblem({ code, detail });

function parsedCertificate(der: Buffer, where: string): ParsedCert {
  try {
    return certificate(der);
  } catch (error) {
    throw problem('SWX_BAD_REQUEST', `${where} is not a readable certificate: ${(error as Error).message}`);
  }
}

/** An unsigned big-endian integer as a DER INTEGER (a leading zero keeps it positive). */
function unsignedInteger(bytes: Buffer): asn1js.Integer {
  const positive = bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return new asn1js.Integer({ valueHex: positive.buffer.slice(positive.byteOffset, positive.byteOffset + positive.byteLength) as ArrayBuffer });
}

/** ds:DSAKeyValue as a SubjectPublicKeyInfo (node:crypto reads DSA keys only as DER). */
function dsaKey(value: Element): KeyObject {
  const part = (name: string) => {
    const bytes = base64Of(childElement(value, namespaces.ds, name));
    if (bytes.length === 0) throw problem('SWX_BAD_REQUEST', `DSAKeyValue has no ${name}`);
    return unsignedInteger(bytes);
  };
  const spki = new asn1js.Sequence({
    value: [
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '1.2.840.10040.4.1' }), new asn1js.Sequence({ value: [part('P'), part('Q'), part('G')] })] }),
      new asn1js.BitString({ valueHex: part('Y').toBER(false) }),
    ],
  });
  return createPublicKey({ key: Buffer.from(spki.toBER(false)), format: 'der', type: 'spki' });
}

function keyValue(keyInfo: Element): KeyObject | undefined {
  const value = childElement(keyInfo, namespaces.ds, 'KeyValue');
  if (!value) return undefined;
  try {
    const rsa = childElement(value, namespaces.ds, 'RSAKeyValue');
    if (rsa) {
      const n = base64Of(childElement(rsa, namespaces.ds, 'Modulus')).toString('base64url');
      const e = base64Of(childElement(rsa, namespaces.ds, 'Exponent')).toString('base64url');
      return createPublicKey({ key: { kty: 'RSA', n, e }, format: 'jwk' });
    }
    const dsa = childElement(value, namespaces.ds, 'DSAKeyValue');
    if (dsa) return dsaKey(dsa);
    const ec = childElement(value, namespaces.dsig11, 'ECKeyValue');
    if (ec) {
      const curveUri = childElement(ec, namespaces.dsig11, 'NamedCurve')?.getAttribute('URI') ?? '';
      const crv = curves[curveUri];
      if (!crv) throw problem('SWX_BAD_REQUEST', `ECKeyValue names curve ${curveUri || '(none)'}, not P-256, P-384 or P-521`);
      const point = base64Of(childElement(ec, namespaces.dsig11, 'PublicKey'));
      const size = (point.length - 1) / 2;
      if (point[0] !== 4 || !Number.isInteger(size)) throw problem('SWX_BAD_REQUEST', 'ECKeyValue PublicKey is not an uncompressed point');
      const x = point.subarray(1, 1 + size).toString('base64url');
      const y = point.subarray(1 + size).toString('base64url');
      return createPublicKey({ key: { kty: 'EC', crv, x, y }, format: 'jwk' });
    }
  } catch (error) {
    if (error instanceof KeyInfoProblem) throw error;
    throw problem('SWX_BAD_REQUEST', `KeyValue is not a usable public key: ${(error as Error).message}`);
  }
  throw problem('SWX_BAD_REQUEST', 'KeyValue holds no RSA, DSA or EC key value');
}

interface Selector { serial?: string; issuer?: string; ski?: string; sha1?: string }

function matches(cert: ParsedCert, selector: Selector): boolean {
  if (selector.serial !== undefined && cert.serial !== selector.serial) return false;
  if (selector.ski !== undefined && cert.subjectKeyId !== selector.ski) return false;
  if (selector.sha1 !== undefined && createHash('sha1').update(cert.der).digest('hex') !== selector.sha1) return false;
  return true;
}

function issuerSerial(x509Data: Element): Selector | undefined {
  const issuerSerial = childElement(x509Data, namespaces.ds, 'X509IssuerSerial');
  const ski = childElement(x509Data, namespaces.ds, 'X509SKI');
  const selector: Selector = {};
  if (issuerSerial) {
    const decimal = childElement(issuerSerial, namespaces.ds, 'X509SerialNumber')?.textContent?.trim() ?? '';
    if (!/^[0-9]{1,60}$/.test(decimal)) throw problem('SWX_BAD_REQUEST', 'X509SerialNumber is not a decimal number');
    const hex = BigInt(decimal).toString(16);
    selector.serial = hex.length % 2 ? `0${hex}` : hex;
  }
  if (ski) selector.ski = base64Of(ski).toString('hex');
  return issuerSerial || ski ? selector : undefined;
}

/** The signer among the certificates X509Data carries: the one a selector names, else the one issuing none of the others. */
function signerAmong(carried: ParsedCert[], selector: Selector | undefined): ParsedCert {
  if (selector) {
    const named = carried.filter((cert) => matches(cert, selector));
    if (named.length === 1) return named[0]!;
    throw problem('SWX_BAD_REQUEST', `X509Data names its signer by issuer/serial or SKI, and ${named.length} of its certificates match`);
  }
  const leaves = carried.filter((cert) => !carried.some((other) => other !== cert && other.x509.checkIssued(cert.x509)));
  if (leaves.length === 1) return leaves[0]!;
  if (carried.length === 1) return carried[0]!;
  throw problem('SWX_BAD_REQUEST', `X509Data carries ${carried.length} certificates and none is recognisably the signer`);
}

/** A wsse:SecurityTokenReference: to a BinarySecurityToken in the message, or to a certificate the caller knows. */
function tokenReference(reference: Element, byId: (id: string) => Element[], known: ParsedCert[]): { cert: ParsedCert; source: ResolvedKey['source'] } {
  const direct = childElement(reference, namespaces.wsse, 'Reference');
  if (direct) {
    const uri = direct.getAttribute('URI') ?? '';
    if (!uri.startsWith('#')) throw problem('SWX_SIG_REF_UNRESOLVED', `token reference ${uri.slice(0, 80)} is not to this message`);
    const targets = byId(uri.slice(1));
    if (targets.length === 0) throw problem('SWX_SIG_REF_UNRESOLVED', `no security token with Id ${uri.slice(1, 81)}`);
    if (targets.length > 1) throw problem('SWX_SIG_WRAPPED', `${targets.length} elements carry Id ${uri.slice(1, 81)}`);
    const token = targets[0]!;
    const valueType = token.getAttribute('ValueType') ?? '';
    // xmldom's getAttribute answers '' for an absent attribute: EncodingType is optional (base64 by default).
    const encoding = token.hasAttribute('EncodingType') ? token.getAttribute('EncodingType') : null;
    if (token.namespaceURI !== namespaces.wsse || token.localName !== 'BinarySecurityToken' || valueType !== `${tokenProfile}#X509v3`
      || (encoding !== null && !encoding.endsWith('#Base64Binary'))) {
      throw problem('SWX_BAD_REQUEST', `the token reference points to a ${token.localName} (${valueType || 'no ValueType'}), not to a base64 X.509 v3 BinarySecurityToken`);
    }
    return { cert: parsedCertificate(base64Of(token), 'the BinarySecurityToken'), source: 'BinarySecurityToken' };
  }
  let selector: Selector | undefined;
  const identifier = childElement(reference, namespaces.wsse, 'KeyIdentifier');
  if (identifier) {
    const valueType = identifier.getAttribute('ValueType') ?? '';
    const value = base64Of(identifier).toString('hex');
    if (valueType === `${tokenProfile}#X509SubjectKeyIdentifier`) selector = { ski: value };
    else if (valueType === `${messageSecurity11}#ThumbprintSHA1`) selector = { sha1: value };
    else throw problem('SWX_BAD_REQUEST', `KeyIdentifier of type ${valueType.slice(0, 120) || '(none)'} is not supported`);
  } else {
    const x509Data = childElement(reference, namespaces.ds, 'X509Data');
    selector = x509Data ? issuerSerial(x509Data) : undefined;
  }
  if (!selector) throw problem('SWX_BAD_REQUEST', 'SecurityTokenReference holds no Reference, KeyIdentifier or X509IssuerSerial');
  const cert = known.find((candidate) => matches(candidate, selector!));
  if (!cert) throw problem('SWX_CERT_UNTRUSTED', 'the SecurityTokenReference names a certificate that was not given (pin it or pass it as untrusted)');
  return { cert, source: 'KeyIdentifier' };
}

/**
 * Whether a wsse:SecurityTokenReference names `cert` (by a BinarySecurityToken of this message, key identifier, or
 * issuer and serial); a reference that cannot be read is a refusal.
 */
export function namesCertificate(reference: Element, byId: (id: string) => Element[], cert: ParsedCert): boolean | KeyRefusal {
  try {
    const named = tokenReference(reference, byId, [cert]);
    return named.cert.thumbprint === cert.thumbprint;
  } catch (error) {
    if (error instanceof KeyInfoProblem) return error.refusal.code === 'SWX_CERT_UNTRUSTED' ? false : error.refusal;
    return { code: 'SWX_BAD_REQUEST', detail: `SecurityTokenReference cannot be read: ${(error as Error).message}` };
  }
}

/** How a SecurityTokenReference names a certificate the other side already holds. */
export type CertificateReference = 'ski' | 'issuer-serial';

/** RFC 4514 text of a node X509Certificate's issuer ("CN=..., O=..."), most specific first. */
function distinguishedName(lines: string): string {
  const escape = (value: string) => value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
  return lines.split('\n').filter(Boolean).reverse().map((line) => {
    const at = line.indexOf('=');
    return `${line.slice(0, at)}=${escape(line.slice(at + 1))}`;
  }).join(',');
}

/**
 * A wsse:SecurityTokenReference naming `cert` by its X509 SubjectKeyIdentifier or by ds:X509IssuerSerial (WS-Security
 * X.509 token profile 1.1, 3.2): for a partner that holds the certificate and wants no BinarySecurityToken.
 */
export function certificateReference(doc: Document, cert: ParsedCert, by: CertificateReference): Element {
  const element = (namespace: string, name: string, text?: string) => {
    const made = doc.createElementNS(namespace, name);
    if (text !== undefined) made.appendChild(doc.createTextNode(text));
    return made;
  };
  const reference = element(namespaces.wsse, 'wsse:SecurityTokenReference');
  if (by === 'ski') {
    if (!cert.subjectKeyId) throw new Error(`certificate ${cert.subject} has no SubjectKeyIdentifier extension: name it by issuer-serial`);
    const identifier = element(namespaces.wsse, 'wsse:KeyIdentifier', Buffer.from(cert.subjectKeyId, 'hex').toString('base64'));
    identifier.setAttribute('EncodingType', 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary');
    identifier.setAttribute('ValueType', `${tokenProfile}#X509SubjectKeyIdentifier`);
    reference.appendChild(identifier);
    return reference;
  }
  const data = element(namespaces.ds, 'ds:X509Data');
  const pair = element(namespaces.ds, 'ds:X509IssuerSerial');
  pair.appendChild(element(namespaces.ds, 'ds:X509IssuerName', distinguishedName(cert.x509.issuer)));
  pair.appendChild(element(namespaces.ds, 'ds:X509SerialNumber', BigInt(`0x${cert.serial}`).toString(10)));
  data.appendChild(pair);
  reference.appendChild(data);
  return reference;
}

function resolve(signature: Element, byId: (id: string) => Element[], sources: KeySources): ResolvedKey {
  const keyInfo = childElement(signature, namespaces.ds, 'KeyInfo');
  const keyName = keyInfo ? childElement(keyInfo, namespaces.ds, 'KeyName')?.textContent?.trim() : undefined;
  const named = keyName ? { keyName } : {};
  const value = keyInfo ? keyValue(keyInfo) : undefined;
  let signer: { cert: ParsedCert; source: ResolvedKey['source'] } | undefined;
  let carried: ParsedCert[] = [];
  const x509Data = keyInfo ? childElements(keyInfo, namespaces.ds, 'X509Data') : [];
  const carriedCerts = x509Data.flatMap((data) => childElements(data, namespaces.ds, 'X509Certificate'));
  if (carriedCerts.length > 0) {
    carried = carriedCerts.map((element, i) => parsedCertificate(base64Of(element), `X509Certificate ${i + 1}`));
    const selector = x509Data.map(issuerSerial).find((found) => found !== undefined);
    signer = { cert: signerAmong(carried, selector), source: 'X509Data' };
  } else {
    const reference = keyInfo ? childElement(keyInfo, namespaces.wsse, 'SecurityTokenReference') : undefined;
    if (reference) {
      signer = tokenReference(reference, byId, sources.known);
      if (signer.source === 'BinarySecurityToken') carried = [signer.cert];
    }
  }
  if (signer) {
    if (value && !value.equals(signer.cert.publicKey)) throw problem('SWX_SIG_KEY_MISMATCH', 'KeyValue and the certificate in KeyInfo hold different keys');
    return { key: signer.cert.publicKey, certificate: signer.cert, carried, ...named, source: signer.source };
  }
  if (value) return { key: value, carried, ...named, source: 'KeyValue' };
  const namedKey = keyName ? sources.namedKeys?.[keyName] : undefined;
  if (namedKey) return { key: namedKey, carried, ...named, source: 'KeyName' };
  if (sources.pinned) return { key: sources.pinned.publicKey, certificate: sources.pinned, carried, ...named, source: 'pinned certificate' };
  if (sources.pinnedKey) return { key: sources.pinnedKey, carried, ...named, source: 'pinned key' };
  throw problem('SWX_CERT_UNTRUSTED', keyName
    ? `KeyInfo names key ${JSON.stringify(keyName.slice(0, 80))}, which was not given`
    : 'the signature carries no certificate or key, and none was given');
}

/** The key a signature is checked with, or why there is none; never throws. */
export function resolveKey(signature: Element, byId: (id: string) => Element[], sources: KeySources): ResolvedKey | KeyRefusal {
  try {
    return resolve(signature, byId, sources);
  } catch (error) {
    if (error instanceof KeyInfoProblem) return error.refusal;
    return { code: 'SWX_BAD_REQUEST', detail: `KeyInfo cannot be read: ${(error as Error).message}` };
  }
}
