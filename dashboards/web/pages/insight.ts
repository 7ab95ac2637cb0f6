// Overview, statistics, analysis and alerts: what the hub is doing, as tables and ECharts charts.
import { api } from '../api.ts';
import { el, fill, input, select, shown } from '../dom.ts';
import { form, go, textarea } from '../forms.ts';
import { t } from '../i18n.ts';
import { chart, csvLink, load, section, table, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

/** A value of an answer as it best reads: rows as a table, a number or word as such, an object as one row. */
function part(title: string, value: unknown): HTMLElement {
  if (Array.isArray(value)) return section(title, table(value.map((row) => (typeof row === 'object' && row ? row as Row : { value: row })), undefined, title));
  if (value && typeof value === 'object') return section(title, table([value as Row], undefined, title));
  return section(title, el('p', { class: 'figure' }, shown(value)));
}

export const overviewPage: Page = {
  id: 'overview',
  route: 'GET /api/overview',
  async render(target) {
    const overview = await api<Record<string, unknown>>('GET', '/api/overview');
    const titles: Record<string, string> = {
      traffic: t('traffic'), errors: t('errors'), partners: t('partners'), deadLetters: t('deadLetters'), certificates: t('expiring'), stampingBacklog: t('stampingBacklog'),
    };
    const traffic = overview.traffic;
    fill(target,
      Array.isArray(traffic) && traffic.length ? chart(traffic as Row[], Object.keys(traffic[0] as Row)[0] ?? '', t('traffic'), 'bar') : null,
      Object.entries(overview).map(([key, value]) => part(titles[key] ?? key, value)));
  },
};

const statistics = ['traffic', 'trend', 'top-talkers', 'latency', 'errors'] as const;
const statisticWords = { traffic: 'traffic', trend: 'trend', 'top-talkers': 'topTalkers', latency: 'latency', errors: 'errors' } as const;

export const statisticsPage: Page = {
  id: 'statistics',
  route: 'GET /api/stats/traffic',
  render(target, params) {
    const kind = (statistics as readonly string[]).includes(params.get('kind') ?? '') ? params.get('kind')! : 'traffic';
    const value = (name: string) => params.get(name) ?? '';
    const choose = form(t('filters'), [
      { name: 'kind', label: t('chart'), control: select('kind', statistics.map((name): [string, string] => [name, t(statisticWords[name])]), kind) },
      { name: 'since', label: t('since'), control: input('since', { value: value('since'), placeholder: '2026-01-01T00:00:00Z' }) },
      { name: 'until', label: t('until'), control: input('until', { value: value('until') }) },
      { name: 'grain', label: t('grain'), control: select('grain', [['', t('any')], ['minute', 'minute'], ['hour', 'hour'], ['day', 'day'], ['month', 'month']], value('grain')) },
      { name: 'by', label: t('by'), control: select('by', [['', t('any')], ['partner', 'partner'], ['service', 'service'], ['protocol', 'protocol']], value('by')) },
    ], t('show'), async (values) => { go('statistics', values); });
    const shownStats = el('div');
    fill(target, choose.element, shownStats);
    const search = new URLSearchParams(Object.entries({ since: value('since'), until: value('until'), grain: value('grain'), by: value('by') }).filter(([, v]) => v)).toString();
    const path = `/api/stats/${kind}${search ? `?${search}` : ''}`;
    void load(shownStats, async () => {
      const { rows } = await api<{ rows: Row[] }>('GET', path);
      const title = t(statisticWords[kind as (typeof statistics)[number]]);
      const first = rows[0] ?? {};
      const x = Object.keys(first).find((key) => /^(at|bucket|time|hour|day|period|partner|service|protocol)$/.test(key)) ?? Object.keys(first)[0] ?? '';
      const seriesKey = x !== 'partner' && 'partner' in first ? 'partner' : undefined;
      return [
        rows.length ? chart(rows, x, title, kind === 'top-talkers' || kind === 'errors' ? 'bar' : 'line', seriesKey) : el('span'),
        el('p', {}, csvLink(rows, `${kind}.csv`), ' ', el('a', { href: `${path}${search ? '&' : '?'}format=csv`, download: `${kind}-server.csv` }, `CSV (${path})`)),
        table(rows, undefined, title),
      ];
    });
  },
};

interface Analysis { columns: { name: string; type: string }[] | string[]; rows: Row[] | unknown[][]; tables?: string[] }

/** The analysis answer as rows of named values, whichever way the server lays them out. */
function analysisRows(answer: Analysis): Row[] {
  const names = answer.columns.map((column) => (typeof column === 'string' ? column : column.name));
  return answer.rows.map((row) => (Array.isArray(row) ? Object.fromEntries(names.map((name, i) => [name, row[i]])) : row));
}

export const analysisPage: Page = {
  id: 'analysis',
  route: 'POST /api/analysis/query',
  render(target) {
    const output = el('div');
    const sql = textarea('sql', 'SELECT service, count() AS messages FROM messages GROUP BY service ORDER BY messages DESC LIMIT 20', 5);
    const as = select('as', [['table', t('table')], ['bar', `${t('chart')} (bar)`], ['line', `${t('chart')} (line)`]], 'table');
    let last: Row[] = [];
    const run = form(t('analysis'), [{ name: 'sql', label: t('sql'), control: sql }, { name: 'as', label: t('show'), control: as }], t('run'), async (values) => {
      last = analysisRows(await api<Analysis>('POST', '/api/analysis/query', { sql: values.sql }));
      fill(output, values.as === 'table' || !last.length ? table(last, undefined, t('analysis')) : chart(last, Object.keys(last[0]!)[0]!, t('analysis'), values.as === 'bar' ? 'bar' : 'line'),
        last.length ? csvLink(last, 'analysis.csv') : null);
    });
    const panels = el('div');
    const drawPanels = () => load(panels, async () => {
      const saved = await api<Row[] | { panels: Row[] }>('GET', '/api/analysis/panels');
      return table(Array.isArray(saved) ? saved : saved.panels, undefined, t('panels'));
    });
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
