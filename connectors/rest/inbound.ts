// REST inbound: POST /v1/messages over mutual TLS, signed with HTTP Message Signatures over a Content-Digest.
// The TLS certificate names the partner; the signature's keyid must be a certificate of that same partner.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageIdPattern } from '../../engine/envelope.ts';
import { checkContentDigest, checkContentDigestWith, contentDigestHashes, HttpSigError, signatureInfo, verify, type Verified } from '../../engine/httpsig.ts';
import { log } from '../../engine/log.ts';
import { SwxError, type ErrorCode } from '../../engine/errors.ts';
import type { BodyBudget } from '../../engine/budget.ts';
import { boundedBody, header, isJsonMediaType, peekBody, readBody, readJson, sendJson, sendProblem, undeclaredLength, type Router } from '../../engine/http.ts';
import { messagesTotal } from '../../engine/metrics.ts';
import { checkSignedPayload, maySignPayload, type CertificateCheck, type PayloadVerifiers } from '../../engine/trust/index.ts';
import { admit, authenticate } from '../../engine/peer.ts';
import { receiveHolds, type Payloads } from '../../engine/payloads.ts';
import { partnerId, serviceSchema, type Registry, type PartnerKey } from '../../engine/registry.ts';
import type { Intake, Submission } from '../../engine/submission.ts';
import { envelopeHeaders, messagePath, requestComponents } from './contract.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { hubSeal } from './seal.ts';

export interface RestInboundOptions {
  registry: Registry;
  intake: Intake;
  /** Judges the TLS client and signing certificates: path to a trust anchor, validity, key usage, revocation. */
  trust: CertificateCheck;
  /** The largest body read whole. */
  maxBodyBytes: number;
  /** The largest body streamed to the Object Store as it arrives (over the inline limit, not needed whole). */
  maxStreamedBodyBytes: number;
  /** In-flight body bytes, the hub's and each agency's: shared by every connector on the agency port. */
  budget: BodyBudget;
  clockSkewSeconds: number;
  /** Where bodies over the inline limit are written as they arrive. */
  payloads: Payloads;
  /** Check a signed payload's own signature (CMS, XMLDSig): the signature pool's, off the event loop. */
  payloadVerifiers: PayloadVerifiers;
  /** The hub's signing key: the acceptance and every refusal are signed. */
  signing: HubIdentity['signing'];
}

const sigErrorCodes: Record<string, ErrorCode> = {
  missing: 'SWX_SIG_MISSING',
  expired: 'SWX_SIG_EXPIRED',
  future: 'SWX_SIG_EXPIRED',
};


const tokenShape = (value: string) => messageIdPattern.test(value);
const tokenRule = '1-128 characters of letters, digits and . _ : @ -';

type EnvelopeField = 'to' | 'service' | 'action' | 'conversationId' | 'refToMessageId' | 'id' | 'contentType';

/** The shape of each envelope header and the Submission field it fills, checked before anything keeps or reads it. */
const headerShapes: { name: string; field: EnvelopeField; valid: (value: string) => boolean; rule: string; absent?: string }[] = [
  { name: envelopeHeaders.to, field: 'to', valid: (value) => partnerId.safeParse(value).success, rule: 'a partner id (upper-case letters, digits and -)' },
  { name: envelopeHeaders.service, field: 'service', valid: (value) => serviceSchema.shape.id.safeParse(value).success, rule: 'a service id (lower-case letters, digits, . and -)' },
  { name: envelopeHeaders.action, field: 'action', valid: tokenShape, rule: tokenRule, absent: 'deliver' },
  { name: envelopeHeaders.conversationId, field: 'conversationId', valid: tokenShape, rule: tokenRule },
  { name: envelopeHeaders.refTo, field: 'refToMessageId', valid: tokenShape, rule: tokenRule },
  { name: envelopeHeaders.messageId, field: 'id', valid: tokenShape, rule: tokenRule },
  { name: 'content-type', field: 'contentType', valid: (value) => /^[\x20-\x7e]{1,200}$/.test(value), rule: 'up to 200 printable ASCII characters' },
];

/**
 * The well-formed envelope headers as Submission fields. A malformed one is left out, so no evidence keeps it, and
 * named in `malformed`: the refusal once the sender has authenticated.
 */
function envelopeFields(req: IncomingMessage): { fields: Partial<Pick<Submission, EnvelopeField>>; malformed?: string } {
  const fields: Partial<Pick<Submission, EnvelopeField>> = {};
  let malformed: string | undefined;
  for (const { name, field, valid, rule, absent } of headerShapes) {
    const value = header(req, name);
    if (value === undefined) {
      if (absent !== undefined) fields[field] = absent;
    } else if (valid(value)) {
      fields[field] = value;
    } else {
      malformed ??= `header ${name} must be ${rule}`;
    }
  }
  return { fields, malformed };
}

