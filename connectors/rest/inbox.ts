// The REST face of the pull inbox (engine/inbox.ts): an agency that receives by pull lists its waiting deliveries,
// downloads the large payloads (resuming with Range) and acknowledges what it kept, over mutual TLS with every request
// signed (RFC 9421). The signed acknowledgement is the receipt the hub keeps as evidence; every answer is signed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { ByteRange } from '../../engine/byte-range.ts';
import type { BodyBudget } from '../../engine/budget.ts';
import { messageIdPattern, type Envelope } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { checkContentDigest, signatureInfo, type Verified } from '../../engine/httpsig.ts';
import { header, readBody, readJson, sendJson, sendProblem, type Router } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import type { Inbox, InboxItem } from '../../engine/inbox.ts';
import { log } from '../../engine/log.ts';
import type { Payloads } from '../../engine/payloads.ts';
import { admit, authenticate } from '../../engine/peer.ts';
import { partnerId, type PartnerKey, type Registry } from '../../engine/registry.ts';
import type { CertificateCheck } from '../../engine/trust/index.ts';
import { inboxAckPath, inboxComponents, inboxPath, inboxPayloadPath } from './contract.ts';
import { verifySignature } from './inbound.ts';
import { hubSeal, payloadSeal } from './seal.ts';

export interface RestInboxOptions {
  registry: Registry;
  trust: CertificateCheck;
  inbox: Inbox;
  payloads: Payloads;
  signing: HubIdentity['signing'];
  budget: BodyBudget;
  clockSkewSeconds: number;
}

/** The most deliveries one listing hands out, and the longest it waits for the first. */
export const inboxLimits = { max: 100, defaultMax: 10, waitSeconds: 30 };
/** Payload bytes one listing carries inline at most; the rest of its payloads are fetched by their URL. */
const inlineBytesPerListing = 4 * 1024 * 1024;
/** The largest acknowledgement read: ids, tokens and the agency's own receipt data. */
const maxAckBytes = 1024 * 1024;

const messageId = z.string().regex(messageIdPattern);

/** The body of POST /v1/inbox/ack. */
export const acknowledgementSchema = z.object({
  messages: z.array(z.object({
    id: messageId.describe('The message id, as listed.'),
    token: z.string().min(1).max(1024).describe('The token it was listed with.'),
  }).strict()).min(1).max(inboxLimits.max).describe('The deliveries kept: acknowledge each only once it is stored.'),
  receipt: z.record(z.string(), z.unknown()).optional().describe('Receipt data of the agency\'s own, kept in the evidence with the signed request.'),
}).strict();

// What the inbox answers, as `listed` and the routes below write it; the agency toolkit's types and the OpenAPI
// document are derived from these.

