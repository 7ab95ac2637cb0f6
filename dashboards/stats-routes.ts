// The console's statistics routes over the rollups (dashboards/stats.ts): traffic, trends, top talkers, latency
// percentiles and errors, each as `{rows}` JSON or, with `?format=csv`, as a CSV file.
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { SwxError } from '../engine/errors.ts';
import { partnerId, serviceId } from '../engine/registry.ts';
import { accessOf } from './access.ts';
import { archiveOf, type ConsoleApp, type ConsoleDeps } from './console-context.ts';
import { toCsv, topTalkers, traffic, type StatsQuery, type TrafficRow } from './stats.ts';

import { dimensions, grains } from './message-terms.ts';

export { dimensions };
const dayMs = 86_400_000;

const instant = z.iso.datetime({ offset: true });
const format = z.enum(['json', 'csv']).default('json').describe('csv: the rows as a CSV file (text/csv)');
const dimensionList = z.string().max(200)
  .transform((text) => text.split(',').map((part) => part.trim()).filter(Boolean))
  .pipe(z.array(z.enum(dimensions)).max(dimensions.length))
  .describe(`dimensions to split by, comma-separated: ${dimensions.join(', ')}`);

/** The period, grain, split and filters of every time-bucketed panel; the last `defaultDays` days by default. */
function periodQuery(defaultGrain: (typeof grains)[number], defaultDays: number, allowed: readonly (typeof grains)[number][] = grains) {
  return z.object({
    since: instant.optional().describe(`from (inclusive); default ${defaultDays} days before until`),
    until: instant.optional().describe('to (exclusive); default now'),
    grain: z.enum(allowed as [(typeof grains)[number], ...(typeof grains)[number][]]).default(defaultGrain),
    by: dimensionList.optional(),
    service: serviceId.optional(), protocol: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
    sender: partnerId.optional(), receiver: partnerId.optional(),
    stage: z.string().regex(/^[a-z_]{1,40}$/).optional(), code: z.string().regex(/^[A-Z0-9_]{0,64}$/).optional(),
    format,
  });
}

type PeriodQuery = z.infer<ReturnType<typeof periodQuery>>;

function statsQuery(query: PeriodQuery, defaultDays: number): StatsQuery {
  const until = query.until ?? new Date().toISOString();
  const since = query.since ?? new Date(Date.parse(until) - defaultDays * dayMs).toISOString();
  if (Date.parse(since) >= Date.parse(until)) throw new SwxError('SWX_BAD_REQUEST', 'since must be before until');
  const where = Object.fromEntries(dimensions.filter((d) => query[d] !== undefined).map((d) => [d, query[d]!]));
  return { since: new Date(since).toISOString(), until: new Date(until).toISOString(), grain: query.grain, by: query.by ?? [], where };
}

/** The rollups' refusals (a partner split by the hour, sender and receiver at once) as the caller's mistake. */
async function read<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof RangeError) throw new SwxError('SWX_BAD_REQUEST', error.message);
    throw error;
  }
}

const count = z.number();
const dimension = z.string().optional();
const bucketed = { bucket: z.string(), service: dimension, protocol: dimension, sender: dimension, receiver: dimension, stage: dimension, code: dimension };
export const trafficRow = z.object({
  ...bucketed, records: count, messages: count, deliveries: count, failures: count, deadLetters: count, rejections: count,
  redeliveries: count, errors: count, bytes: count, errorRate: count,
  latencyP50Ms: count.nullable(), latencyP90Ms: count.nullable(), latencyP95Ms: count.nullable(), latencyP99Ms: count.nullable(),
});
const latencyRow = z.object({ ...bucketed, deliveries: count, p50Ms: count.nullable(), p90Ms: count.nullable(), p95Ms: count.nullable(), p99Ms: count.nullable() });
export const errorRow = z.object({ ...bucketed, messages: count, rejections: count, failures: count, deadLetters: count, errors: count, errorRate: count });
const talkerRow = z.object({ partner: z.string(), messages: count, bytes: count, deliveries: count, errors: count });

/** The error figures of a traffic row. */
export const errorsOf = (row: TrafficRow) => ({
  ...dimensionsOf(row), messages: row.messages, rejections: row.rejections, failures: row.failures, deadLetters: row.deadLetters, errors: row.errors, errorRate: row.errorRate,
});

