// An ebMS 2.0 partner's collaboration-protocol agreement (OASIS CPP/CPA 2.0) read into what the connector acts on:
// parties and their ids, the actions each may send and receive on which channel, and each channel's transport,
// reliability, signing and certificates. Read through the hardened XML gate; anything else is SWX_BAD_REQUEST.
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { SwxError } from '../../engine/errors.ts';
import { toPem } from '../../engine/trust/index.ts';
import { digestAlgorithms, namespaces, signatureAlgorithms } from '../../engine/trust/xmldsig-algorithms.ts';
import { elementChildren, elementPath, textOf } from '../../engine/xml/elements.ts';
import { parseXml, XmlRefusal, type XmlElement } from '../../engine/xml/parse.ts';

export const cpaNamespace = 'http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd';

const msPerUnit = { W: 604_800_000, D: 86_400_000, H: 3_600_000, M: 60_000, S: 1_000 } as const;
// Years and months have no fixed length, so a retry or persistence period in them has no one meaning in milliseconds.
const dayTimeDuration = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** An xsd:duration as spelled, with its length in milliseconds. */
const duration = z.string().transform((iso, context) => {
  const match = dayTimeDuration.exec(iso);
  if (!match || iso === 'P' || iso.endsWith('T')) {
    context.addIssue({ code: 'custom', message: `${JSON.stringify(iso)} is not an ISO 8601 duration in weeks, days, hours, minutes and seconds` });
    return z.NEVER;
  }
  const [, w, d, h, m, s] = match;
  const ms = [[w, 'W'], [d, 'D'], [h, 'H'], [m, 'M'], [s, 'S']] as const;
  return { iso, ms: Math.round(ms.reduce((sum, [value, unit]) => sum + Number(value ?? 0) * msPerUnit[unit], 0)) };
});

const perMessage = z.enum(['always', 'never', 'perMessage']);
const xsdBoolean = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');
const nonNegativeInteger = z.string().regex(/^\d+$/, 'expected a whole number').transform(Number);
const protocol = z.object({ name: z.string().min(1), version: z.string().optional() }).strict();

const isWeakName = (name: string) => /sha-?1$/i.test(name) || /sha1with/i.test(name);

/** Weak when it names SHA-1 (RSA-SHA1, DSA-SHA1, ECDSA-SHA1 or plain SHA1), by the URI the document gives. */
const signatureAlgorithm = z.object({
  value: z.string().min(1),
  oid: z.string().optional(),
  w3c: z.string().optional(),
}).strict().transform((algorithm) => {
  const uri = algorithm.value;
  return { ...algorithm, weak: signatureAlgorithms[uri]?.weak ?? isWeakName(uri) };
});

const nonRepudiation = z.object({
  protocol,
  hashFunction: z.string().min(1).transform((uri) => ({ uri, weak: digestAlgorithms[uri]?.weak ?? isWeakName(uri) })),
  signatureAlgorithms: z.array(signatureAlgorithm).min(1),
  /** Sender side: the certificate (of this party) its messages are signed with. */
  signingCertificateRef: z.string().optional(),
}).strict().transform((value) => ({ ...value, weak: value.hashFunction.weak || value.signatureAlgorithms.some((a) => a.weak) }));

const messagingBinding = z.object({
  version: z.string().optional(),
  reliableMessaging: z.object({
    retries: nonNegativeInteger.optional(),
    retryInterval: duration.optional(),
    messageOrderSemantics: z.enum(['Guaranteed', 'NotGuaranteed']),
  }).strict().optional(),
  persistDuration: duration.optional(),
  nonRepudiation: nonRepudiation.optional(),
}).strict();

const actionBinding = z.object({
  id: z.string().optional(),
  action: z.string().min(1),
  packageId: z.string().min(1),
  /** The DeliveryChannels (of this party) the action travels on. */
  channelIds: z.array(z.string().min(1)).min(1),
  nonRepudiationRequired: xsdBoolean.optional(),
  nonRepudiationReceiptRequired: xsdBoolean.optional(),
  /** The other party's ThisPartyActionBinding id this one pairs with. */
  otherPartyActionBinding: z.string().optional(),
}).strict();

const tlsSettings = z.object({
  protocol,
  clientCertificateRef: z.string().optional(),
  serverCertificateRef: z.string().optional(),
}).strict();

