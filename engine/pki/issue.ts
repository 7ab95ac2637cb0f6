// Certificate profiles and issuing: what each certificate of the deployment PKI may be used for, and putting it on disk.
// Existing keys and certificates are always kept; only what is missing is made.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate as NodeCertificate } from 'node:crypto';
import { SwxError } from '../errors.ts';
import { altNames, authorityKeyId, crlDistributionPoint, extension, keyIdentifier, keyUsage, name, parseCertificate, time } from './asn1.ts';
import { generateKey, importKey, type KeyAlg, type KeyPair } from './keys.ts';
import { layout, readIfExists, thumbprint, writeOnce, writeReplace, type Credential } from './store.ts';
import { oid, toArrayBuffer, type KeyUsageName, pemBlocks, toPem } from '../trust/x509.ts';

export type Profile = 'ca' | 'hub-sign' | 'hub-tls' | 'hub-enc' | 'tsa' | 'agency' | 'signing' | 'tls-client' | 'tls-server';

export const organisation = 'swx demo';
export const defaultHosts = ['localhost', '127.0.0.1', '::1'];
const day = 24 * 60 * 60 * 1000;
/** Backdating tolerates a peer whose clock runs a little slow. */
const backdate = 5 * 60 * 1000;

interface LeafProfile {
  usages: KeyUsageName[];
  /** TLS-capable: gets subjectAltNames, and keyEncipherment for RSA keys (TLS 1.2 RSA key transport). */
  tls: boolean;
  eku: string[];
  ekuCritical: boolean;
}

// emailProtection is what `openssl cms -verify` (S/MIME signing purpose) demands once an EKU is present,
// so signatures made with these certificates check with stock tools without `-purpose any`.
const leafProfiles: Record<Exclude<Profile, 'ca'>, LeafProfile> = {
  'hub-sign': { usages: ['digitalSignature', 'nonRepudiation'], tls: false, eku: [oid.emailProtection], ekuCritical: false },
  // The X25519 key partners encrypt to under eDelivery AS4 2.0 (key agreement only; no extended usage applies).
  'hub-enc': { usages: ['keyAgreement'], tls: false, eku: [], ekuCritical: false },
  // clientAuth too: the hub presents this certificate when it delivers to an agency's TLS receiver.
  'hub-tls': { usages: ['digitalSignature'], tls: true, eku: [oid.serverAuth, oid.clientAuth], ekuCritical: false },
  // RFC 3161 2.3: exactly one EKU, id-kp-timeStamping, critical.
  tsa: { usages: ['digitalSignature', 'nonRepudiation'], tls: false, eku: [oid.timeStamping], ekuCritical: true },
  agency: { usages: ['digitalSignature'], tls: true, eku: [oid.clientAuth, oid.serverAuth, oid.emailProtection], ekuCritical: false },
  // Single-purpose certificates, for agencies that keep signing and TLS keys apart.
  signing: { usages: ['digitalSignature', 'nonRepudiation'], tls: false, eku: [oid.emailProtection], ekuCritical: false },
  'tls-client': { usages: ['digitalSignature'], tls: false, eku: [oid.clientAuth], ekuCritical: false },
  'tls-server': { usages: ['digitalSignature'], tls: true, eku: [oid.serverAuth], ekuCritical: false },
};

/** Profiles `swx pki issue` makes, and what each is for. */
export const issuableProfiles = {
  agency: 'signing, TLS client and TLS receiver (the default)',
  signing: 'message signing only (digitalSignature, nonRepudiation)',
  'tls-client': 'TLS client authentication only',
  'tls-server': 'TLS server only (subjectAltName: --hosts plus localhost)',
  tsa: 'RFC 3161 time-stamping (timeStamping, critical)',
} as const;
export type IssuableProfile = keyof typeof issuableProfiles;

/** The CA as an issuer: its parsed certificate, signing key and files. */
export interface Authority {
  cert: pkijs.Certificate;
  key: KeyPair;
  credential: Credential;
}

/** A credential on disk plus what the summary needs to know about it. */
export interface Issued {
  credential: Credential;
  alg: LeafAlg;
  created: boolean;
}

export interface LeafSpec {
  folder: string;
  profile: Exclude<Profile, 'ca'>;
  commonName: string;
  alg: LeafAlg;
  /** Used only when the certificate is made now. */
  validityDays: number;
  notBefore?: Date;
  notAfter?: Date;
  hosts?: string[];
  /** CRL distribution point written into the certificate (the hub serves its CA's CRL there). */
  crlUrl?: string;
}

interface Draft {
  subject: pkijs.RelativeDistinguishedNames;
  issuer: pkijs.RelativeDistinguishedNames;
  notBefore: Date;
  notAfter: Date;
  publicKey: Pick<KeyPair, 'pem'>;
  signer: KeyPair;
  extensions: pkijs.Extension[];
}

