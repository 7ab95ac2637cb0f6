// Runs the type check and the uvu suite, then prints the closing line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';

function run(cmd, args, capture) {
  return new Promise((resolve) => {
    // Library code under test logs at warn unless asked: the suite's output is its verdicts.
    const env = { ...process.env, SWX_LOG_LEVEL: process.env.SWX_LOG_LEVEL ?? 'warn' };
    const child = spawn(cmd, args, { env, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'] });
    let out = '';
    let summarised = false;
    child.stdout?.on('data', (chunk) => {
      process.stdout.write(chunk);
      out += chunk;
      // uvu prints its summary, then waits for open handles: one left by a failed test must not hang the run.
      if (!summarised && /Duration:/.test(out)) {
        summarised = true;
        setTimeout(() => child.kill('SIGTERM'), 15_000).unref();
      }
    });
    child.on('close', (code) => resolve({ code: summarised ? 0 : code ?? 1, out }));
  });
}

const filter = process.argv.slice(2);
// A filter picks among the test files only (test/ also holds helpers and the Python clients the tests run).
const testFiles = filter.length ? `^(?=.*(?:${filter.join('|')})).*\\.test\\.ts$` : '\\.test\\.ts$';
const typecheck = await run('npx', ['tsc', '--noEmit', '-p', '.'], false);
const suite = await run(process.execPath, ['--import', 'tsx', '--import', './test/helpers/hook-errors.ts', 'node_modules/uvu/bin.js', 'test', testFiles], true);
const plain = suite.out.replace(/\x1b\[[0-9;]*m/g, '');
const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
let failed = total - passed;
if (typecheck.code !== 0) { failed += 1; console.log('type check failed'); }
if (suite.code !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
