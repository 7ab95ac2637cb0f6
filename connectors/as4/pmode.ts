// A partner's AS4 P-Mode (ebMS 3.0 Core appendix D, as eDelivery AS4 fixes it): the `as4` endpoint of its registry
// entry. The profile fixes the algorithm suite; algorithmsOf reads what a received message used and checkProfile
// answers EBMS:0103 naming the algorithm the profile expects when they differ.
import { z } from 'zod';
import type { Purpose } from '../../engine/endpoints.ts';
import { serviceId } from '../../engine/registry.ts';
import { serverTrust } from '../../engine/server-trust.ts';
import { certificate } from '../../engine/trust/index.ts';
import { elementChildren } from '../../engine/xml/elements.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';
import { EbmsError } from './errors.ts';
import { as4Namespaces, ebmsDefaults, type As4Message } from './model.ts';

const uri = (what: string) => z.string().min(1).max(2048).describe(what);

const partyId = z.object({
  id: z.string().min(1).max(256).describe('the PartyId value'),
  type: z.string().min(1).max(256).optional().describe('its type, e.g. urn:oasis:names:tc:ebcore:partyid-type:iso6523:0088'),
}).strict();

const service = z.object({
  service: z.string().min(1).max(512).describe('eb:Service value'),
  type: z.string().min(1).max(512).optional().describe('eb:Service type attribute'),
  actions: z.array(z.string().min(1).max(512)).min(1).describe('the eb:Action values allowed with this service'),
  swx: serviceId.optional()
    .describe('the swx service (or notify.<topic>, exchange.<channel>) this AS4 service is, both ways; default the eb:Service value itself'),
}).strict();

/** The two eDelivery AS4 profiles and the algorithms each fixes (eDelivery AS4 1.15 section 3.2.6, AS4 2.0 section 3.2). */
export const profiles = {
  'eDelivery-AS4-1.15': {
    signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
    dataEncryption: 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
    keyTransport: 'http://www.w3.org/2009/xmlenc11#rsa-oaep',
    maskGeneration: 'http://www.w3.org/2009/xmlenc11#mgf1sha256',
  },
  'eDelivery-AS4-2.0': {
    signature: 'http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519',
    digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
    dataEncryption: 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
    keyAgreement: 'http://www.w3.org/2021/04/xmldsig-more#x25519',
    keyDerivation: 'http://www.w3.org/2021/04/xmldsig-more#hkdf',
    keyWrap: 'http://www.w3.org/2001/04/xmlenc#kw-aes128',
  },
} as const;

export type ProfileName = keyof typeof profiles;

