#!/usr/bin/env node
// The `swx` command: runs the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../app/cli.ts');
