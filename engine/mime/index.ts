// MIME, mail and HTTP message parsing for signed messages, and multipart/related bodies read and written as streams: a
// hostile input gets SWX_BAD_REQUEST or SWX_TOO_LARGE with a detail, never a crash. Used by `swx verify` and by the
// ebMS 2.0 / AS4 connectors for SOAP with attachments; payload packages carry several payloads of one message as one.
export { messageParts, parseEntity, entityOf, headerlessMultipart, type Attachment, type MessageParts, type MimePart } from './entity.ts';
export { bareContentId, cidUrl, parseHeaderBlock, parseMediaType, type HeaderBlock, type Headers, type MediaType } from './headers.ts';
export { parseHttpMessage, startsWithStartLine, type HttpMessage, type StartLine } from './http.ts';
export { defaultMimeLimits, type MimeLimits } from './limits.ts';
export { readMultipart, type StreamedPart } from './multipart-stream.ts';
export { multipartBoundary, writeMultipart, type MultipartBody, type OutgoingPart } from './multipart-write.ts';
export { isPackage, packagedFields, packageStream, payloadParts, readKeptPackage, readPackage, writePackage, type PackagedPart, type PackagedProperty, type PackageStream, type PartToPackage } from './package.ts';