export const cpaSchema = z.object({
  cpaid: z.string().min(1),
  version: z.string().min(1),
  status: z.enum(['agreed', 'signed', 'proposed']),
  start: z.iso.datetime({ offset: true }),
  end: z.iso.datetime({ offset: true }),
  parties: z.array(z.object({
    partyName: z.string().optional(),
    partyIds: z.array(z.object({ id: z.string().min(1), type: z.string().optional() }).strict()).min(1),
    defaultMshChannelId: z.string().min(1),
    defaultMshPackageId: z.string().min(1),
    roles: z.array(z.object({
      role: z.string().min(1),
      processSpecification: z.object({ name: z.string().min(1), version: z.string().min(1) }).strict(),
      /** The certificate (of this party) the other party encrypts payloads for this role with. */
      applicationCertificateRef: z.string().optional(),
      services: z.array(z.object({
        service: z.string().min(1),
        type: z.string().optional(),
        canSend: z.array(actionBinding),
        canReceive: z.array(actionBinding),
      }).strict()),
    }).strict()).min(1),
    certificates: z.record(z.string(), z.object({ pem: z.string().optional(), keyName: z.string().optional() }).strict()),
    deliveryChannels: z.record(z.string(), z.object({
      transportId: z.string().min(1),
      docExchangeId: z.string().min(1),
      messaging: z.object({
        syncReplyMode: z.enum(['mshSignalsOnly', 'responseOnly', 'signalsAndResponse', 'signalsOnly', 'none']).default('none'),
        ackRequested: perMessage.default('perMessage'),
        ackSignatureRequested: perMessage.default('perMessage'),
        duplicateElimination: perMessage.default('perMessage'),
        actor: z.enum(['urn:oasis:names:tc:ebxml-msg:actor:nextMSH', 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH']).optional(),
      }).strict(),
    }).strict()),
    transports: z.record(z.string(), z.object({
      sender: z.object({ protocol, tls: tlsSettings.optional() }).strict().optional(),
      receiver: z.object({
        protocol,
        endpoints: z.array(z.object({ uri: z.string().min(1), type: z.enum(['login', 'request', 'response', 'error', 'allPurpose']).default('allPurpose') }).strict()).min(1),
        tls: tlsSettings.optional(),
      }).strict().optional(),
    }).strict()),
    docExchanges: z.record(z.string(), z.object({ sender: messagingBinding.optional(), receiver: messagingBinding.optional() }).strict()),
  }).strict()).length(2),
}).strict();

export type Cpa = z.output<typeof cpaSchema>;
export type CpaParty = Cpa['parties'][number];
export type CpaActionBinding = CpaParty['roles'][number]['services'][number]['canSend'][number];
export type CpaDeliveryChannel = CpaParty['deliveryChannels'][string];
export type CpaTransport = CpaParty['transports'][string];
export type CpaMessagingBinding = NonNullable<CpaParty['docExchanges'][string]['sender']>;

const refuse = (detail: string) => new SwxError('SWX_BAD_REQUEST', `CPA: ${detail}`);

const named = (element: XmlElement, name: string, namespace = cpaNamespace) => element.namespace === namespace && element.localName === name;
const all = (element: XmlElement, name: string, namespace = cpaNamespace) => elementChildren(element).filter((child) => named(child, name, namespace));
const first = (element: XmlElement, name: string, namespace = cpaNamespace) => elementChildren(element).find((child) => named(child, name, namespace));

function one(element: XmlElement, name: string, namespace = cpaNamespace): XmlElement {
  const found = first(element, name, namespace);
  if (!found) throw refuse(`<${name}> is missing from ${elementPath(element)}`);
  return found;
}

/** CPA attributes are namespace-qualified; some producers write them unqualified, which is read the same. */
function attribute(element: XmlElement, name: string): string | undefined {
  return (element.attributes.find((a) => a.namespace === cpaNamespace && a.localName === name)
    ?? element.attributes.find((a) => a.namespace === '' && a.localName === name))?.value;
}

function requiredAttribute(element: XmlElement, name: string): string {
  const value = attribute(element, name);
  if (value === undefined) throw refuse(`attribute ${name} is missing on ${elementPath(element)}`);
  return value;
}

const text = (element: XmlElement) => textOf(element).trim();
const optionalText = (element: XmlElement | undefined) => (element ? text(element) : undefined);
const protocolOf = (element: XmlElement) => ({ name: text(element), version: attribute(element, 'version') });
const certId = (element: XmlElement | undefined) => (element ? requiredAttribute(element, 'certId') : undefined);

/** Id-keyed elements as a record; two elements with one id (an xsd:ID) make the agreement ambiguous. */
function byId<T>(elements: XmlElement[], idName: string, read: (element: XmlElement) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const element of elements) {
    const id = requiredAttribute(element, idName);
    if (Object.hasOwn(out, id)) throw refuse(`${idName} ${JSON.stringify(id)} is used twice (${elementPath(element)})`);
    out[id] = read(element);
  }
  return out;
}

function readActionBinding(canSendOrReceive: XmlElement) {
  const binding = one(canSendOrReceive, 'ThisPartyActionBinding');
  const characteristics = first(binding, 'BusinessTransactionCharacteristics');
  return {
    id: attribute(binding, 'id'),
    action: requiredAttribute(binding, 'action'),
    packageId: requiredAttribute(binding, 'packageId'),
    channelIds: all(binding, 'ChannelId').map(text),
    nonRepudiationRequired: characteristics && attribute(characteristics, 'isNonRepudiationRequired'),
    nonRepudiationReceiptRequired: characteristics && attribute(characteristics, 'isNonRepudiationReceiptRequired'),
    otherPartyActionBinding: optionalText(first(canSendOrReceive, 'OtherPartyActionBinding')),
  };
}

function readRole(role: XmlElement) {
  const specification = one(role, 'ProcessSpecification');
  return {
    role: requiredAttribute(one(role, 'Role'), 'name'),
    processSpecification: { name: requiredAttribute(specification, 'name'), version: requiredAttribute(specification, 'version') },
    applicationCertificateRef: certId(first(role, 'ApplicationCertificateRef')),
    services: all(role, 'ServiceBinding').map((binding) => {
      const service = one(binding, 'Service');
      return {
        service: text(service),
        type: attribute(service, 'type'),
        canSend: all(binding, 'CanSend').map(readActionBinding),
        canReceive: all(binding, 'CanReceive').map(readActionBinding),
      };
    }),
  };
}

function readCertificate(certificate: XmlElement) {
  const keyInfo = one(certificate, 'KeyInfo', namespaces.ds);
  const data = first(keyInfo, 'X509Data', namespaces.ds);
  const encoded = data && first(data, 'X509Certificate', namespaces.ds);
  const keyName = optionalText(first(keyInfo, 'KeyName', namespaces.ds));
  if (!encoded) return { keyName };
  const base64 = text(encoded).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw refuse(`${elementPath(encoded)} is not base64`);
  const der = Buffer.from(base64, 'base64');
  try {
    new X509Certificate(der);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `CPA: ${elementPath(encoded)} is not an X.509 certificate (${(error as Error).message})`, { cause: error });
  }
  return { pem: toPem(der, 'CERTIFICATE'), keyName };
}

