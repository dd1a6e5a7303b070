import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { UserInputError, errorFromWire } from '../errors.js';
import { pendingResult, queueFull } from './job-result.js';
import { CANCEL_KEY_TTL_S, cancelChannel, cancelKey, type JobOutcome } from './bullmq-wire.js';
import type { JobProgress, JobQueue, SubmitOptions, SubmittedJob } from './queue.js';

export interface BullmqJobQueueOptions {
  /** redis://… shared with the workers. */
  url: string;
  /** The BullMQ queue name; workers started with the same name run its jobs. */
  name: string;
  /** limits.maxQueue: jobs waiting for a worker beyond this are refused. */
  maxQueue: number;
}

interface Entry<Out> {
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
 * The submitter side of the BullMQ queue: jobs run in workers started with
 * startBullmqWorker, in this process or others. `size` and `running` count
 * this submitter's own jobs. The maxQueue check and the add are two steps, so
 * several submitters at once may overshoot it by a few jobs.
 */
export class BullmqJobQueue<In, Out> implements JobQueue<In, Out> {
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly commands: Redis;
  private readonly ready: Promise<void>;
  private readonly live = new Map<string, Entry<Out>>();
  private adding: Promise<void> = Promise.resolve();
  private closed = false;
  private drained: Array<() => void> = [];

