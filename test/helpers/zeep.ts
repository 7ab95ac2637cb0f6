// Python zeep as an asking agency's stock SOAP client (test/connectors/ws_zeep.py): loads the WSDL, signs each query
// with WS-Security, verifies the hub's signed answer. Run as a child process, never spawnSync: the hub under test
// may answer on this process's event loop.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { root } from './hub.ts';

export interface ZeepJob {
  wsdl: string;
  /** The WSDL's service name: the dataset id. */
  service: string;
  cert: string;
  key: string;
  alg: 'ecdsa' | 'rsa';
  ca: string;
  hubCert: string;
  calls: { binding: 'Soap11' | 'Soap12'; keys: Record<string, string> }[];
}

/** One outcome per call: { answer } (verified), { fault: code }, or { unverified: true }. */
export async function zeep(job: ZeepJob): Promise<any[]> {
  const child = spawn('/usr/bin/python3', [join(root, 'test/connectors/ws_zeep.py')], { timeout: 60_000 });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => { out += chunk; });
  child.stderr.on('data', (chunk) => { err += chunk; });
  child.stdin.end(JSON.stringify(job));
  const [status] = await once(child, 'close');
  assert.is(status, 0, `zeep: ${err}`);
  return JSON.parse(out);
}
