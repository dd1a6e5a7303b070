import { Queue, Worker } from 'bullmq';
import { UserInputError, errorToWire, queueUnavailable } from '../errors.js';
import { cancelChannel, cancelKey, fromBullmqId, type JobOutcome } from './bullmq-wire.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, Reconnects, clientReady, reachWithin } from './redis-connection.js';
import type { WatchedClient } from './redis-outage.js';
import type { JobHandler } from './queue.js';

export interface BullmqWorkerOptions {
  /** Jobs this worker runs at once; 1 suits one GPU. */
  concurrency?: number;
  /** How long a job's lock lasts without renewal: a dead worker's job is recoverable after this. */
  lockMs?: number;
  /** How often this worker looks for jobs whose lock expired and puts them back in the queue. */
  stalledIntervalMs?: number;
  /** How long the start waits for Redis to answer (queue.connectTimeoutMs). */
  connectTimeoutMs?: number;
}

export interface BullmqWorker {
  /**
   * Default: takes no new job, waits for running ones, then disconnects.
   * `force`: disconnects at once and stops renewing locks, leaving running jobs
   * for another worker to recover once their lock expires (what a killed process does).
   */
  close(options?: { force?: boolean }): Promise<void>;
  /** Queue-wide: jobs waiting for a worker and jobs running, on every worker. Rejects while Redis is away. */
  counts(): Promise<{ waiting: number; running: number }>;
  /** Whether Redis answers now. While it does not, the worker takes no job and reconnects by itself. */
  reachable(): boolean;
}

/**
 * Runs jobs of the named queue with `handler`, in this process, until closed.
 * Rejects with a config error naming the URL when Redis does not answer within
 * connectTimeoutMs. A Redis that goes away later is waited for: BullMQ
 * reconnects and takes jobs again. A job whose result could not be saved
 * meanwhile is put back by the stalled-job check once its lock expires, and run again.
 */
export async function startBullmqWorker<In, Out>(
  url: string,
  name: string,
  handler: JobHandler<In, Out>,
  options: BullmqWorkerOptions = {},
): Promise<BullmqWorker> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const reconnects = new Reconnects(url, timeoutMs);
  const commands = reconnects.promptClient();
  const subscriber = reconnects.promptClient();
  // For counts() only; it shares the command connection.
  const queue = new Queue(name, { connection: commands });
  queue.on('error', () => undefined);
  const running = new Map<string, AbortController>();
  subscriber.on('message', (_channel: string, jobId: string) => {
    running.get(jobId)?.abort(new UserInputError('The request was cancelled.', 'cancelled'));
  });

  let worker: Worker<In, JobOutcome<Out>> | undefined;
  const disconnect = async (force: boolean) => {
    // A drain may need Redis back to save its last results; a forced close waits for nothing.
    if (force) reconnects.stop();
    await worker?.close(force).catch(() => undefined);
    reconnects.stop();
    await queue.close().catch(() => undefined);
    subscriber.disconnect();
    commands.disconnect();
  };

  let workerClient: WatchedClient | undefined;
  try {
    await reachWithin(
      'queue.url',
      url,
      timeoutMs,
      [commands, subscriber],
      (async () => {
        await Promise.all([clientReady(commands), clientReady(subscriber)]);
        // Subscribed again by the client after each reconnect.
        await subscriber.subscribe(cancelChannel(name));
        worker = new Worker<In, JobOutcome<Out>>(name, (job) => runJob(fromBullmqId(job.id!), job.data), {
          connection: reconnects.options(),
          concurrency: options.concurrency ?? 1,
          // Absent values must stay absent: an explicit undefined replaces BullMQ's defaults.
          ...(options.lockMs === undefined ? {} : { lockDuration: options.lockMs }),
          ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
        });
        // Connection trouble is retried by the client; an unhandled 'error' event would end the process.
        worker.on('error', () => undefined);
        await worker.waitUntilReady();
        workerClient = (await worker.getBackend().client) as unknown as WatchedClient;
      })(),
    );
  } catch (error) {
    await disconnect(true);
    throw error;
  }

  async function runJob(jobId: string, payload: In): Promise<JobOutcome<Out>> {
    const controller = new AbortController();
    running.set(jobId, controller);
    try {
      // A cancel published before this worker took the job left only the key behind.
      // If Redis cannot say, the job runs: its result is what Redis needs back first anyway.
      if (await commands.exists(cancelKey(name, jobId)).catch(() => 0)) {
        throw new UserInputError('The request was cancelled.', 'cancelled');
      }
      const value = await handler(payload, { signal: controller.signal, jobId });
      return { ok: true, value };
    } catch (error) {
      return { ok: false, error: errorToWire(error) };
    } finally {
      running.delete(jobId);
    }
  }

  return {
    async close({ force = false } = {}) {
      await disconnect(force);
    },
    async counts() {
      try {
        const [waiting, running] = await Promise.all([queue.getWaitingCount(), queue.getActiveCount()]);
        return { waiting, running };
      } catch (error) {
        throw queueUnavailable(error);
      }
    },
    reachable() {
      return [commands, subscriber, workerClient].every((client) => client?.status === 'ready');
    },
  };
}
