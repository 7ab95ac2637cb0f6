// route bench: distinct, freshly signed REST messages through the whole pipeline on the embedded stack
// (receive → verify → archive → route → deliver). A message counts only when its receiver has it and its
// `delivered` evidence is in ClickHouse. Closed-loop for throughput, then open-loop at fixed offered rates for
// latency measured from each message's scheduled send time.
import { setTimeout as sleep } from 'node:timers/promises';
import { addAgency, addService, startHubProcess } from '../app/hub-process.ts';
import { arrivalKey, startBenchReceivers } from './agencies.ts';
import { conditions, percentile, treeCpuMs } from './conditions.ts';
import { benchPayload } from './payload.ts';

export interface RouteOptions { json: boolean; messages: number; rates: number[]; seconds: number; payloadBytes: number; concurrency: number }

const receiverIds = ['BOFT', 'BSMI', 'TFDA', 'NTA'];

export async function routeBench(options: RouteOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const hub = await startHubProcess({ env: { SWX_LOG_LEVEL: 'warn' } });
  const sender = await addAgency(hub, 'CUSTOMS', { receiver: false });
  const receivers = await startBenchReceivers(hub, receiverIds);
  // Each message goes to one receiver, which names where to look for its arrival.
  const receiverOf = new Map<string, string>();
  const arrivalOf = (id: string) => receivers.arrivals.get(arrivalKey(receiverOf.get(id) ?? '', id));
  const arrivals = { has: (id: string) => arrivalOf(id) !== undefined, get: arrivalOf };
  await addService(hub, 'bench.route', ['CUSTOMS'], receiverIds);
  const client = sender.client;
  let counter = 0;
  const sendOne = async (): Promise<{ id: string; ok: boolean }> => {
    const n = counter++;
    const to = receiverIds[n % receiverIds.length]!;
    const answer = await client.send({ to, service: 'bench.route', contentType: 'application/octet-stream', body: benchPayload(n, options.payloadBytes) });
    receiverOf.set(String(answer.body.id), to);
    return { id: String(answer.body.id), ok: answer.status === 202 };
  };

  const waitArrived = async (ids: string[], timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (ids.some((id) => !arrivals.has(id)) && Date.now() < deadline) await sleep(50);
    return ids.filter((id) => arrivals.has(id)).length;
  };
  const evidenced = async (ids: string[]) => {
    let count = 0;
    for (let i = 0; i < ids.length; i += 2000) {
      const chunk = ids.slice(i, i + 2000);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const response = await hub.admin('POST', '/api/messages/stages', { ids: chunk });
        const got = Object.values(response.body ?? {}).filter((stages) => (stages as Record<string, number>).delivered).length;
        if (got >= chunk.length || Date.now() > deadline) { count += got; break; }
        await sleep(200);
      }
    }
    return count;
  };

  say('warming up…');
  const warm = [];
  for (let i = 0; i < 200; i++) warm.push(await sendOne());
  await waitArrived(warm.map((w) => w.id), 30_000);

  say(`closed loop: ${options.messages} messages, ${options.concurrency} in flight`);
  const cpuBefore = treeCpuMs(hub.proc.pid!);
  const started = performance.now();
  const ids: string[] = [];
  let refused = 0;
  await Promise.all(Array.from({ length: options.concurrency }, async () => {
    while (counter < 200 + options.messages) {
      const result = await sendOne();
      if (result.ok) ids.push(result.id); else refused++;
    }
  }));
  const arrived = await waitArrived(ids, 120_000);
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs = treeCpuMs(hub.proc.pid!) - cpuBefore;
  const withEvidence = await evidenced(ids);
  const counted = Math.min(arrived, withEvidence);
  const closed = {
    messages: ids.length, refused, arrived, evidenced: withEvidence,
    msgs_per_s: Math.round(counted / elapsed), hub_cpu_ms_per_msg: Number((cpuMs / counted).toFixed(3)),
  };
  say(`  ${closed.msgs_per_s} msgs/s end to end (${counted} delivered and evidenced in ${elapsed.toFixed(1)} s), hub CPU ${closed.hub_cpu_ms_per_msg} ms/msg`);

  const open = [];
  for (const rate of options.rates) {
    say(`open loop: ${rate} msgs/s offered for ${options.seconds} s`);
    const total = rate * options.seconds;
    const scheduled = new Map<string, number>();
    const start = performance.timeOrigin + performance.now() + 50;
    const cpuStart = treeCpuMs(hub.proc.pid!);
    const inflight: Promise<void>[] = [];
    let late = 0;
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - (performance.timeOrigin + performance.now());
      if (wait > 1) await sleep(wait); else if (wait < -100) late++;
      inflight.push(sendOne().then((result) => { if (result.ok) scheduled.set(result.id, due); }));
    }
    await Promise.all(inflight);
    const runIds = [...scheduled.keys()];
    await waitArrived(runIds, 120_000);
    const cpu = treeCpuMs(hub.proc.pid!) - cpuStart;
    const latencies = runIds.filter((id) => arrivals.has(id)).map((id) => arrivals.get(id)! - scheduled.get(id)!).sort((a, b) => a - b);
    const lastArrival = Math.max(...runIds.map((id) => arrivals.get(id) ?? 0));
    const row = {
      offered_per_s: rate,
      achieved_per_s: Math.round(latencies.length / ((lastArrival - start) / 1000)),
      delivered: latencies.length, evidenced: await evidenced(runIds), sent: total,
      generator_late: late,
      p50_ms: Number(percentile(latencies, 50).toFixed(1)),
      p95_ms: Number(percentile(latencies, 95).toFixed(1)),
      p99_ms: Number(percentile(latencies, 99).toFixed(1)),
      hub_cpu_ms_per_msg: Number((cpu / latencies.length).toFixed(3)),
    };
    open.push(row);
    say(`  achieved ${row.achieved_per_s}/s, p50 ${row.p50_ms} ms, p95 ${row.p95_ms} ms, p99 ${row.p99_ms} ms, hub CPU ${row.hub_cpu_ms_per_msg} ms/msg`);
  }

  receivers.stop();
  client.close();
  await hub.stop();
  // The headline latency is the highest offered rate the hub still kept up with (achieved ≥ 95 % of offered).
  const kept = open.filter((row) => row.achieved_per_s >= 0.95 * row.offered_per_s);
  const best = kept.at(-1) ?? open[0] ?? { p50_ms: NaN, p95_ms: NaN, p99_ms: NaN, offered_per_s: 0 };
  return {
    bench: 'route',
    msgs_per_s: closed.msgs_per_s,
    p50_ms: best.p50_ms,
    p95_ms: best.p95_ms,
    p99_ms: best.p99_ms,
    latency_at_offered_per_s: best.offered_per_s,
    cpu_ms_per_msg: closed.hub_cpu_ms_per_msg,
    closed_loop: closed,
    open_loop: open,
    conditions: conditions({
      payload_bytes: options.payloadBytes,
      signature: 'ECDSA P-256, RFC 9421 over Content-Digest, both legs plus signed receipts',
      transport: 'HTTPS mutual TLS, keep-alive',
      processes: 'hub (+ its nats-server and chDB owner), bench sender, receivers process: all on this machine',
      cpu_ms_per_msg_counts: 'hub process tree only (hub, nats-server, chDB owner); sender and receivers excluded',
    }),
  };
}
