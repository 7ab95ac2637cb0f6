// Settings, the audit log and users: the admins' and auditors' pages.
import { roles } from '../../access.ts';
import { api, listPage } from '../api.ts';
import { el, fill, input, shown } from '../dom.ts';
import { checkbox, form, link } from '../forms.ts';
import { t } from '../i18n.ts';
import { may } from '../roles.ts';
import { button, failure, load, section, table, type Row } from '../widgets.ts';
import type { Page } from '../page.ts';

export const settingsPage: Page = {
  id: 'settings',
  route: 'GET /api/settings',
  render(target, _params, session) {
    const runtime = el('div');
    const hub = el('div');
    const history = el('div');
    fill(target, section(t('runtime'), runtime), section(t('history'), history), section(t('hubSettings'), hub));
    const drawRuntime = () => load(runtime, async () => {
      const { settings } = await api<{ settings: Row[] }>('GET', '/api/settings/runtime');
      const editable = may('PUT /api/settings/runtime/:name', session.roles);
      return table(settings, [
        { key: 'name', label: t('name') },
        { key: 'value', label: t('value'), cell: (row) => {
          const name = shown(row.name);
          if (!editable) return shown(row.value);
          // A number stays a number; an empty value resets the setting to its start-up value.
          return form(name, [{ name: 'value', label: `${t('value')} ${name}`, control: input('value', { value: shown(row.value) }) }], t('save'), async (values) => {
            const typed = values.value ?? '';
            const value = typed === '' ? null : typeof row.startup === 'number' && Number.isFinite(Number(typed)) ? Number(typed) : typed;
            await api('PUT', `/api/settings/runtime/${encodeURIComponent(name)}`, { value });
            void drawRuntime();
          }).element;
        } },
        { key: 'source' }, { key: 'startup' }, { key: 'description' }, { key: 'updatedBy' }, { key: 'updatedAt' },
        { key: 'history', label: t('history'), cell: (row) => button(`${t('history')} ${shown(row.name)}`, () => void load(history, async () =>
          table((await api<{ revisions: Row[] }>('GET', `/api/settings/runtime/${encodeURIComponent(shown(row.name))}/history`)).revisions, undefined, `${t('history')} ${shown(row.name)}`))) },
      ], t('runtime'));
    });
    void drawRuntime();
    void load(hub, async () => table(flatten(await api<Record<string, unknown>>('GET', '/api/settings')), [{ key: 'name', label: t('name') }, { key: 'value', label: t('value') }], t('hubSettings')));
  },
};

/** Nested settings as dotted names and their values, one row each. */
function flatten(value: Record<string, unknown>, prefix = ''): Row[] {
  return Object.entries(value).flatMap(([key, inner]) => (inner && typeof inner === 'object' && !Array.isArray(inner)
    ? flatten(inner as Record<string, unknown>, `${prefix}${key}.`)
    : [{ name: `${prefix}${key}`, value: shown(inner) }]));
}

export const auditPage: Page = {
  id: 'audit',
  route: 'GET /api/audit',
  render(target, params) {
    const entries = el('div');
    const verdict = el('div', { 'aria-live': 'polite' });
    fill(target, el('p', {}, button(t('verifyAudit'), () => void load(verdict, async () => {
      const answer = await api<Row>('GET', '/api/audit/verify');
      return el('p', { role: 'status', class: answer.valid === false ? 'error' : 'ok' }, shown(answer));
    }))), verdict, entries);
    void load(entries, async () => {
      const page = await listPage<Row>(`/api/audit?limit=100${params.get('cursor') ? `&cursor=${encodeURIComponent(params.get('cursor')!)}` : ''}`);
      return [table(page.rows, [{ key: 'at' }, { key: 'actor' }, { key: 'role' }, { key: 'action' }, { key: 'target' }, { key: 'reason' }, { key: 'before' }, { key: 'after' }], t('audit')),
        page.next ? el('p', {}, link(t('next'), 'audit', { cursor: page.next })) : el('span')];
    });
  },
};

export const usersPage: Page = {
  id: 'users',
  route: 'GET /api/users',
  render(target) {
    const list = el('div');
    const status = el('div', { 'aria-live': 'polite' });
    const draw = () => load(list, async () => table((await listPage<Row>('/api/users?limit=1000')).rows, [
      { key: 'name', label: t('name') }, { key: 'roles', label: t('roles'), cell: (row) => (row.roles as string[]).join(', ') },
      { key: 'disabled', label: t('disabled'), cell: (row) => (row.disabled ? '✓' : '') },
      { key: 'change', label: t('edit'), cell: (row) => {
        const name = shown(row.name);
        if (row.disabled) return button(`${t('enable')} ${name}`, () => void api('POST', `/api/users/${encodeURIComponent(name)}/enable`, {}).then(draw).catch((error: unknown) => fill(status, failure(error))));
        const reason = input('reason', { 'aria-label': `${t('reason')} ${name}` });
        return el('span', {}, reason, button(`${t('disable')} ${name}`, () => void api('POST', `/api/users/${encodeURIComponent(name)}/disable`, { reason: reason.value }).then(draw).catch((error: unknown) => fill(status, failure(error)))));
      } },
    ], t('users')));
    const boxes = roles.map((role) => checkbox(`role-${role}`, false));
    const add = form(t('addUser'), [
      { name: 'name', label: t('user'), control: input('name', { required: true }) },
      { name: 'password', label: t('password'), control: input('password', { type: 'password', autocomplete: 'new-password' }) },
      ...roles.map((role, i) => ({ name: `role-${role}`, label: role, control: boxes[i]! })),
    ], t('add'), async (values) => {
      const chosen = roles.filter((role) => values[`role-${role}`] === 'true');
      await api('PUT', `/api/users/${encodeURIComponent(values.name ?? '')}`, { roles: chosen, ...(values.password ? { password: values.password } : {}) });
      void draw();
      return el('p', { role: 'status' }, t('saved'));
    });
    fill(target, status, list, section(t('addUser'), add.element));
    void draw();
  },
};
