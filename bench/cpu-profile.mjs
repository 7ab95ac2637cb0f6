// Loaded into the hub by a bench (NODE_OPTIONS=--import, where node refuses --cpu-prof): profiles the hub's
// main thread with the in-process inspector and writes a .cpuprofile to SWX_BENCH_CPU_PROF_DIR when it exits.
// Plain JavaScript because it runs before the hub registers its TypeScript loader.
import { writeFileSync, mkdirSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.SWX_BENCH_CPU_PROF_DIR;
// Only the hub itself (bin/swx.js start), not its chDB owner process or its worker threads, which inherit NODE_OPTIONS.
if (dir && isMainThread && /bin[\\/]swx\.js$/.test(process.argv[1] ?? '') && process.argv[2] === 'start') {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // The in-process session answers synchronously, so the profile is written even from the exit handler.
  process.on('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `hub-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
