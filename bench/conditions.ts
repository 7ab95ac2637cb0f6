// The machine's conditions, printed with every bench figure so that numbers are never read without them.
import { execFileSync } from 'node:child_process';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';

export function conditions(extra: Record<string, unknown> = {}): Record<string, unknown> {
  let nats = 'unknown';
  try { nats = execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim(); } catch { /* absent */ }
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    mem_gib: Math.round(totalmem() / 2 ** 30),
    free_mem_gib: Math.round(freemem() / 2 ** 30),
    load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
    node: process.version,
    nats_server: nats,
    ...extra,
  };
}

const ticksPerSecond = 100;

/** CPU time (ms) used so far by a process and all its descendants (nats-server, the chDB owner). */
export function treeCpuMs(rootPid: number): number {
  const children = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(fields[1]);
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) * (1000 / ticksPerSecond));
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch { /* exited meanwhile */ }
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop()!;
    total += cpu.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** CPU time (ms) of one process or thread from its /proc stat file (utime + stime). */
function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1000 / ticksPerSecond);
}

/**
 * CPU time (ms) of a process: all its threads, and its main thread (the event loop) alone. The rest is its worker
 * threads (the signature pool), libuv's pool and V8's own threads (GC, compilers).
 */
export function processCpuMs(pid: number): { process: number; mainThread: number } {
  return { process: statCpuMs(`/proc/${pid}/stat`), mainThread: statCpuMs(`/proc/${pid}/task/${pid}/stat`) };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
