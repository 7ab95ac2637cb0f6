// Partners: the registry's agencies, added and edited (name, certificates, endpoints, how they receive), disabled and
// enabled again, their SSH keys and the history of their entry.
import { api, listPage } from '../api.ts';
import { el, fill, input, select, shown } from '../dom.ts';
import { checkbox, form, go, link, parsedJson, textarea } from '../forms.ts';
import { t } from '../i18n.ts';
import { button, load, section, table, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

interface Partner { id: string; name: string; certificates: string[]; endpoints: Record<string, unknown>; preferred: Record<string, string>; receive: 'push' | 'pull'; sshKeys: Row[]; enabled: boolean }

const path = (id: string) => `/api/partners/${encodeURIComponent(id)}`;

/** The fields of a partner's entry, filled with the one being edited. */
function partnerForm(label: string, current: Partner | undefined, done: (saved: Partner) => void): HTMLElement {
  return form(label, [
    ...(current ? [] : [{ name: 'id', label: t('partnerId'), control: input('id', { required: true, placeholder: 'CUSTOMS' }) }]),
    { name: 'name', label: t('name'), control: input('name', { value: current?.name ?? '', required: true }) },
    { name: 'certificates', label: t('certificates'), control: textarea('certificates', current?.certificates.join('\n') ?? '', 6) },
    { name: 'endpoints', label: t('endpoints'), control: textarea('endpoints', JSON.stringify(current?.endpoints ?? {}, null, 2), 4), hint: '{"rest":{"url":"https://…/inbox"}}' },
    { name: 'receive', label: t('receive'), control: select('receive', [['push', 'push'], ['pull', 'pull']], current?.receive ?? 'push') },
  ], t('save'), async (values) => {
    const id = current?.id ?? values.id ?? '';
    const certificates = (values.certificates ?? '').split(/(?<=-----END CERTIFICATE-----)\s*/).map((pem) => pem.trim()).filter(Boolean);
    const saved = await api<Partner>('PUT', path(id), {
      name: values.name, certificates, endpoints: parsedJson(values.endpoints ?? '', t('endpoints')) ?? {}, receive: values.receive,
      preferred: current?.preferred ?? {}, enabled: current?.enabled ?? true,
    });
    done(saved);
    return el('p', { role: 'status' }, t('saved'));
  }).element;
}

function detail(target: HTMLElement, id: string): void {
  void load(target, async () => {
    const partner = await api<Partner>('GET', path(id));
    const keys = el('div');
    const history = el('div');
    const toggle = button(partner.enabled ? t('disable') : t('enable'), () => {
      void api('PUT', path(id), { ...partner, enabled: !partner.enabled }).then(() => detail(target, id)).catch(() => detail(target, id));
    });
    const drawKeys = () => load(keys, async () => table(await api<Row[]>('GET', `${path(id)}/ssh-keys`), [
      { key: 'fingerprint' }, { key: 'type' }, { key: 'comment' }, { key: 'addedAt' },
      { key: 'remove', label: t('remove'), cell: (row) => button(`${t('remove')} ${shown(row.fingerprint)}`, () => {
        void api('DELETE', `${path(id)}/ssh-keys/${encodeURIComponent(shown(row.fingerprint))}`).then(drawKeys);
      }) },
    ], t('sshKeys')));
    void drawKeys();
    void load(history, async () => table((await api<Row[]>('GET', `${path(id)}/history`)).map((entry) => ({ ...entry, value: shown(entry.value) })), undefined, t('history')));
    // Each endpoint tried as deliveries reach it (TLS or SSH handshake), no message sent: the answer per protocol.
    const tested = el('div', { 'aria-live': 'polite' });
    const test = button(t('testConnection'), () => void load(tested, async () => table((await api<{ results: Row[] }>('POST', `${path(id)}/test`)).results, [
      { key: 'protocol', label: t('protocol') },
      { key: 'ok', label: t('outcome'), cell: (row) => (row.ok ? `✓ ${t('reachable')}` : `✗ ${t('unreachable')}`) },
      { key: 'detail', label: t('testDetail') },
      { key: 'ms', label: t('took') },
    ], t('connectionTest'))));
    const addKey = form(t('addKey'), [{ name: 'key', label: t('publicKey'), control: textarea('key', '', 2) }], t('add'), async (values) => {
      await api('POST', `${path(id)}/ssh-keys`, { key: values.key });
      void drawKeys();
    });
    return [
      el('h2', {}, `${partner.id} — ${partner.name}`),
      el('p', {}, `${t('enabled')}: ${partner.enabled ? '✓' : '✗'} `, toggle),
      section(t('connectionTest'), el('p', {}, test), tested),
      partnerForm(t('edit'), partner, () => detail(target, id)),
      section(t('sshKeys'), keys, addKey.element),
      section(t('history'), history),
    ];
  });
}

export const partnersPage: Page = {
  id: 'partners',
  route: 'GET /api/partners',
  render(target, params) {
    const list = el('div');
    const chosen = params.get('id');
    const opened = el('div');
    fill(target, section(t('partners'), list), chosen ? opened : section(t('add'), partnerForm(t('add'), undefined, (saved) => go('partners', { id: saved.id }))));
    void load(list, async () => table((await listPage<Partner>('/api/partners?limit=1000')).rows as unknown as Row[], [
      { key: 'id', cell: (row) => link(shown(row.id), 'partners', { id: shown(row.id) }) },
      { key: 'name' }, { key: 'enabled' }, { key: 'receive' },
      { key: 'endpoints', cell: (row) => Object.keys(row.endpoints as object).join(', ') },
      { key: 'certificates', cell: (row) => String((row.certificates as unknown[]).length) },
    ], t('partners')));
    if (chosen) detail(opened, chosen);
  },
};
