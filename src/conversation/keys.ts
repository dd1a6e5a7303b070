/**
 * Conversation keys: one per thread / reply chain / browser session. The key is
 * the only thing that ties turns together, so two conversations must never be
 * able to produce the same key: every part is restricted to a charset without
 * ':' (the separator), which makes the encoding unambiguous.
 */

export type Surface = 'discord' | 'slack' | 'web' | 'cli';

const partPattern = /^[A-Za-z0-9._-]{1,100}$/;

function part(name: string, value: string): string {
  if (typeof value !== 'string' || !partPattern.test(value)) {
    throw new RangeError(
      `conversation key part ${name} must be 1-100 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A Discord conversation: the channel and the message that started the reply chain. */
export function discordKey(channelId: string, rootMessageId: string): string {
  return `discord:${part('channelId', channelId)}:${part('rootMessageId', rootMessageId)}`;
}

/** A Slack conversation: a thread, named by its parent message's ts. */
export function slackKey(teamId: string, channelId: string, threadTs: string): string {
  return `slack:${part('teamId', teamId)}:${part('channelId', channelId)}:${part('threadTs', threadTs)}`;
}

/** A web chat conversation; the id comes from the browser, so it is validated like the rest. */
export function webKey(sessionId: string): string {
  return `web:${part('sessionId', sessionId)}`;
}

/** A named conversation of `lisa-bot ask --session NAME`. */
export function cliKey(name: string): string {
  return `cli:${part('name', name)}`;
}

const arity: Record<Surface, number> = { discord: 2, slack: 3, web: 1, cli: 1 };

/** The surface and parts of a key built by the functions above; undefined for anything else. */
export function parseKey(key: string): { surface: Surface; parts: string[] } | undefined {
  const [surface, ...parts] = key.split(':');
  if (!Object.hasOwn(arity, surface)) return undefined;
  const expected = arity[surface as Surface];
  if (parts.length !== expected || !parts.every((p) => partPattern.test(p))) return undefined;
  return { surface: surface as Surface, parts };
}

export function isConversationKey(key: string): boolean {
  return parseKey(key) !== undefined;
}
