// A reference SOAP provider, the agency-side counterpart of connectors/ws/outbound.ts, for tests and the demo: an HTTPS
// server (mutual TLS) that takes the hub's signed q:Query, checks the hub's WS-Security signature and its q:Context,
// and answers a q:Answer signed with the agency's key (or a signed fault).
import { createServer, type Server } from 'node:https';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { SwxError } from '../../engine/errors.ts';
import { contained, readBody, listen, close } from '../../engine/http.ts';
import { thumbprint } from '../../engine/pki/index.ts';
import type { ReplayGuard } from '../../engine/query.ts';
import { checkWsSecurity, type VerifyXml } from '../../engine/trust/index.ts';
import { elementChildren, elementPath } from '../../engine/xml/elements.ts';
import { queryNamespace, soapAction, type SoapVersion } from './contract.ts';
import { answerXml, readContext, readQuery } from './messages.ts';
import { sendAnswer, sendFault } from './reply.ts';
import { readSoap, versionOfContentType } from './soap.ts';

export type AnswerFunction = (dataset: string, keys: Record<string, string>, asker: string) =>
  Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;

export interface SoapProviderServerOptions {
  /** The agency's certificate and key: TLS server identity and signing key of its answers. */
  certPem: string;
  keyPem: string;
  /** CAs the hub's TLS client certificate must chain to. */
  caPem: string;
  /** The hub's signing certificate: only requests it signed are answered. */
  hubCertPem: string;
  answer: AnswerFunction;
  port?: number;
  host?: string;
  /** The agency's own id, put in q:Answer/q:provider (default: the q:provider of the query). */
  provider?: string;
  replay?: ReplayGuard;
  verifyXml?: VerifyXml;
  clockSkewSeconds?: number;
  maxBodyBytes?: number;
}

export interface SoapProviderServer {
  port: number;
  /** The URL to register as the `queryUrl` of the partner's `soap` endpoint. */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startSoapProvider(options: SoapProviderServerOptions): Promise<SoapProviderServer> {
  const hubPrint = thumbprint(options.hubCertPem);
  const signer = { keyPem: options.keyPem, certPem: options.certPem };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const contentType = String(req.headers['content-type'] ?? '');
    let version: SoapVersion = versionOfContentType(contentType) ?? '1.1';
    try {
      if (req.method !== 'POST') throw new SwxError('SWX_BAD_REQUEST', 'POST a signed q:Query');
      const message = readSoap(await readBody(req, options.maxBodyBytes ?? 1024 * 1024), contentType, String(req.headers.soapaction ?? ''));
      version = message.version;
      const security = await checkWsSecurity(message, {
        ...(options.replay ? { replay: options.replay } : {}),
        ...(options.verifyXml ? { verifyXml: options.verifyXml } : {}),
        ...(options.clockSkewSeconds !== undefined ? { clockSkewSeconds: options.clockSkewSeconds } : {}),
      });
      if (security.thumbprint !== hubPrint) throw new SwxError('SWX_SIG_KEY_MISMATCH', 'the request is not signed by the hub');
      const block = elementChildren(message.header!).find((element) => element.namespace === queryNamespace && element.localName === 'Context');
      if (!block || !security.signedHeaders.includes(elementPath(block))) throw new SwxError('SWX_BAD_REQUEST', 'the request needs a signed q:Context header');
      const context = readContext(block);
      if (message.action !== soapAction(context.dataset)) throw new SwxError('SWX_SOAP_ACTION', `the action must be ${soapAction(context.dataset)}`);
      const query = readQuery(message.payload);
      const record = await options.answer(context.dataset, query.keys, context.asker);
      await sendAnswer(res, version, answerXml({
        queryId: context.queryId,
        dataset: context.dataset,
        provider: options.provider ?? query.provider ?? '',
        found: record !== undefined,
        answeredAt: new Date().toISOString(),
        ...(record !== undefined ? { record } : {}),
      }), signer);
    } catch (error) {
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', `the provider failed: ${error instanceof Error ? error.message : String(error)}`);
      await sendFault(res, version, swx, signer);
    }
  };

  // A fault that cannot be sent closes the connection; nothing leaves the request.
  const server = createServer({ key: options.keyPem, cert: options.certPem, ca: options.caPem, requestCert: true, rejectUnauthorized: true }, contained(handle, (_req, res) => { res.destroy(); }));
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server as unknown as HttpServer, options.port ?? 0, host);
  return {
    port,
    url: `https://${host === '127.0.0.1' ? 'localhost' : host}:${port}/ws/query`,
    server,
    close: () => close(server as unknown as HttpServer),
  };
}
