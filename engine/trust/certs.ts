// Parsed certificates, each parsed once: the node X509Certificate, its KeyObject and the extension facts that
// validation reads (key usage, EKU, CA constraints, CRL and OCSP locations), in a bounded LRU keyed by DER thumbprint.
// Parsing a PEM on every verify is ~7x slower than reusing its KeyObject (field notes).
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { SwxError } from '../errors.ts';
import { keyUsageBit, oid, toArrayBuffer, type KeyUsageName, normaliseSerial, pemBlocks } from './x509.ts';

export interface ParsedCert {
  der: Buffer;
  x509: X509Certificate;
  publicKey: KeyObject;
  /** base64url SHA-256 of the DER: the id certificates are registered and cached under. */
  thumbprint: string;
  /** "O=swx demo, CN=CUSTOMS" */
  subject: string;
  issuer: string;
  /** Lower-case hex without leading zero bytes, as normaliseSerial gives it. */
  serial: string;
  notBefore: number;
  notAfter: number;
  /** basicConstraints cA. */
  ca: boolean;
  pathLen?: number;
  /** undefined when the certificate has no keyUsage extension (then any usage is allowed). */
  keyUsage?: ReadonlySet<KeyUsageName | 'other'>;
  /** Extended key usage OIDs; undefined when absent (then any purpose is allowed). */
  extKeyUsage?: readonly string[];
  extKeyUsageCritical: boolean;
  subjectKeyId?: string;
  authorityKeyId?: string;
  /** http(s) URLs of the CRL distribution points. */
  crlUrls: readonly string[];
  /** http URLs of the OCSP responders named in authorityInfoAccess. */
  ocspUrls: readonly string[];
  /** Critical extensions this validator does not process: such a certificate must be refused (RFC 5280 4.2). */
  unknownCritical: readonly string[];
}

/** Extensions whose meaning is checked here or that carry no constraint a validator must enforce. */
const understood = new Set<string>([
  oid.basicConstraints, oid.keyUsage, oid.extKeyUsage, oid.subjectAltName, oid.subjectKeyIdentifier, oid.authorityKeyIdentifier,
  oid.crlDistributionPoints, oid.authorityInfoAccess, oid.certificatePolicies, oid.issuerAltName,
]);

const usageNames = Object.entries(keyUsageBit) as [KeyUsageName, number][];

function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
}

function keyUsageOf(ext: pkijs.Extension): Set<KeyUsageName | 'other'> {
  const parsed = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView).result;
  if (!(parsed instanceof asn1js.BitString)) throw new Error('keyUsage is not a BIT STRING');
  const bytes = parsed.valueBlock.valueHexView;
  const set = new Set<KeyUsageName | 'other'>();
  const bit = (n: number) => ((bytes[n >> 3] ?? 0) & (0x80 >> (n & 7))) !== 0;
  for (const [name, n] of usageNames) if (bit(n)) set.add(name);
  // dataEncipherment, encipherOnly, decipherOnly: present but not named here.
  for (const n of [3, 7, 8]) if (bit(n)) set.add('other');
  return set;
}

function uris(names: pkijs.GeneralName[] | undefined): string[] {
  // GeneralName type 6 is a uniformResourceIdentifier.
  return (names ?? []).filter((name) => name.type === 6 && typeof name.value === 'string').map((name) => name.value as string);
}

