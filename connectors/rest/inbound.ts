// REST inbound: POST /v1/messages over mutual TLS, signed with HTTP Message Signatures over a Content-Digest.
// The TLS certificate names the partner; the signature's keyid must be a certificate of that same partner.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkContentDigest, HttpSigError, verify, type Verified } from '../../engine/httpsig.ts';
import { SwxError, type ErrorCode } from '../../engine/errors.ts';
import { peerCertificate, readBody, sendJson, sendProblem, type Router } from '../../engine/http.ts';
import { messagesTotal } from '../../engine/metrics.ts';
import { thumbprint } from '../../engine/pki/index.ts';
import type { Registry, PartnerKey } from '../../engine/registry.ts';
import type { Intake, Submission } from '../../pipelines/intake.ts';
import { algorithmFor, envelopeHeaders, messagePath, requiredRequestComponents } from './contract.ts';

export interface RestInboundOptions {
  registry: Registry;
  intake: Intake;
  maxBodyBytes: number;
  clockSkewSeconds: number;
}

const sigErrorCodes: Record<string, ErrorCode> = {
  missing: 'SWX_SIG_MISSING',
  expired: 'SWX_SIG_EXPIRED',
  future: 'SWX_SIG_EXPIRED',
};

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The partner behind the TLS client certificate, computed once per connection. */
const peerCache = new WeakMap<object, PartnerKey | null>();
function authenticate(req: IncomingMessage, registry: Registry): PartnerKey {
  let known = peerCache.get(req.socket);
  if (known === undefined) {
    const der = peerCertificate(req);
    if (!der) throw new SwxError('SWX_AUTH_REQUIRED', 'present your agency certificate as the TLS client certificate');
    known = registry.keyByThumbprint(thumbprint(der)) ?? null;
    peerCache.set(req.socket, known);
  }
  if (!known || !known.partner.enabled) throw new SwxError('SWX_AUTH_UNKNOWN_CERT', 'the TLS client certificate is not registered to any enabled partner');
  return known;
}

export function mountRestInbound(router: Router, options: RestInboundOptions): void {
  const { registry, intake } = options;

  router.add('POST', messagePath, async (req: IncomingMessage, res: ServerResponse) => {
    const partial: Partial<Submission> & { payload: Buffer } = {
      protocol: 'rest',
      payload: Buffer.alloc(0),
      to: header(req, envelopeHeaders.to),
      service: header(req, envelopeHeaders.service),
      action: header(req, envelopeHeaders.action) ?? 'deliver',
      id: header(req, envelopeHeaders.messageId),
      conversationId: header(req, envelopeHeaders.conversationId),
      refToMessageId: header(req, envelopeHeaders.refTo),
      contentType: header(req, 'content-type'),
    };
    try {
      const peer = authenticate(req, registry);
      partial.from = peer.partner.id;
      partial.payload = await readBody(req, options.maxBodyBytes);
      const verified = verifySignature(req, peer, registry, options.clockSkewSeconds);
      partial.signature = {
        scheme: 'http-message-signatures',
        algorithm: verified.alg,
        keyId: verified.keyId,
        certThumbprint: verified.keyId,
        covered: verified.covered,
        value: `${verified.signatureInput}\n${verified.signature}`,
        createdAt: new Date(verified.created * 1000).toISOString(),
      };
      if (!checkContentDigest(header(req, 'content-digest'), partial.payload)) {
        throw new SwxError('SWX_DIGEST_MISMATCH', 'Content-Digest (sha-256 or sha-512) does not match the body');
      }
      if (!partial.to || !partial.service || !partial.contentType) {
        throw new SwxError('SWX_BAD_REQUEST', 'Swx-To, Swx-Service and Content-Type are required');
      }
      if (/^application\/([a-z.+-]*\+)?json\b/i.test(partial.contentType)) {
        try { JSON.parse(partial.payload.toString('utf8')); } catch (error) {
          throw new SwxError('SWX_BAD_REQUEST', `Content-Type says JSON but the body is not: ${(error as Error).message}`);
        }
      }
      const accepted = await intake.accept(partial as Submission);
      messagesTotal.inc({ stage: 'received', outcome: accepted.duplicate ? 'duplicate' : 'accepted', code: '' });
      sendJson(res, 202, { id: accepted.id, conversationId: accepted.conversationId, duplicate: accepted.duplicate }, {
        [envelopeHeaders.messageId]: accepted.id,
      });
    } catch (error) {
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not accept this message; retry', { cause: error });
      messagesTotal.inc({ stage: 'received', outcome: 'rejected', code: swx.code });
      const id = await intake.reject(partial, swx).catch(() => undefined);
      sendProblem(res, swx, id ? { messageId: id } : {});
    }
  });
}

function verifySignature(req: IncomingMessage, peer: PartnerKey, registry: Registry, skew: number): Verified {
  let foreignKey: string | undefined;
  try {
    return verify({ method: req.method, targetUri: `https://${req.headers.host}${req.url}`, headers: req.headers }, {
      required: requiredRequestComponents,
      maxSkewSeconds: skew,
      key: (keyId, declared) => {
        const signer = registry.keyByThumbprint(keyId);
        if (!signer || signer.partner.id !== peer.partner.id) {
          foreignKey = keyId;
          return undefined;
        }
        const alg = algorithmFor(signer.publicKey, declared);
        return alg ? { key: signer.publicKey, alg } : undefined;
      },
    });
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
