import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { UserInputError, restarting, errorFromWire, queueUnavailable } from '../errors.js';
import { pendingResult, queueFull } from './job-result.js';
import { CANCEL_KEY_TTL_S, cancelChannel, cancelKey, fromBullmqId, toBullmqId, type JobOutcome } from './bullmq-wire.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, Reconnects, clientReady, isConnectionError, reachWithin } from './redis-connection.js';
import { QUEUE_OUTAGE_GRACE_MS, RedisOutage, type WatchedClient } from './redis-outage.js';
import { type Entry, LiveJobs, notify } from './bullmq-live.js';
import type { JobQueue, SubmitOptions, SubmittedJob } from './queue.js';

/** Looking jobs up again after an outage: how often to try while Redis answers but the lookup fails, and how far apart. */
const LOOKUP_ATTEMPTS = 3;
const LOOKUP_RETRY_MS = 1_000;

export interface BullmqJobQueueOptions {
  /** redis://… shared with the workers. */
  url: string;
  /** The BullMQ queue name; workers started with the same name run its jobs. */
  name: string;
  /** limits.maxQueue: jobs waiting for a worker beyond this are refused. */
  maxQueue: number;
  /** How long open() waits for Redis to answer (queue.connectTimeoutMs). */
  connectTimeoutMs?: number;
  /** How long submitted jobs wait for a lost Redis to return before they are refused; QUEUE_OUTAGE_GRACE_MS by default. */
  outageGraceMs?: number;
}

/**
 * The submitter side of the BullMQ queue: jobs run in workers started with
 * startBullmqWorker, in this process or others. `size` and `running` count
 * this submitter's own jobs; counts() the whole queue's. The maxQueue check
 * and the add are two steps, so several submitters at once may overshoot it
 * by a few jobs.
 *
 * While Redis is unreachable, submits are refused at once ('queue_unavailable');
 * jobs already submitted wait for it up to the outage grace period, then are
 * refused too. Once Redis is back, each of them is looked up again: a job
 * Redis no longer knows (and did not finish) is refused rather than left pending.
 */
export class BullmqJobQueue<In, Out> implements JobQueue<In, Out> {
  private readonly reconnects: Reconnects;
  /** Short commands that fail at once while Redis is away; the BullMQ Queue shares it. */
  private readonly client: Redis;
  private readonly queue: Queue;
  private events: QueueEvents | undefined;
  private outage: RedisOutage | undefined;
  /** The newest queue event handled (or the stream's end at start): where a lookup after an outage reads on from. */
  private lastEventId = '0';
  private readonly live = new LiveJobs<Out>();
  private adding: Promise<void> = Promise.resolve();
  private closed = false;

  /** Connects to Redis; rejects with a config error naming the URL when it does not answer within connectTimeoutMs. */
  static async open<In, Out>(options: BullmqJobQueueOptions): Promise<BullmqJobQueue<In, Out>> {
    const queue = new BullmqJobQueue<In, Out>(options);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    try {
      await reachWithin('queue.url', options.url, timeoutMs, [queue.client], queue.start());
    } catch (error) {
      await queue.shutdown();
      throw error;
    }
    return queue;
  }