export const as4Endpoint = z.object({
  url: z.url({ protocol: /^https$/ }).optional().describe('where the hub POSTs this partner\'s AS4 messages (one-way push)'),
  tls: serverTrust.optional().describe('which server certificates the hub accepts at url (default: those its own CA issued)'),
  partyIds: z.array(partyId).min(1).describe('the partner\'s eb:PartyId(s)'),
  role: uri('the partner\'s eb:Role as receiver').default(ebmsDefaults.role),
  agreement: z.object({
    ref: z.string().min(1).max(2048).describe('eb:AgreementRef value'),
    type: z.string().min(1).max(512).optional(),
    pmode: z.string().min(1).max(512).optional().describe('eb:AgreementRef pmode attribute: this P-Mode\'s id'),
  }).strict().optional(),
  services: z.array(service).min(1).describe('the services and actions exchanged with this partner'),
  profile: z.enum(Object.keys(profiles) as [ProfileName, ...ProfileName[]]).default('eDelivery-AS4-1.15')
    .describe('eDelivery-AS4-1.15: RSA-SHA256, SHA-256, AES-128-GCM with RSA-OAEP (MGF1-SHA256); eDelivery-AS4-2.0: Ed25519, SHA-256, AES-128-GCM with X25519, HKDF and AES key wrap'),
  security: z.object({
    sign: z.boolean().default(true).describe('user messages on this leg are signed'),
    encrypt: z.boolean().default(true).describe('payloads on this leg are encrypted: the hub encrypts what it sends, and takes only encrypted payloads'),
    encryptionCertificate: z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'expected a PEM certificate' }).max(64 * 1024).optional()
      .describe('the certificate the hub encrypts to (PMode[1].Security.X509.Encryption.Certificate): RSA for eDelivery-AS4-1.15, X25519 for eDelivery-AS4-2.0; for 1.15 the partner\'s registered RSA certificate when absent'),
    keyTransport: z.enum(['rsa-oaep', 'rsa-oaep-mgf1p']).default('rsa-oaep')
      .describe('eDelivery-AS4-1.15 only: xmlenc11 rsa-oaep with MGF1-SHA256 (the profile\'s), or rsa-oaep-mgf1p (SHA-1) for an MSH that knows only that one; both ways'),
  }).strict().default({ sign: true, encrypt: true, keyTransport: 'rsa-oaep' }),
  receipt: z.object({
    required: z.boolean().default(true),
    signed: z.boolean().default(true).describe('a non-repudiation receipt, signed'),
    reply: z.enum(['sync', 'async']).default('sync')
      .describe('sync: receipts and Error signals on the HTTP response, both ways; async: the HTTP answer is empty and they are POSTed as messages of their own, the hub\'s to url, the partner\'s to the hub\'s AS4 path'),
  }).strict().default({ required: true, signed: true, reply: 'sync' }),
  receptionAwareness: z.object({
    retrySeconds: z.array(z.number().int().positive().max(7 * 24 * 3600)).max(20).default([60, 300, 900, 3600])
      .describe('the waits before each resend of a message without its receipt, same MessageId'),
    duplicateWindowSeconds: z.number().int().positive().max(365 * 24 * 3600).default(7 * 24 * 3600)
      .describe('how long a received MessageId is remembered, its receipt answered again'),
  }).strict().default({ retrySeconds: [60, 300, 900, 3600], duplicateWindowSeconds: 7 * 24 * 3600 }),
  compression: z.boolean().default(true).describe('gzip payloads that are not compressed already'),
  mep: z.discriminatedUnion('binding', [
    z.object({ binding: z.literal('push') }).strict(),
    z.object({ binding: z.literal('pull'), mpc: uri('the message partition channel the partner pulls from') }).strict(),
  ]).default({ binding: 'push' }).describe('one-way push (the hub POSTs to url) or one-way pull (the partner pulls from an MPC)'),
}).strict().superRefine((endpoint, context) => {
  if (endpoint.mep.binding === 'push' && !endpoint.url) context.addIssue({ code: 'custom', path: ['url'], message: 'a push P-Mode needs the url the hub POSTs to' });
  if (endpoint.mep.binding === 'pull' && endpoint.url) context.addIssue({ code: 'custom', path: ['url'], message: 'a pull P-Mode has no url: the partner pulls' });
  if (endpoint.mep.binding === 'pull' && endpoint.receipt.reply === 'async') {
    context.addIssue({ code: 'custom', path: ['receipt', 'reply'], message: 'asynchronous replies go to the partner\'s url, which a pull P-Mode has not' });
  }
  const { encrypt, encryptionCertificate } = endpoint.security;
  if (endpoint.profile === 'eDelivery-AS4-2.0' && endpoint.security.keyTransport !== 'rsa-oaep') {
    context.addIssue({ code: 'custom', path: ['security', 'keyTransport'], message: 'eDelivery-AS4-2.0 transports no key by RSA: it agrees one with X25519' });
  }
  const keyType = endpoint.profile === 'eDelivery-AS4-2.0' ? 'x25519' : 'rsa';
  if (encrypt && !encryptionCertificate && keyType === 'x25519') {
    context.addIssue({ code: 'custom', path: ['security', 'encryptionCertificate'], message: 'eDelivery-AS4-2.0 encrypts to an X25519 key: give the partner\'s X25519 encryption certificate' });
  }
  if (encryptionCertificate) {
    let found: string | undefined;
    try {
      found = certificate(encryptionCertificate).publicKey.asymmetricKeyType;
    } catch (error) {
      context.addIssue({ code: 'custom', path: ['security', 'encryptionCertificate'], message: `not a readable certificate: ${(error as Error).message}` });
    }
    if (found !== undefined && found !== keyType) {
      context.addIssue({ code: 'custom', path: ['security', 'encryptionCertificate'], message: `${endpoint.profile} encrypts to ${keyType === 'rsa' ? 'an RSA' : 'an X25519'} key; this certificate's is ${found}` });
    }
  }
  const names = endpoint.services.map((s) => `${s.type ?? ''}|${s.service}`);
  if (new Set(names).size < names.length) context.addIssue({ code: 'custom', path: ['services'], message: 'a service is listed twice' });
});

export type As4Endpoint = z.infer<typeof as4Endpoint>;

/** A push P-Mode is where the hub delivers; a pull one serves nothing by push (the partner receives by pull, from its inbox). */
export const as4Serves = (endpoint: Pick<As4Endpoint, 'mep'>): Purpose[] => (endpoint.mep.binding === 'push' ? ['deliver'] : []);

