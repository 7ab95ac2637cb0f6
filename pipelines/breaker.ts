// A per-partner circuit breaker: after N consecutive transport failures the partner's deliveries pause, and one
// probe delivery goes through per probe interval until one succeeds.
import { setTimeout as sleep } from 'node:timers/promises';

export class CircuitBreaker {
  private failures = 0;
  private nextProbeAt = 0;
  private probing = false;
  /** Settles when the circuit closes (or the breaker stops); one promise per open period. */
  private closed?: { promise: Promise<void>; resolve: () => void };
  private stopped = false;

  constructor(private readonly threshold: number, private readonly probeIntervalMs: number, private readonly onChange: (open: boolean) => void) {}

  get open(): boolean { return this.failures >= this.threshold; }

  /** `half-open` while a probe delivery is out to find whether the partner is back. */
  get state(): 'closed' | 'open' | 'half-open' {
    return !this.open ? 'closed' : this.probing ? 'half-open' : 'open';
  }

  /**
   * Resolves true when this delivery may go: at once while closed; while open, one caller becomes the probe at
   * the next probe time and the others wait for the circuit to close, calling `keepAlive` every 5 s meanwhile
   * (to extend their ack deadlines). Resolves false when the breaker is stopped.
   */
  async permit(keepAlive: () => void): Promise<boolean> {
    while (!this.stopped && this.open) {
      if (!this.probing && Date.now() >= this.nextProbeAt) {
        this.probing = true;
        return true;
      }
      keepAlive();
      const wait = this.probing ? Math.min(5_000, this.probeIntervalMs) : Math.min(5_000, Math.max(10, this.nextProbeAt - Date.now()));
      await Promise.race([this.closed!.promise, sleep(wait)]);
    }
    return !this.stopped;
  }

  success(): void {
    const wasOpen = this.open;
    this.failures = 0;
    this.probing = false;
    if (wasOpen) {
      this.onChange(false);
      this.closed?.resolve();
      this.closed = undefined;
    }
  }

  failure(): void {
    const wasOpen = this.open;
    this.failures++;
    this.probing = false;
    if (!this.open) return;
    this.nextProbeAt = Date.now() + this.probeIntervalMs;
    if (!wasOpen) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => { resolve = r; });
      this.closed = { promise, resolve };
      this.onChange(true);
    }
  }

  stop(): void {
    this.stopped = true;
    this.closed?.resolve();
  }
}