/** 16 random bytes, top bit clear so the INTEGER is positive, next bit set so DER keeps all 16 bytes. */
function serialNumber(): asn1js.Integer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return new asn1js.Integer({ valueHex: toArrayBuffer(bytes) });
}

function publicKeyInfo(key: Pick<KeyPair, 'pem'>): pkijs.PublicKeyInfo {
  const spki = createPublicKey(createPrivateKey(key.pem)).export({ type: 'spki', format: 'der' });
  return pkijs.PublicKeyInfo.fromBER(toArrayBuffer(spki));
}

async function sign(draft: Draft): Promise<string> {
  const cert = new pkijs.Certificate();
  cert.version = 2; // v3
  cert.serialNumber = serialNumber();
  cert.issuer = draft.issuer;
  cert.subject = draft.subject;
  cert.notBefore = time(draft.notBefore);
  cert.notAfter = time(draft.notAfter);
  cert.subjectPublicKeyInfo = publicKeyInfo(draft.publicKey);
  cert.extensions = draft.extensions;
  await cert.sign(draft.signer.privateKey, 'SHA-256');
  return toPem(cert.toSchema(true).toBER(false), 'CERTIFICATE');
}

async function ensureKey(keyPath: string, alg: KeyAlg): Promise<KeyPair> {
  const existing = await readIfExists(keyPath);
  if (existing) return importKey(existing, keyPath);
  const fresh = await generateKey(alg);
  const written = await writeOnce(keyPath, fresh.pem, 0o600);
  // Another process may have written its key first; theirs wins, and we certify that one.
  return written.created ? fresh : importKey(written.text, keyPath);
}

async function ensureCert(certPath: string, make: () => Promise<string>): Promise<{ pem: string; created: boolean }> {
  const existing = await readIfExists(certPath);
  if (existing) return { pem: existing, created: false };
  const written = await writeOnce(certPath, await make(), 0o644);
  return { pem: written.text, created: written.created };
}

function assertPair(certPem: string, key: Pick<KeyPair, 'pem'>, certPath: string, keyPath: string): void {
  if (!new NodeCertificate(certPem).checkPrivateKey(createPrivateKey(key.pem))) {
    throw new SwxError('SWX_INTERNAL', `key ${keyPath} does not belong to certificate ${certPath}; delete the folder to re-issue both, or restore the matching key`);
  }
}

function assertIssuedBy(certPem: string, ca: Authority, certPath: string): void {
  const cert = new NodeCertificate(certPem);
  const caCert = new NodeCertificate(ca.credential.certPem);
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
    throw new SwxError(
      'SWX_INTERNAL',
      `${certPath} was not issued by the CA in ${ca.credential.certPath}; delete its folder to re-issue it, or restore the CA that issued it`,
    );
  }
}

/** chain.pem is derived: kept while it starts with this certificate (it may hold a longer imported chain), rewritten otherwise. */
async function ensureChain(folder: string, certPem: string, chainPem: string): Promise<string> {
  const path = layout.chain(folder);
  const existing = await readIfExists(path);
  const leaf = existing ? pemBlocks(existing, 'CERTIFICATE')[0] : undefined;
  if (existing && leaf && thumbprint(leaf) === thumbprint(certPem)) return existing;
  await writeReplace(path, chainPem, 0o644);
  return chainPem;
}

/** Keeps or makes the self-signed root CA in <dir>/ca. */
export async function ensureCa(dir: string, alg: KeyAlg, commonName: string, validityDays: number): Promise<Authority & { created: boolean }> {
  const folder = layout.folder(dir, 'ca');
  const certPath = layout.cert(folder);
  const keyPath = layout.key(folder);
  const key = await ensureKey(keyPath, alg);
  const { pem: certPem, created } = await ensureCert(certPath, async () => {
    const now = Date.now();
    const subject = name(organisation, commonName);
    return sign({
      subject,
      issuer: subject,
      notBefore: new Date(now - backdate),
      notAfter: new Date(now + validityDays * day),
      publicKey: key,
      signer: key,
      extensions: [
        extension(oid.basicConstraints, true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
        extension(oid.keyUsage, true, keyUsage(['keyCertSign', 'cRLSign'])),
        extension(oid.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyIdentifier(publicKeyInfo(key)) })),
      ],
    });
  });
  assertPair(certPem, key, certPath, keyPath);
  await ensureChain(folder, certPem, certPem);
  const credential: Credential = { certPem, keyPem: key.pem, chainPem: certPem, thumbprint: thumbprint(certPem), certPath, keyPath };
  return { cert: parseCertificate(pemBlocks(certPem, 'CERTIFICATE')[0]!), key, credential, created };
}

