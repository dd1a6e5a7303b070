/**
 * The task side of a WorkerPool (pool.ts): what a task module uses to hand
 * back its result. Tasks take and return plain, cloneable data.
 */
import { Piscina } from 'piscina';
import { type WireError, errorToWire } from '../errors.js';

/**
 * A failed task, handed back as a value: thrown across threads, an error
 * loses its class and code (a UserInputError's message must reach the user
 * as it is), so the pool throws it again from this.
 */
export interface TaskFailure {
  failed: WireError;
}

export function isTaskFailure(value: unknown): value is TaskFailure {
  return value !== null && typeof value === 'object' && 'failed' in value;
}

/** `work`'s result, or its failure as a value. */
export async function guarded<T>(work: () => Promise<T> | T): Promise<T | TaskFailure> {
  try {
    return await work();
  } catch (error) {
    return { failed: errorToWire(error) };
  }
}

/** Hands `value` back with `transfer` moved, not copied (the calling thread must not pay for a clone). */
export function moving<T>(value: T, transfer: ArrayBufferLike[]): T {
  return Piscina.move({
    get [Piscina.transferableSymbol]() {
      return transfer;
    },
    get [Piscina.valueSymbol]() {
      return value;
    },
  } as never) as unknown as T;
}
