// Overview, statistics, analysis and alerts: what the hub is doing, as tables and ECharts charts.
import { dimensions, grains } from '../../message-terms.ts';
import { api, query } from '../api.ts';
import { el, fill, input, select, shown } from '../dom.ts';
import { form, go, textarea } from '../forms.ts';
import { t } from '../i18n.ts';
import { button, chart, csvLink, load, section, table, type ChartSpec, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

interface Overview {
  traffic: Row[]; errors: Row[]; partners: Row[]; deadLetters: number; certificates: Row[]; stampingBacklog: number;
  disk?: { path: string; freeBytes: number; totalBytes: number };
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export const overviewPage: Page = {
  id: 'overview',
  route: 'GET /api/overview',
  async render(target) {
    const overview = await api<Overview>('GET', '/api/overview');
    const figures: [string, string][] = [
      [t('deadLetters'), String(overview.deadLetters)],
      [t('stampingBacklog'), String(overview.stampingBacklog)],
      ...(overview.disk ? [[t('disk'), `${gib(overview.disk.freeBytes)} / ${gib(overview.disk.totalBytes)}`] as [string, string]] : []),
    ];
    fill(target,
      el('dl', { class: 'figures' }, figures.map(([name, value]) => el('div', {}, el('dt', {}, name), el('dd', { class: 'figure' }, value)))),
      section(t('traffic'),
        overview.traffic.length ? chart(overview.traffic, { x: 'service', figures: ['messages', 'deliveries', 'errors'], kind: 'bar' }, t('traffic')) : null,
        table(overview.traffic, undefined, t('traffic'))),
      section(t('errors'), table(overview.errors, undefined, t('errors'))),
      section(t('partners'), table(overview.partners, [{ key: 'id', label: t('partner') }, { key: 'backlog', label: t('backlog') }, { key: 'breaker', label: t('breaker') }], t('partners'))),
      section(t('expiring'), table(overview.certificates, [{ key: 'subject', label: t('subject') }, { key: 'kind', label: t('kind') }, { key: 'notAfter' }, { key: 'days', label: t('days') }], t('expiring'))));
  },
};

const statistics = ['traffic', 'trend', 'top-talkers', 'latency', 'errors'] as const;
type Statistic = (typeof statistics)[number];
const statisticWords = { traffic: 'traffic', trend: 'trend', 'top-talkers': 'topTalkers', latency: 'latency', errors: 'errors' } as const;
/** What each panel draws: the figures worth comparing on one axis. */
const drawn: Record<Statistic, Omit<ChartSpec, 'seriesBy'>> = {
  traffic: { x: 'bucket', figures: ['messages', 'deliveries', 'errors'] },
  trend: { x: 'bucket', figures: ['messages', 'deliveries', 'errors'] },
  latency: { x: 'bucket', figures: ['p50Ms', 'p90Ms', 'p95Ms', 'p99Ms'] },
  errors: { x: 'bucket', figures: ['rejections', 'failures', 'deadLetters'], kind: 'bar' },
  'top-talkers': { x: 'partner', figures: ['messages', 'deliveries', 'errors'], kind: 'bar' },
};

export const statisticsPage: Page = {
  id: 'statistics',
  route: 'GET /api/stats/traffic',
  render(target, params) {
    const kind: Statistic = statistics.find((name) => name === params.get('kind')) ?? 'traffic';
    const value = (name: string) => params.get(name) ?? '';
    const choose = form(t('filters'), [
      { name: 'kind', label: t('chart'), control: select('kind', statistics.map((name): [string, string] => [name, t(statisticWords[name])]), kind) },
      { name: 'since', label: t('since'), control: input('since', { value: value('since'), placeholder: '2026-01-01T00:00:00Z' }) },
      { name: 'until', label: t('until'), control: input('until', { value: value('until'), placeholder: '2026-12-31T00:00:00Z' }) },
      { name: 'grain', label: t('grain'), control: select('grain', [['', t('any')], ...grains.map((grain): [string, string] => [grain, grain])], value('grain')) },
      { name: 'by', label: t('by'), control: select('by', [['', t('any')], ...dimensions.map((dimension): [string, string] => [dimension, dimension])], value('by')) },
    ], t('show'), async (values) => { go('statistics', values); });
    const shownStats = el('div');
    fill(target, choose.element, shownStats);
    const asked = kind === 'top-talkers' ? ['since', 'until'] : ['since', 'until', 'grain', 'by'];
    const path = `/api/stats/${kind}${query(Object.fromEntries(asked.map((name) => [name, value(name)])))}`;
    void load(shownStats, async () => {
      const { rows } = await api<{ rows: Row[] }>('GET', path);
      const title = t(statisticWords[kind]);
      const by = value('by');
      return [
        rows.length ? chart(rows, { ...drawn[kind], ...(by && kind !== 'top-talkers' ? { seriesBy: by } : {}) }, title) : el('span'),
        el('p', {}, csvLink(rows, `${kind}.csv`), ' ', el('a', { href: `${path}${path.includes('?') ? '&' : '?'}format=csv`, download: `swx-${kind}.csv` }, `${t('exportCsv')} (${t('statistics')})`)),
        table(rows, undefined, title),
      ];
    });
  },
};

interface Analysis { columns: string[]; rows: Row[]; tables: string[] }
interface Panel { id: string; title: string; sql: string; chart: 'table' | 'line' | 'bar'; updatedBy: string; updatedAt: string }

export const analysisPage: Page = {
  id: 'analysis',
  route: 'POST /api/analysis/query',
  render(target) {
    const output = el('div', { 'aria-live': 'polite' });
    const sql = textarea('sql', 'SELECT service, count() AS messages FROM messages GROUP BY service ORDER BY messages DESC LIMIT 20', 5);
    const as = select('as', [['table', t('table')], ['bar', `${t('chart')} (bar)`], ['line', `${t('chart')} (line)`]], 'table');
    const run = form(t('analysis'), [{ name: 'sql', label: t('sql'), control: sql }, { name: 'as', label: t('show'), control: as }], t('run'), async (values) => {
      const answer = await api<Analysis>('POST', '/api/analysis/query', { sql: values.sql });
      const rows = answer.rows;
      fill(output,
        el('p', {}, `${rows.length} × ${answer.columns.length} (${answer.tables.join(', ')})`),
        values.as === 'table' || !rows.length ? table(rows, answer.columns.map((key) => ({ key })), t('analysis')) : chart(rows, { x: answer.columns[0] ?? '', figures: answer.columns.slice(1), kind: values.as === 'bar' ? 'bar' : 'line' }, t('analysis')),
        rows.length ? csvLink(rows, 'analysis.csv') : null);
    });
    const panels = el('div');
    const drawPanels = () => load(panels, async () => table((await api<{ panels: Panel[] }>('GET', '/api/analysis/panels')).panels as unknown as Row[], [
      { key: 'id' }, { key: 'title', label: t('name') }, { key: 'chart', label: t('show') }, { key: 'sql' }, { key: 'updatedBy' }, { key: 'updatedAt' },
      { key: 'open', label: t('open'), cell: (row) => button(`${t('open')} ${shown(row.id)}`, () => {
        sql.value = shown(row.sql);
        as.value = shown(row.chart);
        run.element.requestSubmit();
      }) },
    ], t('panels')));
    const save = form(t('saveAsPanel'), [
      { name: 'panel', label: t('panelName'), control: input('panel', { placeholder: 'daily-volume' }) },
      { name: 'title', label: t('name'), control: input('title') },
    ], t('saveAsPanel'), async (values) => {
      await api('PUT', `/api/analysis/panels/${encodeURIComponent(values.panel ?? '')}`, { title: values.title, sql: sql.value, chart: as.value });
      void drawPanels();
      return el('p', { role: 'status' }, t('saved'));
    });
    fill(target, run.element, output, save.element, section(t('panels'), panels));
    void drawPanels();
  },
};

export const alertsPage: Page = {
  id: 'alerts',
  route: 'GET /api/alerts',
  async render(target) {
    const { alerts } = await api<{ alerts: Row[] }>('GET', '/api/alerts');
    fill(target, table(alerts, [{ key: 'severity', label: t('severity') }, { key: 'kind', label: t('kind') }, { key: 'subject', label: t('subject') },
      { key: 'message', label: t('message') }, { key: 'since', label: t('since') }], t('alerts')));
  },
};
