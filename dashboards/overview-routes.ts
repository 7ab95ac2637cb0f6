// The console's overview: traffic and errors of the last hour per service and protocol, each partner's backlog and
// circuit breaker, dead letters, certificates and CRLs by how soon they expire, and the time-stamping backlog.
import { z } from 'zod';
import { accessOf } from './access.ts';
import { archiveOf, type ConsoleApp, type ConsoleDeps } from './console-context.ts';
import { traffic } from './stats.ts';
import { errorRow, errorsOf, trafficRow } from './stats-routes.ts';
import { daysLeft } from './watch.ts';

const hourMs = 3_600_000;

export const overviewAnswer = z.object({
  traffic: z.array(trafficRow),
  errors: z.array(errorRow),
  partners: z.array(z.object({ id: z.string(), backlog: z.number(), breaker: z.enum(['closed', 'open', 'half-open']) })),
  deadLetters: z.number(),
  certificates: z.array(z.object({ subject: z.string(), kind: z.enum(['agency', 'hub', 'tsa', 'crl']), notAfter: z.string(), days: z.number() })),
  stampingBacklog: z.number(),
  disk: z.object({ path: z.string(), freeBytes: z.number(), totalBytes: z.number() }),
});

export function mountOverviewRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/api/overview', {
    config: { access: accessOf('GET', '/api/overview').access },
    schema: {
      summary: 'The hub now: the last hour\'s traffic and errors per service and protocol, partners\' backlogs and breakers, dead letters, certificates and CRLs soonest to expire first, the time-stamping backlog and the data disk',
      response: { 200: overviewAnswer },
    },
  }, async () => {
    const until = new Date();
    const rows = await traffic(archiveOf(deps), { since: new Date(until.getTime() - hourMs).toISOString(), until: until.toISOString(), grain: 'hour', by: ['service', 'protocol'] });
    const [partners, deadLetters, disk] = await Promise.all([deps.watch.partners(), deps.watch.deadLetters(), deps.watch.disk()]);
    const certificates = deps.watch.expiries()
      .map((expiry) => ({ ...expiry, days: daysLeft(expiry.notAfter, until.getTime()) }))
      .sort((a, b) => a.days - b.days || a.subject.localeCompare(b.subject));
    return {
      traffic: rows,
      errors: rows.filter((row) => row.errors > 0).map(errorsOf),
      partners, deadLetters, certificates, stampingBacklog: deps.watch.stampingBacklog(), disk,
    };
  });
}
