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
      el('tbody', {}, rows.map((row) => el('tr', {}, cols.map((col) => el('td', {}, col.cell ? col.cell(row) : shown(row[col.key]))))))));
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

/**
 * A chart of rows: `x` along the bottom, one series per numeric column (or per value of `series`). The figure gets an
 * accessible name and the data stays readable in the table beside it.
 */
export function chart(rows: Row[], x: string, label: string, kind: 'line' | 'bar' = 'line', seriesKey?: string): HTMLElement {
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': label });
  const categories = [...new Set(rows.map((row) => shown(row[x])))];
  let series: { name: string; type: 'line' | 'bar'; data: number[] }[];
  if (seriesKey) {
    const valueKey = Object.keys(rows[0] ?? {}).find((key) => key !== x && key !== seriesKey && Number.isFinite(Number(rows[0]![key]))) ?? '';
    const names = [...new Set(rows.map((row) => shown(row[seriesKey])))];
    series = names.map((name) => ({ name, type: kind, data: categories.map((category) => rows.filter((row) => shown(row[x]) === category && shown(row[seriesKey]) === name).reduce((sum, row) => sum + Number(row[valueKey] ?? 0), 0)) }));
  } else {
    const numeric = Object.keys(rows[0] ?? {}).filter((key) => key !== x && rows.every((row) => row[key] === null || Number.isFinite(Number(row[key]))));
    series = numeric.map((key) => ({ name: key, type: kind, data: rows.map((row) => Number(row[key] ?? 0)) }));
  }
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
