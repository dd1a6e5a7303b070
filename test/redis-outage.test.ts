import { spawn } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type KvBackend, openKvBackend } from '../src/conversation/backend.js';
import { UserInputError, queueUnavailable, storeUnavailable } from '../src/errors.js';
import { BullmqJobQueue } from '../src/jobs/bullmq.js';
import { toBullmqId } from '../src/jobs/bullmq-wire.js';
import { type BullmqWorker, startBullmqWorker } from '../src/jobs/bullmq-worker.js';
import { type RedisServer, redisAvailability, startRedis } from './helpers/redis.js';

interface Payload {
  name: string;
}

/** A handler whose jobs run until the test releases them by name. */
function gatedHandler() {
  const releases = new Map<string, () => void>();
  const startedWaiters = new Map<string, () => void>();
  const started = new Set<string>();
  const ran: string[] = [];
  const handler = async (payload: Payload) => {
    ran.push(payload.name);
    started.add(payload.name);
    startedWaiters.get(payload.name)?.();
    await new Promise<void>((resolve) => releases.set(payload.name, resolve));
    return `answer to ${payload.name}`;
  };
  return {
    handler,
    ran,
    started: (name: string) =>
      started.has(name) ? Promise.resolve() : new Promise<void>((resolve) => startedWaiters.set(name, resolve)),
    release: (name: string) => releases.get(name)?.(),
  };
}

/** The outcome of a settled result, for assertions that do not care which way it went. */
function outcome<T>(result: Promise<T>): Promise<{ value: T } | { code: string | undefined; message: string }> {
  return result.then(
    (value) => ({ value }),
    (error: Error & { code?: string }) => ({ code: error.code, message: error.message }),
  );
}

const busy = { code: 'queue_unavailable', message: queueUnavailable().message };
const storeBusy = { code: 'queue_unavailable', message: storeUnavailable().message };
/** Waiting for reconnects and the server to go; a safety net, never asserted. */
const eventually = { timeout: 30_000, interval: 50 };

