// The trust core's public face: XMLDSig and its WS-Security profile, XML Encryption of SwA attachments, CMS signatures, evidence time-stamping (RFC 3161),
// batch proofs (RFC 6962 Merkle trees), certificate paths and revocation.
export { decodeProof, encodeProof, inclusionProof, leafHash, merkleRoot, merkleTree, nodeHash, verifyInclusion, type InclusionProof, type MerkleTree, type Side } from './merkle.ts';
export {
  createTimeStampToken,
  parseTimeStampRequest,
  requestTimeStamp,
  timeStampRequest,
  timeStampTokenOf,
  verifyTimeStampResponse,
  verifyTimeStampToken,
  type ClientOptions,
  type HashName,
  type ParsedRequest,
  type TimeStampReason,
  type TimeStampVerdict,
  type TokenRequest,
  type TsaCredential,
  type VerifyOptions,
} from './tsa.ts';
export { signCms, verifyCms, verifyCmsFast, verifyCmsReference, type CmsCode, type CmsSigner, type CmsVerdict, type SignCmsOptions, type VerifyCmsOptions } from './cms.ts';
export { signedElement, signXml, verifyXml, verifyXmlReference, type SignedElement, type SignXmlOptions, type VerifyXmlOptions, type XmlAttachment, type XmlVerdict } from './xmldsig.ts';
export { attachmentDigester, storedAttachmentDigests, type AttachmentDigests } from './xmldsig-algorithms.ts';
export {
  checkWsSecurity,
  signedSecurityHeader,
  signSoap,
  wsuNamespace,
  type CanonicalPart,
  type SecurityHeaderOptions,
  type SignSoapOptions,
  type VerifyXml,
  type WsSecurityCheckOptions,
  type WsSecurityResult,
} from './wssecurity.ts';
export {
  decryptAttachments,
  decryptSoapAttachments,
  encryptedParts,
  encryptionProfileOf,
  encryptionProfiles,
  encryptSoapAttachments,
  encryptToDocument,
  openEncryption,
  type DecryptionKey,
  type DecryptOptions,
  type EncryptedPartInfo,
  type EncryptionProfile,
  type EncryptionRecipient,
  type EncryptOptions,
  type PartDecryption,
  type SwaPart,
  type TransformedPart,
} from './xmlenc.ts';
export type { CertificateReference } from './keyinfo.ts';
export { certificate, certificates, type ParsedCert } from './certs.ts';
export { buildPath, usageRefusal, type CertificateCheck, type CertRefusal, type Purpose } from './path.ts';
export { parseCrl, Revocation } from './revocation.ts';
export { createSignaturePool, inProcessSigners, type SignaturePool, type XmlSigners } from './pool.ts';
export { checkDetachedSignature, checkSignedPayload, maySignPayload, type PayloadVerifiers, type RegisteredKey } from './payload.ts';
export type { AlgorithmPolicy, SignatureVerdict, VerdictKind } from './verdict.ts';
export { pemBlocks, toArrayBuffer, toPem } from './x509.ts';
