// REST queries (即時查證): POST /v1/query/<dataset> with `{ "keys": {...}, "provider"?: "TFDA" }`, over mutual TLS
// and signed like a message (RFC 9421 over a Content-Digest); the answer is the hub's signed 200
// `{ queryId, dataset, provider, found, record?, answeredAt }`, or a problem reply with the SWX_* code.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkContentDigest, signatureInfo } from '../../engine/httpsig.ts';
import type { BodyBudget } from '../../engine/budget.ts';
import { SwxError } from '../../engine/errors.ts';
import { header, readBody, readJson, sendJson, sendProblem, type Router } from '../../engine/http.ts';
import { messageIdPattern } from '../../engine/envelope.ts';
import { queryIdOf, type QueryRequest, type QueryService, type ReplayGuard, type RefusedQuery } from '../../engine/query.ts';
import { partnerId, type Registry } from '../../engine/registry.ts';
import { malformedDataset, wellFormedDataset } from '../../engine/catalogue.ts';
import type { CertificateCheck } from '../../engine/trust/index.ts';
import { admit, authenticate } from '../../engine/peer.ts';
import { verifySignature } from './inbound.ts';
import { envelopeHeaders, queryComponents, queryPath } from './contract.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { hubSeal } from './seal.ts';

export interface RestQueryOptions {
  registry: Registry;
  trust: CertificateCheck;
  queries: QueryService;
  replay: ReplayGuard;
  signing: HubIdentity['signing'];
  maxBodyBytes: number;
  budget: BodyBudget;
  /** How old a request's signature may be; requests are remembered this long to refuse replays. */
  freshnessSeconds: number;
}

export function mountRestQueries(router: Router, options: RestQueryOptions): void {
  const sealFor = hubSeal(options.signing);
  router.add('POST', `${queryPath}/:dataset`, async (req: IncomingMessage, res: ServerResponse, params) => {
    const contentType = header(req, 'content-type') ?? '';
    const claimedId = header(req, envelopeHeaders.messageId);
    const dataset = wellFormedDataset(params.dataset);
    const refused: RefusedQuery = {
      protocol: 'rest', dataset, raw: Buffer.alloc(0), contentType,
      claimedId: claimedId !== undefined && messageIdPattern.test(claimedId) ? claimedId : undefined,
    };
    let request: QueryRequest;
    try {
      const peer = await authenticate(req, options.registry, options.trust);
      refused.asker = peer.partner.id;
      if (!dataset) throw malformedDataset();
      if (claimedId !== undefined && !refused.claimedId) throw new SwxError('SWX_BAD_REQUEST', `header ${envelopeHeaders.messageId} must be 1-128 characters of letters, digits and . _ : @ -`);
      // As for messages: the signature (over Content-Digest and every Swx-* header) before any of the body is read.
      const { verified, signer } = verifySignature(req, peer, options.registry, options.freshnessSeconds, queryComponents(req.headers));
      await admit(options.trust, signer, 'agency-signing', 'the signing certificate');
      refused.raw = await readBody(req, options.maxBodyBytes, options.budget.claim(peer.partner.id, res));
      if (!checkContentDigest(header(req, 'content-digest'), refused.raw)) {
        throw new SwxError('SWX_DIGEST_MISMATCH', 'Content-Digest (sha-256 or sha-512) does not match the body');
      }
      const signature = signatureInfo(verified, signer.certificate.toString());
      refused.signature = signature;
      refused.id = claimedId;
      // Keyed on what was signed (the signature base), not on how the Signature header is written: another label,
      // an added member or an ECDSA (r, n - s) re-encoding of the same signature is the same request.
      const replayKey = `rest:${verified.keyId}:${createHash('sha256').update(verified.base).digest('base64url')}`;
      if (!options.replay.claim(replayKey)) {
        throw new SwxError('SWX_REPLAY', 'this signed request was already received; sign each query afresh');
      }
      const body = readJson(refused.raw) as { keys?: unknown; provider?: unknown };
      if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((name) => name !== 'keys' && name !== 'provider')) {
        throw new SwxError('SWX_BAD_REQUEST', 'the body must be { "keys": {...}, "provider"?: "..." } and nothing else');
      }
      if (body.provider !== undefined && !partnerId.safeParse(body.provider).success) throw new SwxError('SWX_BAD_REQUEST', 'provider must be an agency id (upper-case letters, digits and -)');
      request = {
        ...(claimedId ? { id: claimedId } : {}),
        asker: peer.partner.id,
        dataset,
        ...(body.provider !== undefined ? { provider: body.provider as string } : {}),
        keys: body.keys as Record<string, string>,
        protocol: 'rest',
        raw: refused.raw,
        contentType,
        signature,
        replayKey,
      };
    } catch (error) {
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not read this query; retry', { cause: error });
      const id = await options.queries.refuse(refused, swx).catch(() => undefined);
      sendProblem(res, swx, id ? { queryId: id } : {}, sealFor(id));
      return;
    }
    try {
      const answer = await options.queries.ask(request);
      sendJson(res, 200, {
        queryId: answer.id, dataset: answer.dataset, provider: answer.provider, found: answer.found,
        ...(answer.record ? { record: answer.record } : {}), answeredAt: answer.answeredAt,
      }, {}, sealFor(answer.id));
    } catch (error) {
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not complete this query; retry', { cause: error });
      const id = queryIdOf(error);
      sendProblem(res, swx, id ? { queryId: id } : {}, sealFor(id));
    }
  });
}
