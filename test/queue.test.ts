import { describe, expect, it } from 'vitest';
import { UserInputError } from '../src/errors.js';
import { InProcessQueue, type JobContext, type JobProgress } from '../src/jobs/index.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A queue whose jobs (named by their payload) run until the test releases
 * them, so every assertion is about order, never about time.
 */
function gatedQueue(options: { maxQueue?: number; concurrency?: number } = {}) {
  const gates = new Map<string, Deferred<string>>();
  const started = new Map<string, Deferred<JobContext>>();
  const ran: string[] = [];
  const gate = <T>(map: Map<string, Deferred<T>>, name: string) => {
    if (!map.has(name)) map.set(name, deferred<T>());
    return map.get(name)!;
  };
  const queue = new InProcessQueue<string, string>({
    maxQueue: options.maxQueue ?? 100,
    concurrency: options.concurrency,
    handler: async (name, context) => {
      ran.push(name);
      gate(started, name).resolve(context);
      return gate(gates, name).promise;
    },
  });
  const events = new Map<string, JobProgress[]>();
  const submit = (name: string, jobId?: string) => {
    events.set(name, []);
    return queue.submit(name, { jobId, onProgress: (event) => events.get(name)!.push(event) });
  };
  return {
    queue,
    submit,
    ran,
    events: (name: string) => events.get(name),
    started: (name: string) => gate(started, name).promise,
    finish: (name: string) => gate(gates, name).resolve(`done ${name}`),
    fail: (name: string, error: Error) => gate(gates, name).reject(error),
  };
}

describe('InProcessQueue', () => {
  it('reports positions in order as the jobs ahead finish', async () => {
    const q = gatedQueue();
    const a = q.submit('a');
    const b = q.submit('b');
    const c = q.submit('c');
    await q.started('a');
    expect(q.events('a')).toEqual([{ type: 'queued', position: 1 }, { type: 'started' }]);
    expect(q.events('b')).toEqual([{ type: 'queued', position: 2 }]);
    expect(q.events('c')).toEqual([{ type: 'queued', position: 3 }]);
    expect([q.queue.running, q.queue.size]).toEqual([1, 2]);

    q.finish('a');
    expect(await a.result).toBe('done a');
    await q.started('b');
    expect(q.events('b')).toEqual([{ type: 'queued', position: 2 }, { type: 'started' }]);
    expect(q.events('c')).toEqual([
      { type: 'queued', position: 3 },
      { type: 'queued', position: 2 },
    ]);

    q.finish('b');
    await q.started('c');
    q.finish('c');
    expect(await Promise.all([b.result, c.result])).toEqual(['done b', 'done c']);
    expect(q.events('c')?.at(-1)).toEqual({ type: 'started' });
    expect(q.ran).toEqual(['a', 'b', 'c']);
    expect([q.queue.running, q.queue.size]).toEqual([0, 0]);
  });

  it('never runs a cancelled waiting job, and moves the jobs behind it up', async () => {
    const q = gatedQueue();
    q.submit('a');
    const b = q.submit('b');
    const c = q.submit('c');
    b.cancel();
    const error = await b.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('cancelled');
    expect(q.events('c')).toEqual([
      { type: 'queued', position: 3 },
      { type: 'queued', position: 2 },
    ]);
    q.finish('a');
    await q.started('c');
    q.finish('c');
    await c.result;
    expect(q.ran).toEqual(['a', 'c']);
    expect(q.events('b')).toEqual([{ type: 'queued', position: 2 }]);
  });

  it('aborts the signal of a cancelled running job, and frees its slot when the handler returns', async () => {
    const q = gatedQueue();
    const a = q.submit('a');
    const b = q.submit('b');
    const context = await q.started('a');
    expect(context.signal.aborted).toBe(false);
    expect(context.jobId).toBe(a.jobId);
    a.cancel();
    expect(context.signal.aborted).toBe(true);
    expect(context.signal.reason).toMatchObject({ code: 'cancelled' });
    await expect(a.result).rejects.toMatchObject({ code: 'cancelled' });
    // The handler has not returned yet, so the GPU is still busy: b waits.
    expect(q.ran).toEqual(['a']);
    expect(q.queue.running).toBe(1);
    q.fail('a', new Error('aborted'));
    await q.started('b');
    q.finish('b');
    expect(await b.result).toBe('done b');
  });

  it('refuses a job when maxQueue jobs are waiting', async () => {
    const q = gatedQueue({ maxQueue: 2 });
    q.submit('a');
    q.submit('b');
    q.submit('c');
    let error: unknown;
    try {
      q.submit('d');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('queue_full');
    expect((error as UserInputError).message).toBe(
      'LISA is busy: 2 requests are waiting. Please try again in a few minutes.',
    );
    expect(q.queue.size).toBe(2);
  });

  it('rejects only the job whose handler throws, and keeps going', async () => {
    const q = gatedQueue();
    const a = q.submit('a');
    const b = q.submit('b');
    q.fail('a', new Error('engine exploded'));
    await expect(a.result).rejects.toThrow('engine exploded');
    await q.started('b');
    q.finish('b');
    expect(await b.result).toBe('done b');
  });

  it('survives a handler that throws synchronously and a progress callback that throws', async () => {
    const queue = new InProcessQueue<number, number>({
      maxQueue: 10,
      handler: (n) => {
        if (n === 0) throw new Error('sync');
        return Promise.resolve(n * 2);
      },
    });
    const bad = queue.submit(0, {
      onProgress: () => {
        throw new Error('callback');
      },
    });
    const good = queue.submit(2);
    await expect(bad.result).rejects.toThrow('sync');
    expect(await good.result).toBe(4);
  });

  it('runs several jobs at once with concurrency > 1', async () => {
    const q = gatedQueue({ concurrency: 2 });
    q.submit('a');
    q.submit('b');
    q.submit('c');
    await Promise.all([q.started('a'), q.started('b')]);
    expect(q.queue.running).toBe(2);
    expect(q.events('c')).toEqual([{ type: 'queued', position: 3 }]);
    q.finish('b');
    await q.started('c');
    expect(q.ran).toEqual(['a', 'b', 'c']);
  });

  it('joins a job submitted again under the same id', async () => {
    const q = gatedQueue();
    q.submit('a');
    const first = q.submit('b', 'event-1');
    const second = q.submit('b-again', 'event-1');
    expect(second.jobId).toBe(first.jobId);
    expect(q.queue.size).toBe(1);
    q.finish('a');
    await q.started('b');
    q.finish('b');
    expect(await second.result).toBe('done b');
    expect(q.ran).toEqual(['a', 'b']);
  });

  it('close() rejects waiting jobs, lets the running one finish, and refuses new ones', async () => {
    const q = gatedQueue();
    const a = q.submit('a');
    const b = q.submit('b');
    await q.started('a');
    const closed = q.queue.close();
    await expect(b.result).rejects.toMatchObject({ code: 'cancelled' });
    expect(() => q.submit('c')).toThrow(UserInputError);
    q.finish('a');
    await closed;
    expect(await a.result).toBe('done a');
    expect(q.ran).toEqual(['a']);
  });
});
