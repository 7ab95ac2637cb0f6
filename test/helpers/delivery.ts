// What the delivery fault tests share: sending as a careful agency does, and counting what the evidence says.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgencyClient, OutgoingMessage } from '../../connectors/rest/agency.ts';
import type { HubProcess } from '../../app/hub-process.ts';
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
