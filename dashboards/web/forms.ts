// Forms of the pages: labelled fields read back as strings, submitted with the button or Enter, their outcome announced.
import { el, fill, input, labelled } from './dom.ts';
import { t } from './i18n.ts';
import { failure } from './widgets.ts';

export interface FormField { name: string; label: string; control?: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement; hint?: string }

export interface Form { element: HTMLFormElement; values(): Record<string, string>; result: HTMLElement }

/** A form of fields; `submit` gets the values, and what it returns (or its failure) is shown under the form. */
export function form(label: string, fields: FormField[], submitLabel: string, submit: (values: Record<string, string>) => Promise<Node | Node[] | string | void>): Form {
  const controls = fields.map((field) => field.control ?? input(field.name, { value: '' }));
  const result = el('div', { class: 'result', 'aria-live': 'polite' });
  const element = el('form', { 'aria-label': label },
    el('fieldset', {}, el('legend', {}, label),
      fields.map((field, i) => labelled(field.label, controls[i]!, field.hint)),
      el('button', { type: 'submit' }, submitLabel)),
    result);
  const values = () => Object.fromEntries(controls.map((control) => [control.name,
    control instanceof HTMLInputElement && control.type === 'checkbox' ? String(control.checked) : control.value.trim()]));
  element.addEventListener('submit', (event) => {
    event.preventDefault();
    fill(result, el('p', { class: 'busy' }, t('loading')));
    submit(values()).then((made) => fill(result, made ?? '')).catch((error: unknown) => fill(result, failure(error)));
  });
  return { element, values, result };
}

export function textarea(name: string, value = '', rows = 4): HTMLTextAreaElement {
  const area = el('textarea', { name, rows, spellcheck: 'false' });
  area.value = value;
  return area;
}

export function checkbox(name: string, checked: boolean): HTMLInputElement {
  const box = input(name, { type: 'checkbox' });
  box.checked = checked;
  return box;
}

/** The JSON typed in a field, or a clear refusal naming the field. */
export function parsedJson(text: string, field: string): unknown {
  if (text === '') return undefined;
  try { return JSON.parse(text); } catch (error) { throw new Error(`${field}: ${(error as Error).message}`); }
}

/** Sets the page's address (and so redraws it) with these parameters. */
export function go(page: string, params: Record<string, string | undefined> = {}): void {
  const search = new URLSearchParams(Object.entries(params).filter((entry): entry is [string, string] => !!entry[1])).toString();
  location.hash = `#/${page}${search ? `?${search}` : ''}`;
}

export function link(label: string, page: string, params: Record<string, string> = {}): HTMLAnchorElement {
  const search = new URLSearchParams(params).toString();
  return el('a', { href: `#/${page}${search ? `?${search}` : ''}` }, label);
}
