// Runs the type check and the uvu suite, each test file in its own process (SWX_TEST_JOBS at a time, default 2),
// then the certificate, CRL and time-stamp tests again with the clock a year ahead, so that a certificate, CRL or
// token that expires within the year fails the suite before it fails in use. Prints the closing line CI reads:
// "N passed, N failed, N skipped". Arguments filter the test files by regular expression.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const jobs = Math.max(1, Number(process.env.SWX_TEST_JOBS ?? 2));
const fileTimeoutMs = 20 * 60_000;
const faketime = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** The tests whose verdicts depend on certificate, CRL and time-stamp validity. */
const clockSensitive = /^engine\/(pki|trust-[a-z]+|cms-differential|xml-differential|der)\.test\.ts$/;

// Tests start from a clean environment: no SWX_* setting of the shell reaches a hub under test.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWX_') || name.startsWith('SWX_TEST_')));
// Library code under test logs at warn unless asked: the suite's output is its verdicts.
cleanEnv.SWX_LOG_LEVEL = process.env.SWX_LOG_LEVEL ?? 'warn';

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [relative(join(root, 'test'), path)] : [];
  });
}

/** Runs a command to its end, its output kept for printing in one piece; counts what uvu summarised. */
function run(cmd, args, env) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let summarised = false;
    const collect = (chunk) => {
      out += chunk;
      // uvu prints its summary, then waits for open handles: one left by a failed test must not hang the run.
      if (!summarised && /Duration:/.test(out)) {
        summarised = true;
        setTimeout(() => child.kill('SIGTERM'), 15_000).unref();
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const limit = setTimeout(() => { out += `\nkilled after ${fileTimeoutMs / 60_000} minutes\n`; child.kill('SIGKILL'); }, fileTimeoutMs);
    child.on('close', () => {
      clearTimeout(limit);
      const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
      const count = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(plain)?.[1] ?? 0);
      const total = count('Total');
      const passed = count('Passed');
      // A file that ended without its summary (it crashed, or hung past the limit) counts as at least one failure.
      const failed = summarised ? total - passed : Math.max(1, total - passed);
      resolve({ out, passed, failed, skipped: count('Skipped'), seconds: (Date.now() - started) / 1000 });
    });
  });
}

const uvu = (file) => [process.execPath, ['--import', 'tsx', '--import', './test/helpers/hook-errors.ts', 'node_modules/uvu/bin.js', 'test', `^${file.replace(/[.]/g, '\\.')}$`]];

const filter = process.argv.slice(2);
const selected = testFiles(join(root, 'test'))
  .filter((file) => !filter.length || filter.some((pattern) => new RegExp(pattern).test(file)))
  // The end-to-end files take longest: start them first so the last minutes are not one long file alone.
  .sort((a, b) => Number(b.startsWith('e2e/')) - Number(a.startsWith('e2e/')) || a.localeCompare(b));

const totals = { passed: 0, failed: 0, skipped: 0 };
const runs = [
  ...selected.map((file) => ({ label: file, command: uvu(file), env: cleanEnv })),
  ...selected.filter((file) => clockSensitive.test(file)).map((file) => ({
    label: `${file}, a year ahead`,
    command: uvu(file),
    // libfaketime moves the clock of this process and of the tools it runs (openssl, xmlsec1); these tests start no nats-server.
    env: { ...cleanEnv, LD_PRELOAD: faketime, FAKETIME: '+366d', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    yearAhead: true,
  })),
];

// The hub's code, then the console's page scripts (dashboards/web/, written for the browser's DOM).
const typecheck = spawn('npx tsc --noEmit -p . && npx tsc --noEmit -p dashboards/web', { cwd: root, stdio: 'inherit', shell: true });
const typechecked = new Promise((resolve) => typecheck.on('close', (code) => resolve(code === 0)));

let next = 0;
// Each job slot hands its files SWX_TEST_SLOT: test/helpers/hub.ts takes the ports of hubs under test from the slot's own range.
await Promise.all(Array.from({ length: jobs }, async (_, slot) => {
  while (next < runs.length) {
    const { label, command, env, yearAhead } = runs[next++];
    if (yearAhead && !existsSync(faketime)) {
      console.log(`\n=== ${label}: skipped (libfaketime is not installed; scripts/prerequisites.sh installs it)`);
      totals.skipped += 1;
      continue;
    }
    // Each file's hubs, stores and payloads go into a folder of its own, removed once the file has run: a suite run
    // leaves nothing behind in the machine's temporary folder.
    const scratch = mkdtempSync(join(tmpdir(), 'swx-test-'));
    const result = await run(command[0], command[1], { ...env, SWX_TEST_SLOT: String(slot), TMPDIR: scratch });
    rmSync(scratch, { recursive: true, force: true });
    console.log(`\n=== ${label} (${result.seconds.toFixed(0)} s): ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`);
    process.stdout.write(result.out);
    totals.passed += result.passed;
    totals.failed += result.failed;
    totals.skipped += result.skipped;
  }
}));

if (!(await typechecked)) { totals.failed += 1; console.log('type check failed'); }
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed === 0 ? 0 : 1);
