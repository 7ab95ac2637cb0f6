// Each agency's virtual tree, drawn from the registry at every request: nothing outside it exists for the agency, and
// nothing of another agency is in it.
//   /outbox/<channel>/              items of a channel it provides (service exchange.<channel>)
//   /outbox/<topic>/                notifications on a topic it may notify on (service notify.<topic>)
//   /outbox/<service>/<RECEIVER>/   messages of a service it may use, to one receiver
//   /inbox/                         its deliveries, when it receives by pull
//   /receipts/                      the hub's signed receipts and refusals of its uploads
// A name that is a channel, a topic and a service at once is the channel (then the topic): channel, topic and service
// ids are the registry's, so an operator who wants both reachable gives them distinct ids.
import { SwxError } from '../../engine/errors.ts';
import { audienceService, type Partner, type Registry } from '../../engine/registry.ts';

/** Longest name of one file or directory, and of a whole path, in bytes (as common file systems allow). */
export const nameLimit = 255;
export const pathLimit = 1024;

/** Where an upload goes: the service it is sent under and, for a service's message, its receiver. */
export interface Target { service: string; to?: string; dir: string }

export type Place =
  | { kind: 'root' | 'outbox' | 'inbox' | 'receipts'; path: string }
  /** outbox/<service>/: one directory per receiver. */
  | { kind: 'service'; path: string; service: string }
  /** A directory files are uploaded into. */
  | { kind: 'drop'; path: string; target: Target }
  /** A name inside a directory that may hold files (a drop, inbox, receipts); whether it exists is the session's to say. */
  | { kind: 'file'; path: string; parent: Place; name: string };

/**
 * The path's parts, from the root: relative paths are from the root (the agency's home). Refused as traversal (never
 * resolved): `..`, a NUL byte or another control character, a name or path over the limits.
 */
export function pathParts(path: string): string[] {
  if (Buffer.byteLength(path) > pathLimit) throw new SwxError('SWX_BAD_REQUEST', `path refused: longer than ${pathLimit} bytes`);
  if (/[\x00-\x1f\x7f]/.test(path)) throw new SwxError('SWX_BAD_REQUEST', 'path refused: it holds a NUL byte or another control character');
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new SwxError('SWX_BAD_REQUEST', 'path refused: it climbs with ..; name paths from / (e.g. /outbox/<channel>/file)');
  const long = parts.find((part) => Buffer.byteLength(part) > nameLimit);
  if (long) throw new SwxError('SWX_BAD_REQUEST', `path refused: a name is longer than ${nameLimit} bytes`);
  return parts;
}

export const joinPath = (parts: string[]) => `/${parts.join('/')}`;

/** The outbox directories an agency may send through, by name. */
export function outboxEntries(registry: Registry, partner: Partner): Map<string, { service: string } | { serviceDirs: string }> {
  const entries = new Map<string, { service: string } | { serviceDirs: string }>();
  const id = partner.id;
  for (const channel of registry.listChannels()) {
    if (channel.providers.includes(id)) entries.set(channel.id, { service: audienceService.channel(channel.id) });
  }
  for (const topic of registry.listTopics()) {
    if (!entries.has(topic.id) && (topic.notifiers.includes(id) || (topic.twoWay && topic.receivers.includes(id)))) entries.set(topic.id, { service: audienceService.topic(topic.id) });
  }
  for (const service of registry.listServices()) {
    if (!entries.has(service.id) && receiversOf(registry, partner, service.id).length > 0) entries.set(service.id, { serviceDirs: service.id });
  }
  return entries;
}

/** Whom the agency may send a service's messages to: every registered, enabled receiver a rule allows, itself aside. */
export function receiversOf(registry: Registry, partner: Partner, serviceId: string): string[] {
  const service = registry.service(serviceId);
  if (!service) return [];
  const receivers = new Set<string>();
  for (const rule of service.rules) {
    if (!rule.from.includes('*') && !rule.from.includes(partner.id)) continue;
    const named = rule.to.includes('*') ? registry.listPartners().map((p) => p.id) : rule.to;
    for (const to of named) if (to !== partner.id && registry.partner(to)?.enabled) receivers.add(to);
  }
  return [...receivers].sort();
}

/** What a path names in the agency's tree, or undefined when there is no such place for it. */
export function placeOf(registry: Registry, partner: Partner, parts: string[]): Place | undefined {
  const path = joinPath(parts);
  const [top, first, second, third, ...deeper] = parts;
  if (top === undefined) return { kind: 'root', path };
  if (top === 'receipts' || (top === 'inbox' && partner.receive === 'pull')) {
    const dir: Place = { kind: top, path: `/${top}` };
    if (first === undefined) return dir;
    return second === undefined ? { kind: 'file', path, parent: dir, name: first } : undefined;
  }
  if (top !== 'outbox') return undefined;
  if (first === undefined) return { kind: 'outbox', path };
  const entry = outboxEntries(registry, partner).get(first);
  if (!entry) return undefined;
  if ('service' in entry) {
    const drop: Place = { kind: 'drop', path: `/outbox/${first}`, target: { service: entry.service, dir: `/outbox/${first}` } };
    if (second === undefined) return drop;
    return third === undefined ? { kind: 'file', path, parent: drop, name: second } : undefined;
  }
  if (second === undefined) return { kind: 'service', path, service: entry.serviceDirs };
  if (!receiversOf(registry, partner, entry.serviceDirs).includes(second)) return undefined;
  const dir = `/outbox/${first}/${second}`;
  const drop: Place = { kind: 'drop', path: dir, target: { service: entry.serviceDirs, to: second, dir } };
  if (third === undefined) return drop;
  return deeper.length === 0 ? { kind: 'file', path, parent: drop, name: third } : undefined;
}

/** The directories a directory place lists (files are the session's to add). */
export function subdirectories(registry: Registry, partner: Partner, place: Place): string[] {
  if (place.kind === 'root') return ['outbox', ...(partner.receive === 'pull' ? ['inbox'] : []), 'receipts'];
  if (place.kind === 'outbox') return [...outboxEntries(registry, partner).keys()].sort();
  if (place.kind === 'service') return receiversOf(registry, partner, place.service);
  return [];
}
