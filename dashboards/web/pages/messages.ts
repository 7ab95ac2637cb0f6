// Messages: search by any id and filters, paged by the server's keyset cursor; one message's timeline with links to
// its evidence; dead letters resent after a preview, with a reason and the choice of keeping or renewing the id.
import { keyKinds, messageStates } from '../../message-terms.ts';
import { api, listPage, query } from '../api.ts';
import { el, fill, input, select, shown } from '../dom.ts';
import { form, go, link, parsedJson, textarea } from '../forms.ts';
import { t } from '../i18n.ts';
import { may } from '../roles.ts';
import { button, failure, load, section, table, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

const filterNames = ['key', 'keyKind', 'partner', 'service', 'protocol', 'state', 'since', 'until'] as const;

function searchForm(params: URLSearchParams): HTMLElement {
  const value = (name: string) => params.get(name) ?? '';
  return form(t('filters'), [
    { name: 'key', label: t('id'), control: input('key', { value: value('key'), type: 'search' }) },
    { name: 'keyKind', label: t('keyKind'), control: select('keyKind', [['', t('any')], ...keyKinds.map((kind): [string, string] => [kind, kind])], value('keyKind')) },
    { name: 'partner', label: t('partner'), control: input('partner', { value: value('partner') }) },
    { name: 'service', label: t('service'), control: input('service', { value: value('service') }) },
    { name: 'protocol', label: t('protocol'), control: input('protocol', { value: value('protocol') }) },
    { name: 'state', label: t('state'), control: select('state', [['', t('any')], ...messageStates.map((state): [string, string] => [state, state])], value('state')) },
    { name: 'since', label: t('since'), control: input('since', { value: value('since'), placeholder: '2026-01-01T00:00:00Z' }) },
    { name: 'until', label: t('until'), control: input('until', { value: value('until'), placeholder: '2026-12-31T00:00:00Z' }) },
  ], t('search'), async (values) => { go('messages', { ...values, searched: '1' }); }).element;
}

async function results(params: URLSearchParams): Promise<Node[]> {
  const filters = Object.fromEntries(filterNames.map((name) => [name, params.get(name) ?? '']));
  const page = await listPage<Row>(`/api/messages${query({ ...filters, limit: 50, cursor: params.get('cursor') ?? '' })}`);
  const rows = table(page.rows, [
    { key: 'at' },
    { key: 'messageId', cell: (row) => link(shown(row.messageId), 'messages', { ...filters, searched: '1', timeline: shown(row.messageId) }) },
    { key: 'from' }, { key: 'to', cell: (row) => shown(row.to) || shown(row.receivers) }, { key: 'service' }, { key: 'protocol' }, { key: 'state' },
    { key: 'evidence', label: t('evidenceLink'), cell: (row) => link(t('evidenceLink'), 'evidence', { messageId: shown(row.messageId) }) },
  ], t('messages'));
  const paging = el('p', { class: 'paging' },
    params.get('cursor') ? link(t('first'), 'messages', { ...filters, searched: '1' }) : null, ' ',
    page.next ? link(t('next'), 'messages', { ...filters, searched: '1', cursor: page.next }) : null);
  return [rows, paging];
}

function timeline(messageId: string): HTMLElement {
  const box = el('div');
  void load(box, async () => {
    const answer = await api<{ messageId: string; entries: Row[] }>('GET', `/api/messages/${encodeURIComponent(messageId)}/timeline`);
    return [table(answer.entries, undefined, `${t('timeline')}: ${messageId}`), el('p', {}, link(`${t('evidenceLink')}: ${messageId}`, 'evidence', { messageId }))];
  });
  return section(`${t('timeline')}: ${messageId}`, box);
}

/**
 * Dead letters: each resent on its own, or all that a filter matches once a preview showed how many and which; either
 * way with a reason, which the audit log keeps, and the message id kept or renewed.
 */
function deadLetters(): HTMLElement {
  const list = el('div');
  const status = el('div', { 'aria-live': 'polite' });
  const preview = el('div', { 'aria-live': 'polite' });
  const filter = textarea('filter', '{}', 3);
  const reason = input('reason', { required: true, 'aria-required': 'true' });
  const identity = select('messageId', [['keep', t('keepId')], ['renew', t('renewId')]], 'keep');
  const needReason = () => {
    if (reason.value.trim()) return reason.value.trim();
    reason.focus();
    throw new Error(`${t('reason')}: ${t('missing')}`);
  };
  const drawList = () => load(list, async () => table((await listPage<Row>('/api/dlq?limit=50')).rows, [
    { key: 'seq' }, { key: 'messageId' }, { key: 'from' }, { key: 'to' }, { key: 'service' }, { key: 'code' }, { key: 'reason' }, { key: 'at' },
    { key: 'resend', label: t('resend'), cell: (row) => button(`${t('resend')} ${shown(row.seq)}`, () => {
      // A missing reason is said in the status line, as any refusal is.
      void Promise.resolve().then(() => api<Row>('POST', `/api/dlq/${encodeURIComponent(shown(row.seq))}/resend`, undefined, { reason: needReason() }))
        .then(() => { fill(status, el('p', { role: 'status' }, `${t('resent')}: ${shown(row.messageId)}`)); void drawList(); })
        .catch((error: unknown) => fill(status, failure(error)));
    }) },
  ], t('deadLetters')));
  void drawList();
  const resend = form(t('resend'), [
    { name: 'filter', label: t('filter'), control: filter, hint: '{"to":"…","from":"…","service":"…","code":"…","since":"…","until":"…"}' },
    { name: 'reason', label: t('reason'), control: reason },
    { name: 'messageId', label: t('messageId'), control: identity },
  ], t('resend'), async (values) => {
    const answer = await api<{ resent: number; letters: Row[] }>('POST', '/api/dlq/resend', { filter: parsedJson(values.filter ?? '', t('filter')) ?? {}, reason: needReason(), messageId: values.messageId }, { reason: needReason() });
    void drawList();
    submit.disabled = true;
    return [el('p', { role: 'status' }, `${t('resent')}: ${answer.resent}`), table(answer.letters, undefined, t('resent'))];
  });
  // The filter resend is offered only for the filter just previewed.
  const submit = resend.element.querySelector('button[type=submit]') as HTMLButtonElement;
  submit.disabled = true;
  filter.addEventListener('input', () => { submit.disabled = true; });
  const previewButton = button(t('preview'), () => {
    submit.disabled = true;
    void load(preview, async () => {
      const answer = await api<{ count: number; sample: Row[] }>('POST', '/api/dlq/preview', { filter: parsedJson(filter.value.trim(), t('filter')) ?? {} });
      submit.disabled = answer.count === 0;
      return [el('p', { role: 'status' }, `${t('matched')}: ${answer.count}`), table(answer.sample, undefined, t('preview'))];
    });
  });
  return section(t('deadLetters'), status, list, el('div', { class: 'field' }, previewButton), preview, resend.element);
}

export const messagesPage: Page = {
  id: 'messages',
  route: 'GET /api/messages',
  render(target, params, session) {
    const found = el('div');
    fill(target, searchForm(params), found);
    if (params.get('searched')) void load(found, () => results(params));
    const opened = params.get('timeline');
    if (opened) target.append(timeline(opened));
    if (may('GET /api/dlq', session.roles)) target.append(deadLetters());
  },
};
