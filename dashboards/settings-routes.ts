// The runtime settings as admins read and change them (dashboards/runtime-settings.ts): each change audited and kept
// with its history.
import { z } from 'zod';
import { accessOf } from './access.ts';
import { auditChange, reasonOf, type ConsoleApp, type ConsoleDeps } from './console-context.ts';
import { runtimeSettingNames } from './runtime-settings.ts';

const value = z.union([z.string(), z.number()]);
const setting = z.object({
  name: z.enum(runtimeSettingNames), value, source: z.enum(['runtime', 'startup']), startup: value, description: z.string(),
  updatedBy: z.string().optional(), updatedAt: z.string().optional(),
});
const params = z.object({ name: z.enum(runtimeSettingNames) });

export function mountSettingsRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  const access = (method: string, url: string) => ({ access: accessOf(method, url).access });

  app.get('/api/settings/runtime', {
    config: access('GET', '/api/settings/runtime'),
    schema: { summary: 'The settings every hub process applies while running: the value in force, where it comes from, and the start-up value', response: { 200: z.object({ settings: z.array(setting) }) } },
  }, async () => ({ settings: deps.runtime.list() }));

  app.put('/api/settings/runtime/:name', {
    config: access('PUT', '/api/settings/runtime/:name'),
    schema: {
      summary: 'Sets a runtime setting for every hub process (null: back to the start-up value)',
      params,
      body: z.object({ value: value.nullable() }).strict(),
      response: { 200: setting },
    },
  }, async (request) => {
    const { name } = request.params;
    const before = deps.runtime.list().find((entry) => entry.name === name)!;
    await deps.runtime.set(name, request.body.value, request.principal!.name, reasonOf(request));
    const after = deps.runtime.list().find((entry) => entry.name === name)!;
    await auditChange(deps, request, `settings/runtime/${name}`, before, after);
    return after;
  });

  app.get('/api/settings/runtime/:name/history', {
    config: access('GET', '/api/settings/runtime/:name/history'),
    schema: { summary: 'Every stored revision of a runtime setting, oldest first', params },
  }, async (request) => ({ name: request.params.name, revisions: await deps.runtime.history(request.params.name) }));
}
