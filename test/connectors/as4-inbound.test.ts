// The receiving side's message layer on what a partner's MSH sends: the HTTP body read as it streams (bare SOAP or
// multipart/related), the message typed, its signature held to the P-Mode's profile and to coverage (eb:Messaging
// and every payload part), the compressed payload inflated; and each refusal with its EBMS code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { checkAs4Security, decompress, EbmsError, readAs4Body, readAs4Message, type As4Message } from '../../connectors/as4/index.ts';
import type { XmlAttachment } from '../../engine/trust/index.ts';
import { collect, invoice, received, sendUserMessage } from '../helpers/as4.ts';
import { trustFixture } from '../helpers/trust-fixture.ts';

const fixture = await trustFixture();
const at = fixture.issuedAt;
const now = () => at.getTime() + 5_000;

/** The EbmsError a step is refused with; a step that passes fails the test. */
const refused = (promise: Promise<unknown>): Promise<EbmsError> => promise.then(
  () => { throw new Error('accepted'); },
  (error: unknown) => { assert.instance(error, EbmsError); return error as EbmsError; },
);

const check = (message: As4Message, attachments: XmlAttachment[], profile: 'eDelivery-AS4-1.15' | 'eDelivery-AS4-2.0', clock = now) =>
  checkAs4Security(message, { profile, attachments, now: clock });

test('an RSA message under eDelivery AS4 1.15 and an Ed25519 one under 2.0 pass, and the compressed payload inflates', async () => {
  const rsa = await received(await sendUserMessage(fixture.rsa, { at }));
  const result = await check(rsa.message, rsa.attachments, 'eDelivery-AS4-1.15');
  assert.is(result.certificatePem.replace(/\s/g, ''), fixture.rsa.certPem.replace(/\s/g, ''));
  const ed = await received(await sendUserMessage(fixture.ed25519, { at }));
  await check(ed.message, ed.attachments, 'eDelivery-AS4-2.0');
  const user = rsa.message.message;
  if (user.kind !== 'user') throw new Error('not a user message');
  const part = user.parts[0]!;
  const zipped = rsa.attachments.find((a) => part.location.kind === 'attachment' && a.contentId === part.location.contentId)!;
  assert.ok((await collect(decompress(Readable.from([zipped.body]), part))).equals(invoice));
});

test('refusals: another profile\'s algorithm (0103), a payload or eb:Messaging not signed, a changed part, a stale signature (0101)', async () => {
  const ed = await received(await sendUserMessage(fixture.ed25519, { at }));
  const policy = await refused(check(ed.message, ed.attachments, 'eDelivery-AS4-1.15'));
  assert.equal([policy.code, policy.refToMessageInError], ['EBMS:0103', 'msg-1@customs.example']);
  const partial = await received(await sendUserMessage(fixture.rsa, { at, signParts: (id) => id !== 'text@customs.example' }));
  const unsigned = await refused(check(partial.message, partial.attachments, 'eDelivery-AS4-1.15'));
  assert.equal([unsigned.code, unsigned.detail], ['EBMS:0101', 'the signature does not cover the payload <text@customs.example>']);
  const bare = await received(await sendUserMessage(fixture.rsa, { at, signMessaging: false }));
  assert.is((await refused(check(bare.message, bare.attachments, 'eDelivery-AS4-1.15'))).detail, 'the signature does not cover eb:Messaging');
  const good = await received(await sendUserMessage(fixture.rsa, { at }));
  const changed = good.attachments.map((a) => (a.contentId === 'text@customs.example' ? { ...a, body: Buffer.from('line one\nline 2\n') } : a));
  const digest = await refused(check(good.message, changed, 'eDelivery-AS4-1.15'));
  assert.equal([digest.code, digest.swxCode, digest.refToMessageInError], ['EBMS:0101', 'SWX_DIGEST_MISMATCH', 'msg-1@customs.example']);
  const stale = await refused(check(good.message, good.attachments, 'eDelivery-AS4-1.15', () => at.getTime() + 3_600_000));
  assert.equal([stale.code, stale.swxCode], ['EBMS:0101', 'SWX_SIG_EXPIRED']);
});

const stream = (body: string | Buffer) => (async function* () { yield Buffer.from(body); })();

test('the body: a bare SOAP envelope, and MIME that is not AS4 refused as EBMS:0007', async () => {
  const sent = await sendUserMessage(fixture.rsa, { at });
  const bare = await readAs4Body(stream(sent.xml), 'application/soap+xml; charset=UTF-8', 1 << 20);
  assert.equal([bare.envelope.toString(), bare.attachments.length], [sent.xml, 0]);
  // Read bare, its PartInfo name parts the body does not carry.
  assert.is((await refused(Promise.resolve().then(() => readAs4Message(bare.envelope, { attachments: [] })))).code, 'EBMS:0011');
  const cases: [string, string, RegExp][] = [
    ['text/plain', 'hello', /neither a SOAP envelope nor multipart\/related/],
    [sent.contentType.replace('application/soap+xml', 'text/plain'), sent.body.toString('latin1'), /type text\/plain is not a SOAP envelope's/],
    [sent.contentType, sent.body.toString('latin1').replace('Content-Type: application/soap+xml; charset=UTF-8', 'Content-Type: text/plain'), /the start part is text\/plain/],
    [sent.contentType, sent.body.toString('latin1').slice(0, 2000), /./],
    [sent.contentType, sent.body.toString('latin1').replace('Content-ID: <invoice@customs.example>\r\n', ''), /has no Content-ID/],
  ];
  for (const [type, body, detail] of cases) {
    const error = await refused(readAs4Body(stream(Buffer.from(body, 'latin1')), type, 1 << 20));
    assert.is(error.code, 'EBMS:0007', `${type}: ${error.detail}`);
    assert.match(error.detail, detail);
  }
  const large = await refused(readAs4Body(stream(sent.body), sent.contentType, 2048));
  assert.equal([large.code, large.swxCode], ['EBMS:0004', 'SWX_TOO_LARGE']);
});

test.run();
