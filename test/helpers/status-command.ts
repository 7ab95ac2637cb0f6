// `swx status` as an agency runs it: its credentials where the command looks for them (<data>/demo/<AGENCY>/), the
// hub's agency port named, its exit code, standard output (the signed answer) and standard error (one line per receiver).
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadPki } from '../../engine/pki/index.ts';
import { cleanEnv, swxBin, tempDir, type HubProcess, type TestAgency } from './hub.ts';

const run = promisify(execFile);

export interface CommandResult { code: number; stdout: string; stderr: string }

/** A function that runs `swx status ID --as <agency>` against `hub`. */
export async function statusCommand(hub: HubProcess, agency: TestAgency): Promise<(id: string) => Promise<CommandResult>> {
  const data = tempDir('status');
  const pki = await loadPki(join(hub.dataDir, 'pki'));
  const { credentials } = agency;
  const dir = join(data, 'demo', agency.id);
  mkdirSync(dir, { recursive: true });
  for (const [file, pem] of [['cert.pem', credentials.certPem], ['key.pem', credentials.keyPem], ['ca.pem', credentials.caPem], ['hub-sign.pem', pki.hubSign.certPem]]) writeFileSync(join(dir, file!), pem!);
  return async (id) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [swxBin, 'status', id, '--as', agency.id, '--data', data, '--hub', `https://localhost:${hub.agencyPort}`], { env: cleanEnv() });
      return { code: 0, stdout, stderr };
    } catch (error) {
      return error as CommandResult;
    }
  };
}
