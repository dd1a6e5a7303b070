#!/usr/bin/env node
// The `lisa-bot` executable: runs the TypeScript CLI through tsx so that a
// fresh clone works after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
