// The OpenAPI 3.1 document of the hub's REST face for agencies: POST /v1/messages, GET /v1/messages/{id}, the pull
// inbox (GET /v1/inbox, GET /v1/inbox/payload/{token}, POST /v1/inbox/ack) and one query operation per dataset of the
// live catalogue. Built from the REST contract and the schemas the hub checks and writes with, so it follows the code.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Catalogue, Dataset } from '../../engine/catalogue.ts';
import { messageIdPattern } from '../../engine/envelope.ts';
import { errorCodes, type ErrorCode } from '../../engine/errors.ts';
import type { Router } from '../../engine/http.ts';
import type { SigAlg } from '../../engine/httpsig.ts';
import { partnerId, serviceSchema } from '../../engine/registry.ts';
import { keyValueLength } from '../../engine/query.ts';
import { receiverStates } from '../../engine/status.ts';
import {
  deliveryHeaders, envelopeHeaders, inboxAckPath, inboxComponents, inboxPath, inboxPayloadPath, messagePath, payloadReplyComponents, queryPath,
  queryRequestComponents, receiptComponents, replyComponents, requiredRequestComponents, statusRequestComponents,
} from './contract.ts';
import { acknowledgementSchema, inboxAcknowledgementSchema, inboxLimits, inboxListingSchema } from './inbox.ts';

export const openApiPath = '/v1/openapi.json';

const signatureAlgorithms = ['ecdsa-p256-sha256', 'ecdsa-p384-sha384', 'ed25519', 'rsa-pss-sha512', 'rsa-v1_5-sha256'] satisfies SigAlg[];

type JsonObject = Record<string, unknown>;

const ref = (kind: 'schemas' | 'parameters' | 'headers' | 'responses', name: string) => ({ $ref: `#/components/${kind}/${name}` });
const quotedList = (names: readonly string[]) => names.map((name) => `\`${name}\``).join(', ');
/** `swx-message-id` → `Swx-Message-Id`: header names as documentation shows them (HTTP ignores their case). */
const displayName = (header: string) => header.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
/**
 * `import-declaration-sea` → `ImportDeclarationSea`, for operation ids and schema names code generators can use. A dash
 * before a digit stays (`x-1` → `X-1`), so two dataset ids never share a name.
 */
const pascal = (id: string) => id.replace(/(^|-)([a-z])/g, (_, _dash: string, letter: string) => letter.toUpperCase());

/**
 * The JSON Schema of a zod schema the hub validates or writes with, without its `$schema` (the document's dialect
 * applies). An answer's schema is taken as input: members a later hub adds are allowed, as clients should take them.
 */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io }) as JsonObject;
  return rest;
}

const tokenSchema = { type: 'string', pattern: messageIdPattern.source };
const keyValueSchema = { type: 'string', minLength: keyValueLength.min, maxLength: keyValueLength.max };

const signingGuide = [
  'Every request goes over **mutual TLS** with the agency\'s registered client certificate, and carries an',
  '**RFC 9421 HTTP Message Signature** by a registered signing certificate of the same agency over an',
  '**RFC 9530 `Content-Digest`** of the body (`sha-256=:<base64>:` or sha-512); a request without a body (a message\'s',
  'status, an inbox listing or payload) has no digest.',
  '',
  '- `Signature-Input` carries `created` (unix seconds, no older or later than the hub allows, 300 s by default)',
  '  and `keyid` = the base64url SHA-256 thumbprint of the signing certificate\'s DER; `alg` may be given.',
  `- Algorithms: ${quotedList(signatureAlgorithms)}.`,
  '- `@target-uri` is the full `https://` URI the request is sent to, as the hub receives it (Host header and path).',
  '- The covered components are listed on each operation.',
  '',
  'The hub signs its replies the same way with its signing certificate (`hub-sign.pem`), over',
  `${quotedList(receiptComponents)}: a message's acceptance and status, a query's answer and every refusal; the inbox's`,
  `answers and refusals, which name no message, over ${quotedList(replyComponents(false))}; a payload as its operation says.`,
  'Check that signature before trusting a reply.',
  '',
  'Refusals are RFC 9457 problem details (`application/problem+json`) with a stable `code`; each is kept as evidence,',
  `and \`${displayName(envelopeHeaders.messageId)}\` names the id it was kept under (absent, and not covered, only when it could not be kept).`,
].join('\n');

