/**
 * Conversation keys: one per thread / reply chain / browser session. The key is
 * the only thing that ties turns together, so two conversations must never be
 * able to produce the same key: the surface and every part are restricted to a
 * charset without ':' (the separator), which makes the encoding unambiguous.
 * Each surface says what its parts are (adapters/<name>/conversation.ts); a
 * surface always passes the same number of parts, so its keys never collide
 * with each other either.
 */

import { CLI_SURFACE } from '../config/schema.js';

const partPattern = /^[A-Za-z0-9._-]{1,100}$/;

function part(name: string, value: string): string {
  if (typeof value !== 'string' || !partPattern.test(value)) {
    throw new RangeError(
      `conversation key part ${name} must be 1-100 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * `<surface>:<part>:<part>…`, the parts in the order given:
 * `conversationKey('slack', { teamId, channelId, threadTs })`. Throws a
 * RangeError naming the part that is empty, too long or has other characters.
 */
export function conversationKey(surface: string, parts: Readonly<Record<string, string>>): string {
  const named = Object.entries(parts);
  if (named.length === 0) throw new RangeError(`a ${surface} conversation key needs at least one part`);
  return [part('surface', surface), ...named.map(([name, value]) => part(name, value))].join(':');
}

/** A named conversation of `lisa-bot ask --session NAME` (the core's own surface). */
export function cliKey(name: string): string {
  return conversationKey(CLI_SURFACE, { name });
}
