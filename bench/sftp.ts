// sftp bench: files of 1 MiB and 1 GiB uploaded by OpenSSH's own sftp into the hub's SFTP server (signature, NAME.part,
// rename: the rename is answered once the file is stored, checked and accepted), on a channel whose requesters are
// half agencies with their own SFTP server (a local OpenSSH sshd, one inbox folder each: SFTP push) and half REST pull
// agencies (each lists its inbox, streams the payload while hashing it, and acknowledges). Upload rate: file size over
// the sftp run. Fan-out rate: size × requesters over the time from acceptance until every requester holds the file.
// The ceiling is OpenSSH's sftp putting the same file to the local sshd, in the same run. Peak RSS is the hub
// process's growth over its idle RSS. Pushed files are removed once seen whole, so a run needs no more disk than a few
// copies of the largest file.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { hubClientKey } from '../connectors/sftp/client/index.ts';
import { issueAgency } from '../engine/pki/index.ts';
import { addAgency, startHubProcess, tempDir, type HubAgency } from '../app/hub-process.ts';
import { sshKeyPair, startSshd } from '../app/sshd.ts';
import { conditions } from './conditions.ts';
import { cpuProfileEnv } from './profile.ts';

const MiB = 1024 * 1024;
export const sftpBenchSizes = [MiB, 1024 * MiB];

export interface SftpBenchOptions {
  json: boolean;
  sizes: number[];
  requesters: number;
  /** Where the hub writes its V8 CPU profile when it stops, if anywhere. */
  profileDir?: string;
}

const kib = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const sizeName = (size: number) => {
  const [unit, name] = ([[1024 * MiB, 'GiB'], [MiB, 'MiB'], [1024, 'KiB']] as const).find(([bytes]) => size >= bytes && size % bytes === 0) ?? [1, 'B'];
  return `${size / unit}${name}`;
};
const mbPerS = (bytes: number, ms: number) => Number((bytes / MiB / (ms / 1000)).toFixed(1));

/** A file of random bytes (nothing on the way can shorten the work by compressing them). */
function randomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < size; at += 4 * MiB) writeSync(fd, randomBytes(Math.min(4 * MiB, size - at)));
  } finally {
    closeSync(fd);
  }
}

/** OpenSSH's sftp in batch mode with `key`, the host key pinned by `knownHosts`; resolves with how long it ran (ms). */
function openSshSftp(target: { user: string; port: number; key: string; knownHosts: string; cwd: string }, commands: string[]): Promise<number> {
  const started = performance.now();
  const child = spawn('sftp', [
    '-F', '/dev/null', '-b', '-', '-i', target.key, '-P', String(target.port), '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${target.knownHosts}`, `${target.user}@127.0.0.1`,
  ], { cwd: target.cwd, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  child.stdin!.end(`${commands.join('\n')}\n`);
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`sftp exited ${code}: ${stderr}`)))));
}

/** A REST pull requester: lists its inbox, streams each payload through SHA-256 (kept nowhere), acknowledges it. */
async function pullLoop(agency: HubAgency, arrived: (id: string) => void, stopping: AbortSignal): Promise<void> {
  while (!stopping.aborted) {
    const listing = await agency.client.inbox({ wait: 1 });
    for (const message of listing.messages) {
      if (message.payload === undefined) {
        const hash = createHash('sha256');
        await pipeline(await agency.client.openPayload(message, 0), hash);
        if (hash.digest('hex') !== message.sha256) throw new Error(`${agency.id}: the payload of ${message.id} does not match its SHA-256`);
      }
      await agency.client.acknowledge([message]);
      arrived(message.id);
    }
  }
}