/** A row's bucket and dimensions, without its figures. */
const dimensionsOf = ({ bucket, service, protocol, sender, receiver, stage, code }: TrafficRow) =>
  ({ bucket, ...Object.fromEntries(Object.entries({ service, protocol, sender, receiver, stage, code }).filter(([, value]) => value !== undefined)) });

/** Rows as JSON `{rows}`, or as a CSV download when asked. */
function answer<T extends object>(reply: FastifyReply, rows: T[], asked: 'json' | 'csv', name: string): { rows: T[] } | string {
  if (asked === 'json') return { rows };
  reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="swx-${name}.csv"`);
  return toCsv(rows);
}

const csvNote = ' With `?format=csv`, the rows as text/csv.';
/** The answer of a panel: its rows as JSON, or the CSV text. */
const rowsOr = <T extends z.ZodType>(row: T) => ({ 200: z.union([z.object({ rows: z.array(row) }), z.string().describe('text/csv')]) });

export function mountStatsRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  const access = (url: string) => ({ access: accessOf('GET', url).access });
  const store = () => archiveOf(deps);

  app.get('/api/stats/traffic', {
    config: access('/api/stats/traffic'),
    schema: {
      summary: `Volumes, bytes, errors and delivery latency per time bucket, split by the dimensions asked (by partner: day, month or year).${csvNote}`,
      querystring: periodQuery('day', 7),
      response: rowsOr(trafficRow),
    },
  }, async (request, reply) => answer(reply, await read(() => traffic(store(), statsQuery(request.query, 7))), request.query.format, 'traffic'));

  app.get('/api/stats/trend', {
    config: access('/api/stats/trend'),
    schema: {
      summary: `Traffic over months or years (default: months of the last two years).${csvNote}`,
      querystring: periodQuery('month', 730, ['month', 'year']),
      response: rowsOr(trafficRow),
    },
  }, async (request, reply) => answer(reply, await read(() => traffic(store(), statsQuery(request.query, 730))), request.query.format, 'trend'));

  app.get('/api/stats/latency', {
    config: access('/api/stats/latency'),
    schema: {
      summary: `Delivery latency percentiles (receipt by the hub to the receiver's receipt), from the rollups' t-digest states.${csvNote}`,
      querystring: periodQuery('day', 7),
      response: rowsOr(latencyRow),
    },
  }, async (request, reply) => {
    const rows = (await read(() => traffic(store(), statsQuery(request.query, 7)))).map((row) => ({
      ...dimensionsOf(row), deliveries: row.deliveries, p50Ms: row.latencyP50Ms, p90Ms: row.latencyP90Ms, p95Ms: row.latencyP95Ms, p99Ms: row.latencyP99Ms,
    }));
    return answer(reply, rows, request.query.format, 'latency');
  });

  app.get('/api/stats/errors', {
    config: access('/api/stats/errors'),
    schema: {
      summary: `Rejections, delivery failures, dead letters and the error rate ((rejections + dead letters) / submissions) per bucket.${csvNote}`,
      querystring: periodQuery('day', 7),
      response: rowsOr(errorRow),
    },
  }, async (request, reply) => {
    const rows = (await read(() => traffic(store(), statsQuery(request.query, 7)))).map(errorsOf);
    return answer(reply, rows, request.query.format, 'errors');
  });

  app.get('/api/stats/top-talkers', {
    config: access('/api/stats/top-talkers'),
    schema: {
      summary: `The partners that sent (side=sender) or received (side=receiver) the most messages in a period (default the last 30 days).${csvNote}`,
      querystring: z.object({
        since: instant.optional(), until: instant.optional(),
        side: z.enum(['sender', 'receiver']).default('sender'),
        limit: z.coerce.number().int().min(1).max(1_000).default(10),
        format,
      }),
      response: rowsOr(talkerRow),
    },
  }, async (request, reply) => {
    const { side, limit, format: asked } = request.query;
    const { since, until } = statsQuery({ ...request.query, grain: 'day', format: asked }, 30);
    return answer(reply, await topTalkers(store(), { since, until, side, limit }), asked, 'top-talkers');
  });
}