function errorCodeSchema(): JsonObject {
  const codes = Object.keys(errorCodes) as ErrorCode[];
  return {
    type: 'string',
    enum: codes,
    description: ['Stable error codes; the same code appears in the evidence record and the console.', '',
      ...codes.map((code) => `- \`${code}\` (${errorCodes[code].status}): ${errorCodes[code].title}`)].join('\n'),
  };
}

function components(): JsonObject {
  const requestHeader = (name: string, description: string) => ({ name, in: 'header', required: true, schema: { type: 'string' }, description });
  const responseHeader = (description: string) => ({ required: true, schema: { type: 'string' }, description });
  return {
    securitySchemes: {
      mutualTLS: {
        type: 'mutualTLS',
        description: 'TLS client certificate issued to the agency and registered with the hub. It must chain to a trust'
          + ' anchor, be within its validity period, allow clientAuth and not be revoked; checked on every request.',
      },
    },
    parameters: {
      ContentDigest: requestHeader('Content-Digest', 'RFC 9530 digest of the body as sent: `sha-256=:<base64>:` or sha-512. Covered by the signature.'),
      SignatureInput: requestHeader('Signature-Input', 'RFC 9421 signature parameters: the covered components, `created` and `keyid` (see the API description).'),
      Signature: requestHeader('Signature', 'RFC 9421 signature value under the label of `Signature-Input`.'),
    },
    headers: {
      ContentDigest: responseHeader('RFC 9530 digest of the answer body.'),
      SignatureInput: responseHeader(`The hub's RFC 9421 signature parameters, covering ${quotedList(receiptComponents)}.`),
      Signature: responseHeader('The hub\'s signature value, by its signing certificate.'),
      SwxMessageId: responseHeader('The id the hub keeps this exchange under (the query id or message id).'),
      InboxSignatureInput: responseHeader(`The hub's RFC 9421 signature parameters, covering ${quotedList(replyComponents(false))}.`),
      PayloadSignatureInput: responseHeader(`The hub's RFC 9421 signature parameters, covering ${quotedList(payloadReplyComponents(false))}, and \`content-range\` for a range.`),
      ReprDigest: responseHeader('RFC 9530 digest of the whole payload (`sha-256=:<base64>:`), also for a range: check it once you hold every byte.'),
      SwxFrom: responseHeader('The sender of the message whose payload this is.'),
      PayloadMessageId: responseHeader('The message whose payload this is.'),
    },
    schemas: {
      ErrorCode: errorCodeSchema(),
      Problem: {
        type: 'object',
        required: ['type', 'title', 'status', 'detail', 'code'],
        properties: {
          type: { type: 'string', description: '`urn:swx:error:<code>`' },
          title: { type: 'string' },
          status: { type: 'integer', minimum: 400, maximum: 599 },
          detail: { type: 'string', description: 'What failed and what to do.' },
          code: ref('schemas', 'ErrorCode'),
          instance: { type: 'string' },
          queryId: { ...tokenSchema, description: 'Query refusals: the id the refusal is evidenced under.' },
          messageId: { ...tokenSchema, description: 'Message refusals: the id the refusal is evidenced under.' },
        },
      },
      QueryAnswer: {
        type: 'object',
        required: ['queryId', 'dataset', 'provider', 'found', 'answeredAt'],
        properties: {
          queryId: { ...tokenSchema, description: 'Your `Swx-Message-Id` when you gave one, else an id the hub made.' },
          dataset: { type: 'string' },
          provider: { ...jsonSchemaOf(partnerId), description: 'The agency that answered.' },
          found: { type: 'boolean' },
          record: { type: 'object', description: 'The provider\'s record, present when found.' },
          answeredAt: { type: 'string', format: 'date-time', description: 'When the hub received the provider\'s verified answer.' },
        },
      },
      Accepted: {
        type: 'object',
        required: ['id', 'conversationId', 'duplicate'],
        properties: {
          id: tokenSchema,
          conversationId: tokenSchema,
          duplicate: { type: 'boolean', description: 'True when this message id was already accepted from you; it is not delivered again.' },
        },
      },
      MessageStatus: {
        type: 'object',
        required: ['id', 'from', 'service', 'action', 'conversationId', 'receivedAt', 'size', 'sha256', 'state', 'archived', 'receivers'],
        properties: {
          id: tokenSchema,
          from: { ...jsonSchemaOf(partnerId), description: 'The sender.' },
          service: { type: 'string' },
          action: tokenSchema,
          conversationId: tokenSchema,
          receivedAt: { type: 'string', format: 'date-time', description: 'When the hub received the message.' },
          size: { type: 'integer', minimum: 0, description: 'Bytes of the body.' },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'Hex SHA-256 of the body.' },
          topic: { type: 'string', description: 'A notification: the topic it was sent to.' },
          channel: { type: 'string', description: 'A channel item: the channel it was published on.' },
          state: { enum: ['accepted', 'rejected'], description: '`accepted`: stored and delivered to each receiver in turn; `rejected`: refused when it was sent, `code` says why.' },
          archived: { type: 'boolean', description: 'False while the message\'s evidence is not archived yet: each receiver is `waiting`; ask again shortly.' },
          code: ref('schemas', 'ErrorCode'),
          detail: { type: 'string' },
          receivers: { type: 'array', items: ref('schemas', 'ReceiverStatus'), description: 'Every receiver for the sender; the asker\'s own entry for a receiver.' },
        },
      },
      ReceiverStatus: {
        type: 'object',
        required: ['to', 'state'],
        properties: {
          to: jsonSchemaOf(partnerId),
          state: {
            enum: Object.keys(receiverStates),
            description: Object.entries(receiverStates).map(([state, meaning]) => `- \`${state}\`: ${meaning}`).join('\n'),
          },
          at: { type: 'string', format: 'date-time', description: 'When the copy reached this state.' },
          routedAt: { type: 'string', format: 'date-time' },
          deliveredAt: { type: 'string', format: 'date-time' },
          code: ref('schemas', 'ErrorCode'),
          detail: { type: 'string' },
          receipt: ref('schemas', 'HeldReceipt'),
        },
      },
      HeldReceipt: {
        type: 'object',
        required: ['raw'],
        description: 'The receiver\'s signed receipt as the hub holds it, checkable without the hub: the signature verifies over `signature.base` with `signature.certificate`. A delivery over MQ has no signature: its acknowledgement is the queue manager\'s commit, which `raw` describes.',
        properties: {
          raw: { type: 'string', contentEncoding: 'base64', description: 'The receipt as received: status line, signature headers, digest and body.' },
          signature: {
            type: 'object',
            required: ['scheme', 'algorithm', 'keyId', 'certThumbprint', 'covered', 'value'],
            properties: {
              scheme: { type: 'string' },
              algorithm: { type: 'string' },
              keyId: { type: 'string' },
              certThumbprint: { type: 'string', description: 'base64url SHA-256 of the signing certificate\'s DER.' },
              covered: { type: 'array', items: { type: 'string' } },
              value: { type: 'string', description: '`Signature-Input` and `Signature` as received, one per line.' },
              createdAt: { type: 'string', format: 'date-time' },
              base: { type: 'string', description: 'The RFC 9421 signature base the signature is over.' },
              certificate: { type: 'string', description: 'The receiver\'s signing certificate (PEM).' },
            },
          },
        },
      },
    },
    responses: {
      Problem: {
        description: 'Refused: RFC 9457 problem details with the stable `code`, signed by the hub (only a reply the hub could not route, such as a path it does not serve, or could not sign comes unsigned).',
        headers: signedReplyHeaders(),
        content: { 'application/problem+json': { schema: ref('schemas', 'Problem') } },
      },
      InboxProblem: {
        description: 'Refused: RFC 9457 problem details with the stable `code`, signed by the hub; an inbox refusal names no message.',
        headers: inboxReplyHeaders(),
        content: { 'application/problem+json': { schema: ref('schemas', 'Problem') } },
      },
    },
  };
}

