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

/** Puts the dead letter back on its original subject (a fresh delivery with fresh attempts) and removes it. */
export async function resendDeadLetter(bus: Bus, seq: number, evidence: EvidenceLog): Promise<DeadLetter> {
  const stored = await bus.jsm.streams.getMessage(streams.deadLetters, { seq }).catch(() => null);
  if (!stored) throw new SwxError('SWX_NOT_FOUND', `no dead letter with sequence ${seq}`);
  const letter = describe(stored);
  const h = natsHeaders();
  h.set(resentFromHeader, `dead letter ${seq}`);
  await bus.js.publish(letter.subject, stored.data, { msgID: `resend:${seq}`, headers: h });
  if (letter.messageId) {
    const envelope = JSON.parse(Buffer.from(stored.data).toString('utf8')) as Envelope;
    await evidence.publish([evidence.record({ ...envelopeFacts(envelope), id: `resent:${seq}`, stage: 'resent', detail: `from dead letter ${seq} (${letter.code})` })]);
  }
  await bus.jsm.streams.deleteMessage(streams.deadLetters, seq);
  return letter;
}
