// A small test PKI for the trust core: a root CA, an intermediate CA and end-entity certificates with chosen key
// types, validity and key usage (expired, revoked and wrong-usage ones included), made in memory with pkijs.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { authorityKeyId, extension, keyIdentifier, keyUsage, name, time } from '../../engine/pki/asn1.ts';
import { generateKey, type KeyPair } from '../../engine/pki/keys.ts';
import { oid, toArrayBuffer, type KeyUsageName, toPem } from '../../engine/trust/x509.ts';

export type LeafKey = 'rsa' | 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'x25519';

export interface TestCredential {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** The certificate and the intermediate CA's (for leaves), as a sender would present them. */
  chainPem: string;
  /** "O=swx test, CN=..." */
  subject: string;
  /** Lower-case hex. */
  serial: string;
}

export interface LeafOptions {
  key?: LeafKey;
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Default digitalSignature and nonRepudiation. */
  usages?: KeyUsageName[];
  extKeyUsage?: string[];
}

export interface TrustFixture {
  /** When the fixture was made: every credential but `expired` is valid then, so signatures over it are judged at it. */
  issuedAt: Date;
  root: TestCredential;
  intermediate: TestCredential;
  rsa: TestCredential;
  ecdsa: TestCredential;
  ecdsaP384: TestCredential;
  ed25519: TestCredential;
  /** Valid from 2020-01-01 to 2021-01-01. */
  expired: TestCredential;
  /** Listed on `crlPem`. */
  revoked: TestCredential;
  /** keyEncipherment only: not for signing. */
  wrongUsage: TestCredential;
  /** The intermediate's CRL, listing `revoked`. */
  crlPem: string;
  /** Issued by another root, which `root` does not anchor; its chainPem holds that root. */
  stranger: TestCredential;
  issue(options?: LeafOptions): Promise<TestCredential>;
}

const organisation = 'swx test';
const day = 24 * 60 * 60 * 1000;
const generate = promisify(generateKeyPair);

interface Authority {
  cert: pkijs.Certificate;
  key: KeyPair;
  credential: TestCredential;
}

function serialNumber(): asn1js.Integer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return new asn1js.Integer({ valueHex: toArrayBuffer(bytes) });
}

function spki(key: KeyObject): pkijs.PublicKeyInfo {
  return pkijs.PublicKeyInfo.fromBER(toArrayBuffer(key.export({ type: 'spki', format: 'der' })));
}

async function leafKey(kind: LeafKey): Promise<{ publicKey: KeyObject; keyPem: string }> {
  const pair = kind === 'rsa' ? await generate('rsa', { modulusLength: 2048 })
    : kind === 'ed25519' ? await generate('ed25519')
      : kind === 'x25519' ? await generate('x25519')
      : await generate('ec', { namedCurve: kind === 'ecdsa-p384' ? 'P-384' : 'P-256' });
  return { publicKey: pair.publicKey, keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

interface Draft {
  commonName: string;
  publicKey: pkijs.PublicKeyInfo;
  issuer?: Authority;
  signer: KeyPair;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  usages: KeyUsageName[];
  extKeyUsage?: string[];
}

async function certify(draft: Draft): Promise<pkijs.Certificate> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = serialNumber();
  cert.subject = name(organisation, draft.commonName);
  cert.issuer = draft.issuer ? draft.issuer.cert.subject : cert.subject;
  cert.notBefore = time(draft.notBefore);
  cert.notAfter = time(draft.notAfter);
  cert.subjectPublicKeyInfo = draft.publicKey;
  cert.extensions = [
    extension(oid.basicConstraints, true, new pkijs.BasicConstraints(draft.ca ? { cA: true, pathLenConstraint: draft.issuer ? 0 : 1 } : { cA: false })),
    extension(oid.keyUsage, true, keyUsage(draft.usages)),
    extension(oid.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyIdentifier(draft.publicKey) })),
    ...(draft.issuer ? [authorityKeyId(draft.issuer.cert)] : []),
    ...(draft.extKeyUsage ? [extension(oid.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: draft.extKeyUsage }))] : []),
  ];
  await cert.sign(draft.signer.privateKey, 'SHA-256');
  return cert;
}

