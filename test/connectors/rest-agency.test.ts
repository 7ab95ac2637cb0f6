// The reference receiver keeps each message once by id: a repeat of a delivery (the hub delivers at least once) is
// answered with a signed receipt that says `duplicate: true`, and neither overwrites nor adds to what it stored.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clientAgent, postHttps } from '../../engine/http.ts';
import { algorithmFor, contentDigest, sign, verify } from '../../engine/httpsig.ts';
import { initPki, issueAgency, loadPki } from '../../engine/pki/index.ts';
import { startAgencyReceiver, type AgencyReceiver, type InboxEntry } from '../../connectors/rest/agency.ts';
import { deliveryHeaders, envelopeHeaders, receiptComponents, requestComponents } from '../../connectors/rest/contract.ts';
import { tempDir } from '../helpers/hub.ts';

let receiver: AgencyReceiver;
let inboxDir: string;
let deliver: (from: string, id: string, body: Buffer) => Promise<{ status: number; body: Record<string, unknown> }>;
const stored: InboxEntry[] = [];

test.before(async () => {
  const dir = tempDir('receiver');
  const pkiDir = join(dir, 'pki');
  await initPki(pkiDir, { agencies: [] });
  const pki = await loadPki(pkiDir);
  const boft = await issueAgency(pkiDir, 'BOFT');
  inboxDir = join(dir, 'inbox');
  receiver = await startAgencyReceiver({
    certPem: boft.certPem, keyPem: boft.keyPem, caPem: pki.ca.certPem, port: 0, hubSignCertPem: pki.hubSign.certPem, inboxDir,
    onMessage: (entry) => stored.push(entry),
  });
  const agent = clientAgent({ cert: pki.hubTls.certPem, key: pki.hubTls.keyPem, ca: pki.ca.certPem }, 4);
  const hubKey = createPrivateKey(pki.hubSign.keyPem);
  const boftKey = new X509Certificate(boft.certPem).publicKey;
  // As the hub delivers (connectors/rest/outbound.ts), and as it checks the receipt.
  deliver = async (from, id, body) => {
    const url = `https://localhost:${receiver.port}/inbox`;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-digest': contentDigest(body),
      [envelopeHeaders.to]: 'BOFT',
      [envelopeHeaders.service]: 'customs.declaration',
      [envelopeHeaders.messageId]: id,
      [deliveryHeaders.from]: from,
      [deliveryHeaders.receivedAt]: new Date().toISOString(),
    };
    Object.assign(headers, sign({ method: 'POST', targetUri: url, headers }, { key: hubKey, keyId: pki.hubSign.thumbprint, alg: algorithmFor(hubKey)!, components: requestComponents(headers) }));
    const answer = await postHttps(url, { agent, headers: { ...headers, 'content-length': String(body.length) } }, body, 1024 * 1024);
    verify({ status: answer.status, headers: answer.headers }, { required: receiptComponents, maxSkewSeconds: 60, key: () => ({ key: boftKey, alg: algorithmFor(boftKey)! }) });
    assert.is(answer.headers[envelopeHeaders.messageId], id, 'the receipt names the message');
    return { status: answer.status, body: JSON.parse(answer.body.toString('utf8')) as Record<string, unknown> };
  };
});

test.after(async () => { await receiver?.close(); });

test('a repeated delivery is acknowledged with a signed receipt marked duplicate, and stored once', async () => {
  const body = Buffer.from('{"declarationNo":"AA/BE/13/1"}');
  const first = await deliver('CUSTOMS', 'REPEAT-1', body);
  assert.is(first.status, 200);
  assert.is(first.body.duplicate, false);
  const entry = readFileSync(join(inboxDir, 'REPEAT-1.json'), 'utf8');
  const again = await deliver('CUSTOMS', 'REPEAT-1', body);
  assert.is(again.status, 200);
  assert.is(again.body.duplicate, true, 'the receipt says the receiver already had it');
  assert.is(readFileSync(join(inboxDir, 'REPEAT-1.json'), 'utf8'), entry, 'the stored entry is not rewritten');
  assert.ok(readFileSync(join(inboxDir, 'REPEAT-1.bin')).equals(body));
  assert.is(stored.filter((e) => e.id === 'REPEAT-1').length, 1, 'stored once');
  assert.is(receiver.deliveriesOf('REPEAT-1'), 2);
});

test('another message under a stored id is refused with a signed 409, and what was stored stays', async () => {
  const body = Buffer.from('{"declarationNo":"AA/BE/13/2"}');
  assert.is((await deliver('CUSTOMS', 'REPEAT-2', body)).status, 200);
  for (const [from, other] of [['CUSTOMS', Buffer.from('{"declarationNo":"AA/BE/13/X"}')], ['TFDA', body]] as const) {
    const conflict = await deliver(from, 'REPEAT-2', other);
    assert.is(conflict.status, 409, `${from}: ${JSON.stringify(conflict.body)}`);
  }
  assert.ok(readFileSync(join(inboxDir, 'REPEAT-2.bin')).equals(body), 'the stored body is not overwritten');
  assert.is(JSON.parse(readFileSync(join(inboxDir, 'REPEAT-2.json'), 'utf8')).from, 'CUSTOMS');
  assert.is(stored.filter((e) => e.id === 'REPEAT-2').length, 1);
});

test.run();
