// Key pairs for the deployment PKI: ECDSA P-256 by default, RSA-2048 on request, kept on disk as PKCS#8 PEM.
import { createPrivateKey } from 'node:crypto';
import { SwxError } from '../errors.ts';
import { toPem } from '../trust/x509.ts';

export type KeyAlg = 'ecdsa' | 'rsa';

export const keyAlgs: readonly KeyAlg[] = ['ecdsa', 'rsa'];

export interface KeyPair {
  alg: KeyAlg;
  /** Non-extractable WebCrypto key that signs certificates and CRLs. */
  privateKey: CryptoKey;
  /** PKCS#8 PEM of the private key. */
  pem: string;
}

const subtle = globalThis.crypto.subtle;

const generateParams: Record<KeyAlg, EcKeyGenParams | RsaHashedKeyGenParams> = {
  ecdsa: { name: 'ECDSA', namedCurve: 'P-256' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
};

const importParams: Record<KeyAlg, EcKeyImportParams | RsaHashedImportParams> = {
  ecdsa: { name: 'ECDSA', namedCurve: 'P-256' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
};

export function assertKeyAlg(alg: unknown): asserts alg is KeyAlg {
  if (!keyAlgs.includes(alg as KeyAlg)) {
    throw new SwxError('SWX_BAD_REQUEST', `key algorithm ${JSON.stringify(alg)} is not supported: use 'ecdsa' (P-256) or 'rsa' (2048 bits)`);
  }
}

export async function generateKey(alg: KeyAlg): Promise<KeyPair> {
  // Runs in libuv's thread pool, so even RSA generation leaves the event loop free.
  const pair = (await subtle.generateKey(generateParams[alg], true, ['sign', 'verify'])) as CryptoKeyPair;
  const pem = toPem(await subtle.exportKey('pkcs8', pair.privateKey), 'PRIVATE KEY');
  // Re-imported so the key held in memory for signing cannot be exported again.
  return importKey(pem, `new ${alg} key`);
}

/** Reads a PEM private key (PKCS#8, or the older SEC1/PKCS#1 forms of an imported key) as a signing key pair. */
export async function importKey(pem: string, source: string): Promise<KeyPair> {
  let key;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new SwxError('SWX_INTERNAL', `${source} is not a readable PEM private key: ${(error as Error).message}`, { cause: error });
  }
  let alg: KeyAlg;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') alg = 'ecdsa';
  else if (key.asymmetricKeyType === 'rsa') alg = 'rsa';
  else {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    throw new SwxError('SWX_INTERNAL', `${source} is a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; the PKI signs with ECDSA P-256 or RSA keys only`);
  }
  const pkcs8 = new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));
  const privateKey = await subtle.importKey('pkcs8', pkcs8, importParams[alg], false, ['sign']);
  return { alg, privateKey, pem };
}
