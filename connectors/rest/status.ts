// REST message status: GET /v1/messages/<id> over mutual TLS, signed (RFC 9421) over the method and target URI. The
// sender gets what became of its message at each receiver with their signed receipts; a receiver (naming the sender
// with `?from=`) gets its own entry. The answer is the hub's signed 200, or a signed problem reply; a message the
// asker may not see is SWX_NOT_FOUND, as an unknown one is.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageIdPattern } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { sendJson, sendProblem, type Router } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import { log } from '../../engine/log.ts';
import { admit, authenticate } from '../../engine/peer.ts';
import { partnerId, type Registry } from '../../engine/registry.ts';
import type { Messages } from '../../engine/status.ts';
import type { CertificateCheck } from '../../engine/trust/index.ts';
import { messagePath, statusComponents } from './contract.ts';
import { verifySignature } from './inbound.ts';
import { hubSeal } from './seal.ts';

export interface RestStatusOptions {
  registry: Registry;
  trust: CertificateCheck;
  messages: Messages;
  signing: HubIdentity['signing'];
  clockSkewSeconds: number;
}

export function mountRestStatus(router: Router, options: RestStatusOptions): void {
  const sealFor = hubSeal(options.signing);
  router.add('GET', `${messagePath}/:id`, async (req: IncomingMessage, res: ServerResponse, params) => {
    const id = messageIdPattern.test(params.id!) ? params.id : undefined;
    try {
      const peer = await authenticate(req, options.registry, options.trust);
      const { signer } = verifySignature(req, peer, options.registry, options.clockSkewSeconds, statusComponents(req.headers));
      await admit(options.trust, signer, 'agency-signing', 'the signing certificate');
      if (!id) throw new SwxError('SWX_BAD_REQUEST', 'a message id is 1-128 characters of letters, digits and . _ : @ -');
      const from = new URL(req.url ?? '/', 'https://hub').searchParams.get('from') ?? peer.partner.id;
      if (!partnerId.safeParse(from).success) throw new SwxError('SWX_BAD_REQUEST', 'from must be the sender\'s agency id (upper-case letters, digits and -)');
      const status = await options.messages.status(from, id, peer.partner.id);
      if (!status) throw new SwxError('SWX_NOT_FOUND', `no message ${id} from ${from} that you sent or receive`);
      sendJson(res, 200, status, {}, sealFor(id));
    } catch (error) {
      if (!(error instanceof SwxError)) log.error({ err: error, id }, 'message status not answered: internal error');
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not read this message\'s state; retry', { cause: error });
      sendProblem(res, swx, {}, sealFor(id));
    }
  });
}
