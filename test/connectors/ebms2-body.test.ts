// The ebMS 2.0 HTTP body as the connector reads it: multipart/related into the SOAP part and its payloads, a bare
// text/xml envelope, and every fault named — a body of another type (MimeProblem), truncated MIME (the SOAP part kept
// when it arrived, to address the MessageError), a body past the byte limit or with too many parts (SWX_TOO_LARGE).
// And the parties: the other party of an agreement found by the hub's own PartyIds.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readEbmsBody, UnreadBody } from '../../connectors/ebms2/body.ts';
import { EbmsRefusal, ebmsMultipart, otherParty, parseCpa } from '../../connectors/ebms2/index.ts';

const cpaFolder = fileURLToPath(new URL('../../../shared/conformance/cpa/', import.meta.url));
const envelope = '<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Header/><SOAP:Body/></SOAP:Envelope>';

async function bytesOf(parts: { contentId: string; contentType: string; body: Buffer }[]) {
  const multipart = ebmsMultipart(envelope, parts, { envelopeId: 'soap-1@test' });
  const chunks: Buffer[] = [];
  for await (const chunk of multipart.body) chunks.push(chunk as Buffer);
  return { body: Buffer.concat(chunks), contentType: multipart.contentType };
}

const source = (body: Buffer) => (async function* () { yield body; })();

async function refusal(read: Promise<unknown>): Promise<unknown> {
  try {
    await read;
  } catch (error) {
    return error;
  }
  assert.unreachable('the body was read');
  return undefined;
}

test('a multipart/related body: the SOAP part (start) and each payload with its Content-ID and headers', async () => {
  const { body, contentType } = await bytesOf([{ contentId: 'p1', contentType: 'application/xml', body: Buffer.from('<a/>') }, { contentId: 'p2', contentType: 'application/octet-stream', body: Buffer.from([0, 1, 2]) }]);
  const parts = await readEbmsBody(source(body), contentType, 1024 * 1024);
  assert.is(parts.root.body.toString('utf8'), envelope);
  assert.is(parts.root.contentId, 'soap-1@test');
  assert.is(parts.attachments.length, 2);
  assert.is(parts.attachments[0]!.contentId, 'p1');
  assert.is(parts.attachments[0]!.headers['content-type'], 'application/xml');
  assert.equal([...parts.attachments[1]!.body], [0, 1, 2]);
});

test('a bare text/xml envelope reads as a message with no payload', async () => {
  const parts = await readEbmsBody(source(Buffer.from(envelope)), 'text/xml; charset=utf-8', 1024);
  assert.is(parts.root.body.toString('utf8'), envelope);
  assert.is(parts.attachments.length, 0);
});

test('faults: another media type, truncated MIME (SOAP part kept), past the byte limit, too many parts', async () => {
  const other = await refusal(readEbmsBody(source(Buffer.from('{}')), 'application/json', 1024));
  assert.instance(other, EbmsRefusal);
  assert.is((other as EbmsRefusal).errors[0]!.errorCode, 'MimeProblem');

  const { body, contentType } = await bytesOf([{ contentId: 'p1', contentType: 'application/xml', body: Buffer.from('<a>' + 'x'.repeat(200) + '</a>') }]);
  const cut = await refusal(readEbmsBody(source(body.subarray(0, body.length - 100)), contentType, 1024 * 1024));
  assert.instance(cut, UnreadBody);
  assert.is((cut as UnreadBody).error.code, 'SWX_BAD_REQUEST');
  assert.is((cut as UnreadBody).root?.body.toString('utf8'), envelope, 'the SOAP part that arrived before the cut');

  const large = await refusal(readEbmsBody(source(body), contentType, 200));
  assert.instance(large, UnreadBody);
  assert.is((large as UnreadBody).error.code, 'SWX_TOO_LARGE');

  const crowded = await bytesOf(Array.from({ length: 1100 }, (_, index) => ({ contentId: `p${index}`, contentType: 'text/plain', body: Buffer.from('x') })));
  const many = await refusal(readEbmsBody(source(crowded.body), crowded.contentType, 16 * 1024 * 1024));
  assert.instance(many, UnreadBody);
  assert.is((many as UnreadBody).error.code, 'SWX_TOO_LARGE');
});

test('the other party of an agreement by the hub\'s PartyIds; neither or both named is refused naming the parties', () => {
  const cpa = parseCpa(readFileSync(`${cpaFolder}ebIOT-CPAT1.CECID.I3T.xml`));
  assert.is(otherParty(cpa, [{ id: 'CECID', type: 'ebIOT' }]).partyIds[0]!.id, 'I3T');
  assert.is(otherParty(cpa, [{ id: 'I3T', type: 'ebIOT' }]).partyIds[0]!.id, 'CECID');
  assert.throws(() => otherParty(cpa, [{ id: 'CECID', type: 'other' }]), /name neither of its parties; name the partner's with --party \(CECID or I3T\)/);
  assert.throws(() => otherParty(cpa, [{ id: 'CECID', type: 'ebIOT' }, { id: 'I3T', type: 'ebIOT' }]), /name both of its parties/);
});

test.run();
