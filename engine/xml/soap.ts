// SOAP envelopes as every SOAP protocol and the signature code recognise them: the namespace of each SOAP version, and
// which ebXML messaging profile (ebMS 2.0 or AS4) an envelope carries.
import { parseXml, type XmlElement } from './parse.ts';

export const soapNamespaces = {
  '1.1': 'http://schemas.xmlsoap.org/soap/envelope/',
  '1.2': 'http://www.w3.org/2003/05/soap-envelope',
} as const;

export type SoapVersion = keyof typeof soapNamespaces;

export const ebxmlNamespaces = {
  ebms2: 'http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd',
  ebms3: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/',
} as const;

/** The SOAP version whose envelope namespace this is; undefined for any other namespace. */
export function soapVersionOf(namespace: string): SoapVersion | undefined {
  return namespace === soapNamespaces['1.1'] ? '1.1' : namespace === soapNamespaces['1.2'] ? '1.2' : undefined;
}

/** What signature code needs of a read envelope: the bytes as received, the Header if any and the Body. */
export interface SoapEnvelope {
  raw: Buffer;
  header: XmlElement | undefined;
  body: XmlElement;
}

/**
 * The ebXML messaging kind of a SOAP envelope, from its header blocks: eb3:Messaging is AS4, eb:MessageHeader is
 * ebMS 2.0; undefined for anything else. Throws the parser's XmlRefusal for input the XML gate refuses.
 */
export function messagingKind(xml: Buffer): 'as4' | 'ebms2' | undefined {
  const root = parseXml(xml).root;
  if (root.localName !== 'Envelope' || soapVersionOf(root.namespace) === undefined) return undefined;
  const blocks = root.children
    .filter((child): child is XmlElement => child.type === 'element' && child.namespace === root.namespace && child.localName === 'Header')
    .flatMap((header) => header.children.filter((child): child is XmlElement => child.type === 'element'));
  if (blocks.some((block) => block.namespace === ebxmlNamespaces.ebms3 && block.localName === 'Messaging')) return 'as4';
  if (blocks.some((block) => block.namespace === ebxmlNamespaces.ebms2 && block.localName === 'MessageHeader')) return 'ebms2';
  return undefined;
}
