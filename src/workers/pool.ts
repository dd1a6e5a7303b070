/**
 * Worker threads for one module's tasks, made by whoever needs work off its
 * event loop (the engine's preprocessing, the renderer's overlays), with the
 * threads it wants, and closed by it.
 */
import { Piscina } from 'piscina';
import { errorFromWire } from '../errors.js';
import { type TaskFailure, isTaskFailure } from './task.js';

export class WorkerPool {
  private readonly piscina: Piscina;

  /** @param entry a module exporting the tasks by name (see task.ts for how they hand back failures) */
  constructor(entry: URL, maxThreads: number) {
    this.piscina = new Piscina({
      filename: entry.href,
      minThreads: 0,
      maxThreads,
      // A thread takes a while to start (TypeScript, sharp), which a user would wait
      // for on the next question; chat turns come minutes apart, so threads stay
      // for 10 idle minutes, then exit so that an idle server holds no pixel memory.
      idleTimeout: 10 * 60_000,
      // With atomics, an idle worker blocks in Atomics.wait inside its last task's
      // handler frame: that task's pixels and result stay referenced, and no timer,
      // collection or scratch release of the worker can run, until the next task.
      atomics: 'disabled',
    });
  }

  /** Runs task `name` on `input`; a failure is thrown here as the task threw it (class and code kept). */
  async run<T>(name: string, input: unknown): Promise<T> {
    const value = (await this.piscina.run(input, { name })) as T | TaskFailure;
    if (isTaskFailure(value)) throw errorFromWire(value.failed);
    return value;
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}

/**
 * Runs `band` over [0, rows) cut in `parts`, and settles only when every band
 * has: a failed band must not let the caller reuse a buffer another still writes.
 */
export async function settledBands(rows: number, parts: number, band: (from: number, to: number) => Promise<unknown>): Promise<void> {
  const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((rows * i) / parts));
  const results = await Promise.allSettled(bounds.slice(0, -1).map((from, i) => (from < bounds[i + 1]! ? band(from, bounds[i + 1]!) : undefined)));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}
