#!/usr/bin/env node
// The `lisa-bot` executable: runs the TypeScript CLI through tsx so that a
// fresh clone works after `npm ci` with no build step.
import { existsSync } from 'node:fs';
import os from 'node:os';

// Secrets and overrides from ./.env (see config/example.env); variables already
// set in the environment win.
if (existsSync('.env')) process.loadEnvFile('.env');

// libuv's thread pool (4 threads by default) carries sharp's decodes and
// encodes, SQLite, and hashing for the whole process, pixel workers included;
// a bigger pool keeps a web upload from queueing behind an overlay encode.
// Set before anything uses the pool (it is sized on first use).
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(8, 2 * os.availableParallelism()));

// Logs go to stderr: pretty on a terminal, JSON lines elsewhere (src/logger.ts). Told to
// this process's worker threads, whose stderr is a pipe, by pid: a child process (the
// bench's `serve`, which reads its JSON logs) has another pid, so it decides for itself.
if (process.stderr.isTTY) process.env.LOG_PRETTY_PID = String(process.pid);

const { register } = await import('tsx/esm/api');
register();
await import('./cli.ts');
