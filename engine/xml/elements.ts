// Walking the tree parseXml reads: an element's element children, its text, and its place as signature verdicts name it.
import { SwxError } from '../errors.ts';
import type { XmlElement } from './parse.ts';

export function elementChildren(element: XmlElement): XmlElement[] {
  return element.children.filter((child): child is XmlElement => child.type === 'element');
}

/** The text of an element that must hold text only; SWX_BAD_REQUEST when it holds elements. */
export function textOf(element: XmlElement): string {
  let text = '';
  for (const child of element.children) {
    if (child.type === 'element') throw new SwxError('SWX_BAD_REQUEST', `<${element.qualifiedName}> must hold text, not elements`);
    if (child.type === 'text') text += child.value;
  }
  return text;
}

/** "/Envelope/Header/Security": local names, with [n] (1-based) where siblings share a local name, as verdicts name elements. */
export function elementPath(element: XmlElement): string {
  let path = '';
  for (let node: XmlElement | undefined = element; node; node = node.parent) {
    let step = node.localName;
    if (node.parent) {
      const namesakes = node.parent.children.filter((c) => c.type === 'element' && c.localName === node!.localName);
      if (namesakes.length > 1) step += `[${namesakes.indexOf(node) + 1}]`;
    }
    path = `/${step}${path}`;
  }
  return path;
}