const refusals = { '4XX': ref('responses', 'Problem'), '5XX': ref('responses', 'Problem') };
/** The headers of every reply the hub signs. */
const signedReplyHeaders = () => ({
  'Content-Digest': ref('headers', 'ContentDigest'),
  'Signature-Input': ref('headers', 'SignatureInput'),
  Signature: ref('headers', 'Signature'),
  [displayName(envelopeHeaders.messageId)]: ref('headers', 'SwxMessageId'),
});
const signedRequestParameters = [ref('parameters', 'ContentDigest'), ref('parameters', 'SignatureInput'), ref('parameters', 'Signature')];
/** The headers of the inbox's signed answers and refusals, which name no message. */
const inboxReplyHeaders = () => ({
  'Content-Digest': ref('headers', 'ContentDigest'),
  'Signature-Input': ref('headers', 'InboxSignatureInput'),
  Signature: ref('headers', 'Signature'),
});
const inboxAnswer = (description: string, schema: string) => ({ description, headers: inboxReplyHeaders(), content: { 'application/json': { schema: ref('schemas', schema) } } });
const inboxRefusals = { '4XX': ref('responses', 'InboxProblem'), '5XX': ref('responses', 'InboxProblem') };
/** A refusal with one code, named apart from the other refusals because the operation has a reason to meet it. */
const inboxRefusal = (code: ErrorCode, when: string) => ({
  [errorCodes[code].status]: {
    description: `\`${code}\`: ${when}`,
    headers: inboxReplyHeaders(),
    content: { 'application/problem+json': { schema: { allOf: [ref('schemas', 'Problem'), { type: 'object', properties: { code: { const: code } } }] } } },
  },
});

