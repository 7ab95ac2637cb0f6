// Statistics read from the rollups equal the same aggregate taken directly over evidence, at every grain, split by
// every dimension; latency percentiles agree with exact ones over the delivered records; top talkers and CSV export.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toCsv, topTalkers, traffic, type Dimension, type Grain, type TrafficRow } from '../../dashboards/index.ts';
import type { Store } from '../../engine/store/index.ts';
import { archive, backends, testStore, type SampleMessage } from '../helpers/evidence-sample.ts';

const agencies = ['CUSTOMS', 'BOFT', 'BSMI', 'TFDA', 'NTA', 'FDA'];
const outcomes: SampleMessage['outcome'][] = ['delivered', 'delivered', 'failed-then-delivered', 'dead_lettered', 'rejected', 'redelivered', 'failing'];

/** 1,500 messages spread over 14 months (so months and years split), with every outcome and latencies of 50 ms to 10 s. */
function sample(): SampleMessage[] {
  const start = Date.UTC(2025, 10, 1);
  const span = 430 * 86_400_000;
  return Array.from({ length: 1500 }, (_, i) => ({
    id: `S-${i}`,
    from: agencies[(i * 7) % agencies.length]!,
    receivers: i % 40 === 0 ? ['BSMI', 'TFDA'] : [agencies[(i * 7 + 1 + (i % 4)) % agencies.length]!],
    topic: i % 40 === 0,
    service: ['customs.declaration', 'trade.permit', 'notify.fishery-safety'][i % 3]!,
    protocol: ['rest', 'soap', 'ebms2'][i % 5 === 0 ? 2 : i % 2]!,
    receivedAt: new Date(start + Math.floor((i * span) / 1500) + (i % 3600) * 1000),
    outcome: outcomes[i % outcomes.length]!,
    size: 500 + (i % 17) * 1000,
    latencyMs: 50 + ((i * 7919) % 10_000),
  })).concat(Array.from({ length: 60 }, (_, i) => ({
    // The last day, whenever the test runs: the per-minute rollup keeps only recent weeks.
    id: `R-${i}`, topic: false, from: agencies[i % agencies.length]!, receivers: [agencies[(i + 1) % agencies.length]!], service: 'customs.declaration',
    protocol: 'rest', receivedAt: new Date(Date.now() - 86_400_000 + i * 60_000 * 7), outcome: outcomes[i % outcomes.length]!, size: 900, latencyMs: 120 + i,
  })));
}

const dimensionColumn: Record<Dimension, string> = { service: 'service', protocol: 'protocol', sender: 'from_partner', receiver: 'to_partner', stage: 'stage', code: 'code' };
const bucketOf: Record<Grain, string> = {
  minute: 'toDateTime(toStartOfMinute(at))',
  hour: 'toDateTime(toStartOfHour(at))', day: 'toDateTime(toStartOfDay(at))', month: 'toDateTime(toStartOfMonth(at))', year: 'toDateTime(toStartOfYear(at))',
};

/** The same figures as traffic(), straight from evidence. */
async function direct(store: Store, grain: Grain, by: Dimension[], since: string, until: string): Promise<Record<string, unknown>[]> {
  const dims = by.map((d) => `${dimensionColumn[d]} AS ${d}`);
  return store.query(
    `SELECT concat(replaceOne(toString(${bucketOf[grain]}), ' ', 'T'), 'Z') AS bucket${dims.map((d) => `, ${d}`).join('')},
       count() AS records, countIf(stage = 'verified') AS messages, countIf(stage = 'delivered') AS deliveries,
       countIf(stage = 'delivery_failed') AS failures, countIf(stage = 'dead_lettered') AS deadLetters, countIf(stage = 'rejected') AS rejections,
       countIf(stage = 'redelivered') AS redeliveries, countIf(code != '') AS errors, sumIf(size, stage = 'verified') AS bytes
     FROM evidence WHERE at >= {since:DateTime64(3, 'UTC')} AND at < {until:DateTime64(3, 'UTC')}
     GROUP BY bucket${by.map((d) => `, ${d}`).join('')} ORDER BY bucket${by.map((d) => `, ${d}`).join('')}`,
    { since: since.replace('T', ' ').replace('Z', ''), until: until.replace('T', ' ').replace('Z', '') });
}

const counts = (rows: (TrafficRow | Record<string, unknown>)[], by: Dimension[]) => rows.map((row) => {
  const r = row as Record<string, unknown>;
  return [r.bucket, ...by.map((d) => r[d]), ...['records', 'messages', 'deliveries', 'failures', 'deadLetters', 'rejections', 'redeliveries', 'errors', 'bytes'].map((k) => Number(r[k]))];
});

