// What the evidence bundle tests share: waiting for a message's evidence to be time-stamped, exporting its bundle with
// `swx evidence export`, checking it with `swx evidence verify`, and running the stock-tool commands its VERIFY.md gives.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { evidenceOf, swxCommand, tempDir, waitFor, type HubProcess } from './hub.ts';

/** The message's evidence records, once every one of `stages` is there and all are time-stamped. */
export async function stampedEvidence(target: HubProcess, id: string, stages: string[]): Promise<any[]> {
  let rows: any[] = [];
  await waitFor(`evidence of ${id} stamped`, async () => {
    rows = await evidenceOf(target, id, stages);
    return stages.every((stage) => rows.some((row) => row.stage === stage)) && rows.every((row) => row.stamped_at !== '');
  }, 20_000);
  return rows;
}

/** The shell lines of VERIFY.md's code blocks, comments dropped. */
export function verifyCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks.flatMap((block) => block.split('\n')).map((line) => line.replace(/\s+#.*$/, '').trim()).filter((line) => line && !line.startsWith('#'));
}

export interface CheckedBundle {
  /** The folder it was extracted to. */
  folder: string;
  /** `swx evidence verify`'s checks, the bundle pinned to the hub's CA; the verdict was valid. */
  checks: { check: string; ok: boolean; detail: string }[];
  /** VERIFY.md's commands, each of which ran in the folder and succeeded. */
  commands: string[];
}

/**
 * Exports a message's bundle from `hub` once its evidence of `stages` is time-stamped; asserts that `swx evidence
 * verify` finds it valid and that every command VERIFY.md gives succeeds in its extracted folder.
 */
export async function exportCheckedBundle(hub: HubProcess, id: string, stages: string[]): Promise<CheckedBundle> {
  await stampedEvidence(hub, id, stages);
  const work = tempDir('bundle');
  const out = join(work, 'bundle.tar');
  const exported = await swxCommand(['evidence', 'export', id, '--out', out, '--data', hub.dataDir], { SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}` });
  assert.is(exported.code, 0, exported.stderr);
  const checked = await swxCommand(['evidence', 'verify', out, '--trusted', join(hub.dataDir, 'pki/ca/cert.pem')]);
  assert.is(checked.code, 0, checked.stdout + checked.stderr);
  const verdict = JSON.parse(checked.stdout);
  assert.is(verdict.valid, true, checked.stdout);
  assert.is(verdict.trust, 'pinned');
  const folder = join(work, 'extracted');
  mkdirSync(folder);
  const untar = spawnSync('tar', ['-xf', out, '-C', folder, '--strip-components=1']);
  assert.is(untar.status, 0, String(untar.stderr));
  const commands = verifyCommands(readFileSync(join(folder, 'VERIFY.md'), 'utf8'));
  for (const command of commands) {
    const run = spawnSync('sh', ['-c', command], { cwd: folder, encoding: 'utf8' });
    assert.is(run.status, 0, `${command}\n${run.stdout}${run.stderr}`);
  }
  return { folder, checks: verdict.checks, commands };
}
