// The bench's parent-child messages: send a message (if any) and wait for the child's answer carrying `key`.
import type { ChildProcess } from 'node:child_process';

export function reply<T = unknown>(child: ChildProcess, key: string, message?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (answer: Record<string, unknown>) => {
      if (!(key in answer)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(answer[key] as T);
    };
    const onExit = (code: number | null) => reject(new Error(`a bench process exited (${code}) before it sent ${key}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message) child.send(message);
  });
}
