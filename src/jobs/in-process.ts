import { randomUUID } from 'node:crypto';
import { UserInputError, restarting } from '../errors.js';
import { pendingResult, queueFull } from './job-result.js';
import type { JobHandler, JobProgress, JobQueue, SubmitOptions, SubmittedJob } from './queue.js';

export interface InProcessQueueOptions<In, Out> {
  handler: JobHandler<In, Out>;
  /** limits.maxQueue: waiting jobs beyond this are refused. */
  maxQueue: number;
  /** Jobs run at once; 1 suits one GPU, where concurrent runs only contend. */
  concurrency?: number;
}

interface Entry<In, Out> {
  jobId: string;
  payload: In;
  listeners: Array<(event: JobProgress) => void>;
  controller: AbortController;
  state: 'waiting' | 'running' | 'done';
  /** The result promise has settled (cancel() may settle it before the handler returns). */
  settled: boolean;
  /** The last position sent, to send only changes. */
  position?: number;
  resolve(value: Out): void;
  reject(error: unknown): void;
  result: Promise<Out>;
}

/** FIFO queue running jobs in this process. */
export class InProcessQueue<In, Out> implements JobQueue<In, Out> {
  private readonly handler: JobHandler<In, Out>;
  private readonly maxQueue: number;
  private readonly concurrency: number;
  private readonly waiting: Entry<In, Out>[] = [];
  private readonly active = new Set<Entry<In, Out>>();
  private readonly live = new Map<string, Entry<In, Out>>();
  private closed = false;
  private drained: Array<() => void> = [];

  constructor(options: InProcessQueueOptions<In, Out>) {
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a whole number >= 1');
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new RangeError('maxQueue must be a whole number >= 0');
    this.handler = options.handler;
    this.maxQueue = options.maxQueue;
    this.concurrency = concurrency;
  }

  get size(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active.size;
  }

  submit(payload: In, options: SubmitOptions = {}): SubmittedJob<Out> {
    if (this.closed) {
      throw restarting();
    }
    const existing = options.jobId === undefined ? undefined : this.live.get(options.jobId);
    if (existing) return this.join(existing, options.onProgress);

    const startsNow = this.waiting.length === 0 && this.active.size < this.concurrency;
    if (!startsNow && this.waiting.length >= this.maxQueue) {
      throw queueFull(this.waiting.length);
    }

    const { result, resolve, reject } = pendingResult<Out>();
    const entry: Entry<In, Out> = {
      jobId: options.jobId ?? randomUUID(),
      payload,
      listeners: options.onProgress ? [options.onProgress] : [],
      controller: new AbortController(),
      state: 'waiting',
      settled: false,
      resolve,
      reject,
      result,
    };
    this.live.set(entry.jobId, entry);
    this.waiting.push(entry);
    this.sendPositions();
    this.pump();
    return this.handle(entry);
  }

  close(): Promise<void> {
    this.closed = true;
    for (const entry of this.waiting.splice(0)) {
      entry.state = 'done';
      this.settle(entry, () => entry.reject(restarting()));
    }
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private join(entry: Entry<In, Out>, onProgress: SubmitOptions['onProgress']): SubmittedJob<Out> {
    if (onProgress) {
      entry.listeners.push(onProgress);
      if (entry.state === 'waiting' && entry.position !== undefined) notify(onProgress, { type: 'queued', position: entry.position });
      if (entry.state === 'running') notify(onProgress, { type: 'started' });
    }
    return this.handle(entry);
  }

  private handle(entry: Entry<In, Out>): SubmittedJob<Out> {
    return { jobId: entry.jobId, result: entry.result, cancel: () => this.cancel(entry) };
  }

  private cancel(entry: Entry<In, Out>): void {
    if (entry.settled) return;
    const error = new UserInputError('The request was cancelled.', 'cancelled');
    if (entry.state === 'waiting') {
      this.waiting.splice(this.waiting.indexOf(entry), 1);
      entry.state = 'done';
      this.settle(entry, () => entry.reject(error));
      this.sendPositions();
    } else {
      // The caller hears at once; the slot stays taken until the handler returns, as the work may still be running.
      entry.controller.abort(error);
      this.settle(entry, () => entry.reject(error));
    }
  }

  private pump(): void {
    while (this.active.size < this.concurrency && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      entry.state = 'running';
      this.active.add(entry);
      this.emit(entry, { type: 'started' });
      void this.run(entry);
    }
    this.sendPositions();
  }

  private async run(entry: Entry<In, Out>): Promise<void> {
    try {
      // Awaiting first puts the handler on a fresh microtask: a handler that throws synchronously or
      // submits more work cannot re-enter pump() mid-loop.
      await undefined;
      const value = await this.handler(entry.payload, { signal: entry.controller.signal, jobId: entry.jobId });
      this.settle(entry, () => entry.resolve(value));
    } catch (error) {
      this.settle(entry, () => entry.reject(error));
    } finally {
      entry.state = 'done';
      this.active.delete(entry);
      if (this.active.size === 0 && this.waiting.length === 0) {
        for (const resolve of this.drained.splice(0)) resolve();
      }
      this.pump();
    }
  }

  /** Settles the result once; the job id is free for reuse as soon as the outcome is known. */
  private settle(entry: Entry<In, Out>, outcome: () => void): void {
    if (entry.settled) return;
    entry.settled = true;
    outcome();
    if (this.live.get(entry.jobId) === entry) this.live.delete(entry.jobId);
  }

  private sendPositions(): void {
    this.waiting.forEach((entry, index) => {
      const position = this.active.size + index + 1;
      if (entry.position !== position) {
        entry.position = position;
        this.emit(entry, { type: 'queued', position });
      }
    });
  }

  private emit(entry: Entry<In, Out>, event: JobProgress): void {
    for (const listener of entry.listeners) notify(listener, event);
  }
}

function notify(listener: (event: JobProgress) => void, event: JobProgress): void {
  try {
    listener(event);
  } catch {
    // A failing progress callback (say, a chat message that could not be edited) must not fail the job.
  }
}
