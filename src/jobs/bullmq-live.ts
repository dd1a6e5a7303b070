import type { JobProgress } from './queue.js';

/** One job this submitter waits for. */
export interface Entry<Out> {
  jobId: string;
  listeners: Array<(event: JobProgress) => void>;
  state: 'submitting' | 'waiting' | 'running';
  position?: number;
  settled: boolean;
  resolve(value: Out): void;
  reject(error: unknown): void;
  result: Promise<Out>;
}

/**
 * The BullMQ submitter's own jobs, by the port's job id: each is settled once,
 * and stays listed while a worker may still run it (close() waits for those).
 */
export class LiveJobs<Out> {
  private readonly entries = new Map<string, Entry<Out>>();
  private emptied: Array<() => void> = [];

  get(jobId: string): Entry<Out> | undefined {
    return this.entries.get(jobId);
  }

  add(entry: Entry<Out>): void {
    this.entries.set(entry.jobId, entry);
  }

  all(): Array<Entry<Out>> {
    return [...this.entries.values()];
  }

  /**
   * Settles the result once. The entry stays listed while a worker may still
   * run it unless `done` says the worker has finished (or never will).
   */
  settle(entry: Entry<Out>, outcome: () => void, done = false): void {
    if (!entry.settled) {
      entry.settled = true;
      outcome();
    }
    if ((done || entry.state !== 'running') && this.entries.get(entry.jobId) === entry) {
      this.entries.delete(entry.jobId);
      if (this.entries.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
    }
  }

  /** Resolves once no job is listed. */
  whenEmpty(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }

  emit(entry: Entry<Out>, event: JobProgress): void {
    for (const listener of entry.listeners) notify(listener, event);
  }
}

export function notify(listener: (event: JobProgress) => void, event: JobProgress): void {
  try {
    listener(event);
  } catch {
    // A failing progress callback must not fail the job.
  }
}
