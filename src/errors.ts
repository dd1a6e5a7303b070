/**
 * Errors that are the user's to fix (a bad file, a too-long question, a missing
 * model pack). Every surface shows `message` as it is, so it must read well on
 * its own; the CLI exits with code 2 for these and 1 for anything else.
 */
export class UserInputError extends Error {
  override readonly name = 'UserInputError';
  constructor(
    message: string,
    /** A stable machine-readable reason, for APIs and tests. */
    readonly code: UserInputErrorCode,
  ) {
    super(message);
  }
}

export type UserInputErrorCode =
  | 'image_missing'
  | 'image_empty'
  | 'image_unsupported'
  | 'image_corrupt'
  | 'image_too_large'
  | 'image_too_many_pixels'
  | 'question_empty'
  | 'question_too_long'
  | 'prompt_too_long'
  | 'model_pack_missing'
  | 'model_pack_invalid'
  | 'config_invalid'
  | 'not_allowed'
  | 'rate_limited'
  | 'queue_full'
  | 'queue_unavailable'
  | 'cancelled'
  | 'no_image'
  | 'download_failed'
  | 'checkpoint_missing'
  | 'checkpoint_invalid'
  | 'checkpoint_unsafe'
  | 'command_line_too_long'
  | 'output_invalid';

/**
 * Redis (the job queue, or the store shared with workers) is unreachable right
 * now. Users see "try again"; the clients reconnect by themselves. `cause` (the
 * connection error) is for logs only, never shown.
 */
export function queueUnavailable(cause?: unknown): UserInputError {
  return unavailable("it can't reach its job queue", cause);
}

export function storeUnavailable(cause?: unknown): UserInputError {
  return unavailable("it can't reach its store", cause);
}

function unavailable(what: string, cause: unknown): UserInputError {
  const error = new UserInputError(`LISA is busy right now: ${what}. Please try again in a minute.`, 'queue_unavailable');
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** The answer to a turn this process will not finish or start: it is shutting down (a restart or deploy). */
export function restarting(): UserInputError {
  return new UserInputError('LISA is restarting. Please ask again in a moment.', 'cancelled');
}

/** At start: Redis did not answer at `url` (shown without its password) within the connect timeout. */
export function redisUnreachable(field: string, url: string, reason: string): UserInputError {
  return new UserInputError(`${field}: cannot reach ${redactUrl(url)} (${reason})`, 'config_invalid');
}

/** A connection URL as it may appear in messages and logs: any password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

export function isUserInputError(error: unknown): error is UserInputError {
  return error instanceof UserInputError;
}

/**
 * An error as it crosses to another thread: structured clone keeps a standard
 * error's message but not a UserInputError's class or code, so every thread
 * hop (the engine thread, the pixel workers) sends this and revives it.
 */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export function errorToWire(error: unknown): WireError {
  if (error instanceof UserInputError) return { name: error.name, message: error.message, code: error.code };
  const e = error as Error | undefined;
  return { name: e?.name ?? 'Error', message: e?.message ?? String(error), stack: e?.stack };
}

export function errorFromWire(wire: WireError): Error {
  if (wire.name === 'UserInputError') return new UserInputError(wire.message, wire.code as UserInputErrorCode);
  const revived = new Error(wire.message);
  revived.name = wire.name;
  if (wire.stack) revived.stack = wire.stack;
  return revived;
}