/** A delivery as a listing hands it out. */
export const inboxMessageSchema = z.object({
  token: z.string().describe('Opaque, and of use to this agency only: names this handing out of the delivery, for its payload and its acknowledgement.'),
  id: messageId,
  from: partnerId.describe('The sender.'),
  to: partnerId.describe('The receiver: the agency collecting.'),
  service: z.string(),
  action: z.string(),
  conversationId: messageId,
  refTo: messageId.optional().describe('The message this one answers.'),
  topic: z.string().optional().describe('A notification: the topic it came through.'),
  channel: z.string().optional().describe('A channel item: the channel it came through.'),
  contentType: z.string(),
  size: z.number().int().min(0).describe('Bytes of the payload.'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('Hex SHA-256 of the payload.'),
  receivedAt: z.iso.datetime().describe('When the hub received the message.'),
  attempt: z.number().int().min(1).describe('1 the first time the delivery is handed out (pushed or collected), more after each return.'),
  payload: z.base64().optional().describe('The payload, when small enough to list (SWX_INLINE_PAYLOAD_BYTES, up to 4 MiB per listing).'),
  payloadUrl: z.string().optional().describe('Otherwise where to download it (GET, Range allowed), relative to the hub.'),
});
export type InboxMessage = z.infer<typeof inboxMessageSchema>;

/** The answer of GET /v1/inbox. */
export const inboxListingSchema = z.object({
  partner: partnerId.describe('The agency collecting.'),
  messages: z.array(inboxMessageSchema).describe('Its messages first, then at most one item of each channel lane.'),
});
export type InboxListing = z.infer<typeof inboxListingSchema>;

/** The answer of POST /v1/inbox/ack: how the hub evidenced each acknowledged delivery. */
export const inboxAcknowledgementSchema = z.object({
  partner: partnerId.describe('The agency acknowledging.'),
  acknowledged: z.array(z.object({
    id: messageId,
    from: partnerId.describe('The sender.'),
    stage: z.enum(['delivered', 'redelivered']).describe('`delivered`: the first receipt the hub holds for the message; `redelivered`: a repeat.'),
  })),
});
export type InboxAcknowledgement = z.infer<typeof inboxAcknowledgementSchema>;

/** The partner behind a request: its TLS certificate, and its RFC 9421 signature over `components` by one of its keys. */
async function signedBy(req: IncomingMessage, options: RestInboxOptions, components: string[]): Promise<{ peer: PartnerKey; verified: Verified; signer: PartnerKey }> {
  const peer = await authenticate(req, options.registry, options.trust);
  const { verified, signer } = verifySignature(req, peer, options.registry, options.clockSkewSeconds, components);
  await admit(options.trust, signer, 'agency-signing', 'the signing certificate');
  return { peer, verified, signer };
}

/** A whole number from the query string within [min, max], or `fallback` when absent. */
function queryNumber(url: URL, name: string, min: number, max: number, fallback: number): number {
  const given = url.searchParams.get(name);
  if (given === null) return fallback;
  const value = Number(given);
  if (!/^\d+$/.test(given) || value < min || value > max) throw new SwxError('SWX_BAD_REQUEST', `${name} must be a whole number from ${min} to ${max}`);
  return value;
}

/**
 * The one range of a `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` header within a payload of `size` bytes; undefined
 * for no header, or one this answer may ignore (several ranges, another unit), which then gets the whole payload.
 */
export function requestedRange(value: string | undefined, size: number): ByteRange | undefined {
  const match = value === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  const range = first === '' ? { start: Math.max(0, size - Number(last)), end: size - 1 } : { start: Number(first), end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
  if (range.start >= size || range.end < range.start) throw new SwxError('SWX_RANGE_NOT_SATISFIABLE', `bytes ${value} are not within the payload of ${size} bytes`);
  return range;
}

/** A listed delivery: the envelope's facts, its token, and its payload inline or where to fetch it. */
function listed(item: InboxItem, inline: boolean): InboxMessage {
  const { envelope } = item;
  return {
    token: item.token,
    id: envelope.id,
    from: envelope.from,
    to: envelope.to,
    service: envelope.service,
    action: envelope.action,
    conversationId: envelope.conversationId,
    ...(envelope.refToMessageId ? { refTo: envelope.refToMessageId } : {}),
    ...(envelope.audience ? { [envelope.audience.kind]: envelope.audience.id } : {}),
    contentType: envelope.contentType,
    size: envelope.size,
    sha256: envelope.sha256,
    receivedAt: envelope.receivedAt,
    attempt: item.attempt,
    ...(inline ? { payload: envelope.payload } : { payloadUrl: `${inboxPayloadPath}/${item.token}` }),
  };
}

/** The signed acknowledgement as it arrived, as evidence keeps it: the request line, its signature and digest, the body. */
function rawRequest(req: IncomingMessage, body: Buffer): string {
  return [
    `${req.method} ${req.url}`,
    `signature-input: ${header(req, 'signature-input')}`,
    `signature: ${header(req, 'signature')}`,
    `content-digest: ${header(req, 'content-digest')}`,
    '',
    body.toString('utf8'),
  ].join('\n');
}

export function mountRestInbox(router: Router, options: RestInboxOptions): void {
  const sealFor = hubSeal(options.signing);
  const refuse = (res: ServerResponse, error: unknown, what: string) => {
    if (!(error instanceof SwxError)) log.error({ err: error }, `${what} failed`);
    sendProblem(res, error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', `the hub could not answer: ${what}; retry`, { cause: error }), {}, sealFor(undefined));
  };

  router.add('GET', inboxPath, async (req, res) => {
    try {
      const { peer } = await signedBy(req, options, inboxComponents('GET', req.headers));
      const url = new URL(req.url ?? '/', 'https://hub');
      const max = queryNumber(url, 'max', 1, inboxLimits.max, inboxLimits.defaultMax);
      const waitSeconds = queryNumber(url, 'wait', 0, inboxLimits.waitSeconds, 0);
      const items = await options.inbox.collect(peer.partner.id, max, waitSeconds * 1000);
      let inlineBytes = 0;
      const messages = items.map((item) => {
        const inline = item.envelope.payload !== undefined && (inlineBytes += item.envelope.size) <= inlineBytesPerListing;
        return listed(item, inline);
      });
      const listing: InboxListing = { partner: peer.partner.id, messages };
      sendJson(res, 200, listing, {}, sealFor(undefined));
    } catch (error) {
      refuse(res, error, 'listing the inbox');
    }
  });

  router.add('GET', `${inboxPayloadPath}/:token`, async (req, res, params) => {
    let envelope: Envelope;
    let range: ByteRange | undefined;
    try {
      const { peer } = await signedBy(req, options, inboxComponents('GET', req.headers));
      envelope = await options.inbox.delivery(peer.partner.id, params.token!);
      range = requestedRange(header(req, 'range'), envelope.size);
    } catch (error) {
      refuse(res, error, 'a payload from the inbox');
      return;
    }
    const status = range ? 206 : 200;
    const headers: Record<string, string> = { 'content-type': envelope.contentType, 'accept-ranges': 'bytes' };
    if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${envelope.size}`;
    payloadSeal(options.signing, envelope)(status, headers);
    res.writeHead(status, { ...headers, 'content-length': String(range ? range.end! - range.start + 1 : envelope.size) });
    // A payload that fails mid-way (its SHA-256, a missing object) cuts the answer short: it never ends cleanly.
    await pipeline(options.payloads.stream(envelope, range), res).catch((error: Error) => {
      log.warn({ err: error.message, id: envelope.id, to: envelope.to }, 'a payload download ended before its end');
    });
  });

  router.add('POST', inboxAckPath, async (req, res) => {
    try {
      const { peer, verified, signer } = await signedBy(req, options, inboxComponents('POST', req.headers));
      const body = await readBody(req, maxAckBytes, options.budget.claim(peer.partner.id, res));
      if (!checkContentDigest(header(req, 'content-digest'), body)) throw new SwxError('SWX_DIGEST_MISMATCH', 'Content-Digest (sha-256 or sha-512) does not match the body');
      const parsed = acknowledgementSchema.safeParse(readJson(body));
      if (!parsed.success) {
        throw new SwxError('SWX_BAD_REQUEST', `the body must be { "messages": [{ "id", "token" }, …up to ${inboxLimits.max}], "receipt"?: {...} }: ${parsed.error.issues[0]!.message}`);
      }
      const acknowledged = await options.inbox.acknowledge(peer.partner.id, parsed.data.messages, {
        raw: rawRequest(req, body),
        signature: signatureInfo(verified, signer.certificate.toString()),
      });
      const answer: InboxAcknowledgement = { partner: peer.partner.id, acknowledged };
      sendJson(res, 200, answer, {}, sealFor(undefined));
    } catch (error) {
      refuse(res, error, 'an acknowledgement');
    }
  });
}
