// One hub process per data folder: a second one would fight the first over its nats-server and chDB.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function hubAlive(pid: number): boolean {
  if (!pid || pid === process.pid) return false;
  try { process.kill(pid, 0); } catch { return false; }
  const cmdline = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  return cmdline.includes('swx');
}

/** Takes the folder for this process (a lock left by a hub that died is taken over); returns the release. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'hub.pid');
  const holder = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
  if (hubAlive(holder)) throw new Error(`data folder ${dataDir} is in use by hub process ${holder}; stop it or use another --data folder`);
  writeFileSync(file, String(process.pid));
  return () => { if (existsSync(file) && Number(readFileSync(file, 'utf8')) === process.pid) rmSync(file); };
}