/** The algorithm URIs a received message used: its signature's and, when it is encrypted, its encryption's. */
export interface UsedAlgorithms {
  signature?: string;
  digests: string[];
  dataEncryption: string[];
  keyTransport: string[];
  maskGeneration: string[];
  keyAgreement: string[];
  keyDerivation: string[];
  keyWrap: string[];
}

function descendants(element: XmlElement, visit: (element: XmlElement) => void): void {
  for (const child of elementChildren(element)) {
    visit(child);
    descendants(child, visit);
  }
}

const algorithmOf = (element: XmlElement) => element.attributes.find((a) => a.localName === 'Algorithm' && a.namespace === '')?.value ?? '';

/** Read from the envelope itself, so that a message is judged before (and whether or not) its signature checks out. */
export function algorithmsOf(message: Pick<As4Message, 'envelope'>): UsedAlgorithms {
  const used: UsedAlgorithms = { digests: [], dataEncryption: [], keyTransport: [], maskGeneration: [], keyAgreement: [], keyDerivation: [], keyWrap: [] };
  const add = (list: string[], value: string) => { if (!list.includes(value)) list.push(value); };
  const { ds, xenc } = as4Namespaces;
  const xenc11 = 'http://www.w3.org/2009/xmlenc11#';
  const visit = (element: XmlElement) => {
    if (element.namespace === ds && element.localName === 'SignatureMethod') used.signature ??= algorithmOf(element);
    else if (element.namespace === ds && element.localName === 'DigestMethod' && element.parent?.localName === 'Reference') add(used.digests, algorithmOf(element));
    else if (element.namespace === xenc11 && element.localName === 'MGF') add(used.maskGeneration, algorithmOf(element));
    else if (element.namespace === xenc && element.localName === 'AgreementMethod') add(used.keyAgreement, algorithmOf(element));
    else if (element.namespace === xenc11 && element.localName === 'KeyDerivationMethod') add(used.keyDerivation, algorithmOf(element));
    else if (element.namespace === xenc && element.localName === 'EncryptionMethod') {
      const owner = element.parent;
      const wrapsKey = owner?.localName === 'EncryptedKey';
      const agreed = owner && elementChildren(owner).some((c) => c.localName === 'KeyInfo' && elementChildren(c).some((k) => k.localName === 'AgreementMethod'));
      add(!wrapsKey ? used.dataEncryption : agreed ? used.keyWrap : used.keyTransport, algorithmOf(element));
    }
  };
  if (message.envelope.header) descendants(message.envelope.header, visit);
  descendants(message.envelope.body, visit);
  return used;
}

/**
 * Checks a received message's algorithms against its P-Mode's profile: EBMS:0103 (PolicyNoncompliance) naming the
 * algorithm expected and the one found, for the first that differs; undefined when all agree.
 */
export function checkProfile(used: UsedAlgorithms, profileName: ProfileName, refToMessageInError?: string, keyTransport: As4Endpoint['security']['keyTransport'] = 'rsa-oaep'): EbmsError | undefined {
  // rsa-oaep-mgf1p, where the P-Mode names it, fixes its MGF itself (MGF1 with SHA-1): no MGF element is written.
  const profile: Record<string, string | undefined> = keyTransport === 'rsa-oaep-mgf1p' && profileName === 'eDelivery-AS4-1.15'
    ? { ...profiles[profileName], keyTransport: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p', maskGeneration: undefined }
    : profiles[profileName];
  const mismatch = (what: string, expected: string | undefined, found: string) =>
    new EbmsError('EBMS:0103', `${profileName} requires ${what} ${expected}; the message uses ${found.slice(0, 200) || 'none'}`, {
      origin: 'security', ...(refToMessageInError ? { refToMessageInError } : {}),
    });
  if (used.signature !== undefined && used.signature !== profile.signature) return mismatch('the signature algorithm', profile.signature, used.signature);
  const checks: [keyof UsedAlgorithms, string, string][] = [
    ['digests', 'digest', 'the digest algorithm'],
    ['dataEncryption', 'dataEncryption', 'the payload encryption'],
    ['keyTransport', 'keyTransport', 'the key transport'],
    ['maskGeneration', 'maskGeneration', 'the OAEP mask generation'],
    ['keyAgreement', 'keyAgreement', 'the key agreement'],
    ['keyDerivation', 'keyDerivation', 'the key derivation'],
    ['keyWrap', 'keyWrap', 'the key wrap'],
  ];
  for (const [field, key, what] of checks) {
    const other = (used[field] as string[]).find((value) => value !== profile[key]);
    if (other !== undefined) return mismatch(what, profile[key] ?? '(none in this profile)', other);
  }
  return undefined;
}
