import { UserInputError } from '../errors.js';
import type { IncomingTurn } from './types.js';

export interface LimitSettings {
  maxQuestionChars: number;
  perUserPerMinute: number;
  /** "<surface>:<id>" entries; empty means everyone / everywhere. */
  allowedUsers: readonly string[];
  allowedChannels: readonly string[];
}

/** The question itself: trimmed, not empty, not longer than the limit. */
export function checkQuestion(text: string, limits: LimitSettings): string {
  const question = text.trim();
  if (question === '') {
    throw new UserInputError('The question is empty. Ask something about the image, e.g. "what here would keep me dry?"', 'question_empty');
  }
  const chars = characterCount(question);
  if (chars > limits.maxQuestionChars) throw questionTooLong(limits.maxQuestionChars, chars);
  return question;
}

/** Characters as a person counts them (code points): an emoji is one, not two UTF-16 units. */
export function characterCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** The one "too long" message, wherever the question is refused; `chars` when it was counted. */
export function questionTooLong(limit: number, chars?: number): UserInputError {
  const counted = chars === undefined ? '' : ` (this one has ${chars.toLocaleString('en-US')})`;
  return new UserInputError(
    `The question is too long: the limit is ${limit.toLocaleString('en-US')} characters${counted}. Please shorten it.`,
    'question_too_long',
  );
}

export function checkAllowed(turn: IncomingTurn, limits: LimitSettings): void {
  if (limits.allowedUsers.length > 0 && !limits.allowedUsers.includes(`${turn.surface}:${turn.user.id}`)) {
    throw new UserInputError("Sorry, you're not on this bot's list of allowed users.", 'not_allowed');
  }
  if (turn.channelId !== undefined && limits.allowedChannels.length > 0 && !limits.allowedChannels.includes(`${turn.surface}:${turn.channelId}`)) {
    throw new UserInputError("Sorry, this bot doesn't answer in this channel.", 'not_allowed');
  }
}

const WINDOW_MS = 60_000;

/**
 * Per-user sliding window over the last minute. In memory: the surfaces run in
 * one process even when inference scales out to GPU workers.
 */
export class RateLimiter {
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request for `user`, or refuses it with the wait time. */
  take(user: string): void {
    const now = this.now();
    const times = (this.recent.get(user) ?? []).filter((t) => now - t < WINDOW_MS);
    if (times.length >= this.perMinute) {
      const waitSeconds = Math.max(1, Math.ceil((times[0]! + WINDOW_MS - now) / 1000));
      this.recent.set(user, times);
      throw new UserInputError(
        `You're asking faster than I can answer: at most ${this.perMinute} questions a minute. Try again in ${waitSeconds} s.`,
        'rate_limited',
      );
    }
    times.push(now);
    this.recent.set(user, times);
    if (this.recent.size > 10_000) this.prune(now);
  }

  private prune(now: number): void {
    for (const [user, times] of this.recent) {
      if (times.every((t) => now - t >= WINDOW_MS)) this.recent.delete(user);
    }
  }
}
