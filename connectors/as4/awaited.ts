// AS4 receipts that come on their own (a P-Mode's `receipt.reply: "async"`): each UserMessage the hub sent and awaits a
// receipt for, with the references that receipt must copy and its sends so far, kept in a KV bucket shared by the hub
// processes. The partner's Receipt or Error signal, POSTed to any of them, is written beside it (settle); the process
// whose delivery waits hears it through one watch of the bucket, and a delivery that stopped waiting finds it there
// at its next attempt instead of sending again.
import type { KV } from '@nats-io/kv';
import { AnsweredMessages, answeredKey as keyOf } from '../../engine/answered.ts';
import type { SignatureInfo } from '../../engine/envelope.ts';
import { log } from '../../engine/log.ts';
import type { ReferenceCopy } from './model.ts';
import type { Outstanding } from './reception.ts';

export const awaitedBucket = 'swx_as4_awaited';

/** What the partner answered: its checked Receipt, or the detail of its Error signal. */
export type AwaitedOutcome =
  | { kind: 'receipt'; raw: string; signature: SignatureInfo }
  | { kind: 'error'; detail: string };

/** A UserMessage sent, awaiting its receipt: its sends so far (first and last), and the partner's answer once it came. */
export interface AwaitedSend extends Omit<Outstanding, 'messageId'> {
  references: ReferenceCopy[];
  outcome?: AwaitedOutcome;
}

export class AwaitedReceipts {
  /** The deliveries of this process waiting for their answer, by key. */
  private readonly waiters = new Map<string, (outcome: AwaitedOutcome) => void>();
  private watch?: Promise<{ stop(): void }>;
  private readonly sends: AnsweredMessages<AwaitedSend>;

  constructor(private readonly kv: KV) {
    this.sends = new AnsweredMessages(kv);
  }

  get(partner: string, messageId: string): Promise<AwaitedSend | undefined> {
    return this.sends.earlier(partner, messageId);
  }

  /** Records a send (before it goes: the answer may come before the HTTP response). */
  sent(partner: string, messageId: string, send: AwaitedSend): Promise<void> {
    return this.sends.remember(partner, messageId, send);
  }

  /** Forgets a send whose delivery ended without its receipt: a Receipt after that answers nothing awaited. */
  async forget(partner: string, messageId: string): Promise<void> {
    await this.kv.delete(keyOf(partner, messageId));
  }

  /**
   * Writes the partner's answer beside the send it answers; false when no such send is awaited. A repeated Receipt
   * leaves the first in place.
   */
  async settle(partner: string, messageId: string, outcome: AwaitedOutcome): Promise<boolean> {
    const key = keyOf(partner, messageId);
    for (let attempt = 1; ; attempt++) {
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT' || entry.length === 0) return false;
      const send = entry.json<AwaitedSend>();
      if (send.outcome?.kind === 'receipt') return true;
      try {
        await this.kv.update(key, JSON.stringify({ ...send, outcome }), entry.revision);
        return true;
      } catch (error) {
        // Written meanwhile (a resend recorded, another answer): read again.
        if (attempt >= 5) throw error;
      }
    }
  }

  /**
   * The answer to a send, once it comes, or undefined after `waitMs`. The waiter is registered before the entry is read,
   * so an answer written in between is seen by one or the other.
   */
  async outcome(partner: string, messageId: string, waitMs: number): Promise<AwaitedOutcome | undefined> {
    const key = keyOf(partner, messageId);
    await this.watching().catch((error: unknown) => log.warn({ err: error }, 'awaited AS4 receipts cannot be watched; the delivery takes its receipt at its next attempt'));
    let timer: NodeJS.Timeout | undefined;
    const heard = new Promise<AwaitedOutcome | undefined>((resolve) => {
      this.waiters.set(key, resolve);
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    try {
      const written = (await this.get(partner, messageId))?.outcome;
      return written ?? await heard;
    } finally {
      clearTimeout(timer);
      this.waiters.delete(key);
    }
  }

  /** One watch of the bucket's updates per process, started by the first wait. */
  private watching(): Promise<unknown> {
    this.watch ??= this.kv.watch({ include: 'updates', ignoreDeletes: true }).then((updates) => {
      void (async () => {
        for await (const entry of updates) {
          const waiter = this.waiters.get(entry.key);
          if (!waiter || entry.length === 0) continue;
          const outcome = entry.json<AwaitedSend>().outcome;
          if (outcome) waiter(outcome);
        }
      })().catch((error: unknown) => {
        log.warn({ err: error }, 'the watch of awaited AS4 receipts ended; waiting deliveries take their receipts at their next attempt');
        this.watch = undefined;
      });
      return updates;
    });
    return this.watch;
  }

  close(): void {
    void this.watch?.then((updates) => updates.stop(), () => undefined);
    this.watch = undefined;
    this.waiters.clear();
  }
}
