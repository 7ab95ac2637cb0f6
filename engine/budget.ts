// The budget of request body bytes one process holds at once: the whole process's and each agency's share. A body is
// read only within it, so memory spent on bodies is bounded however many requests arrive together.
import { SwxError } from './errors.ts';
import { inflightBodyBytes } from './metrics.ts';

/** One request's part of the budget: grown as its body is declared or arrives, released once, when it is answered. */
export interface BodyClaim {
  /** Takes `bytes` more, or throws SWX_BUSY (the process's budget) or SWX_PARTNER_BUSY (the agency's) and takes none. */
  grow(bytes: number): void;
  release(): void;
}

export class BodyBudget {
  private used = 0;
  private readonly byPartner = new Map<string, number>();

  constructor(private readonly total: number, private readonly perPartner: number) {}

  /** A claim for `partner`, released when `done` closes (the response is sent, or the connection is gone). */
  claim(partner: string, done: { once(event: 'close', listener: () => void): unknown }): BodyClaim {
    let held = 0;
    const claim: BodyClaim = {
      grow: (bytes) => {
        const partnerHeld = this.byPartner.get(partner) ?? 0;
        if (partnerHeld + bytes > this.perPartner) {
          throw new SwxError('SWX_PARTNER_BUSY', `${partner} has ${partnerHeld} body bytes in flight; ${bytes} more would pass its ${this.perPartner}`);
        }
        if (this.used + bytes > this.total) {
          throw new SwxError('SWX_BUSY', `the hub holds ${this.used} body bytes; ${bytes} more would pass its ${this.total}`);
        }
        held += bytes;
        this.used += bytes;
        this.byPartner.set(partner, partnerHeld + bytes);
        inflightBodyBytes.set(this.used);
      },
      release: () => {
        if (held === 0) return;
        this.used -= held;
        const rest = (this.byPartner.get(partner) ?? held) - held;
        if (rest > 0) this.byPartner.set(partner, rest); else this.byPartner.delete(partner);
        held = 0;
        inflightBodyBytes.set(this.used);
      },
    };
    done.once('close', claim.release);
    return claim;
  }
}
