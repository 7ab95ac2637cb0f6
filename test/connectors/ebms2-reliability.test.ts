// ebMS 2.0 reliable messaging over real messages: the conformance payload message as the message sent, Acknowledgments
// and MessageErrors written and signed by swx (and the real Acknowledgment of another message) as what comes back, the
// retry figures of the national health network's CPA.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { acknowledgmentXml, messageErrorXml, readEbmsMessage, signEbms, ebmsError, type EbmsMessage } from '../../connectors/ebms2/index.ts';
import { nextStep, received, receivedEntry, reception, sent, type Outstanding } from '../../connectors/ebms2/index.ts';
import { messageParts, parseEntity } from '../../engine/mime/index.ts';
import { verifyXml } from '../../engine/trust/index.ts';
import { trustFixture } from '../helpers/trust-fixture.ts';

const conformance = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const parts = messageParts(parseEntity(readFileSync(`${conformance}navikt-ebxml-processor/oppgjorsmelding/2023_08_29T12_56_58_328.msg`)));
const message = readEbmsMessage(parts.root.body, { attachments: parts.attachments, at: false });
const us = { partyIds: [{ id: '79768', type: 'HER' }] };
// nav-qass-35065.xml: Retries 4, RetryInterval PT720M.
const policy = { retries: 4, retryIntervalMs: 720 * 60_000 };
const t0 = Date.parse('2023-08-29T10:56:50Z');
const outstanding = (): Outstanding => sent({ messageId: message.header.messageId, signatureReferences: message.signatureReferences }, true, t0);

test('resent on RetryInterval with the same MessageId, Retries times, then a DeliveryFailure', () => {
  let state = outstanding();
  assert.equal(nextStep(state, policy, t0 + 1), { kind: 'wait', until: t0 + policy.retryIntervalMs });
  const times: number[] = [];
  for (let now = t0; ; now += policy.retryIntervalMs) {
    const step = nextStep(state, policy, now);
    if (step.kind === 'wait') continue;
    if (step.kind === 'fail') {
      assert.is(step.outstanding.failure!.errorCode, 'DeliveryFailure');
      assert.is(step.outstanding.state, 'failed');
      break;
    }
    assert.is(step.kind, 'resend');
    if (step.kind !== 'resend') return;
    state = step.outstanding;
    assert.is(state.messageId, message.header.messageId);
    times.push(now);
  }
  assert.is(times.length, policy.retries);
  assert.is(state.attempts, 1 + policy.retries);
  assert.equal(nextStep({ ...state, state: 'acknowledged' }, policy, t0 + 10 * policy.retryIntervalMs), { kind: 'done' });
});

test('no resend past the message\'s TimeToLive', () => {
  const state = sent({ messageId: 'm@x', timeToLive: new Date(t0 + 60_000).toISOString() }, false, t0);
  const step = nextStep(state, policy, t0 + policy.retryIntervalMs);
  assert.is(step.kind, 'fail');
  assert.match(step.kind === 'fail' ? step.outstanding.failure!.description : '', /TimeToLive/);
});

async function ackOf(acked: EbmsMessage) {
  const fixture = await trustFixture();
  const signed = await signEbms(acknowledgmentXml(acked, { from: us, receivedAt: new Date(t0 + 5_000) }), [], { keyPem: fixture.rsa.keyPem, certPem: fixture.rsa.certPem });
  const verdict = await verifyXml(signed.xml, { pinnedCertsPem: fixture.rsa.certPem, at: fixture.issuedAt });
  return { ack: readEbmsMessage(signed.xml, { at: false }), valid: verdict.valid, xml: signed.xml };
}

test('a signed Acknowledgment repeating the message\'s signature references closes it; anything less does not', async () => {
  const { ack, valid } = await ackOf(message);
  assert.ok(valid);
  assert.is(received(outstanding(), ack, true).outstanding.state, 'acknowledged');
  assert.match(received(outstanding(), ack, false).refused!, /signed Acknowledgment was asked for/);
  const bare = await ackOf({ ...message, signatureReferences: message.signatureReferences.slice(0, 1) });
  assert.match(received(outstanding(), bare.ack, true).refused!, /does not repeat the signature references of cid:3CTGI8UKUKU4/);
  assert.is(received({ ...outstanding(), signedAckRequested: false }, bare.ack, false).outstanding.state, 'acknowledged', 'an unsigned one suffices where none signed was asked for');
  const other = readEbmsMessage(messageParts(parseEntity(readFileSync(`${conformance}navikt-ebxml-processor/INBOX/acknowledgment.eml`))).root.body, { at: false });
  assert.match(received(outstanding(), other, true).refused!, /not an Acknowledgment of 7104acf8/);
});

test('a MessageError of severity Error about the message fails it; a warning does not', () => {
  const refused = { ...message.header, messageId: message.header.messageId };
  const error = readEbmsMessage(messageErrorXml(refused, [ebmsError('SecurityFailure', 'signature does not verify')], { from: us }), { at: false });
  const failed = received(outstanding(), error, false).outstanding;
  assert.is(failed.state, 'failed');
  assert.match(failed.failure!.description, /SecurityFailure signature does not verify/);
  const warning = readEbmsMessage(messageErrorXml(refused, [ebmsError('NotSupported', 'MessageOrder ignored', undefined, 'Warning')], { from: us }), { at: false });
  assert.is(received(outstanding(), warning, false).outstanding.state, 'waiting');
});

test('duplicate elimination: a repeat within PersistDuration is not delivered again and gets the stored Acknowledgment', async () => {
  const { xml } = await ackOf(message);
  const persist = 4 * 86_400_000; // nav-qass-35065.xml: PersistDuration P4D
  const entry = receivedEntry(message, t0, persist, xml);
  const eliminating: EbmsMessage = { ...message, header: { ...message.header, duplicateElimination: true } };
  assert.equal(reception(eliminating, undefined, t0), { kind: 'deliver' });
  assert.equal(reception(eliminating, entry, t0 + 60_000), { kind: 'duplicate', acknowledgment: xml });
  assert.equal(reception(message, entry, t0 + 60_000), { kind: 'deliver' }, 'without DuplicateElimination: at least once');
  assert.equal(reception(eliminating, entry, t0 + persist + 1), { kind: 'deliver' }, 'past the persistence window the id is forgotten');
  const longLived: EbmsMessage = { ...eliminating, header: { ...eliminating.header, timeToLive: new Date(t0 + 2 * persist).toISOString() } };
  assert.is(receivedEntry(longLived, t0, persist).keepUntil, t0 + 2 * persist, 'kept at least as long as the message lives');
});

test.run();
