// Replay refusal. In the process that took a request, a window of the keys it has seen refuses a replay at once,
// before any provider is asked. Across hub processes the evidence stream refuses it: a query's evidence is
// published under replayMessageId(key), and JetStream drops a second publish under the same id within the stream's
// duplicate window (provisionStreams spans the replay window), so a replay taken by another process is refused when
// its evidence would be written, before its asker sees anything. That costs no extra round trip per query.
import { createHash } from 'node:crypto';
import type { ReplayGuard } from './query.ts';

/** The evidence stream message id that stands for a replay key. */
export function replayMessageId(key: string): string {
  return `replay:${createHash('sha256').update(key).digest('base64url')}`;
}

export class ReplayWindow implements ReplayGuard {
  /** Key digest → when it may be forgotten (ms since the epoch), in claim order. */
  private readonly seen = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  /** Keys are kept `windowSeconds`; a request older than that is refused as stale before its key is asked about. */
  constructor(private readonly windowSeconds: number, private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.forgetExpired(), 10_000).unref();
  }

  claim(key: string): boolean {
    // 128 bits of the digest: as unlikely to collide, and the window holds one key per request taken.
    const digest = createHash('sha256').update(key).digest('base64url').slice(0, 22);
    const expires = this.seen.get(digest);
    if (expires !== undefined && expires > this.now()) return false;
    // Re-inserted so that the map stays in expiry order for the sweep.
    this.seen.delete(digest);
    this.seen.set(digest, this.now() + this.windowSeconds * 1000);
    return true;
  }

  /** How many keys the window holds (about 80 bytes each). */
  get size(): number {
    return this.seen.size;
  }

  private forgetExpired(): void {
    const now = this.now();
    for (const [digest, expires] of this.seen) {
      if (expires > now) break;
      this.seen.delete(digest);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
