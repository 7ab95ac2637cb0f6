// Building the page: elements made one by one and text set as text. Nothing here, nor anywhere in the page scripts,
// parses a string as HTML, so a value from a partner or a message shows as the characters it is.

type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | undefined | EventListener>;

/** An element with its attributes (`on…` ones become listeners) and children (strings become text nodes). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'value' && 'value' in node) (node as HTMLInputElement).value = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces what `parent` holds. */
export function fill(parent: Element, ...children: (Child | Child[])[]): void {
  parent.replaceChildren();
  append(parent, children);
}

let fieldCount = 0;
/** A labelled control: the label names it for screen readers and is clicked through to it. */
export function labelled(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  fieldCount += 1;
  control.id ||= `field-${fieldCount}`;
  const hintNode = hint ? el('small', { id: `${control.id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return el('div', { class: 'field' }, el('label', { for: control.id }, label), control, hintNode);
}

export function input(name: string, props: Props = {}): HTMLInputElement {
  return el('input', { name, type: 'text', autocomplete: 'off', ...props });
}

export function select(name: string, options: [string, string][], chosen = ''): HTMLSelectElement {
  return el('select', { name }, options.map(([value, label]) => el('option', { value, ...(value === chosen ? { selected: true } : {}) }, label)));
}

/** A value as a short line of text: objects as JSON. */
export function shown(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