export function mountRestInbound(router: Router, options: RestInboundOptions): void {
  const { registry, intake } = options;
  const sealFor = hubSeal(options.signing);

  router.add('POST', messagePath, async (req: IncomingMessage, res: ServerResponse) => {
    const { fields, malformed } = envelopeFields(req);
    const partial: Partial<Submission> & { payload: Buffer } = { protocol: 'rest', payload: Buffer.alloc(0), ...fields };
    let accepted: Awaited<ReturnType<Intake['accept']>>;
    try {
      const peer = await authenticate(req, registry, options.trust);
      partial.from = peer.partner.id;
      if (malformed) throw new SwxError('SWX_BAD_REQUEST', malformed);
      // The signature covers Content-Digest, so it is checked before any of the body is read: a request that is not
      // signed by the agency on the connection holds no memory. Every Swx-* header present must be covered.
      const { verified, signer } = verifySignature(req, peer, registry, options.clockSkewSeconds, requestComponents(req.headers));
      await admit(options.trust, signer, 'agency-signing', 'the signing certificate');
      partial.signature = signatureInfo(verified, registry.keyByThumbprint(verified.keyId)?.certificate.toString());
      // Swx-To is absent on a message to a topic or channel; intake says when a service needs it.
      if (!partial.service || !partial.contentType) throw new SwxError('SWX_BAD_REQUEST', 'Swx-Service and Content-Type are required');
      const digestHeader = header(req, 'content-digest');
      const claim = options.budget.claim(peer.partner.id, res);
      let peeked: Buffer | undefined;
      if (streamsToStore(req, partial.contentType, options.payloads)) {
        // Over the inline limit (or of undeclared length, past it) and judged without its bytes: written to the
        // Object Store as it arrives, never held whole. It is in flight all the same, so it claims from the budget
        // what it holds at once.
        const bounded = boundedBody(req, options.maxStreamedBodyBytes, claim, receiveHolds);
        const { whole, body } = undeclaredLength(req) ? await peekBody(bounded, options.payloads.inlineLimit) : { body: bounded };
        if (whole) peeked = whole;
        else partial.stored = await options.payloads.receive(body, contentDigestHashes(digestHeader));
      }
      if (partial.stored) {
        if (!checkContentDigestWith(digestHeader, partial.stored.digest)) {
          throw new SwxError('SWX_DIGEST_MISMATCH', 'Content-Digest (sha-256 or sha-512) does not match the body');
        }
      } else {
        partial.payload = peeked ?? await readBody(req, options.maxBodyBytes, claim);
        if (!checkContentDigest(digestHeader, partial.payload)) {
          throw new SwxError('SWX_DIGEST_MISMATCH', 'Content-Digest (sha-256 or sha-512) does not match the body');
        }
        partial.payloadSignature = await checkSignedPayload(partial.payload, partial.contentType, peer.partner.id, {
          verifiers: options.payloadVerifiers, keyByThumbprint: (print) => registry.keyByThumbprint(print), trust: options.trust,
        });
        if (isJsonMediaType(partial.contentType)) readJson(partial.payload);
      }
      accepted = await intake.accept(partial as Submission);
      messagesTotal.inc({ stage: 'received', outcome: accepted.duplicate ? 'duplicate' : 'accepted', code: '' });
    } catch (error) {
      if (!(error instanceof SwxError)) log.error({ err: error, from: partial.from, id: partial.id }, 'message not accepted: internal error');
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not accept this message; retry', { cause: error });
      messagesTotal.inc({ stage: 'received', outcome: 'rejected', code: swx.code });
      // Before the signature checked out, the claimed message id is the sender's word only: evidence it under a
      // fresh id, so an unauthenticated request can never add records to another message's evidence.
      const claimed = partial.signature ? {} : { id: undefined, conversationId: undefined, claimedId: partial.id };
      const id = await intake.reject({ ...partial, ...claimed }, swx).catch(() => undefined);
      if (partial.stored) await options.payloads.discard(partial.stored).catch((discardError) => log.warn({ err: discardError, ref: partial.stored?.payloadRef }, 'a refused body could not be removed'));
      sendProblem(res, swx, id ? { messageId: id } : {}, sealFor(id));
      return;
    }
    // Outside the try: the message is accepted whatever happens to its receipt, so it is never evidenced as refused.
    sendJson(res, 202, { id: accepted.id, conversationId: accepted.conversationId, duplicate: accepted.duplicate }, {}, sealFor(accepted.id));
  });
}

/**
 * Whether a body goes to the Object Store as it arrives: one declared over the inline limit, or of undeclared length
 * (chunked) once it passes it, whose checks do not need it whole (JSON is parsed, a payload that may carry its own
 * signature is verified). Everything else is read within the in-flight budget.
 */
function streamsToStore(req: IncomingMessage, contentType: string, payloads: Payloads): boolean {
  const large = undeclaredLength(req) || Number(req.headers['content-length']) > payloads.inlineLimit;
  return large && !isJsonMediaType(contentType) && !maySignPayload(contentType);
}

/** The RFC 9421 signature of a request, by a key of the partner that authenticated the TLS connection. */
export function verifySignature(req: IncomingMessage, peer: PartnerKey, registry: Registry, skew: number, required: string[]): { verified: Verified; signer: PartnerKey } {
  let foreignKey: string | undefined;
  let signer: PartnerKey | undefined;
  try {
    const verified = verify({ method: req.method, targetUri: `https://${req.headers.host}${req.url}`, headers: req.headers }, {
      required,
      maxSkewSeconds: skew,
      key: (keyId, declared) => {
        signer = registry.keyByThumbprint(keyId);
        if (!signer || signer.partner.id !== peer.partner.id) {
          foreignKey = keyId;
          return undefined;
        }
        return registry.verificationKey(keyId, peer.partner.id, declared);
      },
    });
    return { verified, signer: signer! };
  } catch (error) {
    if (foreignKey !== undefined) {
      throw new SwxError('SWX_SIG_KEY_MISMATCH', `keyid ${foreignKey} is not a certificate of ${peer.partner.id}, who authenticated the connection`);
    }
    if (error instanceof HttpSigError) {
      throw new SwxError(sigErrorCodes[error.reason] ?? 'SWX_SIG_INVALID', error.message);
    }
    throw error;
  }
}
