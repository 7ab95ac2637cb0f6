// A partner's SOAP endpoint: where the hub puts, as a WS-Security-signed SOAP request, the queries it answers.
import { z } from 'zod';
import type { Purpose } from '../../engine/endpoints.ts';

export const soapEndpoint = z.object({
  queryUrl: z.url({ protocol: /^https$/ }).describe('where the hub POSTs the queries this partner answers as a provider (SOAP 1.1, mutual TLS)'),
}).strict();

export type SoapEndpoint = z.infer<typeof soapEndpoint>;

export const soapServes = (): Purpose[] => ['query'];
