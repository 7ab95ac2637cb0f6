// A real OpenSSH server for tests and benches: the agency's own SFTP server, started on a free loopback port with its own
// sshd_config, host key and authorized keys, serving internal-sftp only. As root (as in CI) it lets root log in by key
// alone; StrictModes is off since the files live in a temporary folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './hub-process.ts';

export interface Sshd {
  port: number;
  user: string;
  /** The host key's SHA256 fingerprint as `ssh-keygen -l` prints it (SHA256:base64, unpadded). */
  fingerprint: string;
  /** The folder sftp sessions see as their files (paths are absolute). */
  root: string;
  stop(): Promise<void>;
}

/** A new ed25519 key pair (OpenSSH format) in `dir`: its private key file and public key line. */
export function sshKeyPair(dir: string, name: string): { privateKeyPath: string; publicKey: string } {
  const privateKeyPath = join(dir, name);
  const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', privateKeyPath]);
  if (made.status !== 0) throw new Error(`ssh-keygen: ${made.stderr.toString()}`);
  return { privateKeyPath, publicKey: readFileSync(`${privateKeyPath}.pub`, 'utf8').trim() };
}

/** The SHA256 fingerprint of a public key line. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.split(/\s+/)[1]!, 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Starts sshd in `dir` accepting `authorizedKeys` (`readOnly`: every write is denied); resolves once it takes connections.
 * The host key made in `dir` is kept: started again there, the server presents the key its clients pinned.
 */
export async function startSshd(dir: string, authorizedKeys: string[], options: { readOnly?: boolean } = {}): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // its privilege separation folder
  const root = join(dir, 'files');
  mkdirSync(root, { recursive: true });
  const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
  const host = existsSync(hostKeyPath) ? { privateKeyPath: hostKeyPath, publicKey: readFileSync(`${hostKeyPath}.pub`, 'utf8').trim() } : sshKeyPair(dir, 'ssh_host_ed25519_key');
  writeFileSync(join(dir, 'authorized_keys'), `${authorizedKeys.join('\n')}\n`, { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${host.privateKeyPath}`, `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'StrictModes no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'PermitRootLogin prohibit-password', 'UsePAM no',
    'Subsystem sftp internal-sftp', `ForceCommand internal-sftp${options.readOnly ? ' -R' : ''}`, 'AllowTcpForwarding no', 'X11Forwarding no', 'LogLevel ERROR',
  ].join('\n') + '\n');
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  let exited = false;
  child.on('exit', () => { exited = true; });
  await waitFor('sshd listening', async () => {
    if (exited) throw new Error(`sshd exited: ${stderr}`);
    return canConnect(port);
  }, 30_000);
  return {
    port, user: userInfo().username, fingerprint: fingerprintOf(host.publicKey), root,
    async stop() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

/** Kills the server's per-connection processes (children of the listener, by pid), as a network failure cuts a transfer. */
export function dropConnections(dir: string): number {
  const master = readFileSync(join(dir, 'sshd.pid'), 'utf8').trim();
  let dropped = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
    if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] !== master) continue;
    try { process.kill(Number(pid), 'SIGKILL'); dropped += 1; } catch { /* gone already */ }
  }
  return dropped;
}
