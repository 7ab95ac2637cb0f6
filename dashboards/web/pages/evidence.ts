// Evidence: records retrieved by message, conversation, partner and time; a message's bundle downloaded, or verified
// where it is, by the hub, with the code of `swx evidence verify`.
import { api, listPage, query } from '../api.ts';
import { el, fill, input } from '../dom.ts';
import { form, go, link } from '../forms.ts';
import { t } from '../i18n.ts';
import { button, load, section, table, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

const fields = ['messageId', 'conversationId', 'partner', 'from', 'to'] as const;

function bundle(messageId: string): HTMLElement {
  const verdict = el('div', { 'aria-live': 'polite' });
  const path = `/api/evidence/bundle/${encodeURIComponent(messageId)}`;
  return section(`${t('download')}: ${messageId}`,
    el('p', {}, el('a', { href: path, download: `${messageId}.tar`, class: 'button' }, t('download')), ' ',
      button(t('verify'), () => void load(verdict, async () => {
        const answer = await api<{ valid: boolean; trust: string; checks: Row[] }>('GET', `${path}/verify`);
        return [el('p', { role: 'status', class: answer.valid ? 'ok' : 'error' }, `${t('verdict')}: ${answer.valid ? t('valid') : t('invalid')} (${answer.trust})`),
          table(answer.checks, undefined, t('verdict'))];
      }))),
    verdict);
}

export const evidencePage: Page = {
  id: 'evidence',
  route: 'GET /api/evidence',
  render(target, params) {
    const labels = { messageId: t('messageId'), conversationId: t('conversationId'), partner: t('partner'), from: t('from'), to: t('to') };
    const found = el('div');
    const search = form(t('filters'), fields.map((name) => ({ name, label: labels[name], control: input(name, { value: params.get(name) ?? '' }) })), t('retrieve'),
      async (values) => { go('evidence', values); });
    fill(target, search.element, found);
    const chosen = Object.fromEntries(fields.map((name) => [name, params.get(name) ?? '']));
    if (!Object.values(chosen).some(Boolean)) return;
    void load(found, async () => {
      const page = await listPage<Row>(`/api/evidence${query({ ...chosen, limit: 200, cursor: params.get('cursor') ?? '' })}`);
      return [
        table(page.rows, [
          { key: 'at' }, { key: 'stage' }, { key: 'message_id' }, { key: 'from_partner' }, { key: 'to_partner' }, { key: 'service' }, { key: 'protocol' },
          { key: 'code' }, { key: 'detail' }, { key: 'stamped_at' }, { key: 'record_hash' },
        ], t('evidence')),
        page.next ? el('p', {}, link(t('next'), 'evidence', { ...chosen, cursor: page.next })) : el('span'),
        ...(chosen.messageId ? [bundle(chosen.messageId)] : []),
      ];
    });
  },
};