export async function sftpBench(options: SftpBenchOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const work = tempDir('bench-sftp');
  const hub = await startHubProcess({ env: { SWX_LOG_LEVEL: 'warn', ...cpuProfileEnv(options.profileDir) } });
  const sshd = await startSshd(join(work, 'sshd'), [hubClientKey(hub.dataDir, 'hub').publicKey, sshKeyPair(work, 'agency').publicKey]);
  const stopping = new AbortController();
  const pulls: Promise<void>[] = [];
  try {
    const provider = await addAgency(hub, 'CUSTOMS', { receiver: false });
    const agencyKey = join(work, 'agency');
    const added = await hub.admin('POST', '/api/partners/CUSTOMS/ssh-keys', { key: readFileSync(`${agencyKey}.pub`, 'utf8') });
    if (added.status !== 200) throw new Error(`registering the agency's SSH key: ${JSON.stringify(added.body)}`);
    // The hub-wide quota (4 GiB by default) would refuse the largest files: this agency's is room for two of them.
    const registered = await hub.admin('GET', '/api/partners/CUSTOMS');
    const entry = registered.body as { endpoints?: Record<string, object> };
    const quota = await hub.admin('PUT', '/api/partners/CUSTOMS', {
      ...entry, endpoints: { ...entry.endpoints, sftp: { ...entry.endpoints?.sftp, quotaBytes: 2 * Math.max(...options.sizes) } },
    });
    if (quota.status !== 200) throw new Error(`setting the agency's quota: ${JSON.stringify(quota.body)}`);

    /** Per requester, the ids it holds. */
    const holds = new Map<string, Set<string>>();
    const pushIds = Array.from({ length: Math.ceil(options.requesters / 2) }, (_, i) => `PUSH-${String(i + 1).padStart(2, '0')}`);
    const pullIds = Array.from({ length: Math.floor(options.requesters / 2) }, (_, i) => `PULL-${String(i + 1).padStart(2, '0')}`);
    const inboxOf = (id: string) => join(sshd.root, id);
    for (const id of pushIds) {
      mkdirSync(inboxOf(id));
      holds.set(id, new Set());
      const { certPem } = await issueAgency(join(hub.dataDir, 'pki'), id);
      const put = await hub.admin('PUT', `/api/partners/${id}`, {
        name: `${id} (own SFTP server)`, certificates: [certPem],
        endpoints: { sftp: { remote: { host: '127.0.0.1', port: sshd.port, user: sshd.user, hostKeyFingerprint: sshd.fingerprint, inboxDir: inboxOf(id) } } },
      });
      if (put.status !== 200) throw new Error(`registering ${id}: ${JSON.stringify(put.body)}`);
    }
    let pullFailure: unknown;
    for (const id of pullIds) {
      holds.set(id, new Set());
      const agency = await addAgency(hub, id, { receive: 'pull' });
      pulls.push(pullLoop(agency, (message) => holds.get(id)!.add(message), stopping.signal).catch((error: unknown) => { if (!stopping.signal.aborted) pullFailure = error; }));
    }
    const channel = await hub.admin('PUT', '/api/channels/bench-files', { name: 'Bench files', dataset: 'synthetic files', providers: ['CUSTOMS'], requesters: [...pushIds, ...pullIds] });
    if (channel.status !== 200) throw new Error(`registering the channel: ${JSON.stringify(channel.body)}`);

    // The agency's signing certificate (openssl signs each file) and the two host keys its sftp pins.
    const signer = { cert: join(work, 'cert.pem'), key: join(work, 'key.pem') };
    writeFileSync(signer.cert, provider.credentials.certPem);
    writeFileSync(signer.key, provider.credentials.keyPem, { mode: 0o600 });
    const hubKnownHosts = join(work, 'known_hosts_hub');
    writeFileSync(hubKnownHosts, `[127.0.0.1]:${hub.sftpPort} ${execFileSync('ssh-keygen', ['-y', '-f', join(hub.dataDir, 'sftp', 'host_ed25519_key')], { encoding: 'utf8' }).trim()}\n`);
    const sshdKnownHosts = join(work, 'known_hosts_sshd');
    writeFileSync(sshdKnownHosts, `[127.0.0.1]:${sshd.port} ${readFileSync(join(work, 'sshd', 'ssh_host_ed25519_key.pub'), 'utf8').trim()}\n`);
    const toHub = { user: 'CUSTOMS', port: hub.sftpPort, key: agencyKey, knownHosts: hubKnownHosts, cwd: work };
    const toSshd = { user: sshd.user, port: sshd.port, key: agencyKey, knownHosts: sshdKnownHosts, cwd: work };
    mkdirSync(join(sshd.root, 'ceiling'));

    /** Removes pushed files once whole, noting who holds what; the ids are the hub's message ids. */
    const sweep = () => {
      for (const id of pushIds) {
        for (const name of readdirSync(inboxOf(id))) {
          if (name.startsWith('.')) continue;
          holds.get(id)!.add(name.replace(/\.bin$/, ''));
          unlinkSync(join(inboxOf(id), name));
        }
      }
    };

    const pid = hub.proc.pid!;
    const cases: Record<string, unknown>[] = [];
    let ceiling = 0;
    for (const [index, size] of options.sizes.entries()) {
      const name = `file-${index}.bin`;
      const file = join(work, name);
      randomFile(file, size);
      execFileSync('openssl', ['cms', '-sign', '-binary', '-in', file, '-signer', signer.cert, '-inkey', signer.key, '-outform', 'DER', '-out', `${file}.p7s`]);

      say(`${size} bytes: OpenSSH sftp to the local sshd (the ceiling)…`);
      const ceilingMs = await openSshSftp(toSshd, [`put ${name} ${join(sshd.root, 'ceiling', name)}`]);
      rmSync(join(sshd.root, 'ceiling', name));
      ceiling = Math.max(ceiling, mbPerS(size, ceilingMs));

      say(`${size} bytes: into the hub to ${options.requesters} requesters…`);
      const idleRss = kib(pid, 'VmRSS');
      const uploadMs = await openSshSftp(toHub, ['cd /outbox/bench-files', `put ${name}.p7s`, `put ${name} ${name}.part`, `rename ${name}.part ${name}`, `get /receipts/${name}.receipt.json ${name}.receipt.json`]);
      const acceptedAt = performance.now();
      const { id } = JSON.parse(readFileSync(join(work, `${name}.receipt.json`), 'utf8'));
      const deadline = Date.now() + 60 * 60_000;
      for (;;) {
        sweep();
        if ([...holds.values()].every((held) => held.has(id))) break;
        if (pullFailure) throw pullFailure;
        if (Date.now() > deadline) throw new Error(`${name} did not reach every requester within an hour`);
        await sleep(20);
      }
      const fanoutMs = performance.now() - acceptedAt;
      const row = {
        name: sizeName(size),
        size_bytes: size, requesters: options.requesters,
        upload_mb_per_s: mbPerS(size, uploadMs), fanout_mb_per_s: mbPerS(size * options.requesters, fanoutMs),
        peak_rss_mb: Number(((kib(pid, 'VmHWM') - idleRss) / MiB).toFixed(0)),
      };
      say(`  upload ${row.upload_mb_per_s} MiB/s, fan-out ${row.fanout_mb_per_s} MiB/s, peak RSS +${row.peak_rss_mb} MiB`);
      cases.push(row);
      rmSync(file);
    }
    return {
      bench: 'sftp',
      cases,
      ceiling: { openssh_mb_per_s: ceiling },
      units: 'MiB/s; upload: the file over the OpenSSH sftp run into the hub; fanout: size × requesters from acceptance until every requester held it; peak_rss_mb: MiB over the hub\'s idle RSS',
      conditions: conditions({ push_requesters: pushIds.length, pull_requesters: pullIds.length }),
    };
  } finally {
    stopping.abort();
    await Promise.allSettled(pulls);
    await hub.stop();
    await sshd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