  private constructor(private readonly options: BullmqJobQueueOptions) {
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new RangeError('maxQueue must be a whole number >= 0');
    this.reconnects = new Reconnects(options.url, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.client = this.reconnects.promptClient();
    this.queue = new Queue(options.name, { connection: this.client });
    // Failures reach the callers; an unhandled 'error' event would end the process.
    this.queue.on('error', () => undefined);
  }

  private async start(): Promise<void> {
    await clientReady(this.client);
    await this.queue.waitUntilReady();
    // Events are read from the stream's end as it is now, so none is missed however late the reader starts.
    const newest = (await this.client.xrevrange(this.queue.keys.events, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    this.lastEventId = newest[0]?.[0] ?? '0';
    const events = new QueueEvents(this.options.name, {
      connection: this.reconnects.options(),
      lastEventId: this.lastEventId,
    });
    this.events = events;
    events.on('error', () => undefined);
    events.on('active', ({ jobId }, id) => this.started(fromBullmqId(jobId), id));
    events.on('completed', ({ jobId, returnvalue }, id) => this.finished(fromBullmqId(jobId), returnvalue as unknown, id));
    events.on('failed', ({ jobId, failedReason }, id) => this.failed(fromBullmqId(jobId), failedReason, id));
    await events.waitUntilReady();
    const eventsClient = (await events.getBackend().client) as unknown as WatchedClient;
    this.outage = new RedisOutage([this.client, eventsClient], this.options.outageGraceMs ?? QUEUE_OUTAGE_GRACE_MS, {
      graceOver: () => this.refuseAll(),
      back: () => void this.lookUpAgain(),
    });
  }

  /** Whether Redis answers now (both the command and the event connections). */
  reachable(): boolean {
    return !this.closed && (this.outage?.reachable() ?? false);
  }

  /** Queue-wide: jobs waiting for a worker and jobs running, from every submitter. Rejects with 'queue_unavailable' while Redis is away. */
  async counts(): Promise<{ waiting: number; running: number }> {
    try {
      const [waiting, running] = await Promise.all([this.queue.getWaitingCount(), this.queue.getActiveCount()]);
      return { waiting, running };
    } catch (error) {
      throw this.unavailableOr(error);
    }
  }

  get size(): number {
    return this.live.all().filter((entry) => entry.state !== 'running').length;
  }

  get running(): number {
    return this.live.all().filter((entry) => entry.state === 'running').length;
  }

  submit(payload: In, options: SubmitOptions = {}): SubmittedJob<Out> {
    if (this.closed) throw restarting();
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
    if (!this.reachable()) {
      reject(queueUnavailable());
      return { jobId: options.jobId ?? randomUUID(), result, cancel: () => undefined };
    }
    const entry: Entry<Out> = {
      jobId: options.jobId ?? randomUUID(),
      listeners: options.onProgress ? [options.onProgress] : [],
      state: 'submitting',
      settled: false,
      resolve,
      reject,
      result,
    };
    this.live.add(entry);
    // One add at a time, so this submitter's own jobs count against maxQueue in order.
    this.adding = this.adding.then(() => this.enqueue(entry, payload));
    return this.handle(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.live.all().filter((entry) => entry.state !== 'running');
    for (const entry of waiting) {
      this.live.settle(entry, () => entry.reject(restarting()));
      await this.queue.remove(toBullmqId(entry.jobId)).catch(() => 0);
    }
    await this.live.whenEmpty();
    await this.shutdown();
  }

  /** Drops the connections; clients that are still reconnecting give up at their next attempt. */
  private async shutdown(): Promise<void> {
    this.outage?.stop();
    this.reconnects.stop();
    await this.events?.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    this.client.disconnect();
  }

  private async enqueue(entry: Entry<Out>, payload: In): Promise<void> {
    try {
      // Cancelled or closed before its turn to be added: it must never reach a worker.
      if (entry.settled) return;
      const waiting = await this.queue.getWaitingCount();
      if (waiting >= this.options.maxQueue) {
        throw queueFull(waiting);
      }
      // An id already in the queue (from another submitter, or a redelivered event) is not added again: this joins it.
      await this.queue.add('job', payload, { jobId: toBullmqId(entry.jobId), removeOnComplete: true, removeOnFail: true });
      if (entry.state === 'submitting') entry.state = 'waiting';
      await this.sendPositions();
    } catch (error) {
      this.live.settle(entry, () => entry.reject(this.unavailableOr(error)));
    }
  }

  /** A command failed: while Redis is away that reads "busy, try again", whatever the client said. */
  private unavailableOr(error: unknown): unknown {
    if (error instanceof UserInputError) return error;
    return !this.reachable() || isConnectionError(error) ? queueUnavailable(error) : error;
  }

  private handle(entry: Entry<Out>): SubmittedJob<Out> {
    return { jobId: entry.jobId, result: entry.result, cancel: () => void this.cancel(entry) };
  }

  private async cancel(entry: Entry<Out>): Promise<void> {
    if (entry.settled) return;
    const wasRunning = entry.state === 'running';
    // The caller hears at once, as with the in-process queue.
    this.live.settle(entry, () => entry.reject(new UserInputError('The request was cancelled.', 'cancelled')));
    try {
      // A job a worker holds is locked and stays; only a waiting one is removed.
      const removed = wasRunning ? 0 : await this.queue.remove(toBullmqId(entry.jobId));
      if (removed === 1) return;
      await this.client.set(cancelKey(this.options.name, entry.jobId), '1', 'EX', CANCEL_KEY_TTL_S);
      await this.client.publish(cancelChannel(this.options.name), entry.jobId);
    } catch {
      // Redis gone: the caller already has its answer; the worker's result will be ignored.
    }
  }

  private started(jobId: string, eventId: string): void {
    this.lastEventId = eventId;
    const entry = this.live.get(jobId);
    if (!entry || entry.state === 'running') return;
    entry.state = 'running';
    this.live.emit(entry, { type: 'started' });
    void this.sendPositions();
  }

  private finished(jobId: string, returnvalue: unknown, eventId?: string): void {
    if (eventId) this.lastEventId = eventId;
    const entry = this.live.get(jobId);
    if (!entry) return;
    const outcome = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as JobOutcome<Out>;
    if (outcome?.ok) this.live.settle(entry, () => entry.resolve(outcome.value), true);
    else this.live.settle(entry, () => entry.reject(errorFromWire(outcome.error)), true);
    void this.sendPositions();
  }

  private failed(jobId: string, reason: string, eventId?: string): void {
    if (eventId) this.lastEventId = eventId;
    const entry = this.live.get(jobId);
    if (!entry) return;
    // Outside the handler: e.g. the job stalled more often than BullMQ allows.
    this.live.settle(entry, () => entry.reject(new Error(`job ${jobId} failed in the queue: ${reason}`)), true);
    void this.sendPositions();
  }

  /** Redis stayed away past the grace period: every job this submitter waits for is refused. */
  private refuseAll(): void {
    for (const entry of this.live.all()) this.live.settle(entry, () => entry.reject(queueUnavailable()), true);
  }

  /**
   * Redis is back: each job still waited for is looked up. One Redis no longer
   * holds either finished while the event reader was cut off (its outcome is
   * in the event stream, read here from the last event handled) or was lost
   * with a Redis that restarted empty: that one is refused, not left pending.
   */
  private async lookUpAgain(attempt = 1): Promise<void> {
    const submitted = this.live.all().filter((entry) => entry.state !== 'submitting');
    try {
      const gone: Array<Entry<Out>> = [];
      for (const entry of submitted) {
        if ((await this.queue.getJobState(toBullmqId(entry.jobId))) === 'unknown') gone.push(entry);
      }
      if (gone.length === 0) return;
      // After the state lookups: a job that finished before them has its event in the stream by now.
      // From the last event handled, inclusive (exclusive ranges need Redis 6.2); a repeat settles nothing twice.
      const stream = (await this.client.xrange(this.queue.keys.events, this.lastEventId, '+')) as Array<[string, string[]]>;
      for (const [, fields] of stream) {
        const event = fieldsOf(fields);
        if (event.event === 'completed') this.finished(fromBullmqId(event.jobId), event.returnvalue);
        if (event.event === 'failed') this.failed(fromBullmqId(event.jobId), event.failedReason);
      }
      for (const entry of gone) this.live.settle(entry, () => entry.reject(queueUnavailable()), true);
    } catch {
      // Redis went away again: the next return looks again, or the grace period ends it.
      if (!this.reachable()) return;
      // Reachable but the lookup failed: try again, and refuse rather than leave jobs pending for ever.
      if (attempt < LOOKUP_ATTEMPTS) setTimeout(() => void this.lookUpAgain(attempt + 1), LOOKUP_RETRY_MS).unref();
      else for (const entry of submitted) this.live.settle(entry, () => entry.reject(queueUnavailable()), true);
    }
  }

  private async sendPositions(): Promise<void> {
    const waiting = this.live.all().filter((entry) => entry.state === 'waiting');
    if (waiting.length === 0) return;
    try {
      const active = await this.queue.getActiveCount();
      const order = (await this.queue.getRanges(['waiting'], 0, -1, true)) as string[];
      for (const entry of waiting) {
        const index = order.indexOf(toBullmqId(entry.jobId));
        if (index < 0 || entry.state !== 'waiting') continue;
        const position = active + index + 1;
        if (entry.position !== position) {
          entry.position = position;
          this.live.emit(entry, { type: 'queued', position });
        }
      }
    } catch {
      // Positions are a courtesy; the next event tries again.
    }
  }
}

function fieldsOf(fields: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  return record;
}
