// The words message searches and statistics are made of, shared by the routes and the console's pages, which are
// bundled for the browser and so import nothing that needs the server.
import type { Dimension, Grain } from './stats.ts';

/** The ids a message can be found by (message_keys.key_kind). */
export const keyKinds = ['message', 'conversation', 'ref_to', 'file', 'sha256'] as const;
export type KeyKind = (typeof keyKinds)[number];

/**
 * What became of a message, judged from all its records: `rejected`; a query `answered` or `query_failed`; `delivered`
 * once every receiver has it; `dead_lettered` when a receiver's delivery was given up and not delivered since;
 * `failing` while a receiver refuses it and is retried; else `routed` (waiting for delivery).
 */
export const messageStates = ['rejected', 'answered', 'query_failed', 'delivered', 'dead_lettered', 'failing', 'routed'] as const;
export type MessageState = (typeof messageStates)[number];

/** What statistics split by, and the time buckets they come in (stats-routes.ts). */
export const dimensions = ['service', 'protocol', 'sender', 'receiver', 'stage', 'code'] as const satisfies readonly Dimension[];
export const grains = ['minute', 'hour', 'day', 'month', 'year'] as const satisfies readonly Grain[];