for (const backend of backends) {
  let store: Store;
  let done: () => Promise<void>;
  const messages = sample();
  // Whole days, so that the rollups' buckets and the direct aggregate cover the same records.
  const since = '2025-11-01T00:00:00.000Z';
  // Past the last message, the recent ones included, whenever the test runs.
  const until = new Date(Math.max(Date.parse('2027-01-15T00:00:00.000Z'), Date.parse(`${new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10)}T00:00:00.000Z`))).toISOString();

  test.before(async () => {
    ({ store, done } = await testStore(backend));
    await archive(store, messages, 700);
  });
  test.after(() => done());

  test(`${backend}: rollups equal a direct aggregate over evidence, at every grain and split`, async () => {
    // Once merged, the daily rollup holds one row per day and combination of dimensions.
    const [{ n }] = await store.query<{ n: number }>(
      'SELECT count() AS n FROM (SELECT DISTINCT toStartOfDay(at), service, protocol, stage, code FROM evidence)') as [{ n: number }];
    const [{ rows }] = await store.query<{ rows: number }>('SELECT count() AS rows FROM stats_daily FINAL') as [{ rows: number }];
    assert.is(rows, Number(n));
    const [{ sides }] = await store.query<{ sides: number }>(
      `SELECT (SELECT count() FROM (SELECT DISTINCT toStartOfDay(at), from_partner, service, protocol, stage, code FROM evidence))
            + (SELECT count() FROM (SELECT DISTINCT toStartOfDay(at), to_partner, service, protocol, stage, code FROM evidence)) AS sides`) as [{ sides: number }];
    const [{ partnerRows }] = await store.query<{ partnerRows: number }>('SELECT count() AS partnerRows FROM stats_partner_daily FINAL') as [{ partnerRows: number }];
    assert.is(partnerRows, Number(sides), 'one row per day, side, partner and combination');
    const splits: Dimension[][] = [[], ['service'], ['protocol', 'stage'], ['code'], ['sender'], ['receiver', 'service'], ['sender', 'stage', 'code']];
    for (const grain of ['hour', 'day', 'month', 'year'] as Grain[]) {
      // Partners are kept per day.
      for (const by of splits.filter((split) => grain !== 'hour' || !split.some((d) => d === 'sender' || d === 'receiver'))) {
        const rolled = await traffic(store, { grain, by, since, until });
        const expected = await direct(store, grain, by, since, until);
        assert.ok(rolled.length > 0);
        assert.equal(counts(rolled, by), counts(expected, by), `${grain} by ${by.join(',') || 'nothing'}`);
      }
    }
    // Minutes are kept for the last 35 days (a TTL removes older ones as parts merge): compared over the last two.
    const recent = { since: new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10) + 'T00:00:00.000Z', until: new Date(Date.now() + 86_400_000).toISOString().slice(0, 10) + 'T00:00:00.000Z' };
    for (const by of [[], ['service'], ['protocol', 'stage', 'code']] as Dimension[][]) {
      const rolled = await traffic(store, { grain: 'minute', by, ...recent });
      assert.ok(rolled.length > 0, 'the sample reaches the last day');
      assert.equal(counts(rolled, by), counts(await direct(store, 'minute', by, recent.since, recent.until), by), `minute by ${by.join(',') || 'nothing'}`);
    }
    // Every delivery attempt has its row, by receiver.
    const [attempts] = await store.query<{ rows: string; direct: string }>(
      `SELECT toString((SELECT count() FROM delivery_attempts FINAL)) AS rows,
              toString((SELECT count() FROM evidence WHERE stage IN ('delivered', 'delivery_failed', 'dead_lettered', 'redelivered'))) AS direct`) as [{ rows: string; direct: string }];
    assert.ok(Number(attempts.rows) > 0);
    assert.is(attempts.rows, attempts.direct);
    const years = await traffic(store, { grain: 'year', since, until });
    const yearsSent = [...new Set(messages.map((m) => m.receivedAt.getUTCFullYear()))].sort();
    assert.equal(years.map((row) => row.bucket), yearsSent.map((year) => `${year}-01-01T00:00:00Z`));
    assert.is(years.reduce((sum, row) => sum + row.messages, 0), messages.filter((m) => m.outcome !== 'rejected').length);
  });

  test(`${backend}: partners are split per day and up, on one side at a time`, async () => {
    for (const query of [{ grain: 'hour' as const, by: ['sender' as const] }, { grain: 'day' as const, by: ['sender' as const, 'receiver' as const] }, { grain: 'day' as const, by: ['sender' as const], where: { receiver: 'NTA' } }]) {
      try {
        await traffic(store, { ...query, since, until });
        assert.unreachable(JSON.stringify(query));
      } catch (err) {
        assert.instance(err, RangeError);
      }
    }
    const nta = await traffic(store, { grain: 'year', where: { receiver: 'NTA' }, since, until });
    const [direct] = await store.query<{ n: number }>("SELECT countIf(stage = 'delivered') AS n FROM evidence WHERE to_partner = 'NTA'");
    assert.is(nta.reduce((sum, row) => sum + row.deliveries, 0), Number(direct!.n));
  });

  test(`${backend}: a filter keeps only its rows; error rates count rejections and dead letters`, async () => {
    const rows = await traffic(store, { grain: 'month', by: ['service'], where: { protocol: 'soap' }, since, until });
    const expected = await store.query<{ bucket: string; service: string; messages: number }>(
      `SELECT concat(replaceOne(toString(toDateTime(toStartOfMonth(at))), ' ', 'T'), 'Z') AS bucket, service, countIf(stage = 'verified') AS messages
       FROM evidence WHERE protocol = 'soap' GROUP BY bucket, service ORDER BY bucket, service`);
    assert.equal(rows.map((r) => [r.bucket, r.service, r.messages]), expected.map((r) => [r.bucket, r.service, Number(r.messages)]));
    const [all] = await traffic(store, { grain: 'year', since: '2026-01-01T00:00:00Z', until: '2027-01-01T00:00:00Z' });
    assert.is(all!.errorRate, (all!.rejections + all!.deadLetters) / (all!.messages + all!.rejections));
  });

  test(`${backend}: latency percentiles from the t-digest states are close to exact ones over the delivered records`, async () => {
    const [row] = await traffic(store, { grain: 'year', since: '2026-01-01T00:00:00Z', until: '2027-01-01T00:00:00Z' });
    const [exact] = await store.query<{ q: number[] }>(
      `SELECT quantilesExact(0.5, 0.9, 0.95, 0.99)(toFloat64(dateDiff('millisecond', received_at, at))) AS q FROM evidence
       WHERE stage = 'delivered' AND at >= '2026-01-01 00:00:00' AND at < '2027-01-01 00:00:00'`) as [{ q: number[] }];
    const got = [row!.latencyP50Ms, row!.latencyP90Ms, row!.latencyP95Ms, row!.latencyP99Ms];
    got.forEach((value, i) => {
      assert.ok(value !== null && Math.abs(value - exact.q[i]!) <= 0.05 * 10_000, `p${[50, 90, 95, 99][i]}: ${value} against exact ${exact.q[i]}`);
    });
    const [noDeliveries] = await traffic(store, { grain: 'year', by: ['stage'], where: { stage: 'rejected' }, since, until });
    assert.is(noDeliveries!.latencyP50Ms, null, 'no latency where nothing was delivered');
  });

  test(`${backend}: top talkers by messages sent and received, as a direct count says`, async () => {
    const senders = await topTalkers(store, { since, until, side: 'sender', limit: 3 });
    const expected = await store.query<{ partner: string; messages: number }>(
      `SELECT from_partner AS partner, countIf(stage = 'verified') AS messages FROM evidence GROUP BY partner ORDER BY messages DESC, partner LIMIT 3`);
    assert.equal(senders.map((r) => [r.partner, r.messages]), expected.map((r) => [r.partner, Number(r.messages)]));
    const receivers = await topTalkers(store, { since, until, side: 'receiver' });
    const delivered = await store.query<{ partner: string; messages: number }>(
      `SELECT to_partner AS partner, countIf(stage = 'delivered') AS messages FROM evidence WHERE to_partner != '' GROUP BY partner ORDER BY messages DESC, partner LIMIT 10`);
    assert.equal(receivers.map((r) => [r.partner, r.messages]), delivered.map((r) => [r.partner, Number(r.messages)]));
  });

  test(`${backend}: any of these rows exports as CSV`, async () => {
    const rows = await traffic(store, { grain: 'month', by: ['protocol'], since, until });
    const csv = toCsv(rows);
    const lines = csv.trimEnd().split('\r\n');
    assert.is(lines.length, rows.length + 1);
    assert.ok(lines[0]!.startsWith('bucket,protocol,records,messages,'));
    assert.is(toCsv([{ name: 'a, "b"', formula: '=cmd()', n: -3, list: ['x', 'y'] }]), 'name,formula,n,list\r\n"a, ""b""","\'=cmd()",-3,x y\r\n');
    assert.is(toCsv([]), '');
  });
}

test.run();
