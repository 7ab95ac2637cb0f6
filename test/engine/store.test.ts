// engine/store against real chDB in temp folders (each store's chDB runs in its own owner process, so this
// process never loads chDB), plus the server backend when SWX_TEST_CLICKHOUSE_URL is set.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomUUID, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expireEvidence } from '../../engine/retention.ts';
import { migrate, migrations, openStore, StoreError, type Store, type StoreEvent } from '../../engine/store/index.ts';

const root = mkdtempSync(join(tmpdir(), 'swx-store-'));
const repo = fileURLToPath(new URL('../../', import.meta.url));
const storeIndexUrl = new URL('../../engine/store/index.ts', import.meta.url).href;
let dirCount = 0;
const freshDir = (): string => join(root, `d${++dirCount}`);

let seq = 0;
/** A ~1.3 KB evidence row as the trust core would write it (JSONEachRow line). */
function evidenceRow(over: Record<string, unknown> = {}): string {
  seq++;
  const id = randomUUID();
  return JSON.stringify({
    seq,
    id,
    message_id: `msg-${seq}`,
    conversation_id: randomUUID(),
    stage: seq % 3 === 0 ? 'delivered' : 'received',
    at: new Date(Date.UTC(2025, 0, 1) + seq).toISOString(), // ISO 8601 with T and Z
    from_partner: `AGENCY-${seq % 7}`,
    to_partner: 'CUSTOMS',
    service: 'declaration',
    action: 'submit',
    protocol: 'rest',
    code: '',
    detail: '',
    size: 4096,
    sha256: createHash('sha256').update(id).digest('hex'),
    raw: Buffer.alloc(480, seq % 251).toString('base64'),
    raw_ref: '',
    signature: '{"alg":"ecdsa-p256-sha256","keyid":"AGENCY-1-2025"}',
    node: 'hub-1',
    prev_hash: 'a'.repeat(64),
    record_hash: 'b'.repeat(64),
    batch_id: '',
    proof: '',
    ...over,
  });
}

