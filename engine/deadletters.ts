// The dead-letter stream: what an actor could not process, with the reason; an operator lists and resends.
import type { Envelope } from './envelope.ts';
import { SwxError } from './errors.ts';
import { envelopeFacts, type EvidenceLog } from './evidence.ts';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { resentFromHeader, streams, type Bus } from './nats/jetstream.ts';

export interface DeadLetter {
  seq: number;
  at: string;
  actor: string;
  code: string;
  reason: string;
  subject: string;
  messageId?: string;
  from?: string;
  to?: string;
  service?: string;
}

function describe(stored: { seq: number; time: Date; header: { get(name: string): string }; data: Uint8Array }): DeadLetter {
  let envelope: Partial<Envelope> = {};
  try { envelope = JSON.parse(Buffer.from(stored.data).toString('utf8')) as Partial<Envelope>; } catch { /* not an envelope */ }
  return {
    seq: stored.seq,
    at: stored.time.toISOString(),
    actor: stored.header.get('Swx-Actor'),
    code: stored.header.get('Swx-Code'),
    reason: stored.header.get('Swx-Reason'),
    subject: stored.header.get('Swx-Subject'),
    ...(envelope.id ? { messageId: envelope.id, from: envelope.from, to: envelope.to, service: envelope.service } : {}),
  };
}

export async function listDeadLetters(bus: Bus, limit = 100, afterSeq = 0): Promise<DeadLetter[]> {
  const info = await bus.jsm.streams.info(streams.deadLetters);
  const out: DeadLetter[] = [];
  for (let seq = Math.max(info.state.first_seq, afterSeq + 1); seq <= info.state.last_seq && out.length < limit; seq++) {
    const stored = await bus.jsm.streams.getMessage(streams.deadLetters, { seq }).catch(() => null);
    if (stored) out.push(describe(stored));
  }
  return out;
}

/**
 * Puts the dead letter back on its original subject (a fresh delivery with fresh attempts) and removes it. With
 * `renewId` the message goes out under that new id (the receiver took the old one as a duplicate, or refused it by id),
 * in the same conversation; its `resent` evidence names the old id and the operator's reason.
 */
export async function resendDeadLetter(bus: Bus, seq: number, evidence: EvidenceLog, options: { renewId?: string; reason?: string } = {}): Promise<DeadLetter> {
  const stored = await bus.jsm.streams.getMessage(streams.deadLetters, { seq }).catch(() => null);
  if (!stored) throw new SwxError('SWX_NOT_FOUND', `no dead letter with sequence ${seq}`);
  const letter = describe(stored);
  const h = natsHeaders();
  h.set(resentFromHeader, `dead letter ${seq}`);
  let data = stored.data;
  let envelope: Envelope | undefined;
  if (letter.messageId) {
    envelope = JSON.parse(Buffer.from(stored.data).toString('utf8')) as Envelope;
    if (options.renewId) {
      envelope = { ...envelope, id: options.renewId };
      data = Buffer.from(JSON.stringify(envelope));
    }
  }
  await bus.js.publish(letter.subject, data, { msgID: `resend:${seq}`, headers: h });
  if (envelope) {
    const why = [`from dead letter ${seq} (${letter.code})`, options.renewId ? `renewed from message id ${letter.messageId}` : '', options.reason ? `reason: ${options.reason}` : ''].filter(Boolean).join('; ');
    await evidence.publish([evidence.record({ ...envelopeFacts(envelope), id: `resent:${seq}`, stage: 'resent', detail: why })]);
  }
  await bus.jsm.streams.deleteMessage(streams.deadLetters, seq);
  return { ...letter, ...(options.renewId ? { messageId: options.renewId } : {}) };
}
