/**
 * Slack text in and out: what users see, and the translation between Slack's
 * message markup and plain text. Every user-visible string of the adapter is
 * here, so the wording stays consistent.
 */

export const THINKING = '_Thinking…_';
export const DOWNLOADING = '_Fetching the image…_';
export const WORKING_ON_IT = 'Working on it…';
export const NO_IMAGE_HINT = 'Attach an image (or ask in a thread that has one) and ask again.';
export const GENERIC_ERROR = 'Something went wrong on my side; please try again.';
export const MISSING_SCOPE_HINT =
  'Slack sent a login page instead of the file: the app is probably missing the files:read scope ' +
  '(add it, or recreate the app from config/slack-manifest.yaml, and reinstall it).';
export const UPLOAD_FAILED =
  '_(I could not upload the overlay image; the app may be missing the files:write scope.)_';

export function queuedText(position: number): string {
  return position <= 1 ? '_Next in line…_' : `_Waiting in line (position ${position})…_`;
}

export function noImageForCommand(command: string): string {
  return (
    'There is no image to work on in this channel yet. Mention me with an image ' +
    `(\`@LISA what is this?\` plus an upload), or put a link to an image file of this workspace in the command: ` +
    `\`${command} <file link> <question>\`.`
  );
}

export function commandUsage(command: string): string {
  return `Ask me about the most recent image in this channel: \`${command} <question>\` (or \`${command} <file link> <question>\`).`;
}

export const NOT_IN_CHANNEL =
  'I cannot post in this conversation. Invite me first (`/invite @LISA`), then try again.';

/** Slack messages hold 40,000 characters; past ~4,000 Slack folds them. The limit belongs to the adapter. */
export const MAX_MESSAGE_CHARS = 4000;

export function truncate(text: string, max = MAX_MESSAGE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The three characters Slack asks apps to escape in message text. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function unescapeEntities(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * The question as the user meant it: the bot's own mention removed, other
 * mentions, channels and links rendered as plain text, entities unescaped.
 */
export function plainText(slackText: string, botUserId?: string): string {
  const replaced = slackText.replace(/<([^<>]*)>/g, (_whole, inner: string) => {
    const [target, label] = splitLabel(inner);
    if (target.startsWith('@')) {
      if (botUserId !== undefined && target === `@${botUserId}`) return '';
      return label !== undefined ? `@${label.replace(/^@/, '')}` : target;
    }
    if (target.startsWith('#')) return label !== undefined ? `#${label}` : target;
    if (target.startsWith('!')) {
      if (label !== undefined) return label;
      const name = target.slice(1).split('^')[0];
      return `@${name}`;
    }
    return label ?? target;
  });
  return unescapeEntities(replaced).replace(/[ \t]{2,}/g, ' ').trim();
}

function splitLabel(inner: string): [string, string | undefined] {
  const bar = inner.indexOf('|');
  return bar === -1 ? [inner, undefined] : [inner.slice(0, bar), inner.slice(bar + 1)];
}

/** Whether the message text mentions the user (Slack writes `<@U123>` or `<@U123|name>`). */
export function mentions(slackText: string | undefined, userId: string | undefined): boolean {
  if (!slackText || !userId) return false;
  return slackText.includes(`<@${userId}>`) || slackText.includes(`<@${userId}|`);
}

/** Every link in a message or command text: `<url>`, `<url|label>`, or a bare URL (commands without link escaping). */
export function findLinks(slackText: string): { url: string; raw: string }[] {
  const links: { url: string; raw: string }[] = [];
  const pattern = /<(https?:\/\/[^<>|\s]+)(?:\|[^<>]*)?>|(https?:\/\/[^\s<>]+)/g;
  for (const match of slackText.matchAll(pattern)) {
    links.push({ url: unescapeEntities(match[1] ?? match[2]), raw: match[0] });
  }
  return links;
}
