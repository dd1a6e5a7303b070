import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { UserInputError, errorToWire } from '../errors.js';
import { cancelChannel, cancelKey, type JobOutcome } from './bullmq-wire.js';
import type { JobHandler } from './queue.js';

export interface BullmqWorkerOptions {
  /** Jobs this worker runs at once; 1 suits one GPU. */
  concurrency?: number;
  /** How long a job's lock lasts without renewal: a dead worker's job is recoverable after this. */
  lockMs?: number;
  /** How often this worker looks for jobs whose lock expired and puts them back in the queue. */
  stalledIntervalMs?: number;
}

export interface BullmqWorker {
  /**
   * Default: takes no new job, waits for running ones, then disconnects.
   * `force`: disconnects at once and stops renewing locks, leaving running jobs
   * for another worker to recover once their lock expires (what a killed process does).
   */
  close(options?: { force?: boolean }): Promise<void>;
}

/** Runs jobs of the named queue with `handler`, in this process, until closed. */
export async function startBullmqWorker<In, Out>(
  url: string,
  name: string,
  handler: JobHandler<In, Out>,
  options: BullmqWorkerOptions = {},
): Promise<BullmqWorker> {
  const running = new Map<string, AbortController>();
  const commands = new Redis(url, { maxRetriesPerRequest: null });
  const subscriber = new Redis(url, { maxRetriesPerRequest: null });
  subscriber.on('message', (_channel: string, jobId: string) => {
    running.get(jobId)?.abort(new UserInputError('The request was cancelled.', 'cancelled'));
  });
  await subscriber.subscribe(cancelChannel(name));

  const worker = new Worker<In, JobOutcome<Out>>(
    name,
    async (job) => {
      const jobId = job.id!;
      const controller = new AbortController();
      running.set(jobId, controller);
      try {
        // A cancel published before this worker took the job left only the key behind.
        if (await commands.exists(cancelKey(name, jobId))) {
          throw new UserInputError('The request was cancelled.', 'cancelled');
        }
        const value = await handler(job.data, { signal: controller.signal, jobId });
        return { ok: true, value };
      } catch (error) {
        return { ok: false, error: errorToWire(error) };
      } finally {
        running.delete(jobId);
      }
    },
    {
      connection: { url },
      concurrency: options.concurrency ?? 1,
      // Absent values must stay absent: an explicit undefined replaces BullMQ's defaults.
      ...(options.lockMs === undefined ? {} : { lockDuration: options.lockMs }),
      ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
    },
  );
  // Connection trouble is retried by the client; an unhandled 'error' event would end the process.
  worker.on('error', () => undefined);
  await worker.waitUntilReady();

  return {
    async close({ force = false } = {}) {
      await worker.close(force);
      subscriber.disconnect();
      commands.disconnect();
    },
  };
}
