// What the delivery fault tests share: sending as a careful agency does, and counting what the evidence says.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgencyClient, OutgoingMessage } from '../../connectors/rest/agency.ts';
import * as assert from 'uvu/assert';
import type { HubProcess } from '../../app/hub-process.ts';
import { evidenceOf } from './hub.ts';
import { streams, type Bus } from '../../engine/nats/jetstream.ts';
import { deliverActorName } from '../../pipelines/deliver.ts';
import { routeActorName } from '../../pipelines/route.ts';

/** What a careful sender does: retry with the same message id until the hub answers 202. */
export async function sendUntilAccepted(client: AgencyClient, outgoing: OutgoingMessage, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await client.send(outgoing).catch(() => undefined);
    if (answer?.status === 202) return;
    if (answer && answer.status < 500) throw new Error(`refused: ${JSON.stringify(answer.body)}`);
    if (Date.now() > deadline) throw new Error(`not accepted within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Per message id, how many evidence records of each stage the archive holds. */
export async function stagesOf(hub: HubProcess, ids: string[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (let i = 0; i < ids.length; i += 2000) {
    const answer = await hub.admin('POST', '/api/messages/stages', { ids: ids.slice(i, i + 2000) });
    Object.assign(out, answer.body);
  }
  return out;
}

/**
 * Sends a message to a receiver that never answers with its receipt, and waits until the hub gives it up: each of the
 * `sends` sends but the last evidenced as left without a receipt (SWX_RECEIPT_MISSING), then one dead letter with that
 * code, in the dead-letter list too, and no delivery. Resolves with the message id and the dead letter's detail.
 */
export async function deadLetteredUnanswered(hub: HubProcess, client: AgencyClient, outgoing: OutgoingMessage, sends: number): Promise<{ id: string; detail: string; unanswered: string[] }> {
  const answer = await client.send(outgoing);
  assert.is(answer.status, 202, answer.text);
  const id = String(answer.body.id);
  const rows = await evidenceOf(hub, id, ['dead_lettered'], 60_000);
  const dead = rows.filter((row) => row.stage === 'dead_lettered');
  assert.is(dead.length, 1, `dead-lettered once: ${rows.map((row) => row.stage)}`);
  assert.is(dead[0].code, 'SWX_RECEIPT_MISSING');
  assert.is(rows.filter((row) => row.stage === 'delivered').length, 0);
  const unanswered = rows.filter((row) => row.stage === 'delivery_failed');
  assert.ok(unanswered.every((row) => row.code === 'SWX_RECEIPT_MISSING'), JSON.stringify(unanswered.map((row) => row.code)));
  assert.equal(unanswered.map((row) => Number(/^send (\d+) without a receipt/.exec(row.detail)?.[1])).sort(), Array.from({ length: sends - 1 }, (_, i) => i + 1));
  const letters = (await hub.admin('GET', '/api/dlq')).body as { messageId?: string; code: string }[];
  assert.equal(letters.filter((letter) => letter.messageId === id).map((letter) => letter.code), ['SWX_RECEIPT_MISSING']);
  return { id, detail: dead[0].detail, unanswered: unanswered.map((row) => row.detail) };
}

/** No work left on the route, on any requester's lane of the channel, or for the archive. */
export async function fanOutSettled(bus: Bus, channel: string, requesterIds: string[]): Promise<boolean> {
  const consumers: [string, string][] = [
    [streams.messages, routeActorName],
    ...requesterIds.map((id): [string, string] => [streams.messages, deliverActorName(id, channel)]),
    [streams.messages, 'archive-messages'],
    [streams.evidence, 'archive'],
  ];
  for (const [stream, consumer] of consumers) {
    const info = await bus.jsm.consumers.info(stream, consumer).catch(() => undefined);
    if (!info || info.num_pending + info.num_ack_pending > 0) return false;
  }
  return true;
}
