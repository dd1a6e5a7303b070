/**
 * What every job queue implementation hands back for a submit: a result
 * promise with its settle functions, and the one "queue full" refusal.
 */
import { UserInputError } from '../errors.js';

export interface PendingResult<Out> {
  result: Promise<Out>;
  resolve: (value: Out) => void;
  reject: (error: unknown) => void;
}

export function pendingResult<Out>(): PendingResult<Out> {
  let resolve!: (value: Out) => void;
  let reject!: (error: unknown) => void;
  const result = new Promise<Out>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A caller that cancels and walks away must not crash the process with an unhandled rejection.
  result.catch(() => undefined);
  return { result, resolve, reject };
}

/** The refusal when `waiting` jobs already fill the queue (maxQueue). */
export function queueFull(waiting: number): UserInputError {
  return new UserInputError(`LISA is busy: ${waiting} requests are waiting. Please try again in a few minutes.`, 'queue_full');
}
