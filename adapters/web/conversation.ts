/**
 * Which conversation a request belongs to: the browser's session (a cookie the
 * server sets), keyed `web:<session id>`. The session id comes from the
 * browser, so it is checked before it becomes a key.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { conversationKey } from '../../src/conversation/keys.js';

/** A web chat conversation: the browser session's. */
export function webKey(sessionId: string): string {
  return conversationKey('web', { sessionId });
}

const SESSION_COOKIE = 'lisa_session';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** The browser's session id, when it sent a well-formed one. */
export function existingSession(req: IncomingMessage): string | undefined {
  const value = readCookie(req, SESSION_COOKIE);
  return value !== undefined && UUID.test(value) ? value : undefined;
}

/** The browser's session id; a new one (with its Set-Cookie) when it has none. */
export function ensureSession(req: IncomingMessage, res: ServerResponse): string {
  const existing = existingSession(req);
  if (existing) return existing;
  const id = randomUUID();
  // No Max-Age: the session ends with the browser; the conversation itself expires on the server.
  res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`);
  return id;
}
