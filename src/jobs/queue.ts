/**
 * The job queue port. The default runs jobs in this process; a BullMQ/Redis
 * implementation will run them in `lisa-bot worker` processes. So payloads and
 * results must survive JSON (no class instances, no Uint8Array: images travel
 * by hash through the ImageStore), and a handler must not rely on sharing
 * memory with the submitter.
 */

export type JobProgress =
  /** 1-based: the running jobs plus the waiting jobs up to and including this one. Re-sent when it changes. */
  | { type: 'queued'; position: number }
  | { type: 'started' };

export interface JobContext {
  /** Aborted when the job is cancelled while running. */
  signal: AbortSignal;
  jobId: string;
}

export type JobHandler<In, Out> = (payload: In, context: JobContext) => Promise<Out>;

export interface SubmitOptions {
  onProgress?: (event: JobProgress) => void;
  /**
   * Names the job, e.g. after the platform event it answers. Submitting an id
   * that is still waiting or running joins that job instead of adding another,
   * which makes redelivered events harmless.
   */
  jobId?: string;
}

export interface SubmittedJob<Out> {
  jobId: string;
  /**
   * Settles with the handler's result. Rejects with UserInputError 'cancelled'
   * after cancel() or close(), and with the handler's error when it throws.
   */
  result: Promise<Out>;
  /** A waiting job never runs; a running job's signal is aborted. No-op once settled. */
  cancel(): void;
}

export interface JobQueue<In, Out> {
  /**
   * Enqueues a job. Refuses with UserInputError 'queue_full' when the queue
   * already holds its maximum of waiting jobs: thrown here by the in-process
   * queue; an implementation that can only learn it asynchronously rejects
   * `result` instead, so callers should treat both the same way.
   */
  submit(payload: In, options?: SubmitOptions): SubmittedJob<Out>;
  /** Jobs waiting to start (what maxQueue limits). */
  readonly size: number;
  /** Jobs running now, including cancelled ones whose handler has not returned yet. */
  readonly running: number;
  /** Rejects every waiting job ('cancelled'), refuses new ones, and resolves once running jobs have finished. */
  close(): Promise<void>;
}
