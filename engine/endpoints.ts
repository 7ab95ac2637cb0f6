// Where a partner is reached: one endpoint per protocol, each shaped as that protocol's connector declares, and which
// of them serves a service. The connectors register their endpoint kinds (engine/connector.ts); the registry checks a
// partner's endpoints against them, and delivery and queries choose through endpointFor.
import { z } from 'zod';
import { SwxError } from './errors.ts';

/** What an endpoint can be used for: the hub delivers messages to it, or puts queries to it. */
export type Purpose = 'deliver' | 'query';

export const protocolName = z.string().regex(/^[a-z][a-z0-9]{1,15}$/, 'protocol names are lower-case letters and digits, e.g. rest');

/** The shape a protocol's endpoint takes in a partner's entry, and what an endpoint of that shape serves. */
export interface EndpointKind<Endpoint = unknown> {
  readonly protocol: string;
  readonly endpoint: z.ZodType<Endpoint>;
  serves(endpoint: Endpoint): Purpose[];
}

const kinds = new Map<string, EndpointKind>();

export function registerEndpointKind(kind: EndpointKind): void {
  kinds.set(kind.protocol, kind);
}

export function endpointKind(protocol: string): EndpointKind | undefined {
  return kinds.get(protocol);
}

/** A partner's endpoints as stored: protocol → that protocol's endpoint settings. */
export type Endpoints = Record<string, Record<string, unknown>>;

/**
 * Each endpoint checked against its protocol's declared shape and returned as that shape parses it (defaults filled
 * in); SWX_BAD_REQUEST naming the protocol and the field for one no connector of this hub declares or that does not fit.
 */
export function checkEndpoints(endpoints: Endpoints): Endpoints {
  const checked: Endpoints = {};
  for (const [protocol, settings] of Object.entries(endpoints)) {
    const kind = kinds.get(protocol);
    if (!kind) throw new SwxError('SWX_BAD_REQUEST', `endpoint ${protocol}: no connector of this hub speaks ${protocol} (known: ${[...kinds.keys()].sort().join(', ')})`);
    const parsed = kind.endpoint.safeParse(settings);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new SwxError('SWX_BAD_REQUEST', `endpoint ${protocol}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
    }
    checked[protocol] = parsed.data as Record<string, unknown>;
  }
  return checked;
}

export interface ChosenEndpoint { protocol: string; endpoint: Record<string, unknown> }

/**
 * The endpoint that serves `purpose` for the first of `keys` (a service, topic, channel or dataset id, most specific
 * first) the partner prefers a protocol for, else for its preference for everything ('*'), else its only or first
 * (by protocol name) endpoint that serves the purpose. Undefined when none does.
 */
export function endpointFor(
  partner: { endpoints: Endpoints; preferred: Record<string, string> },
  keys: readonly string[],
  purpose: Purpose,
): ChosenEndpoint | undefined {
  const serving = (protocol: string | undefined): ChosenEndpoint | undefined => {
    const endpoint = protocol === undefined ? undefined : partner.endpoints[protocol];
    const kind = protocol === undefined ? undefined : kinds.get(protocol);
    return endpoint && kind?.serves(endpoint).includes(purpose) ? { protocol: protocol!, endpoint } : undefined;
  };
  for (const key of [...keys, '*']) {
    const chosen = serving(partner.preferred[key]);
    if (chosen) return chosen;
  }
  for (const protocol of Object.keys(partner.endpoints).sort()) {
    const chosen = serving(protocol);
    if (chosen) return chosen;
  }
  return undefined;
}
