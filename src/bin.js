#!/bin/sh
":" //; if [ "${LISABOT_ALLOCATOR:-auto}" = auto ] && [ -z "${LD_PRELOAD+set}" ]; then
":" //;   for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do
":" //;     if [ -r "$lib" ]; then export LD_PRELOAD="$lib" MALLOC_CONF="${MALLOC_CONF-background_thread:true,dirty_decay_ms:1000}"; break; fi
":" //;   done
":" //; fi
":" //; exec node "$0" "$@"
// The `lisa-bot` executable: runs the TypeScript CLI through tsx so that a
// fresh clone works after `npm ci` with no build step.
//
// The lines above are both JavaScript (a string, then a comment) and a shell
// script: run as a program (`lisa-bot`, `npx lisa-bot`, ./src/bin.js) the
// shell reads them and replaces itself with Node, with jemalloc preloaded when
// it is installed (libjemalloc2). glibc's malloc keeps the memory that
// libvips and onnxruntime free on their many threads, so a long-running bot's
// resident memory stays high after large images; jemalloc gives it back
// (docs/memory.md). An allocator can only be chosen before a process starts,
// and `exec` keeps one process: signals, stdin and exit codes are Node's own.
// `node src/bin.js` skips the shell: that is the way to run on the system allocator,
// as is LISABOT_ALLOCATOR=system, or an LD_PRELOAD of your own (kept as it is).
import { existsSync } from 'node:fs';
import os from 'node:os';

// LISABOT_ALLOCATOR is read by the shell lines above, not by the config (which
// refuses LISABOT_ variables it does not know), and only from the environment:
// .env is read too late to choose the allocator.
const allocator = process.env.LISABOT_ALLOCATOR;
if (allocator !== undefined && allocator !== '' && allocator !== 'auto' && allocator !== 'system') {
  process.stderr.write(`LISABOT_ALLOCATOR must be auto (jemalloc when installed) or system, not ${JSON.stringify(allocator)}.\n`);
  process.exit(2);
}

// Secrets and overrides from ./.env (see config/example.env); variables already
// set in the environment win.
if (existsSync('.env')) process.loadEnvFile('.env');
if (allocator === undefined && process.env.LISABOT_ALLOCATOR !== undefined) {
  process.stderr.write('LISABOT_ALLOCATOR in .env has no effect: the allocator is chosen before .env is read. Set it in the environment.\n');
}
delete process.env.LISABOT_ALLOCATOR;

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
