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

/**
 * BullMQ refuses custom job ids that are integers or hold a ':' (ours are
 * e.g. "discord:1234"). Both sides name jobs in BullMQ through these, and
 * speak the port's ids everywhere else (cancel messages, the handler's context).
 */
export function toBullmqId(jobId: string): string {
  return `j${jobId.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'))}`;
}

export function fromBullmqId(id: string): string {
  return id.slice(1).replace(/%(25|3A)/g, (_, code: string) => (code === '25' ? '%' : ':'));
}

/** Long enough to outlive any turn; a cancelled id is not expected to be reused within it. */
export const CANCEL_KEY_TTL_S = 3600;