  constructor(private readonly options: BullmqJobQueueOptions) {
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new RangeError('maxQueue must be a whole number >= 0');
    this.queue = new Queue(options.name, { connection: { url: options.url } });
    this.events = new QueueEvents(options.name, { connection: { url: options.url } });
    this.commands = new Redis(options.url, { maxRetriesPerRequest: null });
    // Connection trouble is retried by the clients; an unhandled 'error' event would end the process.
    this.queue.on('error', () => undefined);
    this.events.on('error', () => undefined);
    this.events.on('active', ({ jobId }) => this.started(jobId));
    this.events.on('completed', ({ jobId, returnvalue }) => this.finished(jobId, returnvalue as unknown));
    this.events.on('failed', ({ jobId, failedReason }) => this.failed(jobId, failedReason));
    // Listening starts at the stream's end, so no job is added before the listener is ready.
    this.ready = Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]).then(() => undefined);
    this.ready.catch(() => undefined);
  }

  get size(): number {
    return [...this.live.values()].filter((entry) => entry.state !== 'running').length;
  }

  get running(): number {
    return [...this.live.values()].filter((entry) => entry.state === 'running').length;
  }

  submit(payload: In, options: SubmitOptions = {}): SubmittedJob<Out> {
    if (this.closed) throw new UserInputError('LISA is restarting. Please ask again in a moment.', 'cancelled');
    const existing = options.jobId === undefined ? undefined : this.live.get(options.jobId);
    if (existing) {
      if (options.onProgress) {
        existing.listeners.push(options.onProgress);
        if (existing.state === 'waiting' && existing.position !== undefined) {
          notify(options.onProgress, { type: 'queued', position: existing.position });
        }
        if (existing.state === 'running') notify(options.onProgress, { type: 'started' });
      }
      return this.handle(existing);
    }
    const { result, resolve, reject } = pendingResult<Out>();
    const entry: Entry<Out> = {
      jobId: options.jobId ?? randomUUID(),
      listeners: options.onProgress ? [options.onProgress] : [],
      state: 'submitting',
      settled: false,
      resolve,
      reject,
      result,
    };
    this.live.set(entry.jobId, entry);
    // One add at a time, so this submitter's own jobs count against maxQueue in order.
    this.adding = this.adding.then(() => this.enqueue(entry, payload));
    return this.handle(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    const waiting = [...this.live.values()].filter((entry) => entry.state !== 'running');
    for (const entry of waiting) {
      this.settle(entry, () =>
        entry.reject(new UserInputError('LISA is restarting. Please ask again in a moment.', 'cancelled')),
      );
      await this.queue.remove(entry.jobId).catch(() => 0);
    }
    if (this.live.size > 0) await new Promise<void>((res) => this.drained.push(res));
    await this.events.close();
    await this.queue.close();
    this.commands.disconnect();
  }

  private async enqueue(entry: Entry<Out>, payload: In): Promise<void> {
    try {
      await this.ready;
      // Cancelled or closed before its turn to be added: it must never reach a worker.
      if (entry.settled) return;
      const waiting = await this.queue.getWaitingCount();
      if (waiting >= this.options.maxQueue) {
        throw queueFull(waiting);
      }
      // An id already in the queue (from another submitter, or a redelivered event) is not added again: this joins it.
      await this.queue.add('job', payload, { jobId: entry.jobId, removeOnComplete: true, removeOnFail: true });
      if (entry.state === 'submitting') entry.state = 'waiting';
      await this.sendPositions();
    } catch (error) {
      this.settle(entry, () => entry.reject(error));
    }
  }

  private handle(entry: Entry<Out>): SubmittedJob<Out> {
    return { jobId: entry.jobId, result: entry.result, cancel: () => void this.cancel(entry) };
  }

  private async cancel(entry: Entry<Out>): Promise<void> {
    if (entry.settled) return;
    const wasRunning = entry.state === 'running';
    // The caller hears at once, as with the in-process queue.
    this.settle(entry, () => entry.reject(new UserInputError('The request was cancelled.', 'cancelled')));
    try {
      // A job a worker holds is locked and stays; only a waiting one is removed.
      const removed = wasRunning ? 0 : await this.queue.remove(entry.jobId);
      if (removed === 1) return;
      await this.commands.set(cancelKey(this.options.name, entry.jobId), '1', 'EX', CANCEL_KEY_TTL_S);
      await this.commands.publish(cancelChannel(this.options.name), entry.jobId);
    } catch {
      // Redis gone: the caller already has its answer; the worker's result will be ignored.
    }
  }

  private started(jobId: string): void {
    const entry = this.live.get(jobId);
    if (!entry || entry.state === 'running') return;
    entry.state = 'running';
    this.emit(entry, { type: 'started' });
    void this.sendPositions();
  }

  private finished(jobId: string, returnvalue: unknown): void {
    const entry = this.live.get(jobId);
    if (!entry) return;
    const outcome = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as JobOutcome<Out>;
    if (outcome?.ok) this.settle(entry, () => entry.resolve(outcome.value), true);
    else this.settle(entry, () => entry.reject(errorFromWire(outcome.error)), true);
    void this.sendPositions();
  }

  private failed(jobId: string, reason: string): void {
    const entry = this.live.get(jobId);
    if (!entry) return;
    // Outside the handler: e.g. the job stalled more often than BullMQ allows.
    this.settle(entry, () => entry.reject(new Error(`job ${jobId} failed in the queue: ${reason}`)), true);
    void this.sendPositions();
  }

  /**
   * Settles the result once. The entry stays live while a worker may still run
   * it (close() waits for those) unless `done` says the worker has finished.
   */
  private settle(entry: Entry<Out>, outcome: () => void, done = false): void {
    if (!entry.settled) {
      entry.settled = true;
      outcome();
    }
    if ((done || entry.state !== 'running') && this.live.get(entry.jobId) === entry) {
      this.live.delete(entry.jobId);
      if (this.live.size === 0) for (const res of this.drained.splice(0)) res();
    }
  }

  private async sendPositions(): Promise<void> {
    const waiting = [...this.live.values()].filter((entry) => entry.state === 'waiting');
    if (waiting.length === 0) return;
    try {
      const active = await this.queue.getActiveCount();
      const order = (await this.queue.getRanges(['waiting'], 0, -1, true)) as string[];
      for (const entry of waiting) {
        const index = order.indexOf(entry.jobId);
        if (index < 0 || entry.state !== 'waiting') continue;
        const position = active + index + 1;
        if (entry.position !== position) {
          entry.position = position;
          this.emit(entry, { type: 'queued', position });
        }
      }
    } catch {
      // Positions are a courtesy; the next event tries again.
    }
  }

  private emit(entry: Entry<Out>, event: JobProgress): void {
    for (const listener of entry.listeners) notify(listener, event);
  }
}

function notify(listener: (event: JobProgress) => void, event: JobProgress): void {
  try {
    listener(event);
  } catch {
    // A failing progress callback must not fail the job.
  }
}
