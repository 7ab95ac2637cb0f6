// ASN.1 building blocks for certificates and CRLs (names, times, extensions), on pkijs + asn1js.
// pkijs, not @peculiar/x509: the latter needs a global Reflect metadata polyfill that is not installed.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { keyUsageBit, oid, toArrayBuffer, type KeyUsageName } from '../trust/x509.ts';

/** A distinguished name, most general attribute first, one attribute per RDN: O=..., CN=... */
export function name(organisation: string, commonName: string): pkijs.RelativeDistinguishedNames {
  // pkijs would put every attribute into one multi-valued RDN ("O=a + CN=b"), so the DER is built here and parsed back.
  const rdn = (type: string, value: string) =>
    new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) }).toSchema()] });
  const der = new asn1js.Sequence({ value: [rdn(oid.organisation, organisation), rdn(oid.commonName, commonName)] }).toBER(false);
  return pkijs.RelativeDistinguishedNames.fromBER(der);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(value: Date): pkijs.Time {
  const type = value.getUTCFullYear() < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime;
  return new pkijs.Time({ type, value });
}

export function extension(extnID: string, critical: boolean, value: asn1js.BaseBlock | { toSchema(): asn1js.BaseBlock }): pkijs.Extension {
  const block = 'toSchema' in value ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: block.toBER(false) });
}

/** DER named BIT STRING: trailing zero bits are dropped, as X.690 11.2.2 requires. */
export function keyUsage(usages: KeyUsageName[]): asn1js.BitString {
  let bits = 0;
  for (const usage of usages) bits |= 0x80 >> keyUsageBit[usage];
  let unusedBits = 0;
  while (unusedBits < 7 && !(bits & (1 << unusedBits))) unusedBits += 1;
  return new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer, unusedBits });
}

function ipBytes(address: string): Uint8Array {
  if (isIP(address) === 4) return new Uint8Array(address.split('.').map(Number));
  // IPv6: expand "::" and a trailing dotted IPv4 part into 8 groups of 16 bits.
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

/** subjectAltName with a dNSName or iPAddress per host. */
export function altNames(hosts: string[]): pkijs.GeneralNames {
  return new pkijs.GeneralNames({
    names: [...new Set(hosts)].map((host) =>
      isIP(host)
        ? new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: toArrayBuffer(ipBytes(host)) }) })
        : new pkijs.GeneralName({ type: 2, value: host }),
    ),
  });
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: pkijs.PublicKeyInfo): ArrayBuffer {
  return toArrayBuffer(createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest());
}

/** The key identifier a certificate carries for itself, or one computed from its key if it has none. */
export function subjectKeyId(cert: pkijs.Certificate): ArrayBuffer {
  const ski = cert.extensions?.find((ext) => ext.extnID === oid.subjectKeyIdentifier);
  const parsed = ski ? asn1js.fromBER(ski.extnValue.valueBlock.valueHexView) : undefined;
  if (parsed && parsed.result instanceof asn1js.OctetString) return toArrayBuffer(parsed.result.valueBlock.valueHexView);
  return keyIdentifier(cert.subjectPublicKeyInfo);
}

export function authorityKeyId(issuer: pkijs.Certificate): pkijs.Extension {
  const keyId = new asn1js.OctetString({ valueHex: subjectKeyId(issuer) });
  return extension(oid.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: keyId }));
}

/** cRLDistributionPoints with one full-name URI. */
export function crlDistributionPoint(url: string): pkijs.CRLDistributionPoints {
  return new pkijs.CRLDistributionPoints({
    distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: url })] })],
  });
}

export function parseCertificate(der: Uint8Array): pkijs.Certificate {
  return pkijs.Certificate.fromBER(toArrayBuffer(der));
}
