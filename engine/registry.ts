// The partner registry: agencies, their certificates and endpoints, and the services with who may use them
// towards whom. Lives in a JetStream KV bucket with history; every hub process keeps a watched copy in memory.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { algorithmFor, type SigAlg } from './httpsig.ts';
import { certificate, type ParsedCert } from './trust/index.ts';
import { SwxError } from './errors.ts';
import { log } from './log.ts';
import { followBucket } from './nats/follow.ts';
import type { Bus } from './nats/jetstream.ts';

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
  endpoint: z.object({
    protocol: z.literal('rest'),
    url: z.url({ protocol: /^https$/ }),
  }).optional().describe('where the hub delivers messages for this partner'),
  queryEndpoint: z.object({
    protocol: z.enum(['rest', 'soap']),
    url: z.url({ protocol: /^https$/ }),
  }).optional().describe('where the hub puts the queries this partner answers as a provider of query datasets'),
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
  private readonly keys = new Map<string, PartnerKey>();
  private readonly listeners = new Set<(kind: 'partner' | 'service', id: string) => void>();
  private stopWatch?: () => void;

  private constructor(private readonly kv: KV) {}

  static async open(bus: Bus): Promise<Registry> {
    const kv = await new Kvm(bus.js).create(bucketName, { history: 32 });
    const registry = new Registry(kv);
    registry.stopWatch = await followBucket(kv, { put: (key, value) => registry.apply(key, value), remove: (key) => registry.remove(key) }, 'registry');
    return registry;
  }

  private apply(key: string, value: Uint8Array): void {
    try {
      const json = JSON.parse(Buffer.from(value).toString('utf8'));
      if (key.startsWith('partner.')) this.index(partnerSchema.parse(json));
      else if (key.startsWith('service.')) this.services.set(json.id, serviceSchema.parse(json));
      this.notify(key);
    } catch (error) {
      log.error({ key, err: error }, 'registry entry is invalid; ignored');
    }
  }

  private remove(key: string): void {
    const [kind, id] = key.split(/\.(.*)/s) as [string, string];
    if (kind === 'partner') this.unindex(id);
    if (kind === 'service') this.services.delete(id);
    this.notify(key);
  }

  private notify(key: string): void {
    const [kind, id] = key.split(/\.(.*)/s) as ['partner' | 'service', string];
    for (const listener of this.listeners) listener(kind, id);
  }

  private unindex(id: string): void {
    this.partners.delete(id);
    for (const [print, key] of this.keys) if (key.partner.id === id) this.keys.delete(print);
  }

  private index(partner: Partner): void {
    this.unindex(partner.id);
    this.partners.set(partner.id, partner);
    for (const pemText of partner.certificates) {
      const parsed = certificate(pemText);
      this.keys.set(parsed.thumbprint, { partner, certificate: parsed.x509, publicKey: parsed.publicKey, thumbprint: parsed.thumbprint, parsed });
    }
  }

  onChange(listener: (kind: 'partner' | 'service', id: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  partner(id: string): Partner | undefined { return this.partners.get(id); }
  service(id: string): Service | undefined { return this.services.get(id); }
  listPartners(): Partner[] { return [...this.partners.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  listServices(): Service[] { return [...this.services.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  /** The registered certificate (and its cached key object) with this SHA-256 thumbprint. */
  keyByThumbprint(print: string): PartnerKey | undefined { return this.keys.get(print); }

  /** The key and algorithm to check a signature with, when `keyId` is a certificate of `partnerId`. */
  verificationKey(keyId: string, partnerId: string, declaredAlg?: string): { key: KeyObject; alg: SigAlg } | undefined {
    const signer = this.keys.get(keyId);
    if (!signer || signer.partner.id !== partnerId) return undefined;
    const alg = algorithmFor(signer.publicKey, declaredAlg);
    return alg ? { key: signer.publicKey, alg } : undefined;
  }

  mayUse(from: string, serviceId: string, to: string): boolean {
    const service = this.services.get(serviceId);
    if (!service) return false;
    return service.rules.some((rule) =>
      (rule.from.includes('*') || rule.from.includes(from)) && (rule.to.includes('*') || rule.to.includes(to)));
  }

  async putPartner(input: unknown): Promise<Partner> {
    const partner = partnerSchema.parse(input);
    for (const pemText of partner.certificates) {
      const { thumbprint } = certificate(pemText);
      const holder = this.keys.get(thumbprint)?.partner.id;
      if (holder && holder !== partner.id) {
        throw new SwxError('SWX_BAD_REQUEST', `certificate ${thumbprint} is registered to ${holder}; one certificate identifies one partner`);
      }
    }
    await this.kv.put(`partner.${partner.id}`, JSON.stringify(partner));
    this.index(partner);
    return partner;
  }

  async putService(input: unknown): Promise<Service> {
    const service = serviceSchema.parse(input);
    await this.kv.put(`service.${service.id}`, JSON.stringify(service));
    this.services.set(service.id, service);
    return service;
  }

  async removePartner(id: string): Promise<void> {
    await this.kv.delete(`partner.${checkedId(partnerId, 'partner', id)}`);
    this.unindex(id);
  }

  /** Every stored revision of a partner or service, oldest first; SWX_BAD_REQUEST for an id not of its grammar. */
  async history(kind: 'partner' | 'service', id: string): Promise<{ revision: number; at: string; operation: string; value?: unknown }[]> {
    checkedId(kind === 'partner' ? partnerId : serviceId, kind, id);
    const out = [];
    for await (const entry of await this.kv.history({ key: `${kind}.${id}` })) {
      out.push({
        revision: entry.revision,
        at: entry.created.toISOString(),
        operation: entry.operation,
        ...(entry.operation === 'PUT' ? { value: entry.json() } : {}),
      });
    }
    return out;
  }

  close(): void { this.stopWatch?.(); }
}
