// Per-asker token buckets on an injected clock: bursts, refill, per-asker limits, the Retry-After a 429 carries,
// bounded memory. No sleeps: the clock is moved by hand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RateLimiter, rateLimitsSchema } from '../../engine/ratelimit.ts';

function limiter(limits: ConstructorParameters<typeof RateLimiter>[0], maxAskers?: number) {
  const clock = { ms: 1_000_000 };
  return { clock, limiter: new RateLimiter(limits, { now: () => clock.ms, maxAskers }) };
}

const takeTimes = (rateLimiter: RateLimiter, asker: string, times: number) =>
  Array.from({ length: times }, () => rateLimiter.take(asker).allowed);

test('a full bucket admits the burst at once, then refuses with the wait for the next token', () => {
  const { limiter: limits } = limiter({ default: { ratePerSecond: 2, burst: 5 } });
  assert.equal(takeTimes(limits, 'BOFT', 5), [true, true, true, true, true]);
  const refused = limits.take('BOFT');
  assert.equal(refused, { allowed: false, retryAfterMs: 500, retryAfterSeconds: 1 });
});

test('tokens come back at the configured rate and never beyond the burst', () => {
  const { clock, limiter: limits } = limiter({ default: { ratePerSecond: 2, burst: 5 } });
  takeTimes(limits, 'BOFT', 5);
  clock.ms += 499;
  assert.not.ok(limits.take('BOFT').allowed, 'one millisecond short of a token');
  clock.ms += 1;
  assert.equal(limits.take('BOFT'), { allowed: true, remaining: 0 });
  clock.ms += 60_000;
  assert.equal(takeTimes(limits, 'BOFT', 6), [true, true, true, true, true, false], 'a long quiet spell refills only up to the burst');
});

test('Retry-After is whole seconds, rounded up, from the fraction of a token still missing', () => {
  const { clock, limiter: limits } = limiter({ default: { ratePerSecond: 0.25, burst: 1 } });
  assert.ok(limits.take('NTA').allowed);
  assert.equal(limits.take('NTA'), { allowed: false, retryAfterMs: 4000, retryAfterSeconds: 4 });
  clock.ms += 2500;
  assert.equal(limits.take('NTA'), { allowed: false, retryAfterMs: 1500, retryAfterSeconds: 2 });
  clock.ms += 1500;
  assert.ok(limits.take('NTA').allowed);
});

test('each asker has its own bucket, with its own limit or the default', () => {
  const { limiter: limits } = limiter({ default: { ratePerSecond: 10, burst: 3 }, askers: { CUSTOMS: { ratePerSecond: 100, burst: 8 } } });
  assert.equal(limits.limitFor('CUSTOMS'), { ratePerSecond: 100, burst: 8 });
  assert.equal(limits.limitFor('BOFT'), { ratePerSecond: 10, burst: 3 });
  assert.equal(takeTimes(limits, 'BOFT', 4), [true, true, true, false]);
  assert.equal(takeTimes(limits, 'TFDA', 3), [true, true, true], 'BOFT running dry does not touch TFDA');
  assert.equal(takeTimes(limits, 'CUSTOMS', 9), [true, true, true, true, true, true, true, true, false]);
  assert.equal(limits.limitFor('constructor'), { ratePerSecond: 10, burst: 3 }, 'an asker named like an Object property gets the default');
});

test('new limits apply from the next request, saved tokens capped at the new burst', () => {
  const { clock, limiter: limits } = limiter({ default: { ratePerSecond: 1, burst: 10 } });
  limits.take('BSMI');
  limits.configure({ default: { ratePerSecond: 1, burst: 2 } });
  clock.ms += 1;
  assert.equal(takeTimes(limits, 'BSMI', 3), [true, true, false]);
});

test('a clock that goes back mints no tokens', () => {
  const { clock, limiter: limits } = limiter({ default: { ratePerSecond: 1, burst: 1 } });
  assert.ok(limits.take('DOC').allowed);
  clock.ms -= 10_000;
  assert.not.ok(limits.take('DOC').allowed);
  clock.ms += 10_999;
  assert.not.ok(limits.take('DOC').allowed, 'time spent going back is not counted as refill');
  clock.ms += 1;
  assert.ok(limits.take('DOC').allowed);
});

test('memory is bounded: the least recently seen asker is forgotten first', () => {
  const { limiter: limits } = limiter({ default: { ratePerSecond: 1, burst: 1 } }, 3);
  for (const asker of ['A1', 'A2', 'A3']) limits.take(asker);
  assert.not.ok(limits.take('A1').allowed, 'A1 is now the most recently seen');
  limits.take('A4');
  assert.is(limits.size, 3);
  assert.not.ok(limits.take('A1').allowed, 'A1 was kept');
  assert.not.ok(limits.take('A3').allowed, 'A3 was kept');
  assert.ok(limits.take('A2').allowed, 'A2 was forgotten and starts over with a full bucket');
  for (let i = 0; i < 1000; i++) limits.take(`RUNAWAY-${i}`);
  assert.is(limits.size, 3);
});

test('limits that are not usable are refused, naming the setting', () => {
  const issuePath = (input: unknown) => {
    const result = rateLimitsSchema.safeParse(input);
    return result.success ? 'accepted' : result.error.issues[0]!.path.join('.');
  };
  assert.is(issuePath({ default: { ratePerSecond: 0, burst: 1 } }), 'default.ratePerSecond');
  assert.is(issuePath({ default: { ratePerSecond: 1, burst: 0.5 } }), 'default.burst');
  assert.is(issuePath({ default: { ratePerSecond: 1, burst: 1 }, askers: { boft: { ratePerSecond: 1, burst: 1 } } }), 'askers.boft');
  assert.is(issuePath({ default: { ratePerSecond: 1, burst: 1 }, askers: { BOFT: { ratePerSecond: -1, burst: 1 } } }), 'askers.BOFT.ratePerSecond');
  assert.throws(() => new RateLimiter({ default: { ratePerSecond: Number.NaN, burst: 1 } }));
});

test('shared among hub processes: each enforces its share of rate and burst, a burst of at least one', () => {
  const { clock, limiter: limits } = limiter({ default: { ratePerSecond: 10, burst: 8 }, askers: { NTA: { ratePerSecond: 1, burst: 1 } } });
  limits.shareAmong(2);
  assert.equal(takeTimes(limits, 'BOFT', 5), [true, true, true, true, false], 'half the burst of 8');
  assert.equal(limits.take('BOFT'), { allowed: false, retryAfterMs: 200, retryAfterSeconds: 1 }, 'half the rate of 10/s: a token every 200 ms');
  assert.equal(takeTimes(limits, 'NTA', 2), [true, false], 'a burst of 1 stays 1 when shared');
  clock.ms += 1_999;
  assert.not.ok(limits.take('NTA').allowed, 'NTA\'s 1/s shared by two is a token every 2 s: not after 1,999 ms');
  clock.ms += 1;
  assert.ok(limits.take('NTA').allowed);
  limits.shareAmong(1);
  clock.ms += 60_000;
  assert.equal(takeTimes(limits, 'BOFT', 9), [true, true, true, true, true, true, true, true, false], 'alone again: the whole burst');
  limits.shareAmong(0);
  assert.equal(limits.take('NTA').allowed, true, 'a count below one is taken as one process');
});

test.run();
