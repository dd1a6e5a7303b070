/**
 * Discord's side of a Reply: message text within 2000 characters, split on
 * line or word boundaries (code fences closed and reopened across parts), and
 * the overlay as a file on the first part.
 */
import type { Reply } from '../../src/assistant/types.js';

/** Characters per message (content). */
export const MESSAGE_LIMIT = 2000;
/** Bytes per uploaded file without a server boost; interactions say their own (`attachment_size_limit`). */
export const DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024;

export const GENERIC_ERROR = 'Something went wrong on my side; please try again.';
export const RESTARTING = 'LISA is restarting; please ask again in a moment.';

export interface OutgoingFile {
  attachment: Buffer;
  name: string;
  contentType?: string;
}

export interface OutgoingMessage {
  content: string;
  files: OutgoingFile[];
}

const FENCE = '```';

/** The messages that carry a reply; `prefix` (e.g. a user mention) opens the first one. */
export function formatReply(reply: Reply, prefix = ''): OutgoingMessage[] {
  let body = reply.text.trim();
  if (reply.demoNotice) body += `\n-# ${reply.demoNotice}`;
  const parts = splitMessage(`${prefix}${body}`.trim());
  const files: OutgoingFile[] = reply.overlay
    ? [{ attachment: reply.overlay.data, name: reply.overlay.filename, contentType: reply.overlay.contentType }]
    : [];
  if (parts.length === 0) parts.push(files.length > 0 ? '' : '…');
  return parts.map((content, i) => ({ content, files: i === 0 ? files : [] }));
}

/** A short text (an error, a refusal) as one message. */
export function formatText(text: string, prefix = ''): OutgoingMessage[] {
  return splitMessage(`${prefix}${text}`.trim()).map((content) => ({ content, files: [] }));
}

/**
 * Splits text into messages of at most `limit` characters: at the last line
 * break in the second half of the window, else at the last space, else hard
 * (never inside a surrogate pair). An open code fence is closed at the end of
 * a part and reopened at the start of the next.
 */
export function splitMessage(text: string, limit = MESSAGE_LIMIT): string[] {
  const budget = limit - FENCE.length - 1; // room to close a fence
  const parts: string[] = [];
  let rest = text;
  let reopen = '';
  while (rest.length > 0) {
    rest = reopen + rest;
    if (rest.length <= limit) {
      parts.push(rest);
      break;
    }
    const cut = cutPoint(rest, budget);
    let part = rest.slice(0, cut).trimEnd();
    rest = rest.slice(cut).replace(/^\s*\n/, '').replace(/^ +/, '');
    const fence = openFence(part);
    if (fence !== undefined) {
      part += `\n${FENCE}`;
      reopen = `${FENCE}${fence}\n`;
    } else {
      reopen = '';
    }
    if (part.trim().length > 0) parts.push(part);
  }
  return parts;
}

function cutPoint(text: string, budget: number): number {
  const line = text.lastIndexOf('\n', budget);
  if (line >= budget / 2) return line;
  const window = text.slice(0, budget + 1);
  const space = Math.max(window.lastIndexOf(' '), window.lastIndexOf('\t'));
  if (space >= budget / 4) return space;
  if (line > 0) return line;
  const code = text.charCodeAt(budget - 1);
  return code >= 0xd800 && code <= 0xdbff ? budget - 1 : budget;
}

/** The language tag of a code fence left open at the end of `text`, or undefined. */
function openFence(text: string): string | undefined {
  let open: string | undefined;
  for (const match of text.matchAll(/```([^\s`]*)/g)) open = open === undefined ? match[1] : undefined;
  return open;
}