/** The body of a query for `dataset`: exactly its keys, and a provider (required only when it has several). */
function queryRequestSchema(dataset: Dataset): JsonObject {
  const several = dataset.providers.length > 1;
  return {
    type: 'object',
    required: several ? ['keys', 'provider'] : ['keys'],
    additionalProperties: false,
    properties: {
      keys: {
        type: 'object',
        required: dataset.keys,
        additionalProperties: false,
        properties: Object.fromEntries(dataset.keys.map((key) => [key, keyValueSchema])),
      },
      provider: {
        enum: dataset.providers,
        description: several ? 'The agency to ask: this dataset has several providers.' : 'May be omitted: this dataset has one provider.',
      },
    },
  };
}

function queryOperation(dataset: Dataset): JsonObject {
  return {
    operationId: `query${pascal(dataset.id)}`,
    tags: [dataset.service.id],
    summary: `${dataset.name} (${dataset.nameZh})`,
    description: [
      `Looks up a record by ${quotedList(dataset.keys)}, answered by ${dataset.providers.join(' or ')}.`,
      `The signature covers ${quotedList(queryRequestComponents)}, and every \`Swx-*\` header present (such as \`${envelopeHeaders.messageId}\`).`,
      'A signed query is taken once (a repeat is refused with `SWX_REPLAY`): sign each query afresh.',
      'Agencies the catalogue does not let ask for this dataset are refused with `SWX_ACL_DENIED`.',
    ].join(' '),
    parameters: [
      ...signedRequestParameters,
      { name: displayName(envelopeHeaders.messageId), in: 'header', required: false, schema: tokenSchema, description: 'Your id for this query, answered as `queryId`; the signature must cover it.' },
    ],
    requestBody: {
      required: true,
      content: { 'application/json': { schema: ref('schemas', `${pascal(dataset.id)}Query`) } },
    },
    responses: {
      200: {
        description: 'The provider\'s answer, signed by the hub.',
        headers: signedReplyHeaders(),
        content: { 'application/json': { schema: ref('schemas', 'QueryAnswer') } },
      },
      ...refusals,
    },
  };
}

