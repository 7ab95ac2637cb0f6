// The console's single page: sign-in, then the pages the user's roles allow (the route table of access.ts decides,
// as it does on the server), chosen by the address's #fragment so that the back button and links work.
import { api, ApiError, useCsrfToken } from './api.ts';
import { el, fill, input, labelled, select } from './dom.ts';
import { chooseLanguage, language, t, type Language } from './i18n.ts';
import type { Session } from './page.ts';
import { pages } from './pages/index.ts';
import { may } from './roles.ts';
import { button, disposeCharts, failure } from './widgets.ts';

const root = document.getElementById('app')!;

function signInPage(notice?: Node): void {
  document.title = `${t('signIn')} — swx`;
  const user = input('user', { autocomplete: 'username', required: true });
  const password = input('password', { type: 'password', autocomplete: 'current-password', required: true });
  const result = el('div', { 'aria-live': 'assertive' }, notice ?? null);
  const form = el('form', { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    el('h1', { id: 'sign-in-title' }, t('title')),
    labelled(t('user'), user), labelled(t('password'), password),
    el('button', { type: 'submit' }, t('signIn')), result);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    api<Session>('POST', '/api/session', { user: user.value, password: password.value })
      .then((session) => { useCsrfToken(session.csrfToken ?? ''); void start(); })
      .catch((error: unknown) => { fill(result, failure(error)); password.value = ''; password.focus(); });
  });
  fill(root, languageSwitch(() => signInPage()), form);
  user.focus();
}

function languageSwitch(redraw: () => void): HTMLElement {
  const choice = select('language', [['zh-TW', '中文（台灣）'], ['en', 'English']], language());
  choice.addEventListener('change', () => { chooseLanguage(choice.value as Language); redraw(); });
  return el('div', { class: 'language' }, labelled(t('language'), choice));
}

function currentPage(): { id: string; params: URLSearchParams } {
  const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  return { id: path, params: new URLSearchParams(search) };
}

let session: Session | undefined;

function render(): void {
  if (!session) return;
  const signedIn = session;
  disposeCharts();
  const allowed = pages.filter((page) => may(page.route, signedIn.roles));
  const { id, params } = currentPage();
  const page = pages.find((candidate) => candidate.id === id) ?? allowed[0];
  const content = el('div', { id: 'content', tabindex: -1 });
  const nav = el('nav', { 'aria-label': t('navigation') }, el('ul', {}, allowed.map((entry) =>
    el('li', {}, el('a', { href: `#/${entry.id}`, ...(entry === page ? { 'aria-current': 'page' } : {}) }, t(entry.id))))));
  const signOut = button(t('signOut'), () => {
    void api('DELETE', '/api/session').catch(() => undefined).then(() => { session = undefined; useCsrfToken(''); signInPage(); });
  });
  fill(root,
    el('a', { href: '#content', class: 'skip', onclick: ((event: Event) => { event.preventDefault(); content.focus(); }) as EventListener }, t('skip')),
    el('header', {}, el('span', { class: 'brand' }, t('title')),
      el('span', { class: 'who' }, `${t('signedInAs')} `, el('strong', {}, signedIn.user), ` (${signedIn.roles.join(', ')})`),
      languageSwitch(render), signOut),
    nav, content);
  document.title = page ? `${t(page.id)} — swx` : 'swx';
  if (!page) { fill(content, el('p', {}, t('notAllowed'))); return; }
  fill(content, el('h1', {}, t(page.id)));
  if (!may(page.route, signedIn.roles)) { content.append(el('p', { class: 'error', role: 'alert' }, t('notAllowed'))); return; }
  const body = el('div', { class: 'page', 'data-page': page.id });
  content.append(body);
  void Promise.resolve(page.render(body, params, signedIn)).catch((error: unknown) => fill(body, failure(error)));
}

async function start(): Promise<void> {
  try {
    session = await api<Session>('GET', '/api/session');
    useCsrfToken(session.csrfToken ?? '');
    render();
  } catch (error) {
    session = undefined;
    signInPage(error instanceof ApiError && error.status === 401 ? undefined : failure(error));
  }
}

window.addEventListener('hashchange', () => { render(); document.getElementById('content')?.focus(); });
document.documentElement.lang = language();
void start();
