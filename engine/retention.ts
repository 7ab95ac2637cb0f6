// Retention of evidence (evidence.retentionDays; 0 keeps it for ever): rows older than the retention leave the
// evidence table, and payloads leave the Object Store by its max age (payloads.ts), so a payload lasts as its evidence.
// Not a TTL on the table: a TTL may remove a node's newest row, the head its hash chain continues from when the
// archive starts. The chain would start again at 0, and its blocks would reuse the ids of blocks already stamped
// (`<node>:<first chain>`) below the last stamped position that crash recovery trusts, so they would never be
// stamped. A periodic delete that spares each node's head keeps the chain going; the Merkle blocks and their
// time-stamps (evidence_batches) stay, holding hashes only, so what is kept still proves itself.
import { log } from './log.ts';
import type { Store } from './store/index.ts';

const dayMs = 86_400_000;

/** How often expired evidence is looked for: rows outlive their retention by at most this. */
const expiryIntervalMs = 3_600_000;

/** Removes evidence rows older than `days`, but each node's newest row; returns how many nodes' rows were looked at. */
export async function expireEvidence(store: Store, days: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - days * dayMs).toISOString().replace('T', ' ').replace('Z', '');
  const heads = await store.query<{ node: string; head: number }>('SELECT node, max(chain) AS head FROM evidence GROUP BY node');
  for (const { node, head } of heads) {
    await store.command(
      "DELETE FROM evidence WHERE node = {node:String} AND chain < {head:UInt64} AND at < {cutoff:DateTime64(3, 'UTC')}",
      { node, head, cutoff });
  }
  return heads.length;
}

/**
 * Expires evidence now and every hour in the process that archives it, at the retention `days()` gives each time (0:
 * kept for ever; a runtime setting may shorten it); returns what stops it.
 */
export function startExpiry(store: Store, days: () => number): () => void {
  const expire = () => {
    const retentionDays = days();
    if (retentionDays <= 0) return;
    expireEvidence(store, retentionDays).catch((error: unknown) => log.warn({ err: error, retentionDays }, 'expired evidence could not be removed; trying again in an hour'));
  };
  expire();
  const timer = setInterval(expire, expiryIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
