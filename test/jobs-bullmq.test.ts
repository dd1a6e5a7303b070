import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { QueueEvents } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserInputError } from '../src/errors.js';
import { BullmqJobQueue } from '../src/jobs/bullmq.js';
import { type BullmqWorker, type BullmqWorkerOptions, startBullmqWorker } from '../src/jobs/bullmq-worker.js';
import type { JobContext, JobProgress } from '../src/jobs/queue.js';
import { type RedisServer, redisAvailability, startRedis } from './helpers/redis.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
}

interface Payload {
  name: string;
  fail?: 'user' | 'plain';
}

/**
 * Jobs (named by their payload) run until the test releases them, so every
 * assertion is about order, never about time.
 */
function gates() {
  const release = new Map<string, Deferred<string>>();
  const started = new Map<string, Deferred<JobContext>>();
  const ran: string[] = [];
  const gate = <T>(map: Map<string, Deferred<T>>, name: string) => {
    if (!map.has(name)) map.set(name, deferred<T>());
    return map.get(name)!;
  };
  const handler = async (payload: Payload, context: JobContext): Promise<string> => {
    ran.push(payload.name);
    gate(started, payload.name).resolve(context);
    if (payload.fail === 'user') throw new UserInputError('That image is too large.', 'image_too_large');
    if (payload.fail === 'plain') throw new TypeError('model exploded');
    const aborted = new Promise<string>((_, reject) =>
      context.signal.addEventListener('abort', () => reject(context.signal.reason as Error), { once: true }),
    );
    return Promise.race([gate(release, payload.name).promise, aborted]);
  };
  return {
    handler,
    ran,
    started: (name: string) => gate(started, name).promise,
    release: (name: string, value = `answer to ${name}`) => gate(release, name).resolve(value),
  };
}