function messageOperation(): JsonObject {
  const envelope = (name: string, schema: JsonObject, required: boolean, description: string) =>
    ({ name: displayName(name), in: 'header', required, schema, description });
  return {
    operationId: 'sendMessage',
    tags: ['messages'],
    summary: 'Send a signed message to another agency, a topic or a channel',
    description: [
      `The raw body is the payload. The signature covers ${quotedList(requiredRequestComponents)} and every other`,
      '`Swx-*` header present. Answered only after the hub stored the message durably; a repeated `Swx-Message-Id`',
      'from the same sender (or, without one, the same signed request sent again) is answered again with',
      '`duplicate: true` and not delivered twice.',
    ].join(' '),
    parameters: [
      envelope(envelopeHeaders.to, jsonSchemaOf(partnerId), false, 'The receiving agency. Left out for a notification (service `notify.<topic>`) or a channel item (`exchange.<channel>`), which reach every receiver or requester of the topic or channel.'),
      envelope(envelopeHeaders.service, jsonSchemaOf(serviceSchema.shape.id), true, 'The service, which must allow you to send to the receiver; `notify.<topic>` to notify on a topic, `exchange.<channel>` to publish an item on a channel.'),
      envelope(envelopeHeaders.action, tokenSchema, false, 'Action within the service (default `deliver`).'),
      envelope(envelopeHeaders.messageId, tokenSchema, false, 'Your id for this message; else the hub derives one from the signature (`sig:` and the base64url SHA-256 of the signature base), so the same signed request sent again is the same message.'),
      envelope(envelopeHeaders.conversationId, tokenSchema, false, 'The conversation this message belongs to.'),
      envelope(envelopeHeaders.refTo, tokenSchema, false, 'The message this one answers.'),
      ...signedRequestParameters,
    ],
    requestBody: {
      required: true,
      description: 'Any media type; `Content-Type` is required (up to 200 printable ASCII characters) and a JSON type (`application/json`, `application/*+json`, `text/json`) must carry valid JSON in UTF-8.',
      content: { '*/*': { schema: {} } },
    },
    responses: {
      202: {
        description: 'Accepted and stored: the hub\'s signed receipt. Delivery follows, with the receiver\'s signed receipt as evidence.',
        headers: signedReplyHeaders(),
        content: { 'application/json': { schema: ref('schemas', 'Accepted') } },
      },
      ...refusals,
    },
  };
}

function statusOperation(): JsonObject {
  return {
    operationId: 'messageStatus',
    tags: ['messages'],
    summary: 'What became of a message: each receiver\'s state and signed receipt',
    description: [
      `The signature covers ${quotedList(statusRequestComponents)} (the query too) and every \`Swx-*\` header present.`,
      'The sender sees every receiver; a receiver of the message, naming its sender with `from`, sees its own entry.',
      'To anyone else, as for an unknown id, the answer is `SWX_NOT_FOUND`. A hub process that does not archive',
      'evidence answers `SWX_UNAVAILABLE` with `Retry-After`.',
    ].join(' '),
    parameters: [
      { name: 'id', in: 'path', required: true, schema: tokenSchema, description: 'The message id.' },
      { name: 'from', in: 'query', required: false, schema: jsonSchemaOf(partnerId), description: 'The sender, when a receiver asks (default: the asking agency).' },
      ref('parameters', 'SignatureInput'),
      ref('parameters', 'Signature'),
    ],
    responses: {
      200: {
        description: 'The message\'s state, signed by the hub.',
        headers: signedReplyHeaders(),
        content: { 'application/json': { schema: ref('schemas', 'MessageStatus') } },
      },
      ...refusals,
    },
  };
}

const inboxGuide = 'For an agency registered to receive by pull (`"receive": "pull"`); one that receives by push is refused with `SWX_RECEIVES_BY_PUSH`.';

