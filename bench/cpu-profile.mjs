// Loaded into the hub by a bench (NODE_OPTIONS=--import, where node refuses --cpu-prof): profiles the hub's
// main thread and its signature pool's worker threads with the in-process inspector and writes .cpuprofile files to
// SWX_BENCH_CPU_PROF_DIR. Plain JavaScript because it runs before the hub registers its TypeScript loader.
import { writeFileSync, mkdirSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import workerThreads, { isMainThread, threadId } from 'node:worker_threads';

const dir = process.env.SWX_BENCH_CPU_PROF_DIR;
// Only the hub itself (bin/swx.js start) and the worker threads it starts with this module in their execArgv (below),
// not its chDB owner process.
const hub = isMainThread && /bin[\\/]swx\.js$/.test(process.argv[1] ?? '') && process.argv[2] === 'start';
if (dir && (hub || (!isMainThread && process.execArgv.includes(import.meta.url)))) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  let part = 0;
  // The in-process session answers synchronously, so a profile is written even from the exit handler.
  const write = (restart) => session.post('Profiler.stop', (error, result) => {
    if (error) return;
    mkdirSync(dir, { recursive: true });
    const name = isMainThread ? `hub-${process.pid}` : `worker-${process.pid}-${threadId}-${String(part++).padStart(4, '0')}`;
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(result.profile));
    if (restart) session.post('Profiler.start');
  });
  if (isMainThread) {
    process.on('exit', () => write(false));
    // A worker given its own execArgv (the signature pool's) does not read NODE_OPTIONS' --import: it is added here.
    const { Worker } = workerThreads;
    workerThreads.Worker = class extends Worker {
      constructor(filename, options = {}) {
        super(filename, { ...options, execArgv: [...(options.execArgv ?? process.execArgv), '--import', import.meta.url] });
      }
    };
    syncBuiltinESMExports();
  }
  // A worker the pool terminates runs no exit handler: it writes what it has every 2 s instead (the last < 2 s is lost).
  else setInterval(() => write(true), 2000).unref();
}
