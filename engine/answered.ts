// What each received message was answered with (a signed receipt or acknowledgement), kept across hub processes in a
// NATS KV bucket under its sender and message id, so that a resend is answered the same way and never processed twice.
// The bucket's max age is the longest horizon kept; a protocol judges its own shorter windows on what it stores.
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';

/** A KV key for a sender and message id: message ids hold characters keys may not. */
export const answeredKey = (sender: string, messageId: string) => createHash('sha256').update(`${sender}\u0000${messageId}`).digest('base64url');

export class AnsweredMessages<Answer> {
  constructor(private readonly kv: KV) {}

  /** What the message from `sender` was answered with, if it was received before and is still kept. */
  async earlier(sender: string, messageId: string): Promise<Answer | undefined> {
    const entry = await this.kv.get(answeredKey(sender, messageId));
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    return entry.json<Answer>();
  }

  async remember(sender: string, messageId: string, answer: Answer): Promise<void> {
    await this.kv.put(answeredKey(sender, messageId), JSON.stringify(answer));
  }
}
