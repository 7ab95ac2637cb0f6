// The audit log: appended entries form one chain per node that verifies; a changed, removed or forged row is found
// where it is; a reopened log continues its chain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AuditLog, auditHash, verifyAudit, type AuditEntry } from '../../dashboards/index.ts';
import type { Store } from '../../engine/store/index.ts';
import { backends, testStore } from '../helpers/evidence-sample.ts';

const entry = (n: number): AuditEntry => ({
  actor: n % 2 ? 'alice' : 'bob', role: n % 2 ? 'admin' : 'operator', action: 'partner.update', target: `partner:NTA`,
  before: JSON.stringify({ enabled: true, n }), after: JSON.stringify({ enabled: n % 3 !== 0, n }), reason: `ticket ${1000 + n}`,
});

for (const backend of backends) {
  let store: Store;
  let done: () => Promise<void>;
  test.before(async () => { ({ store, done } = await testStore(backend)); });
  test.after(() => done());

  test(`${backend}: appended entries verify, also after the log is reopened and with two nodes`, async () => {
    const log = await AuditLog.open(store, 'hub-1');
    const written = await Promise.all(Array.from({ length: 6 }, (_, n) => log.append(entry(n))));
    assert.equal(written.map((r) => r.chain), [0, 1, 2, 3, 4, 5], 'appends at once still form one sequence');
    assert.ok(written.every((r, i) => i === 0 ? r.prevHash === '' : r.prevHash === written[i - 1]!.recordHash));
    const reopened = await AuditLog.open(store, 'hub-1');
    assert.is((await reopened.append(entry(6))).chain, 6);
    const other = await AuditLog.open(store, 'hub-2');
    await other.append(entry(7));
    assert.equal(await verifyAudit(store), { ok: true, records: 8, broken: [] });
    const [row] = await store.query<{ actor: string; before: string; reason: string }>("SELECT actor, before, reason FROM audit WHERE node = 'hub-1' AND chain = 3");
    assert.equal(row, { actor: 'alice', before: '{"enabled":true,"n":3}', reason: 'ticket 1003' });
  });

  test(`${backend}: a changed row, a removed row and a forged row are each found where they are`, async () => {
    // A changed reason: the row's hash no longer matches it.
    await store.command("ALTER TABLE audit UPDATE reason = 'nothing to see' WHERE node = 'hub-1' AND chain = 2 SETTINGS mutations_sync = 1");
    let verdict = await verifyAudit(store);
    assert.is(verdict.ok, false);
    assert.equal(verdict.broken, [{ node: 'hub-1', chain: 2, reason: 'record_hash does not match the row' }]);
    // A forged row with a fresh hash of its own: the next row's link to it breaks.
    const [original] = await store.query<Record<string, unknown>>("SELECT * FROM audit WHERE node = 'hub-2' AND chain = 0");
    const forged = { ...original!, at: String(original!.at), actor: 'mallory', prev_hash: 'f'.repeat(64) };
    await store.insert('audit', [JSON.stringify({ ...forged, record_hash: auditHash(forged as Parameters<typeof auditHash>[0]) })]);
    verdict = await verifyAudit(store);
    assert.equal(verdict.broken.find((b) => b.node === 'hub-2'), { node: 'hub-2', chain: 0, reason: 'prev_hash does not name the row before' });
    // A removed row: the chain has a hole.
    await store.command("DELETE FROM audit WHERE node = 'hub-1' AND chain = 1");
    verdict = await verifyAudit(store);
    assert.equal(verdict.broken.find((b) => b.node === 'hub-1'), { node: 'hub-1', chain: 1, reason: 'row 1 is missing (next is 2)' });
  });
}

test.run();