function extensionFacts(der: Buffer): Pick<ParsedCert, 'ca' | 'pathLen' | 'keyUsage' | 'extKeyUsage' | 'extKeyUsageCritical' | 'subjectKeyId' | 'authorityKeyId' | 'crlUrls' | 'ocspUrls' | 'unknownCritical'> {
  const cert = pkijs.Certificate.fromBER(toArrayBuffer(der));
  const facts: ReturnType<typeof extensionFacts> = { ca: false, extKeyUsageCritical: false, crlUrls: [], ocspUrls: [], unknownCritical: [] };
  const seen = new Set<string>();
  for (const ext of cert.extensions ?? []) {
    // RFC 5280 4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(ext.extnID)) throw new Error(`extension ${ext.extnID} appears twice`);
    seen.add(ext.extnID);
    const value = ext.parsedValue as unknown;
    switch (ext.extnID) {
      case oid.basicConstraints:
        if (!(value instanceof pkijs.BasicConstraints)) throw new Error('basicConstraints cannot be read');
        facts.ca = value.cA === true;
        if (value.pathLenConstraint !== undefined) {
          facts.pathLen = typeof value.pathLenConstraint === 'number' ? value.pathLenConstraint : value.pathLenConstraint.valueBlock.valueDec;
        }
        break;
      case oid.keyUsage:
        facts.keyUsage = keyUsageOf(ext);
        break;
      case oid.extKeyUsage:
        if (!(value instanceof pkijs.ExtKeyUsage)) throw new Error('extendedKeyUsage cannot be read');
        facts.extKeyUsage = value.keyPurposes;
        facts.extKeyUsageCritical = ext.critical;
        break;
      case oid.subjectKeyIdentifier: {
        const parsed = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView).result;
        if (parsed instanceof asn1js.OctetString) facts.subjectKeyId = hex(parsed.valueBlock.valueHexView);
        break;
      }
      case oid.authorityKeyIdentifier:
        if (value instanceof pkijs.AuthorityKeyIdentifier && value.keyIdentifier) facts.authorityKeyId = hex(value.keyIdentifier.valueBlock.valueHexView);
        break;
      case oid.crlDistributionPoints:
        if (value instanceof pkijs.CRLDistributionPoints) {
          facts.crlUrls = value.distributionPoints.flatMap((point) =>
            Array.isArray(point.distributionPoint) ? uris(point.distributionPoint) : []).filter((url) => /^https?:\/\//i.test(url));
        }
        break;
      case oid.authorityInfoAccess:
        if (value instanceof pkijs.InfoAccess) {
          facts.ocspUrls = value.accessDescriptions
            .filter((description) => description.accessMethod === oid.ocsp)
            .flatMap((description) => uris([description.accessLocation])).filter((url) => /^http:\/\//i.test(url));
        }
        break;
    }
    if (ext.critical && !understood.has(ext.extnID)) facts.unknownCritical = [...facts.unknownCritical, ext.extnID];
  }
  return facts;
}

function parse(der: Buffer, thumbprint: string): ParsedCert {
  try {
    const x509 = new X509Certificate(der);
    return {
      der,
      x509,
      publicKey: x509.publicKey,
      thumbprint,
      subject: x509.subject.split('\n').join(', '),
      issuer: x509.issuer.split('\n').join(', '),
      serial: normaliseSerial(x509.serialNumber),
      notBefore: Date.parse(x509.validFrom),
      notAfter: Date.parse(x509.validTo),
      ...extensionFacts(der),
    };
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `not a readable X.509 certificate: ${(error as Error).message}`, { cause: error });
  }
}

const capacity = 4096;
const cache = new Map<string, ParsedCert>();

function derOf(input: string | Uint8Array | X509Certificate): Buffer {
  if (input instanceof X509Certificate) return input.raw;
  if (typeof input !== 'string') return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const first = pemBlocks(input, 'CERTIFICATE')[0];
  if (!first) throw new SwxError('SWX_BAD_REQUEST', 'the text holds no PEM CERTIFICATE block');
  return first;
}

/**
 * The parsed certificate for PEM text (its first certificate), DER bytes or a node X509Certificate; parsed on first
 * sight, then served from the cache. Throws SWX_BAD_REQUEST for bytes that are not a certificate.
 */
export function certificate(input: string | Uint8Array | X509Certificate): ParsedCert {
  const der = derOf(input);
  const print = createHash('sha256').update(der).digest('base64url');
  const hit = cache.get(print);
  if (hit) {
    // Re-inserted so the map's order is least recently used first.
    cache.delete(print);
    cache.set(print, hit);
    return hit;
  }
  const parsed = parse(Buffer.from(der), print);
  cache.set(print, parsed);
  if (cache.size > capacity) cache.delete(cache.keys().next().value!);
  return parsed;
}

/** Every certificate in a PEM text, parsed (cached). */
export function certificates(pem: string): ParsedCert[] {
  return pemBlocks(pem, 'CERTIFICATE').map((der) => certificate(der));
}
