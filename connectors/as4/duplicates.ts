// AS4 duplicate detection across hub processes: the signed receipt each received UserMessage was answered with, kept
// (engine/answered.ts) for the connector's horizon, so that a resend is answered with the same receipt and never
// processed twice; each P-Mode's own window is judged on the time kept with it.
import type { KV } from '@nats-io/kv';
import { AnsweredMessages } from '../../engine/answered.ts';

export const duplicatesBucket = 'swx_as4_received';

interface Kept { receipt: string; at: number }

export class ReceivedMessages {
  private readonly answered: AnsweredMessages<Kept>;
  constructor(kv: KV) {
    this.answered = new AnsweredMessages(kv);
  }

  /** The receipt a message from `sender` was answered with, when it came before within `windowSeconds`. */
  async receiptFor(sender: string, messageId: string, windowSeconds: number, now = Date.now()): Promise<string | undefined> {
    const kept = await this.answered.earlier(sender, messageId);
    return kept && now - kept.at <= windowSeconds * 1000 ? kept.receipt : undefined;
  }

  remember(sender: string, messageId: string, receipt: string, now = Date.now()): Promise<void> {
    return this.answered.remember(sender, messageId, { receipt, at: now });
  }
}
