#!/usr/bin/env node
// The `swx` command: runs the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

// The hub logs JSON lines on stdout; every other command prints its result there, so its logs go to stderr.
if (!['start', 'demo'].includes(process.argv[2] ?? '')) process.env.SWX_LOG_STDERR = '1';
register();
await import('../app/cli.ts');
