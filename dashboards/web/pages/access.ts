// Services and access: the three tables of the platform's description as matrices of partners against datasets
// (Table 1, who asks and who provides), topics (Table 2, who notifies and who receives) and channels (Table 3, who
// provides and who requests). Each cell is a pair of checkboxes; a change puts the item again, with the reason given,
// and the item's history shows every revision.
import { api, listPage } from '../api.ts';
import { el, fill, input, select, shown } from '../dom.ts';
import { t, type Word } from '../i18n.ts';
import { button, failure, load, section, table, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

type Item = Row & { id: string; name: string; nameZh?: string };

interface Matrix {
  title: Word;
  collection: 'catalogue' | 'topics' | 'channels';
  /** The two lists of partner ids each item holds, and the word for being in each. */
  sides: [keyof Item & string, Word][];
}

const matrices: Matrix[] = [
  { title: 'queryAccess', collection: 'catalogue', sides: [['askers', 'asker'], ['providers', 'provider']] },
  { title: 'topics', collection: 'topics', sides: [['notifiers', 'notifier'], ['receivers', 'receiver']] },
  { title: 'channels', collection: 'channels', sides: [['requesters', 'requester'], ['providers', 'provider']] },
];

function matrixTable(matrix: Matrix, items: Item[], partners: string[], reason: HTMLInputElement, status: HTMLElement): HTMLElement {
  const cell = (item: Item, partner: string) => el('td', {}, matrix.sides.map(([side, word]) => {
    const held = (item[side] as string[] | undefined) ?? [];
    const box = el('input', { type: 'checkbox', 'aria-label': `${partner} ${t(word)} ${item.id}`, 'data-cell': `${matrix.collection}/${item.id}/${side}/${partner}` });
    box.checked = held.includes(partner);
    box.addEventListener('change', () => {
      const next = box.checked ? [...held, partner] : held.filter((id) => id !== partner);
      const { id, ...rest } = item;
      box.disabled = true;
      api<Item>('PUT', `/api/${matrix.collection}/${encodeURIComponent(id)}`, { ...rest, [side]: next }, { reason: reason.value })
        .then((saved) => { Object.assign(item, saved); fill(status, el('p', { role: 'status' }, `${t('saved')} ${matrix.collection}/${id}`)); })
        .catch((error: unknown) => { box.checked = !box.checked; fill(status, failure(error)); })
        .finally(() => { box.disabled = false; });
    });
    return el('label', { class: 'cell' }, box, el('span', { 'aria-hidden': 'true' }, t(word)));
  }));
  return el('div', { class: 'table-wrap matrix', tabindex: 0, role: 'region', 'aria-label': t(matrix.title) },
    el('table', {},
      el('caption', {}, t(matrix.title)),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, t('partner')), items.map((item) => el('th', { scope: 'col', title: shown(item.name) }, item.id)))),
      el('tbody', {}, partners.map((partner) => el('tr', {}, el('th', { scope: 'row' }, partner), items.map((item) => cell(item, partner)))))));
}

export const accessPage: Page = {
  id: 'access',
  route: 'GET /api/catalogue',
  async render(target) {
    const reason = input('reason');
    const status = el('div', { 'aria-live': 'polite' });
    const historyOf = select('history-of', []);
    const history = el('div');
    const reasonId = 'access-reason';
    reason.id = reasonId;
    fill(target, el('p', {}, t('matrixHint')), el('div', { class: 'field' }, el('label', { for: reasonId }, t('reason').replace(/[（(].*[)）]/, '')), reason), status);
    const partners = (await listPage<Item>('/api/partners?limit=1000')).rows.map((partner) => partner.id);
    for (const matrix of matrices) {
      const box = el('div');
      target.append(section(t(matrix.title), box));
      void load(box, async () => {
        const items = (await listPage<Item>(`/api/${matrix.collection}?limit=1000`)).rows;
        for (const item of items) historyOf.append(el('option', { value: `${matrix.collection}/${item.id}` }, `${matrix.collection}/${item.id}`));
        return matrixTable(matrix, items, partners, reason, status);
      });
    }
    const services = el('div');
    void load(services, async () => {
      const rows = (await listPage<Row>('/api/services?limit=1000')).rows;
      for (const row of rows) historyOf.append(el('option', { value: `services/${shown(row.id)}` }, `services/${shown(row.id)}`));
      return table(rows.map((row) => ({ id: row.id, name: row.name, rules: (row.rules as { from: string[]; to: string[] }[]).map((rule) => `${rule.from.join(',')} → ${rule.to.join(',')}`).join('; ') })), undefined, t('services'));
    });
    historyOf.id = 'access-history-of';
    target.append(section(t('services'), services), section(t('history'),
      el('div', { class: 'field' }, el('label', { for: historyOf.id }, t('history')), historyOf),
      button(t('open'), () => void load(history, async () =>
        table((await api<Row[]>('GET', `/api/${historyOf.value}/history`)).map((entry) => ({ ...entry, value: shown(entry.value) })), undefined, t('history')))),
      history));
  },
};
