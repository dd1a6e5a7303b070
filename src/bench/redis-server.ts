/**
 * A throw-away redis-server for the scale-out benchmark (and the tests): on a
 * free port, on loopback. The benchmark's keeps nothing on disk: it measures
 * lisa-bot, not an operator's Redis, and must not touch one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './lisa-process.js';

export interface BenchRedis {
  url: string;
  pid: number;
  /** SIGKILL: nothing in it is worth keeping. */
  stop(): Promise<void>;
}

/** redis-server on PATH, or undefined. */
export function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const binary = findRedisServer();
  if (!binary) throw new Error('the scale-out benchmark starts its own Redis: redis-server must be on PATH (apt install redis-server)');
  const port = await freePort();
  const child = await spawnRedisServer(binary, port, ['--save', '', '--appendonly', 'no']);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return { url: `redis://127.0.0.1:${port}/0`, pid: child.pid!, stop };
}

/**
 * Starts redis-server on 127.0.0.1:`port` with `storage` arguments (what it
 * keeps on disk) and resolves once it answers PING; killed if it never does.
 */
export async function spawnRedisServer(binary: string, port: number, storage: readonly string[]): Promise<ChildProcess> {
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', ...storage], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await waitForPing(child, port, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return child;
}

async function waitForPing(child: ChildProcess, port: number, stderr: () => string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr()}`);
    if (await ping(port)) return;
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not answer PING: ${stderr()}`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.once('error', () => resolve(false));
  });
}