/** Reads the CA of an existing PKI, for issuing or re-signing the CRL later. */
export async function loadAuthority(dir: string): Promise<Authority> {
  const folder = layout.folder(dir, 'ca');
  const certPath = layout.cert(folder);
  const keyPath = layout.key(folder);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (!certPem || !keyPem) {
    throw new SwxError('SWX_INTERNAL', `no CA in ${folder} (cert.pem and key.pem needed); run \`swx pki init\` first`);
  }
  const key = await importKey(keyPem, keyPath);
  assertPair(certPem, key, certPath, keyPath);
  const credential: Credential = { certPem, keyPem, chainPem: certPem, thumbprint: thumbprint(certPem), certPath, keyPath };
  return { cert: parseCertificate(pemBlocks(certPem, 'CERTIFICATE')[0]!), key, credential };
}

/**
 * A leaf's key type: the CA's kinds, and the Edwards-curve keys a leaf may hold but the PKI never signs with — an
 * Ed25519 hub signing key (eDelivery AS4 2.0 signs with it) and the hub's X25519 key for key agreement.
 */
export type LeafAlg = KeyAlg | 'ed25519' | 'x25519';

/** A leaf's key, kept if on disk (of whatever type it is), else made: only the CA's key needs to sign certificates. */
async function ensureLeafKey(keyPath: string, alg: LeafAlg): Promise<{ alg: LeafAlg; pem: string }> {
  const existing = await readIfExists(keyPath);
  if (existing) {
    let type: string | undefined;
    try {
      type = createPrivateKey(existing).asymmetricKeyType;
    } catch (error) {
      throw new SwxError('SWX_INTERNAL', `${keyPath} is not a readable PEM private key: ${(error as Error).message}`, { cause: error });
    }
    if (type === 'ed25519' || type === 'x25519') return { alg: type, pem: existing };
    return importKey(existing, keyPath);
  }
  if (alg !== 'ed25519' && alg !== 'x25519') return ensureKey(keyPath, alg);
  const pem = generateKeyPairSync(alg as 'x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const written = await writeOnce(keyPath, pem, 0o600);
  return { alg, pem: written.text };
}

/** Keeps or makes one end-entity credential (key, certificate, chain) issued by the CA. */
export async function ensureLeaf(ca: Authority, spec: LeafSpec): Promise<Issued> {
  const certPath = layout.cert(spec.folder);
  const keyPath = layout.key(spec.folder);
  const key = await ensureLeafKey(keyPath, spec.alg);
  const { pem: certPem, created } = await ensureCert(certPath, async () => {
    const profile = leafProfiles[spec.profile];
    const now = Date.now();
    const caNotAfter = ca.cert.notAfter.value.getTime();
    // An RSA hub signing key is also what partners encrypt to under eDelivery AS4 1.x (RSA-OAEP key transport).
    const usages: KeyUsageName[] = (profile.tls || spec.profile === 'hub-sign') && key.alg === 'rsa' ? [...profile.usages, 'keyEncipherment'] : profile.usages;
    const extensions = [
      extension(oid.basicConstraints, true, new pkijs.BasicConstraints({ cA: false })),
      extension(oid.keyUsage, true, keyUsage(usages)),
      ...(profile.eku.length ? [extension(oid.extKeyUsage, profile.ekuCritical, new pkijs.ExtKeyUsage({ keyPurposes: profile.eku }))] : []),
      extension(oid.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyIdentifier(publicKeyInfo(key)) })),
      authorityKeyId(ca.cert),
    ];
    if (profile.tls) extensions.push(extension(oid.subjectAltName, false, altNames([...(spec.hosts ?? []), ...defaultHosts])));
    if (spec.crlUrl) extensions.push(extension(oid.crlDistributionPoints, false, crlDistributionPoint(spec.crlUrl)));
    return sign({
      subject: name(organisation, spec.commonName),
      issuer: ca.cert.subject,
      notBefore: spec.notBefore ?? new Date(now - backdate),
      // A default validity never outlives the CA; explicit dates are taken as given (tests make expired certificates).
      notAfter: spec.notAfter ?? new Date(Math.min(now + spec.validityDays * day, caNotAfter)),
      publicKey: key,
      signer: ca.key,
      extensions,
    });
  });
  assertPair(certPem, key, certPath, keyPath);
  assertIssuedBy(certPem, ca, certPath);
  const chainPem = await ensureChain(spec.folder, certPem, certPem + ca.credential.certPem);
  const credential: Credential = { certPem, keyPem: key.pem, chainPem, thumbprint: thumbprint(certPem), certPath, keyPath };
  return { credential, alg: key.alg, created };
}
