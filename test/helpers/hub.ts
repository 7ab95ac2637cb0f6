// Test harness: hubs run as child processes through app/hub-process.ts (which the benches share); what only tests
// need, reading a message's evidence and checking the hash chain, lives here.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { cleanEnv, swxBin, type HubProcess } from '../../app/hub-process.ts';

export { addAgency, addService, cleanEnv, freePort, root, startHubProcess, swxBin, tempDir, waitFor } from '../../app/hub-process.ts';
export type { HubAgency as TestAgency, HubProcess, ProviderAnswerFn } from '../../app/hub-process.ts';

/** Evidence rows of a message, from the hub's ClickHouse through its operator API; waits for the archive. */
export async function evidenceOf(hub: HubProcess, messageId: string, stage?: string | string[], timeoutMs = 15_000): Promise<any[]> {
  // The envelope's records (received, verified, routed) and the evidence stream's are archived independently: wait for each named stage.
  const stages = stage === undefined ? [] : [stage].flat();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await hub.admin('GET', `/api/evidence?raw=true&messageId=${encodeURIComponent(messageId)}`);
    const rows = Array.isArray(answer.body) ? answer.body : [];
    const complete = stages.length ? stages.every((name) => rows.some((row: any) => row.stage === name)) : rows.length > 0;
    if (complete || Date.now() > deadline) return rows;
    await sleep(200);
  }
}

/**
 * Checks the archive's hash chain as a whole: per archiving node, positions run 0, 1, 2, … without a gap and each
 * record's prev_hash is the record_hash of the one before it. Reads every record, so only for a few thousand.
 */
export async function assertChained(hub: HubProcess): Promise<{ node: string; message_id: string; stage: string }[]> {
  const limit = 10_000;
  const answer = await hub.admin('GET', `/api/evidence?limit=${limit}`);
  const rows = answer.body as { node: string; chain: string | number; prev_hash: string; record_hash: string; id: string; message_id: string; stage: string }[];
  if (!Array.isArray(rows)) throw new Error(`evidence not readable: ${JSON.stringify(answer.body)}`);
  if (rows.length >= limit) throw new Error(`more than ${limit} evidence records: the chain cannot be read whole`);
  const byNode = new Map<string, typeof rows>();
  for (const row of rows) {
    const records = byNode.get(row.node) ?? [];
    records.push(row);
    byNode.set(row.node, records);
  }
  for (const [node, records] of byNode) {
    records.sort((a, b) => Number(a.chain) - Number(b.chain));
    records.forEach((record, position) => {
      if (Number(record.chain) !== position) throw new Error(`${node}: position ${position} holds chain ${record.chain} (${record.id})`);
      const before = position === 0 ? '' : records[position - 1]!.record_hash;
      if (record.prev_hash !== before) throw new Error(`${node}: record ${record.id} at ${position} has prev_hash ${record.prev_hash || '(none)'}, the record before it ${before || '(none)'}`);
      if (!/^[0-9a-f]{64}$/.test(record.record_hash)) throw new Error(`${node}: record ${record.id} has record_hash ${record.record_hash}`);
    });
  }
  return rows;
}

const execute = promisify(execFile);

/** The swx command as an operator types it (bin/swx.js in a child process): its exit code and output, never a throw. */
export async function swxCommand(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [swxBin, ...args], { env: { ...cleanEnv(), ...env }, maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
