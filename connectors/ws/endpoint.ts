// A partner's SOAP endpoint: where the hub puts, as a WS-Security-signed SOAP request, the queries it answers.
import { z } from 'zod';
import type { Purpose } from '../../engine/endpoints.ts';
import { serverTrust } from '../../engine/server-trust.ts';

export const soapEndpoint = z.object({
  queryUrl: z.url({ protocol: /^https$/ }).describe('where the hub POSTs the queries this partner answers as a provider (SOAP 1.1, mutual TLS)'),
  tls: serverTrust.optional().describe('which server certificates the hub accepts at queryUrl (default: those its own CA issued)'),
}).strict();

export type SoapEndpoint = z.infer<typeof soapEndpoint>;

export const soapServes = (): Purpose[] => ['query'];