function inboxListOperation(): JsonObject {
  return {
    operationId: 'listInbox',
    tags: ['inbox'],
    summary: 'Collect waiting deliveries: messages, notifications and channel items',
    description: [
      inboxGuide,
      `The signature covers ${quotedList(inboxComponents('GET', {}))} (the query too) and every \`Swx-*\` header present.`,
      'Each delivery listed stays handed out to you until acknowledged (POST /v1/inbox/ack), or until the visibility',
      'timeout (`SWX_INBOX_VISIBILITY_SECONDS`) passes, when it is listed again with a higher `attempt`. A channel\'s lane',
      'lists its next item only once the one before is acknowledged, so items arrive in the order published.',
    ].join(' '),
    parameters: [
      {
        name: 'max', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: inboxLimits.max, default: inboxLimits.defaultMax },
        description: 'The most deliveries to list.',
      },
      {
        name: 'wait', in: 'query', required: false, schema: { type: 'integer', minimum: 0, maximum: inboxLimits.waitSeconds, default: 0 },
        description: 'Seconds to wait for the first delivery when none is waiting (a long poll); a hub that stops answers at once.',
      },
      ref('parameters', 'SignatureInput'),
      ref('parameters', 'Signature'),
    ],
    responses: {
      200: inboxAnswer('The deliveries handed out now (none when none came within `wait`), signed by the hub.', 'InboxListing'),
      ...inboxRefusal('SWX_RECEIVES_BY_PUSH', 'you receive by push: the hub delivers to your endpoint.'),
      ...inboxRefusals,
    },
  };
}

function inboxPayloadOperation(): JsonObject {
  return {
    operationId: 'inboxPayload',
    tags: ['inbox'],
    summary: 'Download a listed delivery\'s payload, or a range of it',
    description: [
      inboxGuide,
      `The signature covers ${quotedList(inboxComponents('GET', {}))} and every \`Swx-*\` header present.`,
      'For a payload too large to list inline (`payloadUrl`); a download cut off resumes with `Range`. The answer is',
      'signed before its bytes stream: it signs the SHA-256 of the whole payload (`Repr-Digest`), which the bytes must',
      'match once all are held.',
    ].join(' '),
    parameters: [
      { name: 'token', in: 'path', required: true, schema: { type: 'string' }, description: 'The token the delivery was listed with.' },
      {
        name: 'Range', in: 'header', required: false, schema: { type: 'string', pattern: '^bytes=(\\d+-\\d*|-\\d+)$' },
        description: 'One range, `bytes=a-b`, `bytes=a-` or `bytes=-n` (the last n bytes); other forms get the whole payload.',
      },
      ref('parameters', 'SignatureInput'),
      ref('parameters', 'Signature'),
    ],
    responses: {
      200: { description: 'The whole payload.', headers: payloadHeaders(false), content: { '*/*': { schema: {} } } },
      206: { description: 'The range asked for.', headers: payloadHeaders(true), content: { '*/*': { schema: {} } } },
      ...inboxRefusal('SWX_NOT_FOUND', 'no delivery to you is handed out under this token (another agency\'s token, or one no longer on the message stream).'),
      ...inboxRefusal('SWX_RANGE_NOT_SATISFIABLE', 'the range is not within the payload.'),
      ...inboxRefusals,
    },
  };
}

/** The headers of a payload's answer, signed over payloadReplyComponents. */
function payloadHeaders(partial: boolean): JsonObject {
  return {
    'Content-Type': { required: true, schema: { type: 'string' }, description: 'The message\'s content type.' },
    'Accept-Ranges': { required: true, schema: { const: 'bytes' } },
    ...(partial ? { 'Content-Range': { required: true, schema: { type: 'string', pattern: '^bytes \\d+-\\d+/\\d+$' }, description: '`bytes a-b/size`; covered by the signature.' } } : {}),
    'Repr-Digest': ref('headers', 'ReprDigest'),
    [displayName(envelopeHeaders.messageId)]: ref('headers', 'PayloadMessageId'),
    [displayName(deliveryHeaders.from)]: ref('headers', 'SwxFrom'),
    'Signature-Input': ref('headers', 'PayloadSignatureInput'),
    Signature: ref('headers', 'Signature'),
  };
}

