// The partner registry: agencies, their certificates and endpoints, and the services with who may use them
// towards whom. Lives in a JetStream KV bucket with history; every hub process keeps a watched copy in memory.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { algorithmFor, type SigAlg } from './httpsig.ts';
import { certificate, type ParsedCert } from './trust/index.ts';
import { checkEndpoints, protocolName } from './endpoints.ts';
import { SwxError } from './errors.ts';
import { log } from './log.ts';
import { followBucket } from './nats/follow.ts';
import { revisions, type Revision } from './nats/shared-entries.ts';
import type { Bus } from './nats/jetstream.ts';
import { readSshPublicKey, sshKeySchema, type SshKey } from './ssh-key.ts';

export const partnerId = z.string().regex(/^[A-Z][A-Z0-9-]{1,31}$/, 'partner ids are upper-case letters, digits and dashes, e.g. CUSTOMS');
// Dot-separated words: each id is a key of the registry bucket (service.<id>), where an empty word is not allowed.
export const serviceId = z.string().min(2).max(64)
  .regex(/^[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*$/, 'service ids are lower-case words joined by dots, e.g. customs.declaration');

/**
 * An id from outside (a URL, a body), held to its grammar before it names anything: SWX_BAD_REQUEST when it is not
 * of it. A key or subject is never built from an id that has not passed here or its schema, so none is a wildcard.
 */
export function checkedId(grammar: z.ZodType<string>, what: string, value: string): string {
  const parsed = grammar.safeParse(value);
  if (!parsed.success) throw new SwxError('SWX_BAD_REQUEST', `${what} ${JSON.stringify(String(value).slice(0, 80))}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}
const pem = z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'expected a PEM certificate' });

export const partnerSchema = z.object({
  id: partnerId,
  name: z.string().min(1).max(200),
  certificates: z.array(pem).min(1).describe('PEM certificates the partner signs and authenticates with'),
  endpoints: z.record(protocolName, z.record(z.string(), z.unknown())).default({})
    .describe('where the hub reaches the partner, one endpoint per protocol, each shaped as its connector declares (engine/endpoints.ts)'),
  preferred: z.record(z.string().regex(/^(\*|[a-z][a-z0-9.-]{1,63})$/, 'a service, topic, channel or dataset id, or * for all'), protocolName).default({})
    .describe('which endpoint serves a service, topic, channel or dataset (* for all others); otherwise the first that can'),
  receive: z.enum(['push', 'pull']).default('push')
    .describe('push: the hub delivers to the partner\'s endpoint; pull: deliveries wait in its inbox until it fetches them'),
  sshKeys: z.array(sshKeySchema).max(32).default([])
    .describe('SSH public keys the partner logs in with over SFTP, each named by its SHA-256 fingerprint'),
  enabled: z.boolean().default(true),
});
export type Partner = z.infer<typeof partnerSchema>;

const party = z.union([partnerId, z.literal('*')]);
export const serviceSchema = z.object({
  id: serviceId,
  name: z.string().min(1).max(200),
  rules: z.array(z.object({ from: z.array(party).min(1), to: z.array(party).min(1) })).min(1)
    .describe('the service may be used from any listed sender towards any listed receiver of the same rule'),
  ttlSeconds: z.number().int().positive().optional().describe('undelivered messages dead-letter after this long'),
});
export type Service = z.infer<typeof serviceSchema>;

// Topics (Table 2, 情資通報) and channels (Table 3, 資料交換): a message is addressed to one by its service,
// `notify.<topic>` or `exchange.<channel>`, and reaches every receiver or requester (pipelines/route.ts).
const audienceId = z.string().min(2).max(48).regex(/^[a-z][a-z0-9-]*$/, 'topic and channel ids are lower-case letters, digits and dashes, e.g. rice-inspection');
export const topicId = audienceId;
export const channelId = audienceId;
const partners = z.array(partnerId).min(1);

export const topicSchema = z.object({
  id: topicId,
  name: z.string().min(1).max(200),
  nameZh: z.string().max(200).optional(),
  notifiers: partners.describe('who may notify on the topic'),
  receivers: partners.describe('who receives every notification'),
  twoWay: z.boolean().default(false).describe('receivers may notify the notifiers too (a reply carries Ref-To)'),
  ttlSeconds: z.number().int().positive().optional().describe('undelivered notifications dead-letter after this long'),
});
export type Topic = z.infer<typeof topicSchema>;

export const channelSchema = z.object({
  id: channelId,
  name: z.string().min(1).max(200),
  nameZh: z.string().max(200).optional(),
  dataset: z.string().min(1).max(200).describe('what the channel\'s items are'),
  providers: partners.describe('who may publish items on the channel'),
  requesters: z.array(partnerId).describe('who receives every item, in the order published'),
  ttlSeconds: z.number().int().positive().optional().describe('undelivered items dead-letter after this long'),
});
export type Channel = z.infer<typeof channelSchema>;

/** Where a message goes: one receiver, or every receiver of a topic or requester of a channel. */
export type Audience =
  | { kind: 'direct'; receivers: [string] }
  | { kind: 'topic' | 'channel'; id: string; receivers: string[] };

/** The service a message to a topic or channel is sent under. */
export const audienceService = { topic: (id: string) => `notify.${id}`, channel: (id: string) => `exchange.${id}` };

/** The topic or channel a service names (`notify.<topic>`, `exchange.<channel>`), or undefined for a direct service. */
export function serviceAudience(service: string): { kind: 'topic' | 'channel'; id: string } | undefined {
  const [prefix, id = ''] = service.split(/\.(.*)/s) as [string, string?];
  if (prefix === 'notify') return { kind: 'topic', id };
  if (prefix === 'exchange') return { kind: 'channel', id };
  return undefined;
}

type Kind = 'partner' | 'service' | 'topic' | 'channel';
const kindIds: Record<Kind, z.ZodType<string>> = { partner: partnerId, service: serviceId, topic: topicId, channel: channelId };

export interface PartnerKey {
  partner: Partner;
  certificate: X509Certificate;
  publicKey: KeyObject;
  thumbprint: string;
  /** The certificate as the trust store checks it (shared, parsed once per process). */
  parsed: ParsedCert;
}

const bucketName = 'swx_registry';

export class Registry {
  private readonly partners = new Map<string, Partner>();
  private readonly services = new Map<string, Service>();
  private readonly topics = new Map<string, Topic>();
  private readonly channels = new Map<string, Channel>();
  private readonly keys = new Map<string, PartnerKey>();
  private readonly sshKeys = new Map<string, { partner: Partner; key: SshKey }>();
  private readonly listeners = new Set<(kind: Kind, id: string) => void>();
  private stopWatch?: () => void;

  private constructor(private readonly kv: KV) {}

  static async open(bus: Bus): Promise<Registry> {
    const kv = await new Kvm(bus.js).create(bucketName, { history: 32 });
    const registry = new Registry(kv);
    registry.stopWatch = await followBucket(kv, { put: (key, value) => registry.apply(key, value), remove: (key) => registry.forget(key) }, 'registry');
    return registry;
  }

  private apply(key: string, value: Uint8Array): void {
    try {
      const json = JSON.parse(Buffer.from(value).toString('utf8'));
      if (key.startsWith('partner.')) this.index(partnerSchema.parse(json));
      else if (key.startsWith('service.')) this.services.set(json.id, serviceSchema.parse(json));
      else if (key.startsWith('topic.')) this.topics.set(json.id, topicSchema.parse(json));
      else if (key.startsWith('channel.')) this.channels.set(json.id, channelSchema.parse(json));
      this.notify(key);
    } catch (error) {
      log.error({ key, err: error }, 'registry entry is invalid; ignored');
    }
  }

  private forget(key: string): void {
    const [kind, id] = key.split(/\.(.*)/s) as [string, string];
    if (kind === 'partner') this.unindex(id);
    if (kind === 'service') this.services.delete(id);
    if (kind === 'topic') this.topics.delete(id);
    if (kind === 'channel') this.channels.delete(id);
    this.notify(key);
  }

  private notify(key: string): void {
    const [kind, id] = key.split(/\.(.*)/s) as [Kind, string];
    for (const listener of this.listeners) listener(kind, id);
  }

  private unindex(id: string): void {
    this.partners.delete(id);
    for (const [print, key] of this.keys) if (key.partner.id === id) this.keys.delete(print);
    for (const [print, key] of this.sshKeys) if (key.partner.id === id) this.sshKeys.delete(print);
  }

  private index(partner: Partner): void {
    this.unindex(partner.id);
    this.partners.set(partner.id, partner);
    for (const pemText of partner.certificates) {
      const parsed = certificate(pemText);
      this.keys.set(parsed.thumbprint, { partner, certificate: parsed.x509, publicKey: parsed.publicKey, thumbprint: parsed.thumbprint, parsed });
    }
    for (const key of partner.sshKeys) this.sshKeys.set(key.fingerprint, { partner, key });
  }

  onChange(listener: (kind: Kind, id: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  partner(id: string): Partner | undefined { return this.partners.get(id); }
  service(id: string): Service | undefined { return this.services.get(id); }
  listPartners(): Partner[] { return [...this.partners.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  listServices(): Service[] { return [...this.services.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  topic(id: string): Topic | undefined { return this.topics.get(id); }
  channel(id: string): Channel | undefined { return this.channels.get(id); }
  listTopics(): Topic[] { return [...this.topics.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  listChannels(): Channel[] { return [...this.channels.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  /** The registered certificate (and its cached key object) with this SHA-256 thumbprint. */
  keyByThumbprint(print: string): PartnerKey | undefined { return this.keys.get(print); }
  /** The registered SSH key with this fingerprint (SHA256:…) and the partner it belongs to, if any. */
  sshKeyByFingerprint(fingerprint: string): { partner: Partner; key: SshKey } | undefined { return this.sshKeys.get(fingerprint); }

  /** The key and algorithm to check a signature with, when `keyId` is a certificate of `partnerId`. */
  verificationKey(keyId: string, partnerId: string, declaredAlg?: string): { key: KeyObject; alg: SigAlg } | undefined {
    const signer = this.keys.get(keyId);
    if (!signer || signer.partner.id !== partnerId) return undefined;
    const alg = algorithmFor(signer.publicKey, declaredAlg);
    return alg ? { key: signer.publicKey, alg } : undefined;
  }

  /**
   * Who a message from `from` under `service` reaches: `to` for a service of the registry (whether it may is
   * mayUse's to say, once the receiver is known to exist); for `notify.<topic>` the
   * topic's receivers (or, from a receiver of a two-way topic, its notifiers), for `exchange.<channel>` the channel's
   * requesters, the sender never among them; for one receiver's copy another hub `relayed`, `to` alone, when it is one
   * of them. SwxError when the service is unknown, the sender may not notify on the topic or provide to the channel, or
   * a topic or channel message names a receiver (not relayed) or one not registered or not among its receivers.
   */
  audience(from: string, service: string, to: string | undefined, relayed = false): Audience {
    const named = serviceAudience(service);
    if (named) {
      const { kind, id } = named;
      const who = kind === 'topic' ? 'receiver' : 'requester';
      if (to !== undefined && !relayed) throw new SwxError('SWX_BAD_REQUEST', `a message to ${kind} ${id} names no receiver: it reaches every ${who}`);
      const receivers = (kind === 'topic' ? this.topicReceivers(from, id) : this.channelRequesters(from, id)).filter((receiver) => receiver !== from);
      if (to === undefined) return { kind, id, receivers };
      if (!this.partners.get(to)?.enabled) throw new SwxError('SWX_UNKNOWN_RECEIVER', `receiver '${to}' is not a registered partner`);
      if (!receivers.includes(to)) throw new SwxError('SWX_ACL_DENIED', `${to} is not a ${who} of ${kind} '${id}' here: ${from}'s copy for it is not taken`);
      return { kind, id, receivers: [to] };
    }
    if (!this.services.has(service)) throw new SwxError('SWX_UNKNOWN_SERVICE', `service '${service}' is not registered`);
    if (to === undefined) throw new SwxError('SWX_BAD_REQUEST', `a message under service ${service} names its receiver`);
    return { kind: 'direct', receivers: [to] };
  }

  private topicReceivers(from: string, id: string): string[] {
    const topic = this.topics.get(id);
    if (!topic) throw new SwxError('SWX_UNKNOWN_SERVICE', `topic '${id}' is not registered`);
    if (topic.notifiers.includes(from)) return topic.receivers;
    if (topic.twoWay && topic.receivers.includes(from)) return topic.notifiers;
    throw new SwxError('SWX_ACL_DENIED', `${from} is not a notifier of topic '${id}'${topic.twoWay ? ' nor one of its receivers' : ''}`);
  }

  private channelRequesters(from: string, id: string): string[] {
    const channel = this.channels.get(id);
    if (!channel) throw new SwxError('SWX_UNKNOWN_SERVICE', `channel '${id}' is not registered`);
    if (!channel.providers.includes(from)) throw new SwxError('SWX_ACL_DENIED', `${from} is not a provider of channel '${id}'`);
    return channel.requesters;
  }

  mayUse(from: string, serviceId: string, to: string): boolean {
    const service = this.services.get(serviceId);
    if (!service) return false;
    return service.rules.some((rule) =>
      (rule.from.includes('*') || rule.from.includes(from)) && (rule.to.includes('*') || rule.to.includes(to)));
  }

  /** Stores a partner whose endpoints fit their connectors' shapes (SWX_BAD_REQUEST otherwise). */
  async putPartner(input: unknown): Promise<Partner> {
    const parsed = partnerSchema.parse(input);
    const partner = { ...parsed, endpoints: checkEndpoints(parsed.endpoints) };
    const unknownPreference = Object.entries(partner.preferred).find(([, protocol]) => !partner.endpoints[protocol]);
    if (unknownPreference) throw new SwxError('SWX_BAD_REQUEST', `preferred ${unknownPreference[0]}: ${partner.id} has no ${unknownPreference[1]} endpoint`);
    for (const pemText of partner.certificates) {
      const { thumbprint } = certificate(pemText);
      const holder = this.keys.get(thumbprint)?.partner.id;
      if (holder && holder !== partner.id) {
        throw new SwxError('SWX_BAD_REQUEST', `certificate ${thumbprint} is registered to ${holder}; one certificate identifies one partner`);
      }
    }
    for (const { fingerprint } of partner.sshKeys) {
      const holder = this.sshKeys.get(fingerprint)?.partner.id;
      if (holder && holder !== partner.id) throw new SwxError('SWX_BAD_REQUEST', `SSH key ${fingerprint} is registered to ${holder}; one key identifies one partner`);
    }
    if (new Set(partner.sshKeys.map((key) => key.fingerprint)).size !== partner.sshKeys.length) throw new SwxError('SWX_BAD_REQUEST', 'sshKeys: the same key is listed twice');
    await this.kv.put(`partner.${partner.id}`, JSON.stringify(partner));
    this.index(partner);
    return partner;
  }

  /** Adds an SSH public key (an OpenSSH line) to a partner's entry, a registry change with its history like any other. */
  async addSshKey(id: string, publicKey: string): Promise<SshKey> {
    const partner = this.partners.get(checkedId(partnerId, 'partner', id));
    if (!partner) throw new SwxError('SWX_NOT_FOUND', `no partner ${id}`);
    const key = readSshPublicKey(publicKey);
    if (partner.sshKeys.some((known) => known.fingerprint === key.fingerprint)) throw new SwxError('SWX_BAD_REQUEST', `SSH key ${key.fingerprint} is already registered to ${id}`);
    await this.putPartner({ ...partner, sshKeys: [...partner.sshKeys, key] });
    return key;
  }

  /** Removes an SSH key from a partner's entry; SWX_NOT_FOUND when the partner has no key of that fingerprint. */
  async removeSshKey(id: string, fingerprint: string): Promise<void> {
    const partner = this.partners.get(checkedId(partnerId, 'partner', id));
    if (!partner) throw new SwxError('SWX_NOT_FOUND', `no partner ${id}`);
    if (!partner.sshKeys.some((key) => key.fingerprint === fingerprint)) throw new SwxError('SWX_NOT_FOUND', `${id} has no SSH key ${fingerprint}`);
    await this.putPartner({ ...partner, sshKeys: partner.sshKeys.filter((key) => key.fingerprint !== fingerprint) });
  }

  putService(input: unknown): Promise<Service> { return this.putEntry('service', serviceSchema, this.services, input); }
  putTopic(input: unknown): Promise<Topic> { return this.putEntry('topic', topicSchema, this.topics, input); }
  putChannel(input: unknown): Promise<Channel> { return this.putEntry('channel', channelSchema, this.channels, input); }

  private async putEntry<T extends { id: string }>(kind: Kind, schema: z.ZodType<T>, entries: Map<string, T>, input: unknown): Promise<T> {
    const entry = schema.parse(input);
    await this.kv.put(`${kind}.${entry.id}`, JSON.stringify(entry));
    entries.set(entry.id, entry);
    return entry;
  }

  /** Removes a topic or channel; SWX_BAD_REQUEST for an id not of its grammar. */
  async remove(kind: 'topic' | 'channel', id: string): Promise<void> {
    await this.kv.delete(`${kind}.${checkedId(kindIds[kind], kind, id)}`);
    (kind === 'topic' ? this.topics : this.channels).delete(id);
  }

  async removePartner(id: string): Promise<void> {
    await this.kv.delete(`partner.${checkedId(partnerId, 'partner', id)}`);
    this.unindex(id);
  }

  /** Every stored revision of a partner, service, topic or channel, oldest first; SWX_BAD_REQUEST for an id not of its grammar. */
  async history(kind: Kind, id: string): Promise<Revision[]> {
    checkedId(kindIds[kind], kind, id);
    return revisions(this.kv, `${kind}.${id}`);
  }

  close(): void { this.stopWatch?.(); }
}
