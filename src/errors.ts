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
  | 'cancelled'
  | 'no_image'
  | 'download_failed'
  | 'checkpoint_missing'
  | 'checkpoint_invalid'
  | 'checkpoint_unsafe'
  | 'command_line_too_long'
  | 'output_invalid';

export function isUserInputError(error: unknown): error is UserInputError {
  return error instanceof UserInputError;
}
