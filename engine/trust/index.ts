// The trust core's public face: CMS signatures, evidence time-stamping (RFC 3161) and batch proofs (RFC 6962 Merkle trees).
export { inclusionProof, leafHash, merkleRoot, merkleTree, nodeHash, verifyInclusion, type InclusionProof, type MerkleTree, type Side } from './merkle.ts';
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
export { signCms, verifyCms, type CmsCode, type CmsSigner, type CmsVerdict, type SignCmsOptions, type VerifyCmsOptions } from './cms.ts';
