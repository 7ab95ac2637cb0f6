// The embedded nats-server: started with JetStream in the data folder, restarted if it dies, stopped last.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../log.ts';

export interface EmbeddedNats {
  url: string;
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * A nats-server left behind by a hub of `dataDir` that was killed holds its store and port: stopped before another
 * starts there, and by a supervisor that gave up on a hub.
 */
export async function stopLeftNats(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'nats', 'nats-server.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!pid || !alive(pid)) return;
  const cmdline = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  if (!cmdline.includes('nats-server')) return;
  log.warn({ pid }, 'stopping nats-server left by an earlier hub process');
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

export async function startEmbeddedNats(dataDir: string, port: number): Promise<EmbeddedNats> {
  const dir = join(dataDir, 'nats');
  mkdirSync(join(dir, 'jetstream'), { recursive: true });
  const pidFile = join(dir, 'nats-server.pid');
  const configFile = join(dir, 'nats-server.conf');
  writeFileSync(configFile, [
    `listen: "127.0.0.1:${port}"`,
    `server_name: swx_embedded`,
    `pid_file: ${JSON.stringify(pidFile)}`,
    `max_payload: 8MB`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(join(dir, 'jetstream'))}`,
    `}`,
    '',
  ].join('\n'));
  await stopLeftNats(dataDir);
  if (await portOpen(port)) {
    throw new Error(`port ${port} for the embedded nats-server is taken by another process; set SWX_NATS_PORT or SWX_NATS_URL`);
  }

  let child: ChildProcess | undefined;
  let stopping = false;
  const launch = (): ChildProcess => {
    // Its own process group: a Ctrl-C in the terminal reaches the hub, which drains and then stops the server,
    // rather than the server stopping under the hub's feet.
    const proc = spawn('nats-server', ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let tail = '';
    proc.stderr!.on('data', (chunk: Buffer) => { tail = (tail + chunk.toString()).slice(-4000); });
    proc.on('error', (error) => log.error({ err: error }, 'nats-server could not be started; install it: apt-get install nats-server'));
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      log.error({ code, signal, stderr: tail.split('\n').slice(-5).join('\n') }, 'embedded nats-server died; restarting it');
      setTimeout(() => { if (!stopping) child = launch(); }, 250);
    });
    return proc;
  };
  child = launch();
  for (let i = 0; !(await portOpen(port)); i++) {
    if (i > 200 || child.exitCode !== null) throw new Error(`embedded nats-server did not start on port ${port}`);
    await sleep(50);
  }
  log.info({ port, store: join(dir, 'jetstream') }, 'embedded nats-server started');
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      stopping = true;
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}
