// Pausing a process under a test (a nats-server under a connector). kill(SIGSTOP) returns once the signal is queued;
// the process stops when one of its threads takes it, and on a busy machine its other threads serve on meanwhile:
// long enough for a nats-server to acknowledge a publish sent after the kill. So a pause waits until every thread is
// stopped, a state that lasts until SIGCONT.
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './hub.ts';

/** The state letter of each thread of `pid` (R running, S sleeping, D in I/O, T stopped...), from /proc. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      // "tid (comm) S ...": the name may hold spaces and parentheses, the state follows the last ')'.
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return [stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)];
    } catch {
      return []; // the thread ended between the listing and the read
    }
  });
}

/** Stops the process and resolves once none of its threads can run. */
export async function pause(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  await waitFor(`process ${pid} stopped`, () => threadStates(pid).every((state) => state === 'T'), 30_000);
}

export function resume(pid: number): void {
  process.kill(pid, 'SIGCONT');
}
