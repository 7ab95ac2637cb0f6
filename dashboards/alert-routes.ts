// The alerts as the console shows them, and the Prometheus rule file of the same conditions.
import { z } from 'zod';
import { accessOf } from './access.ts';
import { alertKinds, prometheusRules } from './alerts.ts';
import type { ConsoleApp, ConsoleDeps } from './console-context.ts';

const alert = z.object({
  id: z.string(), kind: z.enum(alertKinds), severity: z.enum(['info', 'warning', 'critical']), subject: z.string(), message: z.string(), since: z.string(),
});

export function mountAlertRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/api/alerts', {
    config: { access: accessOf('GET', '/api/alerts').access },
    schema: {
      summary: 'The alerts that hold now, critical first: certificates and CRLs expiring within 60, 30, 7 days, breakers open, backlogs, missing receipts, disk space',
      response: { 200: z.object({ alerts: z.array(alert) }) },
    },
  }, async () => ({ alerts: await deps.alerts.evaluator.evaluate() }));

  app.get('/api/alerts/rules', {
    config: { access: accessOf('GET', '/api/alerts/rules').access },
    schema: { summary: 'A Prometheus alerting-rule file (YAML) of the same conditions over the hub\'s metrics, with this hub\'s thresholds', response: { 200: z.string() } },
  }, async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(prometheusRules(deps.alerts.thresholds)));
}
