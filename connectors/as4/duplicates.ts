// AS4 duplicate detection across hub processes: the signed receipt each received UserMessage was answered with, kept
// in a NATS KV bucket under its sender and MessageId for the connector's horizon, so that a resend is answered with the
// same receipt and never processed twice; each P-Mode's own window is judged on the time kept with it.
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';

export const duplicatesBucket = 'swx_as4_received';

interface Kept { receipt: string; at: number }

/** A KV key for a sender and MessageId: MessageIds hold characters keys may not. */
const keyOf = (sender: string, messageId: string) => createHash('sha256').update(`${sender}\u0000${messageId}`).digest('base64url');

export class ReceivedMessages {
  constructor(private readonly kv: KV) {}

  /** The receipt a message from `sender` was answered with, when it came before within `windowSeconds`. */
  async receiptFor(sender: string, messageId: string, windowSeconds: number, now = Date.now()): Promise<string | undefined> {
    const entry = await this.kv.get(keyOf(sender, messageId));
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    const kept = entry.json<Kept>();
    return now - kept.at <= windowSeconds * 1000 ? kept.receipt : undefined;
  }

  async remember(sender: string, messageId: string, receipt: string, now = Date.now()): Promise<void> {
    await this.kv.put(keyOf(sender, messageId), JSON.stringify({ receipt, at: now } satisfies Kept));
  }
}