/** True while a process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    if (process.platform === 'linux') return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

async function rejects(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, StoreError);
    return err as StoreError;
  }
  throw new assert.Assertion({ message: 'expected a rejection', operator: 'rejects', expects: 'rejection', actual: 'resolved' });
}

async function withStore<T>(dataDir: string, fn: (s: Store) => Promise<T>, events?: StoreEvent[]): Promise<T> {
  const s = await openStore({ dataDir, onEvent: events ? (e) => events.push(e) : undefined });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

test.after(() => rmSync(root, { recursive: true, force: true }));

test('open runs the migrations once; a second open applies nothing and records nothing twice', async () => {
  const dir = freshDir();
  const first: StoreEvent[] = [];
  await withStore(
    dir,
    async (s) => {
      assert.is(s.backend, 'chdb');
      const h = s.health();
      assert.is(h.state, 'ok');
      assert.ok(h.ownerPid && h.ownerPid !== process.pid, 'chDB runs in an owner process');
      if (process.platform === 'linux') {
        assert.not.match(readFileSync('/proc/self/maps', 'utf8'), /libchdb/, 'this process must not load chDB');
        assert.match(readFileSync(`/proc/${h.ownerPid}/maps`, 'utf8'), /libchdb/, 'the owner loads chDB');
      }
      const tables = await s.query<{ name: string }>("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name");
      assert.equal(tables.map((t) => t.name), [
        'audit', 'delivery_attempts', 'delivery_attempts_mv', 'evidence', 'evidence_batches', 'message_keys', 'message_keys_mv', 'message_state', 'message_state_mv', 'messages', 'messages_mv',
        'stats_daily', 'stats_daily_mv', 'stats_hourly', 'stats_hourly_mv', 'stats_minutely', 'stats_minutely_mv', 'stats_partner_daily', 'stats_partner_daily_mv', 'swx_migrations',
      ]);
      assert.equal(await migrate(s), [], 'migrate on an up-to-date store applies nothing');
    },
    first,
  );
  assert.equal(first.filter((e) => e.type === 'migration-applied').map((e) => (e as { id: string }).id), migrations.map((m) => m.id));

  const second: StoreEvent[] = [];
  await withStore(
    dir,
    async (s) => {
      const rows = await s.query<{ id: string; n: number }>('SELECT id, count() AS n FROM swx_migrations GROUP BY id ORDER BY id');
      assert.equal(rows, migrations.map((m) => ({ id: m.id, n: 1 })));
    },
    second,
  );
  assert.is(second.filter((e) => e.type === 'migration-applied').length, 0);
});

test('migrations: new ones are applied in order, an edited applied one is refused', async () => {
  await withStore(freshDir(), async (s) => {
    const extra = [...migrations, { id: '9001_extra', sql: ['CREATE TABLE IF NOT EXISTS extra_a (a UInt8) ENGINE = MergeTree ORDER BY a', 'CREATE TABLE IF NOT EXISTS extra_b (b UInt8) ENGINE = MergeTree ORDER BY b'] }];
    assert.equal(await migrate(s, extra), ['9001_extra']);
    assert.equal(await migrate(s, extra), []);
    const edited = [...migrations, { id: '9001_extra', sql: 'CREATE TABLE IF NOT EXISTS extra_a (a UInt16) ENGINE = MergeTree ORDER BY a' }];
    const err = await rejects(migrate(s, edited));
    assert.is(err.code, 'MIGRATION_CHANGED');
    assert.match(err.message, /9001_extra was changed/);
  });
});

test('insert 10k evidence rows in one insert, count them, parameterised queries; data survives close and reopen', async () => {
  const dir = freshDir();
  const first = seq + 1;
  const rows = Array.from({ length: 10_000 }, () => evidenceRow());
  await withStore(dir, async (s) => {
    await s.insert('evidence', rows);
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 10_000 }]);
    const partParts = await s.query<{ n: number }>("SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND table = 'evidence' AND active");
    assert.ok(partParts[0]!.n >= 1);
    // server-side parameters, 64-bit integers as numbers, DateTime64 from ISO 8601
    const byPartner = await s.query<{ n: number }>('SELECT count() AS n FROM evidence WHERE from_partner = {p:String}', { p: 'AGENCY-3' });
    assert.is(byPartner[0]!.n, rows.filter((r) => JSON.parse(r).from_partner === 'AGENCY-3').length);
    const one = await s.query<{ seq: number; at: string; stage: string }>('SELECT seq, at, stage FROM evidence WHERE message_id = {m:String}', { m: `msg-${first + 2}` });
    const at = new Date(Date.UTC(2025, 0, 1) + first + 2).toISOString().replace('T', ' ').replace('Z', '');
    assert.equal(one, [{ seq: first + 2, at, stage: JSON.parse(rows[2]!).stage }]);
    const quoted = await s.query<{ v: string }>('SELECT {v:String} AS v', { v: "it's; DROP TABLE evidence --" });
    assert.equal(quoted, [{ v: "it's; DROP TABLE evidence --" }]);
    await s.command('INSERT INTO evidence (seq, id, message_id) SELECT {seq:UInt64}, {id:String}, {m:String}', { seq: 999_999_999, id: 'cmd', m: 'cmd-msg' });
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 10_001 }]);
  });
  await withStore(dir, async (s) => {
    assert.equal(await s.query('SELECT count() AS n, min(seq) AS lo FROM evidence WHERE seq < 999999999'), [{ n: 10_000, lo: first }]);
  });
});

test('retention removes evidence rows older than it, but never a node\'s newest row, which its hash chain continues from', async () => {
  const now = new Date('2026-03-01T00:00:00Z');
  const day = 86_400_000;
  const row = (node: string, chain: number, daysAgo: number) => evidenceRow({ node, chain, stream: 'SWX_EVIDENCE', at: new Date(now.getTime() - daysAgo * day).toISOString() });
  await withStore(freshDir(), async (s) => {
    // hub-1: old rows and new ones; hub-2: only old rows, its head among them.
    await s.insert('evidence', [row('hub-1', 0, 40), row('hub-1', 1, 31), row('hub-1', 2, 29), row('hub-1', 3, 1), row('hub-2', 0, 50), row('hub-2', 1, 45)]);
    assert.is(await expireEvidence(s, 30, now), 2);
    const kept = await s.query<{ node: string; chain: number }>('SELECT node, chain FROM evidence ORDER BY node, chain');
    assert.equal(kept, [{ node: 'hub-1', chain: 2 }, { node: 'hub-1', chain: 3 }, { node: 'hub-2', chain: 1 }]);
  });
});

test('errors are clear: bad SQL, bad table name, calls after close', async () => {
  const s = await openStore({ dataDir: freshDir() });
  try {
    const bad = await rejects(s.query('SELECT * FROM no_such_table'));
    assert.is(bad.code, 'QUERY_FAILED');
    assert.is(bad.clickhouseCode, '60');
    assert.is(bad.type, 'UNKNOWN_TABLE');
    const name = await rejects(s.insert('evidence; DROP TABLE evidence', [evidenceRow()]));
    assert.is(name.code, 'INVALID_ARGUMENT');
    const badRow = await rejects(s.insert('evidence', ['{"seq": "not a number"']));
    assert.is(badRow.code, 'QUERY_FAILED');
    await s.insert('evidence', []); // nothing to do
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 0 }]);
  } finally {
    await s.close();
  }
  await s.close(); // idempotent
  assert.is(s.health().state, 'stopped');
  assert.is((await rejects(s.query('SELECT 1'))).code, 'STORE_CLOSED');
});

test('every query carries max_execution_time', async () => {
  const s = await openStore({ dataDir: freshDir(), maxExecutionTimeSec: 1 });
  try {
    const t0 = Date.now();
    const err = await rejects(s.query('SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 3 = 0'));
    assert.is(err.clickhouseCode, '159'); // TIMEOUT_EXCEEDED
    assert.ok(Date.now() - t0 < 10_000, `stopped after ${Date.now() - t0} ms`);
    assert.equal(await s.query('SELECT 1 AS x'), [{ x: 1 }]);
  } finally {
    await s.close();
  }
});

test('a second open of the same folder fails at once with a clear error; the first store is unaffected', async () => {
  const dir = freshDir();
  await withStore(dir, async (s) => {
    await s.insert('evidence', [evidenceRow()]);
    const t0 = Date.now();
    const err = await rejects(openStore({ dataDir: dir }));
    assert.is(err.code, 'DATA_DIR_LOCKED');
    assert.match(err.message, /in use by another process/);
    assert.match(err.message, new RegExp(`pid ${s.health().ownerPid}`));
    assert.ok(Date.now() - t0 < 15_000, `refused after ${Date.now() - t0} ms`);
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 1 }]);
  });
});

test('SIGKILL of the parent: the owner exits by itself and the folder can be opened again, data intact', async () => {
  const dir = freshDir();
  const code = `
    import { openStore } from ${JSON.stringify(storeIndexUrl)};
    const s = await openStore({ dataDir: process.env.SWX_STORE_DIR });
    await s.insert('evidence', ${JSON.stringify([evidenceRow(), evidenceRow(), evidenceRow()])});
    process.stdout.write(JSON.stringify({ ownerPid: s.health().ownerPid }) + '\\n');
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repo,
    env: { ...process.env, SWX_STORE_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  parent.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  await waitFor('the parent script to open its store', () => out.includes('\n') || parent.exitCode !== null, 30_000);
  const { ownerPid } = JSON.parse(out) as { ownerPid: number };
  assert.ok(alive(ownerPid));
  parent.kill('SIGKILL');
  await waitFor(`owner ${ownerPid} to exit after its parent was killed`, () => !alive(ownerPid), 10_000);
  await withStore(dir, async (s) => {
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 3 }]);
  });
});

test('SIGTERM to the owner drains: running calls complete, later calls are refused, the owner exits 0', async () => {
  const dir = freshDir();
  const events: StoreEvent[] = [];
  const s = await openStore({ dataDir: dir, onEvent: (e) => events.push(e) });
  try {
    const pid = s.health().ownerPid!;
    await s.insert('evidence', [evidenceRow()]);
    const slow = s.query<{ x: number }>('SELECT sleep(1.5) + 7 AS x');
    const ins = s.insert('evidence', Array.from({ length: 2000 }, () => evidenceRow()));
    await new Promise((r) => setTimeout(r, 400));
    process.kill(pid, 'SIGTERM');
    const [slowDone, insDone] = await Promise.allSettled([slow, ins]);
    assert.equal(slowDone, { status: 'fulfilled', value: [{ x: 7 }] }, 'the running query completes');
    assert.is(insDone.status, 'fulfilled', 'the running insert completes');
    await waitFor('the owner to exit', () => !alive(pid), 10_000);
    await waitFor('the exit event', () => events.some((e) => e.type === 'owner-exited'), 5_000);
    const exit = events.find((e) => e.type === 'owner-exited') as Extract<StoreEvent, { type: 'owner-exited' }>;
    assert.is(exit.code, 0);
    assert.is(exit.signal, null);
    assert.is(exit.expected, true);
    assert.ok(events.some((e) => e.type === 'owner-stopped'));
    assert.is(s.health().state, 'stopped');
    assert.is(s.health().restarts, 0, 'a stopped owner is not restarted');
    const refused = await rejects(s.query('SELECT 1'));
    assert.is(refused.code, 'STORE_CLOSED');
    assert.match(refused.message, /SIGTERM/);
  } finally {
    await s.close();
  }
  await withStore(dir, async (s2) => {
    assert.equal(await s2.query('SELECT count() AS n FROM evidence'), [{ n: 2001 }]);
  });
});

test('owner crash: pending calls reject with a clear error, the owner is restarted, data intact', async () => {
  const events: StoreEvent[] = [];
  const s = await openStore({ dataDir: freshDir(), onEvent: (e) => events.push(e) });
  try {
    await s.insert('evidence', [evidenceRow(), evidenceRow()]);
    const pid = s.health().ownerPid!;
    const slow = s.query('SELECT sleep(2)');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, 'SIGKILL');
    const err = await rejects(slow);
    assert.is(err.code, 'OWNER_EXITED');
    assert.match(err.message, /exited unexpectedly \(signal SIGKILL\)/);
    assert.match(s.health().lastError ?? '', /SIGKILL/);
    // the next call waits for the restarted owner
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 2 }]);
    const h = s.health();
    assert.is(h.state, 'ok');
    assert.is(h.restarts, 1);
    assert.is.not(h.ownerPid, pid);
    assert.ok(events.some((e) => e.type === 'owner-exited' && !e.expected && e.failedCalls === 1));
  } finally {
    await s.close();
  }
});

test('server backend: an unreachable URL fails at open with a clear error', async () => {
  const err = await rejects(openStore({ url: 'http://127.0.0.1:1' }));
  assert.is(err.code, 'OPEN_FAILED');
  assert.match(err.message, /could not reach ClickHouse at http:\/\/127\.0\.0\.1:1\/: connect ECONNREFUSED/);
});

const serverUrl = process.env.SWX_TEST_CLICKHOUSE_URL ?? '';
// Without a ClickHouse server to run against, the suite reports this test as skipped.
(serverUrl ? test : test.skip)('server backend: same SQL, migrations, insert and query against SWX_TEST_CLICKHOUSE_URL', async () => {
  const database = `swx_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const s = await openStore({ url: serverUrl, database });
  try {
    assert.is(s.backend, 'server');
    await s.insert('evidence', Array.from({ length: 1000 }, () => evidenceRow()));
    assert.equal(await s.query('SELECT count() AS n FROM evidence'), [{ n: 1000 }]);
    const n = await s.query<{ n: number }>('SELECT count() AS n FROM evidence WHERE from_partner = {p:String}', { p: 'AGENCY-3' });
    assert.ok(n[0]!.n > 0);
    assert.equal(await migrate(s), []);
    const again = await openStore({ url: serverUrl, database });
    await again.close();
    assert.equal(await s.query('SELECT id, count() AS n FROM swx_migrations FINAL GROUP BY id ORDER BY id'), migrations.map((m) => ({ id: m.id, n: 1 })));
  } finally {
    await s.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => {});
    await s.close();
  }
});

test.run();