const redis = redisAvailability();
describe.skipIf(redis.skip)('Redis outages', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function server(options: { persist?: boolean } = {}): Promise<RedisServer> {
    const started = await startRedis(options);
    cleanups.push(() => started.stop());
    return started;
  }

  async function queueAndWorker(url: string, outageGraceMs: number) {
    const name = `outage-${cleanups.length}-${Date.now()}`;
    const queue = await BullmqJobQueue.open<Payload, string>({ url, name, maxQueue: 10, outageGraceMs });
    const g = gatedHandler();
    const worker: BullmqWorker = await startBullmqWorker(url, name, g.handler);
    cleanups.push(async () => {
      await worker.close({ force: true });
      await Promise.race([queue.close(), new Promise((resolve) => setTimeout(resolve, 2000))]);
    });
    return { name, queue, worker, g };
  }

  it('names the URL (password hidden) when Redis is unreachable at start, for the queue, the worker and the store, and the process still exits by itself', async () => {
    // A port that nothing listens on any more.
    const gone = await startRedis();
    await gone.stop();
    const url = `redis://:hunter2@127.0.0.1:${gone.port}/0`;
    const src = path.join(import.meta.dirname, '..', 'src');
    const script = `
      const { BullmqJobQueue } = await import(${JSON.stringify(path.join(src, 'jobs', 'bullmq.ts'))});
      const { startBullmqWorker } = await import(${JSON.stringify(path.join(src, 'jobs', 'bullmq-worker.ts'))});
      const { openKvBackend } = await import(${JSON.stringify(path.join(src, 'conversation', 'backend.ts'))});
      const url = process.env.REDIS_URL;
      const tries = {
        queue: () => BullmqJobQueue.open({ url, name: 'q', maxQueue: 1, connectTimeoutMs: 500 }),
        worker: () => startBullmqWorker(url, 'q', async () => 1, { connectTimeoutMs: 500 }),
        store: () => openKvBackend(url, 'store.url', { connectTimeoutMs: 500 }),
      };
      const seen = {};
      for (const [what, attempt] of Object.entries(tries)) {
        seen[what] = await attempt().then(() => 'opened', (e) => ({ name: e.name, code: e.code, message: e.message }));
      }
      process.stdout.write(JSON.stringify(seen));
      // No process.exit: the process must end by itself, with nothing left connecting.
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, REDIS_URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const seen = JSON.parse(stdout) as Record<string, { name: string; code: string; message: string }>;
    const shown = `redis://***@127.0.0.1:${gone.port}/0`;
    for (const [what, field] of [['queue', 'queue.url'], ['worker', 'queue.url'], ['store', 'store.url']] as const) {
      expect(seen[what]).toMatchObject({ name: 'UserInputError', code: 'config_invalid' });
      expect(seen[what]!.message).toContain(`${field}: cannot reach ${shown} (`);
      expect(seen[what]!.message).toMatch(/ECONNREFUSED/);
      expect(seen[what]!.message).not.toContain('hunter2');
    }
  });

  it('answers "busy" at once while Redis is down, then carries on by itself once it is back with its data: the job running across the restart is answered once', async () => {
    const redisServer = await server({ persist: true });
    const { name, queue, worker, g } = await queueAndWorker(redisServer.url, 120_000);
    const store: KvBackend = await openKvBackend(redisServer.url);
    cleanups.push(() => store.close());
    await store.set('before', 'kept', 600_000);
    const across = queue.submit({ name: 'across' });
    await g.started('across');
    expect(await queue.counts()).toEqual({ waiting: 0, running: 1 });

    await redisServer.stop();
    await expect.poll(() => queue.reachable(), eventually).toBe(false);
    await expect.poll(() => worker.reachable(), eventually).toBe(false);
    await expect(outcome(queue.submit({ name: 'during' }).result)).resolves.toEqual(busy);
    await expect(outcome(queue.counts())).resolves.toEqual(busy);
    await expect(outcome(worker.counts())).resolves.toEqual(busy);
    await expect(outcome(store.get('before'))).resolves.toEqual(storeBusy);
    await expect(outcome(store.set('during', 1, 600_000))).resolves.toEqual(storeBusy);
    // The running turn ends while Redis is away: its result must wait for Redis, not be lost.
    g.release('across');

    await redisServer.restart();
    await expect(across.result).resolves.toBe('answer to across');
    await expect.poll(() => queue.reachable(), eventually).toBe(true);
    await expect.poll(() => worker.reachable(), eventually).toBe(true);
    const after = queue.submit({ name: 'after' });
    await g.started('after');
    g.release('after');
    await expect(after.result).resolves.toBe('answer to after');
    await expect.poll(() => outcome(store.get('before')), eventually).toEqual({ value: 'kept' });
    expect(g.ran).toEqual(['across', 'after']);
    expect(await queue.counts()).toEqual({ waiting: 0, running: 0 });

    // Exactly one completion of the job that ran across the restart, as Redis recorded it.
    const raw = new Redis(redisServer.url);
    cleanups.push(async () => void raw.disconnect());
    const events = (await raw.xrange(`bull:${name}:events`, '-', '+')) as Array<[string, string[]]>;
    const completions = events.filter(([, f]) => f[f.indexOf('event') + 1] === 'completed' && f[f.indexOf('jobId') + 1] === toBullmqId(across.jobId));
    expect(completions).toHaveLength(1);
  });

  it('refuses the jobs a Redis restarted empty no longer has, instead of leaving them pending, and takes new ones', async () => {
    const redisServer = await server();
    const { queue, g } = await queueAndWorker(redisServer.url, 120_000);
    const running = queue.submit({ name: 'running' });
    await g.started('running');
    const waiting = queue.submit({ name: 'waiting' });
    await expect.poll(() => queue.counts(), eventually).toEqual({ waiting: 1, running: 1 });

    await redisServer.stop();
    await expect.poll(() => queue.reachable(), eventually).toBe(false);
    await redisServer.restart();

    await expect(outcome(running.result)).resolves.toEqual(busy);
    await expect(outcome(waiting.result)).resolves.toEqual(busy);
    // The old turn finishing now answers nothing: Redis no longer has its job.
    g.release('running');
    await expect.poll(() => queue.reachable(), eventually).toBe(true);
    const fresh = queue.submit({ name: 'fresh' });
    await g.started('fresh');
    g.release('fresh');
    await expect(fresh.result).resolves.toBe('answer to fresh');
    expect(g.ran).toEqual(['running', 'fresh']);
  });

  it('refuses jobs still pending when Redis stays away past the grace period, and works again once it returns', async () => {
    const redisServer = await server();
    const { queue, g } = await queueAndWorker(redisServer.url, 300);
    const pending = queue.submit({ name: 'pending' });
    await g.started('pending');

    await redisServer.stop();
    await expect(outcome(pending.result)).resolves.toEqual(busy);
    expect(queue.running).toBe(0);
    // Its turn ends later; nobody waits for it any more.
    g.release('pending');

    await redisServer.restart();
    await expect.poll(() => queue.reachable(), eventually).toBe(true);
    const next = queue.submit({ name: 'next' });
    await g.started('next');
    g.release('next');
    await expect(next.result).resolves.toBe('answer to next');
    const caught = await pending.result.catch((error: unknown) => error);
    expect(caught).toBeInstanceOf(UserInputError);
  });

  it('runs a turn again when it ended while Redis was away for longer than its lock, and answers it once', async () => {
    const redisServer = await server({ persist: true });
    const name = `outage-lock-${Date.now()}`;
    const queue = await BullmqJobQueue.open<Payload, string>({ url: redisServer.url, name, maxQueue: 10, outageGraceMs: 120_000 });
    let runs = 0;
    let firstRunStarted!: () => void;
    const started = new Promise<void>((resolve) => (firstRunStarted = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const worker = await startBullmqWorker<Payload, string>(
      redisServer.url,
      name,
      async (payload) => {
        runs++;
        if (runs === 1) {
          firstRunStarted();
          await released;
        }
        return `run ${runs} of ${payload.name}`;
      },
      { lockMs: LOCK_MS, stalledIntervalMs: LOCK_MS / 2 },
    );
    cleanups.push(() => worker.close({ force: true }));
    cleanups.push(() => queue.close());
    const turn = queue.submit({ name: 'turn' });
    await started;

    await redisServer.stop();
    release();
    // Away longer than the lock: when Redis returns, the first run's result is refused (its lock is gone).
    await new Promise((resolve) => setTimeout(resolve, 2 * LOCK_MS));
    await redisServer.restart();

    await expect(turn.result).resolves.toBe('run 2 of turn');
    expect(runs).toBe(2);
  });

  it('closes the queue and the worker without waiting for a Redis that is gone', async () => {
    const redisServer = await server();
    const name = `outage-close-${Date.now()}`;
    const queue = await BullmqJobQueue.open<Payload, string>({ url: redisServer.url, name, maxQueue: 10 });
    const worker = await startBullmqWorker<Payload, string>(redisServer.url, name, async () => 'unused');
    await redisServer.stop();
    await expect.poll(() => queue.reachable() || worker.reachable(), eventually).toBe(false);
    await worker.close({ force: true });
    await queue.close();
    expect(queue.reachable()).toBe(false);
  });
});

/** A short job lock, so a lock that expires during an outage does so within the test. */
const LOCK_MS = 1000;
