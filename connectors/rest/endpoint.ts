// A partner's REST endpoint: where the hub delivers its messages and where it puts the queries it answers.
import { z } from 'zod';
import type { Purpose } from '../../engine/endpoints.ts';
import { serverTrust } from '../../engine/server-trust.ts';

const https = z.url({ protocol: /^https$/ });

export const restEndpoint = z.object({
  url: https.optional().describe('where the hub POSTs the partner\'s messages (signed, mutual TLS)'),
  queryUrl: https.optional().describe('where the hub POSTs the queries this partner answers as a provider'),
  tls: serverTrust.optional().describe('which server certificates the hub accepts at url and queryUrl (default: those its own CA issued)'),
}).strict().refine((endpoint) => endpoint.url || endpoint.queryUrl, 'a REST endpoint needs a url, a queryUrl or both');

export type RestEndpoint = z.infer<typeof restEndpoint>;

export function restServes(endpoint: RestEndpoint): Purpose[] {
  return [...(endpoint.url ? ['deliver' as const] : []), ...(endpoint.queryUrl ? ['query' as const] : [])];
}
