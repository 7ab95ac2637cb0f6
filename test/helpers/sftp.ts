// The agency's side of the SFTP tests: its folder, SSH keys made with ssh-keygen, OpenSSH's sftp in batch mode pinning
// the hub's host key, detached CMS signatures made with openssl, the hub's signed receipts checked with openssl, and
// ssh2's client where a test reads the status messages (OpenSSH's sftp shows only the status).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { loadPki } from '../../engine/pki/index.ts';
import { tempDir, type HubProcess, type TestAgency } from './hub.ts';

export class SftpAgencySide {
  readonly work = tempDir('sftp-client');
  private readonly knownHosts = join(this.work, 'known_hosts');
  private readonly hostKey: string;
  private batches = 0;

  constructor(private readonly hub: HubProcess) {
    this.hostKey = execFileSync('ssh-keygen', ['-y', '-f', join(hub.dataDir, 'sftp', 'host_ed25519_key')], { encoding: 'utf8' }).trim();
    // The legacy listener, when the hub has one, presents the same host key.
    const ports = [hub.sftpPort, ...(hub.env.SWX_SFTP_LEGACY_PORT ? [Number(hub.env.SWX_SFTP_LEGACY_PORT)] : [])];
    writeFileSync(this.knownHosts, ports.map((port) => `[127.0.0.1]:${port} ${this.hostKey}\n`).join(''));
  }

  /** A fresh SSH key pair made with ssh-keygen: the private key's path (the public key is beside it, .pub). */
  sshKey(name: string, type = 'ed25519'): string {
    const file = join(this.work, `${name}_${type}`);
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name}@agency`, '-f', file]);
    return file;
  }

  /** Registers the public key of `key` to the agency through the operator API. */
  async register(agency: string, key: string): Promise<string> {
    const answer = await this.hub.admin('POST', `/api/partners/${agency}/ssh-keys`, { key: readFileSync(`${key}.pub`, 'utf8') });
    if (answer.status !== 200) throw new Error(`registering ${key}.pub to ${agency}: ${JSON.stringify(answer.body)}`);
    return answer.body.fingerprint;
  }

  /**
   * OpenSSH's sftp in batch mode as `user` with `key` (no password, no keyboard-interactive), in the agency's folder.
   * Run without blocking: a test's keep-alive connections to the operator API must see the server close them.
   * `port`: another of the hub's listeners (the legacy one).
   */
  sftp(user: string, key: string, commands: string[], timeoutMs = 60_000, options: string[] = [], port = this.hub.sftpPort): Promise<{ code: number | null; out: string }> {
    const batch = join(this.work, `batch-${++this.batches}`);
    writeFileSync(batch, `${commands.join('\n')}\n`);
    const child = spawn('sftp', [
      '-F', '/dev/null', '-b', batch, '-i', key, '-P', String(port),
      '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${this.knownHosts}`, '-o', 'IdentitiesOnly=yes',
      '-o', 'PasswordAuthentication=no', '-o', 'KbdInteractiveAuthentication=no', '-o', 'BatchMode=yes', ...options,
      `${user}@127.0.0.1`,
    ], { cwd: this.work, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => { stdout += chunk; });
    child.stderr!.on('data', (chunk) => { stderr += chunk; });
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, out: `${stdout}${stderr}` })));
  }

  /** A detached CMS signature of `file` by the agency's certificate, as openssl makes it: `file`.p7s. */
  sign(agency: TestAgency, file: string): string {
    const cert = join(this.work, `${agency.id}-cert.pem`);
    const key = join(this.work, `${agency.id}-key.pem`);
    writeFileSync(cert, agency.credentials.certPem);
    writeFileSync(key, agency.credentials.keyPem);
    execFileSync('openssl', ['cms', '-sign', '-binary', '-in', file, '-signer', cert, '-inkey', key, '-outform', 'DER', '-out', `${file}.p7s`]);
    return `${file}.p7s`;
  }

  /** Whether openssl accepts `file`.p7s as the hub's detached signature of `file`, with the hub's CA. */
  async hubSigned(file: string): Promise<boolean> {
    const ca = join(this.work, 'ca.pem');
    writeFileSync(ca, (await loadPki(join(this.hub.dataDir, 'pki'))).ca.certPem);
    const run = spawnSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', `${file}.p7s`, '-content', file, '-CAfile', ca, '-purpose', 'any', '-out', '/dev/null'], { encoding: 'utf8' });
    return run.status === 0;
  }

  /** An SFTP session with ssh2's client as `user`, pinning the host key; ended when `use` settles. */
  async session<T>(user: string, keyFile: string, use: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    const connection = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      connection.once('ready', resolve).once('error', reject).connect({
        host: '127.0.0.1', port: this.hub.sftpPort, username: user, privateKey: readFileSync(keyFile),
        hostVerifier: (key: Buffer) => `ssh-ed25519 ${key.toString('base64')}` === this.hostKey.split(' ').slice(0, 2).join(' '),
      });
    });
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => connection.sftp((error, opened) => (error ? reject(error) : resolve(opened))));
      return await use(sftp);
    } finally {
      connection.end();
    }
  }
}

/** The outcome of one SFTP request: 'accepted', or the message of the status that refused it. */
export const outcome = (run: (done: (error: Error | null | undefined) => void) => void) => new Promise<string>((resolve) => run((error) => resolve(error ? error.message : 'accepted')));
