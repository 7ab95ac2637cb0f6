// SOAP inbound for the query service: agencies fetch a dataset's WSDL and ask queries over SOAP 1.1 or 1.2, mutual TLS
// and WS-Security. The TLS certificate names the asker; the BinarySecurityToken must be a certificate of that same
// agency. Every answer and fault goes back signed by the hub, in the SOAP version asked in.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { malformedDataset, wellFormedDataset, type Catalogue } from '../../engine/catalogue.ts';
import { messageIdPattern } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import { header, readBody, sendProblem, type Router } from '../../engine/http.ts';
import { log } from '../../engine/log.ts';
import { admit, authenticate } from '../../engine/peer.ts';
import { checkWsSecurity, type CertificateCheck, type VerifyXml } from '../../engine/trust/index.ts';
import { queryIdOf, type QueryRequest, type QueryService, type RefusedQuery, type ReplayGuard } from '../../engine/query.ts';
import type { Registry } from '../../engine/registry.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';
import { elementChildren, elementPath, textOf } from '../../engine/xml/elements.ts';
import { queryPath, soapAction, wsaNamespace, type SoapVersion } from './contract.ts';
import { answerXml, readQuery } from './messages.ts';
import { sendAnswer, sendFault } from './reply.ts';
import { readSoap, versionOfContentType, type SoapSigner } from './soap.ts';
import { wsdlFor } from './wsdl.ts';

export interface SoapInboundOptions {
  registry: Pick<Registry, 'keyByThumbprint'>;
  /** Judges the TLS client and signing certificates: path to a trust anchor, validity, key usage, revocation. */
  trust: CertificateCheck;
  catalogue: Pick<Catalogue, 'dataset'>;
  queries: QueryService;
  replay: ReplayGuard;
  /** The hub's signing key and certificate: every answer and fault is signed with them. */
  hub: SoapSigner;
  /** engine/trust's verifyXml (default) or the signature pool's. */
  verifyXml?: VerifyXml;
  maxBodyBytes: number;
  clockSkewSeconds: number;
  /** How old a request's wsu:Created may be (default 300 s). */
  freshnessSeconds?: number;
  /** The origin agencies reach this server at (SWX_PUBLIC_URL), the address in every WSDL: never the request's Host. */
  publicUrl(): string;
}


/** wsa:MessageID as the asker's request id, only when the signature covers it (else it is anyone's word). */
function signedMessageId(headerBlocks: XmlElement[], signedHeaders: string[]): string | undefined {
  const block = headerBlocks.find((element) => element.namespace === wsaNamespace && element.localName === 'MessageID');
  if (!block || !signedHeaders.includes(elementPath(block))) return undefined;
  const id = textOf(block).trim();
  if (!messageIdPattern.test(id)) throw new SwxError('SWX_BAD_REQUEST', 'wsa:MessageID must be 1-128 characters of letters, digits and . _ : @ -');
  return id;
}

export function mountSoapQueries(router: Router, options: SoapInboundOptions): void {
  router.add('GET', '/ws/query/:dataset', (req: IncomingMessage, res: ServerResponse, params) => {
    const wsdlPath = params.dataset!.endsWith('.wsdl');
    const id = wsdlPath ? params.dataset!.slice(0, -'.wsdl'.length) : params.dataset!;
    const query = (req.url ?? '').split('?')[1];
    if (!wsdlPath && query?.toLowerCase() !== 'wsdl') throw new SwxError('SWX_BAD_REQUEST', 'GET serves the WSDL only: add ?wsdl');
    const dataset = options.catalogue.dataset(id);
    if (!dataset) throw new SwxError('SWX_UNKNOWN_DATASET', `no dataset ${JSON.stringify(id.slice(0, 80))} in the catalogue`);
    const text = wsdlFor(dataset, `${options.publicUrl()}${queryPath(dataset.id)}`);
    res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });

  router.add('POST', '/ws/query/:dataset', async (req: IncomingMessage, res: ServerResponse, params) => {
    const contentType = header(req, 'content-type') ?? '';
    let version: SoapVersion = versionOfContentType(contentType) ?? '1.1';
    const refused: RefusedQuery = { raw: Buffer.alloc(0), protocol: 'soap', contentType, dataset: wellFormedDataset(params.dataset) };
    let asked = false;
    let request: QueryRequest | undefined;
    try {
      const peer = await authenticate(req, options.registry, options.trust);
      refused.asker = peer.partner.id;
      if (!refused.dataset) throw malformedDataset();
      const dataset = options.catalogue.dataset(refused.dataset);
      if (!dataset) throw new SwxError('SWX_UNKNOWN_DATASET', `no dataset ${refused.dataset} in the catalogue`);
      refused.raw = await readBody(req, options.maxBodyBytes);
      const message = readSoap(refused.raw, contentType, header(req, 'soapaction'));
      version = message.version;
      if (message.action !== soapAction(dataset.id)) {
        throw new SwxError('SWX_SOAP_ACTION', `the action must be ${soapAction(dataset.id)}, not ${JSON.stringify((message.action ?? '(none)').slice(0, 120))}`);
      }
      const security = await checkWsSecurity(message, {
        replay: options.replay,
        clockSkewSeconds: options.clockSkewSeconds,
        ...(options.verifyXml ? { verifyXml: options.verifyXml } : {}),
        ...(options.freshnessSeconds !== undefined ? { freshnessSeconds: options.freshnessSeconds } : {}),
      });
      const signer = options.registry.keyByThumbprint(security.thumbprint);
      if (!signer || signer.partner.id !== peer.partner.id) {
        throw new SwxError('SWX_SIG_KEY_MISMATCH', `the BinarySecurityToken ${security.thumbprint} is not a certificate of ${peer.partner.id}, who authenticated the connection`);
      }
      await admit(options.trust, signer, 'agency-signing', 'the signing certificate');
      refused.signature = security.signature;
      const id = signedMessageId(elementChildren(message.header!), security.signedHeaders);
      const query = readQuery(message.payload, dataset.keys);
      request = {
        ...(id ? { id } : {}),
        asker: peer.partner.id,
        dataset: dataset.id,
        ...(query.provider !== undefined ? { provider: query.provider } : {}),
        keys: query.keys,
        protocol: 'soap',
        raw: refused.raw,
        contentType,
        signature: security.signature,
        replayKey: security.replayKey,
      };
      asked = true;
      const answer = await options.queries.ask(request);
      await sendAnswer(res, version, answerXml({
        queryId: answer.id,
        dataset: answer.dataset,
        provider: answer.provider,
        found: answer.found,
        answeredAt: answer.answeredAt,
        ...(answer.found && answer.record ? { record: answer.record } : {}),
      }), options.hub);
    } catch (error) {
      if (!(error instanceof SwxError)) log.error({ err: error, asker: refused.asker, dataset: params.dataset }, 'SOAP query failed: internal error');
      const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not handle this query; it was logged');
      // A query the pipeline took is evidenced there; one refused before is evidenced here, under a fresh id.
      const messageId = asked ? queryIdOf(error) ?? request?.id : await options.queries.refuse(refused, swx).catch((failure) => {
        log.error({ err: failure }, 'refused SOAP query could not be evidenced');
        return undefined;
      });
      await sendFault(res, version, swx, options.hub, messageId).catch((failure) => {
        log.error({ err: failure }, 'SOAP fault could not be sent');
        sendProblem(res, swx);
      });
    }
  });
}
