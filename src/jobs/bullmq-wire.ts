import type { WireError } from '../errors.js';

/**
 * What the submitter and the BullMQ worker agree on besides the BullMQ queue
 * itself: how an outcome travels, and how a cancel reaches the worker running
 * the job (a pub/sub message for a job already running, plus a short-lived key
 * for a cancel that races the worker picking the job up).
 */

/** The job's return value in BullMQ. Handler errors travel here too, so UserInputError codes survive and BullMQ never retries a failed turn. */
export type JobOutcome<Out> = { ok: true; value: Out } | { ok: false; error: WireError };

/** BullMQ's default key prefix, which both sides use. */
const PREFIX = 'bull';

export function cancelChannel(queueName: string): string {
  return `${PREFIX}:${queueName}:lisa:cancel`;
}

export function cancelKey(queueName: string, jobId: string): string {
  return `${PREFIX}:${queueName}:lisa:cancelled:${jobId}`;
}

/** Long enough to outlive any turn; a cancelled id is not expected to be reused within it. */
export const CANCEL_KEY_TTL_S = 3600;
