// Reception awareness: the retry schedule keeps the MessageId and ends in EBMS:0301 after the last retry; a receipt is
// judged against the references the message was signed with (EBMS:0302 when it does not copy them); a repeated
// message within the duplicate window is answered with the receipt stored for the first, and not after the window.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  awaitSchedule, checkReceipt, errorsEnd, nextStep, readAs4Message, receiptEnvelope, signAs4, signedReferences, userMessageEnvelope, type SignalMessage,
} from '../../connectors/as4/index.ts';
import { trustFixture } from '../helpers/trust-fixture.ts';

const fixture = await trustFixture();
const t0 = Date.parse('2026-12-01T00:00:00Z');
const policy = { retrySeconds: [60, 300] };

test('the retry schedule: resends with the same MessageId at each wait, then a last wait, then EBMS:0301', () => {
  const sent = { messageId: 'm@x', attempts: 1, firstSentAt: t0, lastSentAt: t0 };
  assert.equal(nextStep(sent, policy, t0), { kind: 'resend', messageId: 'm@x', at: t0 + 60_000 });
  const second = { ...sent, attempts: 2, lastSentAt: t0 + 60_000 };
  assert.equal(nextStep(second, policy, t0 + 60_000), { kind: 'resend', messageId: 'm@x', at: t0 + 360_000 });
  const third = { ...sent, attempts: 3, lastSentAt: t0 + 360_000 };
  assert.equal(nextStep(third, policy, t0 + 400_000), { kind: 'wait', until: t0 + 660_000 });
  const failed = nextStep(third, policy, t0 + 660_000);
  assert.is(failed.kind, 'failed');
  if (failed.kind !== 'failed') return;
  assert.equal([failed.error.code, failed.error.shortDescription, failed.error.refToMessageInError], ['EBMS:0301', 'MissingReceipt', 'm@x']);
  assert.is(failed.error.detail, 'no receipt for m@x after 3 sends over 660 s');
  assert.is(nextStep({ ...sent, attempts: 1 }, { retrySeconds: [] }, t0).kind, 'failed');
});

const party = (id: string) => ({ partyIds: [{ id }], role: 'urn:r' });

async function exchange() {
  const written = userMessageEnvelope({ messageId: 'msg-7@customs.example', from: party('CUSTOMS'), to: party('BOFT'), collaboration: { service: { value: 's' }, action: 'a', conversationId: 'c' }, payloads: [] });
  // Signed once: every resend is these bytes, so the MessageId and the signature's references stay the same.
  const signed = await signAs4(written, { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem });
  const received = readAs4Message(Buffer.from(signed));
  const receipt = await signAs4(receiptEnvelope(received), { keyPem: fixture.ecdsa.keyPem, certPem: fixture.ecdsa.certPem });
  const references = signedReferences(readAs4Message(Buffer.from(signed)));
  return { signed, receipt, sent: { messageId: 'msg-7@customs.example', references } };
}

test('the schedule of a message whose receipt comes on its own: from its last send, not from when the wait ended; after the last send one attempt that sends nothing, then EBMS:0301', () => {
  const first = { messageId: 'm@x', attempts: 1, firstSentAt: t0, lastSentAt: t0 };
  // The delivery stage's own counts and clock are not the schedule's: the sends recorded with the message are.
  assert.equal(awaitSchedule(first, policy)(7, t0 - 1, t0 + 15_000), { kind: 'resend', at: t0 + 60_000 });
  const last = { ...first, attempts: 3, lastSentAt: t0 + 360_000 };
  assert.equal(awaitSchedule(last, policy)(3, t0, t0 + 360_000), { kind: 'resend', at: t0 + 660_000 }, 'the last wait runs for the receipt');
  const spent = awaitSchedule(last, policy)(4, t0, t0 + 660_000);
  assert.is(spent.kind, 'failed');
  if (spent.kind === 'failed') {
    assert.is(spent.code, 'SWX_RECEIPT_MISSING');
    assert.is(spent.detail, 'EBMS:0301 MissingReceipt: no receipt for m@x after 3 sends over 660 s');
  }
});

test('a receipt is held to what was signed: MessageId, and every reference copied with its digest', async () => {
  const { receipt, sent } = await exchange();
  assert.is(sent.references.length, 3);
  const signal = readAs4Message(Buffer.from(receipt)).message as SignalMessage;
  assert.is(checkReceipt(signal, sent, true), undefined);
  const other = checkReceipt(signal, { ...sent, messageId: 'msg-8@customs.example' }, true)!;
  assert.equal([other.code, other.shortDescription], ['EBMS:0302', 'InvalidReceipt']);
  assert.match(other.detail, /answers msg-7@customs.example, not msg-8@customs.example/);
  const changed = checkReceipt(signal, { ...sent, references: sent.references.map((r, i) => (i === 1 ? { ...r, digestValue: 'AAAA' } : r)) }, true)!;
  assert.match(changed.detail, /with another digest than was signed/);
  const more = checkReceipt(signal, { ...sent, references: [...sent.references, { uri: 'cid:extra@x', transforms: [], digestMethod: 'x', digestValue: 'y' }] }, true)!;
  assert.match(more.detail, /does not copy the signature's reference cid:extra@x/);
  const bare = { ...signal, receipt: { nonRepudiation: [], partIdentifiers: ['cid:p@x'], content: [] } };
  assert.is(checkReceipt(bare, sent, false), undefined);
  assert.match(checkReceipt(bare, sent, true)!.detail, /no non-repudiation information/);
});

test('an Error signal ends the message when it holds a failure, not for warnings only', () => {
  assert.is(errorsEnd([{ errorCode: 'EBMS:0006', severity: 'warning' }]), false);
  assert.is(errorsEnd([{ errorCode: 'EBMS:0006', severity: 'warning' }, { errorCode: 'EBMS:0101', severity: 'failure' }]), true);
});

test.run();
