// MIME, mail and HTTP message parsing for signed messages: a hostile input gets SWX_BAD_REQUEST or SWX_TOO_LARGE with
// a detail, never a crash. Used by `swx verify` and by the ebMS 2.0 / AS4 connectors for SOAP with attachments.
export { messageParts, parseEntity, entityOf, type Attachment, type MessageParts, type MimePart } from './entity.ts';
export { bareContentId, parseHeaderBlock, parseMediaType, type HeaderBlock, type Headers, type MediaType } from './headers.ts';
export { parseHttpMessage, startsWithStartLine, type HttpMessage, type StartLine } from './http.ts';
export { defaultMimeLimits, type MimeLimits } from './limits.ts';
