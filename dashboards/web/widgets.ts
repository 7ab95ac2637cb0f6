// The pieces every page is made of: tables of rows, refusals shown as such, charts, CSV downloads.
import type { EChartsOption, EChartsType } from 'echarts';
import { ApiError } from './api.ts';
import { el, fill, shown } from './dom.ts';
import { t } from './i18n.ts';

export type Row = Record<string, unknown>;
export interface Column { key: string; label?: string; cell?: (row: Row) => Node | string }

/** A table of rows: the columns given, or every key the rows have. */
export function table(rows: Row[], columns?: Column[], caption?: string): HTMLElement {
  if (!rows.length) return el('p', { class: 'empty' }, t('none'));
  const cols: Column[] = columns ?? [...new Set(rows.flatMap((row) => Object.keys(row)))].map((key) => ({ key }));
  return el('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption ?? t('table') },
    el('table', {},
      caption ? el('caption', {}, caption) : null,
      el('thead', {}, el('tr', {}, cols.map((col) => el('th', { scope: 'col' }, col.label ?? col.key)))),
      el('tbody', {}, rows.map((row) => el('tr', {}, cols.map((col) => el('td', {}, col.cell ? col.cell(row) : long(shown(row[col.key])))))))));
}

/** A long value (a certificate, an entry's JSON) folded to its first line, the whole of it a click away. */
function long(text: string): Node | string {
  if (text.length <= 160) return text;
  return el('details', {}, el('summary', {}, `${text.slice(0, 80)}…`), el('pre', {}, text));
}

/** What went wrong, said plainly: a route this hub lacks is named; a refusal gives its code and detail. */
export function failure(error: unknown): HTMLElement {
  if (error instanceof ApiError) {
    if (error.missingRoute) return el('p', { class: 'error', role: 'alert' }, `${t('missingRoute')} ${error.route}`);
    return el('p', { class: 'error', role: 'alert' }, `${t('refused')}: ${error.status} ${error.code} — ${error.message}`);
  }
  return el('p', { class: 'error', role: 'alert' }, error instanceof Error ? error.message : String(error));
}

/** Fills `target` with what `work` makes, showing progress and any failure in its place. */
export async function load(target: Element, work: () => Promise<Node | Node[]>): Promise<void> {
  fill(target, el('p', { class: 'busy' }, t('loading')));
  try {
    const made = await work();
    fill(target, ...(Array.isArray(made) ? made : [made]));
  } catch (error) {
    fill(target, failure(error));
  }
}

export function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return el('section', {}, el('h2', {}, title), children);
}

export function button(label: string, onclick: (event: Event) => void, props: Record<string, string> = {}): HTMLButtonElement {
  return el('button', { type: 'button', onclick: onclick as EventListener, ...props }, label);
}

/** The rows as CSV (RFC 4180), offered as a file: the browser makes it, nothing is sent anywhere. */
export function csvLink(rows: Row[], name: string): HTMLElement {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const quote = (value: unknown) => {
    const text = shown(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const csv = [columns.join(','), ...rows.map((row) => columns.map((column) => quote(row[column])).join(','))].join('\r\n');
  const href = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
  return el('a', { href, download: name, class: 'button' }, t('exportCsv'));
}

declare global { interface Window { echarts?: typeof import('echarts') } }
let echartsLoaded: Promise<typeof import('echarts')> | undefined;

/** ECharts, from the hub itself, fetched the first time a chart is drawn. */
function echarts(): Promise<typeof import('echarts')> {
  echartsLoaded ??= new Promise((resolve, reject) => {
    const script = el('script', { src: '/console/echarts.js' });
    script.addEventListener('load', () => (window.echarts ? resolve(window.echarts) : reject(new Error('ECharts did not load'))));
    script.addEventListener('error', () => reject(new Error('ECharts could not be fetched from /console/echarts.js')));
    document.head.append(script);
  });
  return echartsLoaded;
}

const drawn = new Set<EChartsType>();
window.addEventListener('resize', () => { for (const chart of drawn) chart.resize(); });

export interface ChartSpec {
  /** The column along the bottom. */
  x: string;
  /** The columns drawn (every numeric one when not given). */
  figures?: string[];
  /** A column whose values each make a series of the first figure (a split by partner, service…). */
  seriesBy?: string;
  kind?: 'line' | 'bar';
}

/**
 * A chart of rows, drawn by ECharts once it is fetched. The figure gets an accessible name; the data stays readable in
 * the table the page shows beside it.
 */
export function chart(rows: Row[], spec: ChartSpec, label: string): HTMLElement {
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': label });
  const { x, seriesBy, kind = 'line' } = spec;
  const figures = spec.figures ?? Object.keys(rows[0] ?? {}).filter((key) => key !== x && key !== seriesBy && rows.every((row) => row[key] === null || typeof row[key] === 'number' || (row[key] !== '' && Number.isFinite(Number(row[key])))));
  const categories = [...new Set(rows.map((row) => shown(row[x])))];
  const figure = (row: Row, key: string) => Number(row[key] ?? 0);
  const series = seriesBy
    ? [...new Set(rows.map((row) => shown(row[seriesBy])))].map((name) => ({
      name, type: kind,
      data: categories.map((category) => rows.filter((row) => shown(row[x]) === category && shown(row[seriesBy]) === name).reduce((sum, row) => sum + figure(row, figures[0] ?? ''), 0)),
    }))
    : figures.map((key) => ({ name: key, type: kind, data: categories.map((category) => rows.filter((row) => shown(row[x]) === category).reduce((sum, row) => sum + figure(row, key), 0)) }));
  const option: EChartsOption = {
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { type: 'scroll' },
    grid: { left: 48, right: 16, bottom: 48, top: 40 },
    xAxis: { type: 'category', data: categories },
    yAxis: { type: 'value' },
    series,
  };
  void echarts().then((lib) => {
    const instance = lib.init(box, undefined, { renderer: 'canvas' });
    instance.setOption(option);
    drawn.add(instance);
    box.dataset.drawn = String(series.length);
  }).catch((error: unknown) => fill(box, failure(error)));
  return box;
}

/** Forgets the charts of the page left. */
export function disposeCharts(): void {
  for (const chart of drawn) chart.dispose();
  drawn.clear();
}
