import type { Segment } from '../engine/types.js';

/** A mask as kept in the session: compact (RLE), with the colour it was drawn in. */
export interface StoredSegment extends Segment {
  /** `#rrggbb`; the text reply's marker and the overlay use the same colour. */
  colour: string;
}

export interface StoredTurn {
  user: string;
  assistant: string;
  segments: StoredSegment[];
  /** sha256 hex of the image this turn was asked about (see ImageStore). */
  imageHash: string;
  /** Epoch milliseconds. */
  at: number;
  /**
   * The request it answers (the job id): a platform's redelivery handled by a
   * second serve process joins the same job, and must not store the turn twice.
   */
  jobId?: string;
}

export interface Session {
  key: string;
  /** The conversation's current image: the one the latest turn was about. */
  imageHash?: string;
  /** Oldest first. */
  turns: StoredTurn[];
  createdAt: number;
  updatedAt: number;
}

/**
 * The turns about the current image: the trailing run of turns whose imageHash
 * is the session's. LLaVA v1 conversations carry one image, so a new image
 * starts a new context and the earlier turns are not shown to the model.
 */
export function imageContext(session: Session): StoredTurn[] {
  const current = session.imageHash;
  if (current === undefined) return [];
  let start = session.turns.length;
  while (start > 0 && session.turns[start - 1].imageHash === current) start--;
  return session.turns.slice(start);
}

/**
 * Picks the turns to put in the prompt. `turns` is an image context with the
 * new turn last; `turns[0]` is kept whatever happens because the image is
 * spliced into its question, and then as many of the newest turns as `fits`
 * allows, dropping the oldest in between. When even [first, new] does not fit,
 * that pair is returned anyway: the caller's prompt-length check refuses it
 * with a message the user can act on.
 *
 * `fits` must be monotone (fewer turns never fit worse), which lets this make
 * O(log n) calls: each call typically tokenises a whole prompt.
 */
export function trimHistory<T>(turns: readonly T[], fits: (turns: T[]) => boolean): T[] {
  if (turns.length <= 2 || fits([...turns])) return [...turns];
  const first = turns[0];
  const withTail = (from: number) => [first, ...turns.slice(from)];
  // Search the smallest `from` in [2, n-1] whose tail fits; from = n-1 is the floor.
  let low = 2;
  let high = turns.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (fits(withTail(middle))) high = middle;
    else low = middle + 1;
  }
  return withTail(low);
}

/**
 * Bounds what one session keeps, so the session JSON rewritten on every turn
 * stays small: drops the oldest turns but never the first turn of the current
 * image context, which the next prompt needs.
 */
export function capTurns(turns: StoredTurn[], imageHash: string | undefined, max: number): StoredTurn[] {
  if (turns.length <= max) return turns;
  const context = imageContext({ key: '', imageHash, turns, createdAt: 0, updatedAt: 0 });
  const head = turns.length - context.length;
  const excess = turns.length - max;
  if (context.length === 0 || excess <= head) return turns.slice(excess);
  // The context alone is too long: keep its image turn and its newest turns.
  return [turns[head], ...turns.slice(turns.length - (max - 1))];
}