function inboxAckOperation(): JsonObject {
  return {
    operationId: 'acknowledgeInbox',
    tags: ['inbox'],
    summary: 'Acknowledge deliveries kept: the signed request is their receipt',
    description: [
      inboxGuide,
      `The signature covers ${quotedList(inboxComponents('POST', {}))} and every \`Swx-*\` header present.`,
      'The hub keeps the signed request as the receipt of each delivery it names, evidenced as `delivered` (the first',
      'receipt it holds for the message) or `redelivered` (a repeat, which changes nothing), then settles them; one',
      'acknowledged after the visibility timeout is a receipt all the same. Every token must be yours and name its',
      'message id, or nothing is acknowledged. Acknowledge only what is stored: delivery is at least once.',
    ].join(' '),
    parameters: signedRequestParameters,
    requestBody: { required: true, content: { 'application/json': { schema: ref('schemas', 'InboxAcknowledgementRequest') } } },
    responses: {
      200: inboxAnswer('How each delivery was evidenced, signed by the hub.', 'InboxAcknowledgement'),
      ...inboxRefusal('SWX_NOT_FOUND', 'a token is not one of yours, or its delivery is no longer on the message stream; nothing is acknowledged.'),
      ...inboxRefusals,
    },
  };
}

/** The OpenAPI 3.1 document for these datasets, with `serverUrl` as the server (may be relative to the document). */
export function openApiDocument(datasets: readonly Dataset[], serverUrl: string): object {
  const base = components();
  const services = new Map(datasets.map((dataset) => [dataset.service.id, dataset.service]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'swx hub: messages and query services (即時查證)',
      version: '1',
      description: signingGuide,
    },
    servers: [{ url: serverUrl }],
    security: [{ mutualTLS: [] }],
    tags: [
      { name: 'messages', description: 'Signed messages between agencies' },
      { name: 'inbox', description: 'Deliveries an agency that receives by pull collects itself' },
      ...[...services.values()].map((service) => ({ name: service.id, description: `${service.name} (${service.nameZh})` })),
    ],
    paths: {
      [messagePath]: { post: messageOperation() },
      [`${messagePath}/{id}`]: { get: statusOperation() },
      [inboxPath]: { get: inboxListOperation() },
      [`${inboxPayloadPath}/{token}`]: { get: inboxPayloadOperation() },
      [inboxAckPath]: { post: inboxAckOperation() },
      ...Object.fromEntries(datasets.map((dataset) => [`${queryPath}/${dataset.id}`, { post: queryOperation(dataset) }])),
      [openApiPath]: {
        get: {
          operationId: 'openApiDocument',
          summary: 'This document',
          security: [],
          responses: { 200: { description: 'The OpenAPI document, from the live catalogue.', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
    },
    components: {
      ...base,
      schemas: {
        ...(base.schemas as JsonObject),
        InboxListing: jsonSchemaOf(inboxListingSchema, 'input'),
        InboxAcknowledgementRequest: jsonSchemaOf(acknowledgementSchema),
        InboxAcknowledgement: jsonSchemaOf(inboxAcknowledgementSchema, 'input'),
        ...Object.fromEntries(datasets.map((dataset) => [`${pascal(dataset.id)}Query`, queryRequestSchema(dataset)])),
      },
    },
  };
}

export interface OpenApiOptions {
  catalogue: Pick<Catalogue, 'list' | 'onChange'>;
}

/**
 * GET /v1/openapi.json on the agency router. Public documentation, like the WSDL: served without a client
 * certificate (the agency server asks for one but does not require it); every operation it describes still needs
 * mutual TLS and a signature. The server URL is relative ("/"), resolved against where the client fetched the
 * document, so the Host header a client sent never goes into it.
 */
export function mountOpenApi(router: Router, options: OpenApiOptions): void {
  // The route is public: rebuilt only when the catalogue changes, so a request costs a write of cached bytes.
  let text: string | undefined;
  options.catalogue.onChange(() => { text = undefined; });
  router.add('GET', openApiPath, (_req: IncomingMessage, res: ServerResponse) => {
    text ??= JSON.stringify(openApiDocument(options.catalogue.list(), '/'));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
}
