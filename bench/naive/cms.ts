// The naive CMS path: pkijs used the way its documentation shows (parse with fromBER, SignedData.sign / verify with
// WebCrypto keys), for the crypto bench to measure swx's own path against. Not used by the hub.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const oids = { data: '1.2.840.113549.1.7.1', signedData: '1.2.840.113549.1.7.2', contentType: '1.2.840.113549.1.9.3', messageDigest: '1.2.840.113549.1.9.4' };

const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
const arrayBuffer = (bytes: Uint8Array) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/** The key and certificate as pkijs wants them; imported once, as an application would. */
export async function naiveSigner(certPem: string, keyPem: string): Promise<{ cert: pkijs.Certificate; key: CryptoKey }> {
  const cert = pkijs.Certificate.fromBER(arrayBuffer(der(certPem)));
  const ec = cert.subjectPublicKeyInfo.algorithm.algorithmId === '1.2.840.10045.2.1';
  const algorithm = ec ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const key = await crypto.subtle.importKey('pkcs8', der(keyPem), algorithm, false, ['sign']);
  return { cert, key };
}

/** Attached SignedData with contentType and messageDigest signed attributes, as in pkijs' CMS signing example. */
export async function naiveSignCms(data: Buffer, signer: { cert: pkijs.Certificate; key: CryptoKey }): Promise<Buffer> {
  const digest = await crypto.subtle.digest('SHA-256', new Uint8Array(data));
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: oids.data }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.cert.issuer, serialNumber: signer.cert.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({
          type: 0,
          attributes: [
            new pkijs.Attribute({ type: oids.contentType, values: [new asn1js.ObjectIdentifier({ value: oids.data })] }),
            new pkijs.Attribute({ type: oids.messageDigest, values: [new asn1js.OctetString({ valueHex: digest })] }),
          ],
        }),
      }),
    ],
    certificates: [signer.cert],
  });
  signedData.encapContentInfo.eContent = new asn1js.OctetString({ valueHex: arrayBuffer(data) });
  await signedData.sign(signer.key, 0, 'SHA-256');
  return Buffer.from(new pkijs.ContentInfo({ contentType: oids.signedData, content: signedData.toSchema(true) }).toSchema().toBER(false));
}

/** SignedData.verify with the chain checked against the trusted certificates, as pkijs documents it. */
export async function naiveVerifyCms(message: Buffer, trustedCertsPem: string): Promise<boolean> {
  const contentInfo = pkijs.ContentInfo.fromBER(arrayBuffer(message));
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });
  const trustedCerts = [pkijs.Certificate.fromBER(arrayBuffer(der(trustedCertsPem)))];
  return signedData.verify({ signer: 0, trustedCerts, checkChain: true });
}
