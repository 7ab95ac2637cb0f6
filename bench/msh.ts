// What the as4 and ebms2 benches share: an agency's MSH that POSTs messages it signed before the clock started,
// `concurrency` at a time, to the hub's path for its protocol; the hub routes each to one of four REST receivers. A
// message counts when its receiver has it; latency runs from its send to its arrival. Every synchronous answer (the
// hub's signed Receipt or Acknowledgment) is checked after the run, so that checking takes no core from the hub.
import { Agent, request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { addService, type HubProcess } from '../app/hub-process.ts';
import { arrivalKey, startBenchReceivers } from './agencies.ts';
import { conditions, percentile, processCpuMs, treeCpuMs } from './conditions.ts';
import { routeBench } from './route.ts';

export const mshReceiverIds = ['BOFT', 'BSMI', 'TFDA', 'NTA'];

export interface MshMessage { messageId: string; to: string; body: Buffer; contentType: string }
export interface MshAnswer { status: number; contentType: string; body: Buffer }

export interface MshBench<M extends MshMessage> {
  bench: string;
  hub: HubProcess;
  caPem: string;
  /** The hub's path for the protocol, and any header its requests carry. */
  path: string;
  headers?: Record<string, string>;
  /** The swx service the messages travel on, and the partner id of the sending MSH. */
  service: string;
  sender: string;
  /** The n-th message, for receiver `to`, signed (and sealed) as the MSH sends it. */
  prepare(n: number, to: string): Promise<M>;
  /** Throws unless the answer is the hub's signed acknowledgement of `message`. */
  check(message: M, answer: MshAnswer): Promise<void>;
  /** A case run after the closed loop, with the hub and receivers still up (as4: one 1 GiB attachment). */
  after?(arrived: (to: string, messageId: string) => number | undefined): Promise<Record<string, unknown>>;
  conditions: Record<string, unknown>;
}

export interface MshOptions { json: boolean; messages: number; concurrency: number; payloadBytes: number; compareRoute: boolean }

export async function runMshBench<M extends MshMessage>(spec: MshBench<M>, options: MshOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const { hub } = spec;
  const receivers = await startBenchReceivers(hub, mshReceiverIds);
  await addService(hub, spec.service, [spec.sender], mshReceiverIds);
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency, ca: spec.caPem });
  const post = (message: M) => new Promise<MshAnswer>((resolve, reject) => {
    const headers = { ...spec.headers, 'content-type': message.contentType, 'content-length': String(message.body.length) };
    const req = request(`https://localhost:${hub.agencyPort}${spec.path}`, { method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(message.body);
  });
  const arrived = (message: M) => receivers.arrivals.get(arrivalKey(message.to, message.messageId));
  let counter = 0;
  const prepare = () => { const n = counter++; return spec.prepare(n, mshReceiverIds[n % mshReceiverIds.length]!); };

  /** Sends every message, `concurrency` at a time; each answer kept for checking, each send time for latency. */
  const run = async (batch: M[]) => {
    const sentAt = new Map<string, number>();
    const answers = new Map<string, MshAnswer>();
    let next = 0;
    await Promise.all(Array.from({ length: options.concurrency }, async () => {
      while (next < batch.length) {
        const message = batch[next++]!;
        sentAt.set(message.messageId, performance.timeOrigin + performance.now());
        answers.set(message.messageId, await post(message));
      }
    }));
    const deadline = Date.now() + 120_000;
    while (batch.some((message) => arrived(message) === undefined) && Date.now() < deadline) await sleep(50);
    return { sentAt, answers };
  };

  say(`signing ${options.messages + 200} messages before the clock starts…`);
  const warm: M[] = [];
  for (let i = 0; i < 200; i++) warm.push(await prepare());
  const batch: M[] = [];
  for (let i = 0; i < options.messages; i++) batch.push(await prepare());
  say('warming up…');
  await run(warm);

  say(`closed loop: ${options.messages} messages, ${options.concurrency} in flight`);
  const cpuBefore = treeCpuMs(hub.proc.pid!);
  const threadsBefore = processCpuMs(hub.proc.pid!);
  const started = performance.timeOrigin + performance.now();
  const { sentAt, answers } = await run(batch);
  const cpuMs = treeCpuMs(hub.proc.pid!) - cpuBefore;
  const threadsAfter = processCpuMs(hub.proc.pid!);
  const mainThreadMs = threadsAfter.mainThread - threadsBefore.mainThread;
  const processMs = threadsAfter.process - threadsBefore.process;
  const delivered = batch.filter((message) => arrived(message) !== undefined);
  const perMessage = (ms: number) => Number((ms / delivered.length).toFixed(3));
  const elapsed = (Math.max(...delivered.map((message) => arrived(message)!)) - started) / 1000;
  const latencies = delivered.map((message) => arrived(message)! - sentAt.get(message.messageId)!).sort((a, b) => a - b);

  say('checking every answer: the hub\'s signature and what it acknowledges…');
  let checked = 0;
  const problems: string[] = [];
  for (const message of batch) {
    try {
      await spec.check(message, answers.get(message.messageId)!);
      checked++;
    } catch (error) {
      if (problems.length < 5) problems.push(`${message.messageId}: ${(error as Error).message}`);
    }
  }
  agent.destroy();
  const afterwards = spec.after ? await spec.after((to, messageId) => receivers.arrivals.get(arrivalKey(to, messageId))) : {};
  receivers.stop();
  await hub.stop();

  const result: Record<string, unknown> = {
    bench: spec.bench,
    messages: batch.length,
    delivered: delivered.length,
    answers_checked: checked,
    ...(problems.length ? { answer_problems: problems } : {}),
    msgs_per_s: Math.round(delivered.length / elapsed),
    p50_ms: Number(percentile(latencies, 50).toFixed(1)),
    p95_ms: Number(percentile(latencies, 95).toFixed(1)),
    p99_ms: Number(percentile(latencies, 99).toFixed(1)),
    cpu_ms_per_msg: perMessage(cpuMs),
    // Where that CPU is: the hub's event loop, its other threads (signature pool workers, libuv, GC), its children.
    cpu_split_ms_per_msg: {
      main_thread: perMessage(mainThreadMs),
      other_threads: perMessage(processMs - mainThreadMs),
      child_processes: perMessage(cpuMs - processMs),
    },
    ...afterwards,
  };
  say(`  ${result.msgs_per_s} msgs/s, p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms, p99 ${result.p99_ms} ms, hub CPU ${result.cpu_ms_per_msg} ms/msg; ${checked}/${batch.length} answers checked`);
  if (options.compareRoute) {
    say('the REST route in the same run, for comparison…');
    const route = await routeBench({ json: true, messages: options.messages, rates: [], seconds: 0, payloadBytes: options.payloadBytes, concurrency: options.concurrency });
    result.route_msgs_per_s = route.msgs_per_s;
    result.route_cpu_ms_per_msg = route.cpu_ms_per_msg;
    result.cpu_ratio_to_route = Number(((result.cpu_ms_per_msg as number) / (route.cpu_ms_per_msg as number)).toFixed(2));
    say(`  REST route: ${route.msgs_per_s} msgs/s, hub CPU ${route.cpu_ms_per_msg} ms/msg; ${spec.bench} costs ${result.cpu_ratio_to_route}× the route's CPU`);
  }
  result.conditions = conditions({
    payload_bytes: options.payloadBytes,
    ...spec.conditions,
    transport: 'HTTPS (server-authenticated for the MSH), keep-alive; REST deliveries with RFC 9421 over mutual TLS',
    processes: 'hub (+ its nats-server and chDB owner), bench MSH, receivers process: all on this machine',
    cpu_ms_per_msg_counts: 'hub process tree only; the MSH signs every message before the clock starts and checks the answers after it stops',
  });
  return result;
}