const redis = redisAvailability();
describe.skipIf(redis.skip)('BullMQ job queue', () => {
  let server: RedisServer;
  let queueNumber = 0;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A fresh queue name, its submitter, and a way to start workers on it. */
  async function setup(maxQueue = 10) {
    const name = `test-${++queueNumber}`;
    const queue = await BullmqJobQueue.open<Payload, string>({ url: server.url, name, maxQueue });
    const g = gates();
    const workers: BullmqWorker[] = [];
    cleanups.push(async () => {
      for (const worker of workers) await worker.close({ force: true });
      await Promise.race([queue.close(), new Promise((res) => setTimeout(res, 2000))]);
    });
    const startWorker = async (options: BullmqWorkerOptions = {}, handler = g.handler) => {
      const worker = await startBullmqWorker(server.url, name, handler, options);
      workers.push(worker);
      return worker;
    };
    return { name, queue, g, startWorker };
  }

  it('runs a job in a worker and returns its JSON result to the submitter', async () => {
    const { queue, g, startWorker } = await setup();
    await startWorker();
    const job = queue.submit({ name: 'a' });
    await g.started('a');
    expect(queue.running).toBe(1);
    g.release('a');
    await expect(job.result).resolves.toBe('answer to a');
    expect(queue.running).toBe(0);
  });

  it('brings the handler error back: UserInputError keeps its code, other errors their name and message', async () => {
    const { queue, startWorker } = await setup();
    await startWorker();
    const user = queue.submit({ name: 'big', fail: 'user' }).result;
    const plain = queue.submit({ name: 'bad', fail: 'plain' }).result;
    await expect(user).rejects.toBeInstanceOf(UserInputError);
    await expect(user).rejects.toMatchObject({ code: 'image_too_large', message: 'That image is too large.' });
    await expect(plain).rejects.toMatchObject({ name: 'TypeError', message: 'model exploded' });
  });

  it('joins a second submit with the same job id: one handler run, both results settle with it', async () => {
    const { queue, g, startWorker } = await setup();
    await startWorker();
    const first = queue.submit({ name: 'x' }, { jobId: 'event-1' });
    await g.started('x');
    const events: JobProgress[] = [];
    const second = queue.submit({ name: 'x' }, { jobId: 'event-1', onProgress: (e) => events.push(e) });
    expect(second.jobId).toBe('event-1');
    g.release('x');
    await expect(first.result).resolves.toBe('answer to x');
    await expect(second.result).resolves.toBe('answer to x');
    expect(g.ran).toEqual(['x']);
    expect(events).toEqual([{ type: 'started' }]);
  });

  it('takes the job ids surfaces use, which BullMQ alone refuses (with a colon, or all digits), and hands the same id to the handler', async () => {
    const { queue, g, startWorker } = await setup();
    const seen: string[] = [];
    await startWorker({ concurrency: 3 }, async (payload, context) => {
      seen.push(context.jobId);
      return g.handler(payload, context);
    });
    const ids = ['discord:1234567890', '42', 'web:a%3Ab:c'];
    const jobs = ids.map((jobId, i) => queue.submit({ name: `id${i}` }, { jobId }));
    expect(jobs.map((job) => job.jobId)).toEqual(ids);
    for (let i = 0; i < ids.length; i++) await g.started(`id${i}`);
    expect([...seen].sort()).toEqual([...ids].sort());
    for (let i = 0; i < ids.length; i++) g.release(`id${i}`);
    await expect(Promise.all(jobs.map((job) => job.result))).resolves.toEqual(['answer to id0', 'answer to id1', 'answer to id2']);
  });

  it('reports the queue position while waiting, then started', async () => {
    const { queue, g, startWorker } = await setup();
    await startWorker({ concurrency: 1 });
    const first = queue.submit({ name: 'first' });
    await g.started('first');
    const events: JobProgress[] = [];
    const second = queue.submit({ name: 'second' }, { onProgress: (e) => events.push(e) });
    await expect.poll(() => events).toEqual([{ type: 'queued', position: 2 }]);
    g.release('first');
    await g.started('second');
    await expect.poll(() => events).toEqual([{ type: 'queued', position: 2 }, { type: 'started' }]);
    g.release('second');
    await expect(first.result).resolves.toBe('answer to first');
    await expect(second.result).resolves.toBe('answer to second');
  });

  it('cancel() of a waiting job removes it: it never runs and its result rejects with cancelled', async () => {
    const { queue, g, startWorker } = await setup();
    await startWorker({ concurrency: 1 });
    const first = queue.submit({ name: 'first' });
    await g.started('first');
    const events: JobProgress[] = [];
    const second = queue.submit({ name: 'second' }, { onProgress: (e) => events.push(e) });
    await expect.poll(() => events.length).toBe(1);
    second.cancel();
    await expect(second.result).rejects.toMatchObject({ code: 'cancelled' });
    const third = queue.submit({ name: 'third' });
    g.release('first');
    await g.started('third');
    g.release('third');
    await expect(third.result).resolves.toBe('answer to third');
    await expect(first.result).resolves.toBe('answer to first');
    expect(g.ran).toEqual(['first', 'third']);
  });

  it('cancel() right after submit, before the job reached Redis, keeps it from ever running', async () => {
    const { queue, g, startWorker } = await setup();
    // Two slots, so a wrongly started 'gone' shows in `ran` instead of blocking 'next'.
    await startWorker({ concurrency: 2 });
    const cancelled = queue.submit({ name: 'gone' });
    cancelled.cancel();
    const next = queue.submit({ name: 'next' });
    await g.started('next');
    g.release('next');
    await expect(next.result).resolves.toBe('answer to next');
    await expect(cancelled.result).rejects.toMatchObject({ code: 'cancelled' });
    expect(g.ran).toEqual(['next']);
  });

  it('cancel() of a running job aborts the handler signal in the worker', async () => {
    const { queue, g, startWorker } = await setup();
    await startWorker();
    const job = queue.submit({ name: 'long' });
    const context = await g.started('long');
    await expect.poll(() => queue.running).toBe(1);
    job.cancel();
    await expect(job.result).rejects.toMatchObject({ code: 'cancelled' });
    await expect.poll(() => context.signal.aborted).toBe(true);
    // The worker's slot frees once the handler returns.
    await expect.poll(() => queue.running).toBe(0);
  });

  it('refuses with queue_full when maxQueue jobs are already waiting', async () => {
    const { queue, g, startWorker } = await setup(1);
    await startWorker({ concurrency: 1 });
    const first = queue.submit({ name: 'first' });
    await g.started('first');
    const second = queue.submit({ name: 'second' });
    const third = queue.submit({ name: 'third' });
    await expect(third.result).rejects.toMatchObject({ code: 'queue_full' });
    expect(queue.size).toBe(1);
    g.release('first');
    g.release('second');
    await expect(second.result).resolves.toBe('answer to second');
    await expect(first.result).resolves.toBe('answer to first');
    expect(g.ran).toEqual(['first', 'second']);
  });

  it('close() rejects waiting jobs, refuses new ones, and resolves once running jobs have finished', async () => {
    const { queue, g, startWorker } = await setup();
    await startWorker({ concurrency: 1 });
    const running = queue.submit({ name: 'running' });
    await g.started('running');
    const waiting = queue.submit({ name: 'waiting' });
    await expect.poll(() => queue.size).toBe(1);
    let closed = false;
    const closing = queue.close().then(() => (closed = true));
    await expect(waiting.result).rejects.toMatchObject({ code: 'cancelled' });
    expect(() => queue.submit({ name: 'late' })).toThrow(UserInputError);
    expect(closed).toBe(false);
    g.release('running');
    await closing;
    await expect(running.result).resolves.toBe('answer to running');
    expect(g.ran).toEqual(['running']);
  });

  it('recovers a job whose worker was force-closed mid-job; its handler finishing late answers nothing', async () => {
    const { name, queue, g, startWorker } = await setup();
    // Counts what the workers report to Redis, which any submitter would hear.
    const events = new QueueEvents(name, { connection: { url: server.url } });
    cleanups.push(() => events.close());
    await events.waitUntilReady();
    const completions: unknown[] = [];
    events.on('completed', ({ returnvalue }) => completions.push(returnvalue));
    const short = { lockMs: 1000, stalledIntervalMs: 500 };
    const dying = await startWorker(short);
    const job = queue.submit({ name: 'turn' });
    await g.started('turn');
    // Like a killed process: no completion, no lock renewal.
    await dying.close({ force: true });
    const again = deferred();
    await startWorker(short, async (payload, context) => {
      again.resolve();
      return `recovered ${payload.name} as ${context.jobId}`;
    });
    await again.promise;
    await expect(job.result).resolves.toBe(`recovered turn as ${job.jobId}`);
    // The first worker's handler finishing late must not answer a second time.
    g.release('turn');
    await new Promise((res) => setTimeout(res, 500));
    expect(g.ran).toEqual(['turn']);
    expect(completions).toEqual([{ ok: true, value: `recovered turn as ${job.jobId}` }]);
  });

  it('recovers the job of a worker process killed with SIGKILL mid-job, and answers it once', async () => {
    const { name, queue, startWorker } = await setup();
    const events = new QueueEvents(name, { connection: { url: server.url } });
    cleanups.push(() => events.close());
    await events.waitUntilReady();
    const completions: unknown[] = [];
    events.on('completed', ({ returnvalue }) => completions.push(returnvalue));
    const short = { lockMs: 1000, stalledIntervalMs: 500 };

    const workerModule = path.join(import.meta.dirname, '..', 'src', 'jobs', 'bullmq-worker.ts');
    const script = `
      const { startBullmqWorker } = await import(${JSON.stringify(workerModule)});
      await startBullmqWorker(process.env.REDIS_URL, process.env.QUEUE_NAME, async (payload) => {
        process.stdout.write('started ' + payload.name + '\\n');
        return new Promise(() => {});
      }, ${JSON.stringify(short)});
      process.stdout.write('ready\\n');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, REDIS_URL: server.url, QUEUE_NAME: name },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((res) => child.once('exit', res));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const lines = createInterface({ input: child.stdout! });
    const line = (wanted: string) =>
      new Promise<void>((res) => lines.on('line', (text) => text === wanted && res()));
    const ready = line('ready');
    const started = line('started turn');
    await ready;

    const job = queue.submit({ name: 'turn' });
    await started;
    child.kill('SIGKILL');
    await exited;
    await startWorker(short, async (payload, context) => `recovered ${payload.name} as ${context.jobId}`);
    await expect(job.result).resolves.toBe(`recovered turn as ${job.jobId}`);
    // This listener may hear it a moment after the queue's own one did.
    await expect.poll(() => completions).toEqual([{ ok: true, value: `recovered turn as ${job.jobId}` }]);
  });
});