function readTls(security: XmlElement | undefined) {
  if (!security) return undefined;
  return {
    protocol: protocolOf(one(security, 'TransportSecurityProtocol')),
    clientCertificateRef: certId(first(security, 'ClientCertificateRef')),
    serverCertificateRef: certId(first(security, 'ServerCertificateRef')),
  };
}

function readTransport(transport: XmlElement) {
  const sender = first(transport, 'TransportSender');
  const receiver = first(transport, 'TransportReceiver');
  return {
    sender: sender && { protocol: protocolOf(one(sender, 'TransportProtocol')), tls: readTls(first(sender, 'TransportClientSecurity')) },
    receiver: receiver && {
      protocol: protocolOf(one(receiver, 'TransportProtocol')),
      endpoints: all(receiver, 'Endpoint').map((endpoint) => ({ uri: requiredAttribute(endpoint, 'uri'), type: attribute(endpoint, 'type') })),
      tls: readTls(first(receiver, 'TransportServerSecurity')),
    },
  };
}

function readMessagingBinding(binding: XmlElement | undefined, side: 'Sender' | 'Receiver') {
  if (!binding) return undefined;
  const reliable = first(binding, 'ReliableMessaging');
  const signing = first(binding, `${side}NonRepudiation`);
  return {
    version: attribute(binding, 'version'),
    reliableMessaging: reliable && {
      retries: optionalText(first(reliable, 'Retries')),
      retryInterval: optionalText(first(reliable, 'RetryInterval')),
      messageOrderSemantics: text(one(reliable, 'MessageOrderSemantics')),
    },
    persistDuration: optionalText(first(binding, 'PersistDuration')),
    nonRepudiation: signing && {
      protocol: protocolOf(one(signing, 'NonRepudiationProtocol')),
      hashFunction: text(one(signing, 'HashFunction')),
      signatureAlgorithms: all(signing, 'SignatureAlgorithm').map((algorithm) => ({
        value: text(algorithm), oid: attribute(algorithm, 'oid'), w3c: attribute(algorithm, 'w3c'),
      })),
      signingCertificateRef: certId(first(signing, 'SigningCertificateRef')),
    },
  };
}

