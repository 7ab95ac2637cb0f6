// A per-partner circuit breaker: after N consecutive transport failures the partner's deliveries pause, and one
// probe delivery at a time goes through every probe interval until one succeeds.
import { setTimeout as sleep } from 'node:timers/promises';

export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  private closedWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly threshold: number, private readonly probeIntervalMs: number, private readonly onChange: (open: boolean) => void) {}

  get open(): boolean { return this.failures >= this.threshold; }

  /**
   * Resolves when this delivery may go: at once while closed; while open, one caller becomes the probe at the next
   * probe time and the others wait for the circuit to close. `keepAlive` runs while waiting (to extend ack deadlines).
   * Resolves false when the breaker is stopped.
   */
  async permit(keepAlive: () => void): Promise<boolean> {
    while (!this.stopped && this.open) {
      if (!this.probing && Date.now() >= this.openUntil) {
        this.probing = true;
        return true;
      }
      keepAlive();
      await Promise.race([
        new Promise<void>((resolve) => this.closedWaiters.push(resolve)),
        sleep(Math.max(50, Math.min(5_000, this.openUntil - Date.now()))),
      ]);
    }
    return !this.stopped;
  }

  success(): void {
    const wasOpen = this.open;
    this.failures = 0;
    this.probing = false;
    if (wasOpen) {
      this.onChange(false);
      for (const wake of this.closedWaiters.splice(0)) wake();
    }
  }

  failure(): void {
    const wasOpen = this.open;
    this.failures++;
    this.probing = false;
    if (this.open) {
      this.openUntil = Date.now() + this.probeIntervalMs;
      if (!wasOpen) this.onChange(true);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const wake of this.closedWaiters.splice(0)) wake();
  }
}
