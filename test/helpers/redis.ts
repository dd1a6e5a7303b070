import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/bench/lisa-process.js';
import { findRedisServer, spawnRedisServer } from '../../src/bench/redis-server.js';


/**
 * Whether the Redis suites run. Where redis-server is missing they are skipped
 * with a printed reason, except in CI, where a skipped Redis suite would hide
 * the untested scale-out path: there the suite must fail.
 */
export function redisAvailability(): { skip: boolean; reason?: string } {
  if (findRedisServer()) return { skip: false };
  if (process.env.CI === 'true') throw new Error('redis-server is required in CI');
  const reason = 'redis-server is not installed (apt install redis-server); skipping the Redis tests';
  console.warn(reason);
  return { skip: true, reason };
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL if it lingers). Safe to call twice. */
  stop(): Promise<void>;
  /** Stops it if running and starts a new redis-server on the same port; with `persist`, on the same data. */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /**
   * Keep the data across restart(): an append-only file synced on every write,
   * in a temporary directory removed when the process exits. Without it the
   * server keeps nothing, and a restart starts empty.
   */
  persist?: boolean;
}

/** Every redis-server started here that has not exited yet, and data dirs to remove: all go at process exit, however the tests end. */
const children = new Set<ChildProcess>();
const dataDirs = new Set<string>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => {
    for (const child of children) child.kill('SIGKILL');
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Starts a throwaway redis-server on a free port and waits until it answers PING. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  if (!binary) throw new Error('redis-server is not installed');
  installCleanup();
  const port = await freePort();
  let dir: string | undefined;
  if (options.persist) {
    dir = mkdtempSync(path.join(tmpdir(), 'lisa-redis-'));
    dataDirs.add(dir);
  }
  const storage = dir
    ? ['--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always']
    : ['--save', '', '--appendonly', 'no'];
  let child: ChildProcess | undefined = await spawnRedis(binary, port, storage);
  const stop = async () => {
    if (child) await stopChild(child);
    child = undefined;
  };
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    stop,
    async restart() {
      await stop();
      child = await spawnRedis(binary, port, storage);
    },
  };
}

async function spawnRedis(binary: string, port: number, storage: string[]): Promise<ChildProcess> {
  const child = await spawnRedisServer(binary, port, storage);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** How long a SIGTERMed redis-server may take to shut down before it is killed. */
const STOP_GRACE_MS = 5_000;

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
