// The analysts' routes: a read-only SQL query over the statistics tables (dashboards/analysis.ts), and the shared
// dashboard of saved panels, kept in a NATS KV bucket with history so every hub process serves the same panels.
import { z } from 'zod';
import { SwxError } from '../engine/errors.ts';
import { StoreError } from '../engine/store/index.ts';
import { accessOf } from './access.ts';
import { AnalysisRefused, checkAnalysis, defaultAnalysisLimits, runAnalysis } from './analysis.ts';
import { archiveOf, auditChange, type ConsoleApp, type ConsoleDeps } from './console-context.ts';
import { panelId, panelSchema, sql } from './panels.ts';


/** A sandbox refusal as the caller's problem with its SWX_SQL_* code; ClickHouse's own refusal of the query too. */
async function sandboxed<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof AnalysisRefused) throw new SwxError(error.code, error.message);
    if (error instanceof StoreError && error.code === 'QUERY_FAILED') throw new SwxError('SWX_SQL_NOT_A_QUERY', `ClickHouse could not run the query: ${error.message}`);
    throw error;
  }
}

const panelAnswer = panelSchema.extend({ id: z.string() });

export function mountAnalysisRoutes(app: ConsoleApp, deps: ConsoleDeps): void {
  const access = (method: string, url: string) => ({ access: accessOf(method, url).access });

  app.post('/api/analysis/query', {
    config: access('POST', '/api/analysis/query'),
    schema: {
      summary: 'Runs one SELECT read-only over the statistics tables, held by ClickHouse\'s time, row and memory limits; a refusal carries its SWX_SQL_* code',
      body: z.object({ sql }).strict(),
      response: { 200: z.object({ columns: z.array(z.string()), rows: z.array(z.record(z.string(), z.unknown())), tables: z.array(z.string()) }) },
    },
  }, async (request) => {
    const limits = {
      ...defaultAnalysisLimits,
      maxExecutionTimeSec: Number(deps.runtime.value('analysisMaxExecutionSeconds')),
      maxResultRows: Number(deps.runtime.value('analysisMaxResultRows')),
    };
    const { rows, tables } = await sandboxed(() => runAnalysis(archiveOf(deps), request.body.sql, limits));
    return { columns: rows.length ? Object.keys(rows[0]!) : [], rows, tables };
  });

  app.get('/api/analysis/panels', {
    config: access('GET', '/api/analysis/panels'),
    schema: { summary: 'The shared dashboard\'s panels', response: { 200: z.object({ panels: z.array(panelAnswer) }) } },
  }, async () => ({ panels: deps.panels.list().map(([id, panel]) => ({ id, ...panel })) }));

  app.put('/api/analysis/panels/:panel', {
    config: access('PUT', '/api/analysis/panels/:panel'),
    schema: {
      summary: 'Saves a panel on the shared dashboard; its SQL is checked by the sandbox (one SELECT, allowed tables) first',
      params: z.object({ panel: panelId }),
      body: panelSchema.pick({ title: true, sql: true, chart: true }).strict(),
      response: { 200: panelAnswer },
    },
  }, async (request) => {
    const { panel: id } = request.params;
    await sandboxed(() => checkAnalysis(archiveOf(deps), request.body.sql));
    const before = deps.panels.get(id) ?? null;
    const saved = await deps.panels.put(id, { ...request.body, updatedBy: request.principal!.name, updatedAt: new Date().toISOString() });
    await auditChange(deps, request, `analysis/panels/${id}`, before, saved);
    return { id, ...saved };
  });

  app.delete('/api/analysis/panels/:panel', {
    config: access('DELETE', '/api/analysis/panels/:panel'),
    schema: { summary: 'Removes a panel from the shared dashboard', params: z.object({ panel: panelId }), response: { 200: z.object({ removed: z.string() }) } },
  }, async (request) => {
    const { panel: id } = request.params;
    const before = deps.panels.get(id);
    if (!before) throw new SwxError('SWX_NOT_FOUND', `no panel ${id}`);
    await deps.panels.remove(id);
    await auditChange(deps, request, `analysis/panels/${id}`, before, null);
    return { removed: id };
  });
}