function readParty(party: XmlElement) {
  return {
    partyName: attribute(party, 'partyName'),
    partyIds: all(party, 'PartyId').map((id) => ({ id: text(id), type: attribute(id, 'type') })),
    defaultMshChannelId: requiredAttribute(party, 'defaultMshChannelId'),
    defaultMshPackageId: requiredAttribute(party, 'defaultMshPackageId'),
    roles: all(party, 'CollaborationRole').map(readRole),
    certificates: byId(all(party, 'Certificate'), 'certId', readCertificate),
    deliveryChannels: byId(all(party, 'DeliveryChannel'), 'channelId', (channel) => {
      const characteristics = one(channel, 'MessagingCharacteristics');
      const messaging = Object.fromEntries(['syncReplyMode', 'ackRequested', 'ackSignatureRequested', 'duplicateElimination', 'actor']
        .map((name) => [name, attribute(characteristics, name)]));
      return { transportId: requiredAttribute(channel, 'transportId'), docExchangeId: requiredAttribute(channel, 'docExchangeId'), messaging };
    }),
    transports: byId(all(party, 'Transport'), 'transportId', readTransport),
    docExchanges: byId(all(party, 'DocExchange'), 'docExchangeId', (exchange) => ({
      sender: readMessagingBinding(first(exchange, 'ebXMLSenderBinding'), 'Sender'),
      receiver: readMessagingBinding(first(exchange, 'ebXMLReceiverBinding'), 'Receiver'),
    })),
  };
}

/** Every id one part of the agreement names resolves to the part it names, so the connector never meets a dangling one. */
function checkReferences(cpa: Cpa): void {
  const actionBindings = cpa.parties.map((party) => new Set(party.roles.flatMap((role) => role.services
    .flatMap((service) => [...service.canSend, ...service.canReceive].map((binding) => binding.id)))));
  cpa.parties.forEach((party, index) => {
    const where = `party ${JSON.stringify(party.partyName ?? party.partyIds[0]!.id)}`;
    const expect = (kind: string, id: string | undefined, within: object) => {
      if (id !== undefined && !Object.hasOwn(within, id)) throw refuse(`${where} names ${kind} ${JSON.stringify(id)}, which it does not define`);
    };
    expect('DeliveryChannel', party.defaultMshChannelId, party.deliveryChannels);
    for (const role of party.roles) {
      expect('Certificate', role.applicationCertificateRef, party.certificates);
      for (const service of role.services) {
        for (const binding of [...service.canSend, ...service.canReceive]) {
          for (const channelId of binding.channelIds) expect('DeliveryChannel', channelId, party.deliveryChannels);
          const other = binding.otherPartyActionBinding;
          if (other !== undefined && !actionBindings[1 - index]!.has(other)) {
            throw refuse(`${where}: action ${binding.action} pairs with ThisPartyActionBinding ${JSON.stringify(other)}, which the other party does not define`);
          }
        }
      }
    }
    for (const channel of Object.values(party.deliveryChannels)) {
      expect('Transport', channel.transportId, party.transports);
      expect('DocExchange', channel.docExchangeId, party.docExchanges);
    }
    for (const transport of Object.values(party.transports)) {
      for (const tls of [transport.sender?.tls, transport.receiver?.tls]) {
        expect('Certificate', tls?.clientCertificateRef, party.certificates);
        expect('Certificate', tls?.serverCertificateRef, party.certificates);
      }
    }
    for (const exchange of Object.values(party.docExchanges)) {
      expect('Certificate', exchange.sender?.nonRepudiation?.signingCertificateRef, party.certificates);
    }
  });
}

/** The agreement in `input` (UTF-8 XML), validated; SWX_BAD_REQUEST naming what is wrong otherwise. */
export function parseCpa(input: Buffer | string): Cpa {
  let root: XmlElement;
  try {
    root = parseXml(input).root;
  } catch (error) {
    if (error instanceof XmlRefusal) throw new SwxError('SWX_BAD_REQUEST', `CPA is not acceptable XML: ${error.message}`, { cause: error });
    throw error;
  }
  if (!named(root, 'CollaborationProtocolAgreement')) {
    throw refuse(`the root element is {${root.namespace}}${root.localName}, not a CPA 2.0 CollaborationProtocolAgreement in ${cpaNamespace}`);
  }
  const parties = all(root, 'PartyInfo');
  if (parties.length !== 2) throw refuse(`a CPA has two <PartyInfo> elements, this one ${parties.length}`);
  const raw = {
    cpaid: requiredAttribute(root, 'cpaid'),
    version: requiredAttribute(root, 'version'),
    status: requiredAttribute(one(root, 'Status'), 'value'),
    start: text(one(root, 'Start')),
    end: text(one(root, 'End')),
    parties: parties.map(readParty),
  };
  const parsed = cpaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw refuse(`${raw.cpaid}: ${issue.path.join('.')}: ${issue.message}`);
  }
  checkReferences(parsed.data);
  return parsed.data;
}
