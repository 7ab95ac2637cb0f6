// What the console watches of the running hub, beyond the store: each partner's waiting deliveries and circuit
// breaker, the dead letters, the certificates and CRLs it relies on, the time-stamping backlog and the disk. The hub
// hands the readers in (app/hub-watch.ts); the overview and the alerts are both judged from them here.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface PartnerWatch {
  id: string;
  /** Deliveries waiting for this partner (pending and unacknowledged, over all its lanes). */
  backlog: number;
  /** Its circuit breaker, as the hub process that answers sees it. */
  breaker: BreakerState;
}

export type ExpiryKind = 'agency' | 'hub' | 'tsa' | 'crl';

/** A certificate's notAfter, or a CRL's nextUpdate. */
export interface Expiry { subject: string; kind: ExpiryKind; notAfter: string }

export interface DiskWatch { path: string; freeBytes: number; totalBytes: number }

export interface HubWatch {
  partners(): Promise<PartnerWatch[]>;
  /** Messages on the dead-letter stream. */
  deadLetters(): Promise<number>;
  expiries(): Expiry[];
  /** Evidence records waiting for their RFC 3161 time-stamp (0 in a process that does not archive). */
  stampingBacklog(): number;
  /** The disk of the data folder. */
  disk(): Promise<DiskWatch>;
}

const dayMs = 86_400_000;

/** Whole days from `now` to an instant, negative once past. */
export function daysLeft(notAfter: string, now = Date.now()): number {
  return Math.floor((Date.parse(notAfter) - now) / dayMs);
}
