// The hub's one identity towards agencies: the key and certificate it signs with in every protocol (RFC 9421
// replies and deliveries, WS-Security, CMS), the TLS credential it serves and calls with, and the keys partners
// encrypt to (XML Encryption): the signing key itself when it is RSA (RSA-OAEP), and an X25519 key beside it.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { algorithmFor, type SigAlg } from './httpsig.ts';
import type { Credential } from './pki/store.ts';

export interface HubIdentity {
  /** The hub's TLS credential and the CAs its peers chain to. */
  tls: { key: string; cert: string; ca: string[] };
  signing: {
    key: KeyObject;
    keyPem: string;
    certPem: string;
    /** The signing certificate's thumbprint: the keyid of the hub's HTTP message signatures. */
    keyId: string;
    alg: SigAlg;
  };
  /** What partners encrypt to, by key type: `rsa` is the signing credential when its key is RSA. */
  encryption: { rsa?: { keyPem: string; certPem: string }; x25519?: { keyPem: string; certPem: string } };
}

export function hubIdentity(pki: { ca: Pick<Credential, 'certPem'>; hubSign: Credential; hubTls: Credential; hubEnc?: Credential }): HubIdentity {
  const alg = algorithmFor(new X509Certificate(pki.hubSign.certPem).publicKey);
  if (!alg) throw new Error('the hub signing certificate has an unsupported key type');
  const key = createPrivateKey(pki.hubSign.keyPem);
  const pair = (credential: Credential) => ({ keyPem: credential.keyPem, certPem: credential.certPem });
  return {
    encryption: { ...(key.asymmetricKeyType === 'rsa' ? { rsa: pair(pki.hubSign) } : {}), ...(pki.hubEnc ? { x25519: pair(pki.hubEnc) } : {}) },
    tls: { key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: [pki.ca.certPem] },
    signing: { key, keyPem: pki.hubSign.keyPem, certPem: pki.hubSign.certPem, keyId: pki.hubSign.thumbprint, alg },
  };
}
