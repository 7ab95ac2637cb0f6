// Writing a SOAP reply: signed as the sender (the hub, or a provider) whenever the key works, faults included, so that
// the receiver can hold the sender to every answer.
import type { ServerResponse } from 'node:http';
import { SwxError } from '../../engine/errors.ts';
import { retryAfter } from '../../engine/http.ts';
import { log } from '../../engine/log.ts';
import type { SoapVersion } from './contract.ts';
import { buildEnvelope, faultStatus, faultXml, soapContentType, writeSignedEnvelope, type SoapSigner } from './soap.ts';

async function send(res: ServerResponse, version: SoapVersion, status: number, bodyXml: string, signer: SoapSigner, headers: Record<string, string> = {}): Promise<void> {
  let body: string;
  try {
    body = writeSignedEnvelope(version, bodyXml, signer);
  } catch (error) {
    // An unsigned fault still tells the sender what went wrong; an answer is never sent unsigned.
    if (status === 200) throw error;
    log.error({ err: error }, 'SOAP fault could not be signed; sent unsigned');
    body = buildEnvelope(version, bodyXml);
  }
  if (res.headersSent) return;
  // A request whose body was not read to its end (too large) is not waited for: the reply closes the connection.
  const unread = res.req && !res.req.complete;
  res.writeHead(status, {
    'content-type': soapContentType(version),
    'content-length': Buffer.byteLength(body),
    ...headers,
    ...(unread ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** `bodyXml` in exclusive-c14n form (messages.ts answerXml writes it so): it is signed as written. */
export function sendAnswer(res: ServerResponse, version: SoapVersion, bodyXml: string, signer: SoapSigner): Promise<void> {
  return send(res, version, 200, bodyXml, signer);
}

export function sendFault(res: ServerResponse, version: SoapVersion, error: SwxError, signer: SoapSigner, messageId?: string): Promise<void> {
  return send(res, version, faultStatus(version, error.code), faultXml(version, error, messageId), signer, retryAfter(error));
}
