// The naive RFC 3161 path: pkijs' TSTInfo, SignedData and TimeStampResp classes used as its documentation shows, for
// the crypto bench to measure swx's own path against. Not used by the hub.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const oids = { tstInfo: '1.2.840.113549.1.9.16.1.4', signedData: '1.2.840.113549.1.7.2', sha256: '2.16.840.1.101.3.4.2.1', contentType: '1.2.840.113549.1.9.3', messageDigest: '1.2.840.113549.1.9.4' };
const arrayBuffer = (bytes: Uint8Array) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/** A granted TimeStampResp over a SHA-256 imprint, signed with a WebCrypto key. */
export async function naiveTimeStamp(digest: Buffer, serial: number, tsa: { cert: pkijs.Certificate; key: CryptoKey }): Promise<Buffer> {
  const tstInfo = new pkijs.TSTInfo({
    version: 1,
    policy: '1.3.6.1.4.1.61000.3161.1',
    messageImprint: new pkijs.MessageImprint({ hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: oids.sha256 }), hashedMessage: new asn1js.OctetString({ valueHex: arrayBuffer(digest) }) }),
    serialNumber: new asn1js.Integer({ value: serial }),
    genTime: new Date(),
  });
  const content = tstInfo.toSchema().toBER(false);
  const signedData = new pkijs.SignedData({
    version: 3,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: oids.tstInfo }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: tsa.cert.issuer, serialNumber: tsa.cert.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({
          type: 0,
          attributes: [
            new pkijs.Attribute({ type: oids.contentType, values: [new asn1js.ObjectIdentifier({ value: oids.tstInfo })] }),
            new pkijs.Attribute({ type: oids.messageDigest, values: [new asn1js.OctetString({ valueHex: await crypto.subtle.digest('SHA-256', content) })] }),
          ],
        }),
      }),
    ],
    certificates: [tsa.cert],
  });
  signedData.encapContentInfo.eContent = new asn1js.OctetString({ valueHex: content });
  await signedData.sign(tsa.key, 0, 'SHA-256');
  const response = new pkijs.TimeStampResp({
    status: new pkijs.PKIStatusInfo({ status: pkijs.PKIStatus.granted }),
    timeStampToken: new pkijs.ContentInfo({ contentType: oids.signedData, content: signedData.toSchema(true) }),
  });
  return Buffer.from(response.toSchema().toBER(false));
}

/**
 * TimeStampResp.verify against the time-stamped data, with its documented parameters (signer, trustedCerts, data):
 * the signature and the imprint; it does not build the certificate path (swx's verification does).
 */
export async function naiveVerifyTimeStamp(response: Buffer, data: Buffer, trustedCert: pkijs.Certificate): Promise<boolean> {
  const parsed = pkijs.TimeStampResp.fromBER(arrayBuffer(response));
  return parsed.verify({ signer: 0, data: arrayBuffer(data), trustedCerts: [trustedCert] });
}