function credential(cert: pkijs.Certificate, keyPem: string, commonName: string, issuer?: Authority): TestCredential {
  const certPem = toPem(cert.toSchema(true).toBER(false), 'CERTIFICATE');
  return {
    certPem,
    keyPem,
    chainPem: certPem + (issuer?.credential.certPem ?? ''),
    subject: `O=${organisation}, CN=${commonName}`,
    serial: Buffer.from(cert.serialNumber.valueBlock.valueHexView).toString('hex'),
  };
}

async function authority(commonName: string, issuer?: Authority): Promise<Authority> {
  const key = await generateKey('ecdsa');
  const publicKey = spki(createPublicKey(key.pem));
  const cert = await certify({
    // From 2015, so that the expired leaf was once valid through its whole path.
    commonName, publicKey, signer: issuer?.key ?? key, notBefore: new Date('2015-01-01T00:00:00Z'), notAfter: new Date(Date.now() + 3650 * day), ca: true, usages: ['keyCertSign', 'cRLSign'],
    ...(issuer ? { issuer } : {}),
  });
  return { cert, key, credential: credential(cert, key.pem, commonName, issuer) };
}

async function leaf(issuer: Authority, options: LeafOptions = {}): Promise<TestCredential> {
  const { publicKey, keyPem } = await leafKey(options.key ?? 'ecdsa-p256');
  const commonName = options.commonName ?? `${options.key ?? 'ecdsa-p256'} signer`;
  const now = Date.now();
  const cert = await certify({
    commonName,
    publicKey: spki(publicKey),
    issuer,
    signer: issuer.key,
    notBefore: options.notBefore ?? new Date(now - day),
    notAfter: options.notAfter ?? new Date(now + 365 * day),
    ca: false,
    usages: options.usages ?? ['digitalSignature', 'nonRepudiation'],
    ...(options.extKeyUsage ? { extKeyUsage: options.extKeyUsage } : {}),
  });
  return credential(cert, keyPem, commonName, issuer);
}

async function revocationList(issuer: Authority, serials: string[]): Promise<string> {
  const now = Date.now();
  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    issuer: issuer.cert.subject,
    thisUpdate: time(new Date(now - day)),
    nextUpdate: time(new Date(now + 30 * day)),
    revokedCertificates: serials.map((serial) => new pkijs.RevokedCertificate({
      userCertificate: new asn1js.Integer({ valueHex: toArrayBuffer(Buffer.from(serial, 'hex')) }),
      revocationDate: time(new Date(now - day / 2)),
    })),
    crlExtensions: new pkijs.Extensions({ extensions: [authorityKeyId(issuer.cert), extension(oid.crlNumber, false, new asn1js.Integer({ value: 1 }))] }),
  });
  await crl.sign(issuer.key.privateKey, 'SHA-256');
  return toPem(crl.toSchema().toBER(false), 'X509 CRL');
}

async function build(): Promise<TrustFixture> {
  const issuedAt = new Date();
  const root = await authority('Test Root CA');
  const intermediate = await authority('Test Issuing CA', root);
  const strangerRoot = await authority('Stranger Root CA');
  const [rsa, ecdsa, ecdsaP384, ed25519, expired, revoked, wrongUsage, stranger] = await Promise.all([
    leaf(intermediate, { key: 'rsa' }),
    leaf(intermediate, { key: 'ecdsa-p256' }),
    leaf(intermediate, { key: 'ecdsa-p384' }),
    leaf(intermediate, { key: 'ed25519' }),
    leaf(intermediate, { commonName: 'expired signer', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z') }),
    leaf(intermediate, { commonName: 'revoked signer' }),
    leaf(intermediate, { commonName: 'encryption only', usages: ['keyEncipherment'] }),
    leaf(strangerRoot, { commonName: 'stranger signer' }),
  ]);
  return {
    issuedAt,
    root: root.credential,
    intermediate: intermediate.credential,
    rsa, ecdsa, ecdsaP384, ed25519, expired, revoked, wrongUsage,
    crlPem: await revocationList(intermediate, [revoked.serial]),
    stranger,
    issue: (options) => leaf(intermediate, options),
  };
}

let made: Promise<TrustFixture> | undefined;

/** The fixture, made once per process. */
export function trustFixture(): Promise<TrustFixture> {
  made ??= build();
  return made;
}
