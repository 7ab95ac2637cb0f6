// A hub under a bench can write V8 CPU profiles of its main thread and its worker threads (bench/cpu-profile.mjs).

/** The environment that makes a hub process write its CPU profiles into `dir`, or nothing when no dir is given. */
export function cpuProfileEnv(dir: string | undefined): NodeJS.ProcessEnv {
  if (!dir) return {};
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${new URL('./cpu-profile.mjs', import.meta.url).href}`.trim(),
    SWX_BENCH_CPU_PROF_DIR: dir,
    // An idle piscina worker otherwise blocks in Atomics.wait, where no timer runs: its profile would never be written.
    PISCINA_ENABLE_ASYNC_ATOMICS: '1',
  };
}
