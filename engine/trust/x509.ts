// The X.509 vocabulary that reading certificates and CRLs (engine/trust) and issuing them (engine/pki) share: PEM,
// object identifiers, key-usage bits, serial numbers, revocation reasons. Issuing builds on reading, never the reverse.
import { SwxError } from '../errors.ts';

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** The DER of every PEM block labelled `label`, in order. */
export function pemBlocks(pem: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const match of pem.matchAll(pemBlock)) {
    if (match[1] === label) out.push(Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

/** `der` as one PEM block labelled `label`, 64 characters a line. */
export function toPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

export const oid = {
  organisation: '2.5.4.10',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  issuerAltName: '2.5.29.18',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocsp: '1.3.6.1.5.5.7.48.1',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
} as const;

/** RFC 5280 KeyUsage bit positions. */
export const keyUsageBit = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export type KeyUsageName = keyof typeof keyUsageBit;

export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** RFC 5280 5.3.1 CRLReason codes (7 is unused). */
export const revocationReasons = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReason = keyof typeof revocationReasons;

/** Serial numbers compare as integers: case, colons and leading zero bytes do not matter. */
export function normaliseSerial(serialHex: string): string {
  const hex = typeof serialHex === 'string' ? serialHex.replace(/[:\s]/g, '').toLowerCase() : '';
  if (!/^[0-9a-f]{1,40}$/.test(hex)) {
    throw new SwxError('SWX_BAD_REQUEST', `serial ${JSON.stringify(serialHex)} is not a hexadecimal certificate serial number (as \`openssl x509 -serial\` prints it)`);
  }
  const trimmed = hex.replace(/^0+/, '') || '0';
  return trimmed.length % 2 ? `0${trimmed}` : trimmed;
}
