// What a page of the console is: its name, the route that decides who sees it, and how it draws itself.
import type { Role } from '../access.ts';
import type { Word } from './i18n.ts';

export interface Session { user: string; roles: Role[]; via: string; csrfToken?: string }

export interface Page {
  id: Word;
  /** `METHOD /pattern` of access.ts that decides who sees the page. */
  route: string;
  render(target: HTMLElement, params: URLSearchParams, session: Session): Promise<void> | void;
}
