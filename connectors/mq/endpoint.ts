// A partner's MQ endpoint and the connector's hub-wide settings: which queue manager, over which channel, which
// queues carry the partner's messages each way, and how a message the hub cannot take is set aside.
import { z } from 'zod';
import { connectorSettings } from '../../engine/connector.ts';
import type { Purpose } from '../../engine/endpoints.ts';

/** MQ object names: up to 48 characters of A-Z a-z 0-9 . / _ % (queues and queue managers). */
const objectName = z.string().regex(/^[A-Za-z0-9./_%]{1,48}$/, 'an MQ object name: 1-48 characters of letters, digits and . / _ %');
/** An environment variable that holds a secret: the secret itself is never in the registry. */
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/, 'the name of an environment variable (upper-case letters, digits, _)');

export const mqEndpoint = z.object({
  queueManager: objectName.describe('the queue manager\'s name'),
  connectionName: z.string().regex(/^[A-Za-z0-9.:\-[\]]+\(\d{1,5}\)(,[A-Za-z0-9.:\-[\]]+\(\d{1,5}\))*$/, 'host(port), or a comma-separated list of them for a multi-instance queue manager')
    .describe('CONNAME: host(port), several separated by commas for a multi-instance queue manager'),
  channel: z.string().regex(/^[A-Za-z0-9./_%]{1,20}$/, 'an MQ channel name: 1-20 characters').describe('the server-connection channel (SVRCONN)'),
  putQueue: objectName.optional().describe('where the hub puts the partner\'s deliveries (towards the partner)'),
  getQueue: objectName.optional().describe('where the hub gets the partner\'s messages (from the partner)'),
  replyToQueue: objectName.optional().describe('set as ReplyToQ on deliveries; error reports for messages that name no ReplyToQ go here too, unless errorQueue is set'),
  errorQueue: objectName.optional().describe('where the hub puts the error report of a refused message that names no ReplyToQ'),
  backoutQueue: objectName.optional().describe('where a message that failed backoutThreshold times goes, with evidence (default: the connector\'s backoutQueue)'),
  backoutThreshold: z.number().int().min(1).max(999).default(3).describe('how many times a message is backed out before it is moved to the backout queue'),
  tls: z.object({
    cipherSpec: z.string().regex(/^[A-Z0-9_]{3,64}$/, 'an MQ CipherSpec name, e.g. ANY_TLS13_OR_HIGHER').describe('SSLCIPH of the channel'),
    keyRepository: z.string().min(1).max(256).describe('the key repository (stem of a .kdb, without the extension)'),
    certificateLabel: z.string().min(1).max(64).optional().describe('the label of the hub\'s certificate in the key repository'),
    peerName: z.string().min(1).max(256).optional().describe('SSLPEER: the distinguished name the queue manager\'s certificate must match'),
  }).strict().optional().describe('TLS on the channel'),
  userEnv: envName.optional().describe('environment variable holding the user id the hub connects as'),
  passwordEnv: envName.optional().describe('environment variable holding that user\'s password'),
  pollIntervalMs: z.number().int().min(50).max(60_000).default(1_000).describe('how long the hub waits before looking at an empty get queue again'),
}).strict().refine((endpoint) => endpoint.putQueue || endpoint.getQueue, 'an MQ endpoint needs a putQueue, a getQueue or both')
  .refine((endpoint) => !endpoint.passwordEnv || endpoint.userEnv, 'passwordEnv needs userEnv');

export type MqEndpoint = z.infer<typeof mqEndpoint>;

export function mqServes(endpoint: MqEndpoint): Purpose[] {
  return endpoint.putQueue ? ['deliver'] : [];
}

export const mqSettings = connectorSettings.extend({
  queueManager: z.enum(['ibmmq', 'in-memory']).default('ibmmq')
    .describe('ibmmq: IBM MQ queue managers through the ibmmq package and IBM\'s MQ client library; in-memory: queues inside this hub process, lost when it stops (tests and the demo only)'),
  backoutQueue: objectName.default('SWX.BACKOUT').describe('the backout queue of partners whose endpoint names none'),
  maxMessageBytes: z.number().int().min(1024).max(100 * 1024 * 1024).default(4 * 1024 * 1024)
    .describe('the largest message the hub gets or puts (MQ\'s MAXMSGL): a larger one from a partner is refused SWX_TOO_LARGE, one for a partner is dead-lettered with it'),
});

export type MqSettings = z.infer<typeof mqSettings>;
