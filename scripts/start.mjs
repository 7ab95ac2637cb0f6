// `npm start`: installs what a fresh machine lacks, then runs the demo on the embedded defaults: the hub and the demo
// agencies, each in a process of its own (`swx demo` starts and stops both).
import { spawnSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const step = (cmd, args) => {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

step('bash', [join(root, 'scripts/prerequisites.sh')]);
if (!existsSync(join(root, 'node_modules/.package-lock.json'))) {
  console.log('installing npm packages (first run)…');
  step('npm', ['install', '--no-audit', '--no-fund']);
}
// As an executable, so that the hub gets the node flags on bin/swx.js's first line.
const hub = spawn(join(root, 'bin/swx.js'), ['demo', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => hub.kill(signal));
hub.on('exit', (code) => process.exit(code ?? 0));
