// A hub under a bench can write a V8 CPU profile of its main thread when it stops (bench/cpu-profile.mjs).

/** The environment that makes a hub process write its CPU profile into `dir`, or nothing when no dir is given. */
export function cpuProfileEnv(dir: string | undefined): NodeJS.ProcessEnv {
  if (!dir) return {};
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${new URL('./cpu-profile.mjs', import.meta.url).href}`.trim(),
    SWX_BENCH_CPU_PROF_DIR: dir,
  };
}
