// Duplicate elimination across hub processes (ebMS 2.0, 6.4.2 and 6.6): each received message's entry (reliability.ts
// receivedEntry, with the Acknowledgment it was answered with) kept in a NATS KV bucket under its sender and MessageId,
// the bucket's max age the longest persistence the connector keeps and each agreement's PersistDuration judged on the
// entry's own keepUntil. A generic piece: one with the AS4 connector's received-message store at merge.
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { ReceivedEntry } from './reliability.ts';

export const receivedBucket = 'swx_ebms2_received';

/** A KV key for a sender and MessageId: MessageIds hold characters keys may not. */
const keyOf = (sender: string, messageId: string) => createHash('sha256').update(`${sender}\u0000${messageId}`).digest('base64url');

export class ReceivedMessages {
  constructor(private readonly kv: KV) {}

  /** The entry kept for a message from `sender`, if one is kept. */
  async earlier(sender: string, messageId: string): Promise<ReceivedEntry | undefined> {
    const entry = await this.kv.get(keyOf(sender, messageId));
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    return entry.json<ReceivedEntry>();
  }

  async remember(sender: string, entry: ReceivedEntry): Promise<void> {
    await this.kv.put(keyOf(sender, entry.messageId), JSON.stringify(entry));
  }
}
