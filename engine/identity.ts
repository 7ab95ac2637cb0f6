// The hub's one identity towards agencies: the key and certificate it signs with in every protocol (RFC 9421
// replies and deliveries, WS-Security, CMS), and the TLS credential it serves and calls with.
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
}

export function hubIdentity(pki: { ca: Pick<Credential, 'certPem'>; hubSign: Credential; hubTls: Credential }): HubIdentity {
  const alg = algorithmFor(new X509Certificate(pki.hubSign.certPem).publicKey);
  if (!alg) throw new Error('the hub signing certificate has an unsupported key type');
  return {
    tls: { key: pki.hubTls.keyPem, cert: pki.hubTls.certPem, ca: [pki.ca.certPem] },
    signing: { key: createPrivateKey(pki.hubSign.keyPem), keyPem: pki.hubSign.keyPem, certPem: pki.hubSign.certPem, keyId: pki.hubSign.thumbprint, alg },
  };
}
