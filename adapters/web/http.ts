/**
 * Small HTTP helpers for the web chat: errors with a status, JSON responses,
 * the security headers every response carries, request checks (origin,
 * content type) and a capped JSON body reader. The session cookie is in
 * conversation.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type UserInputErrorCode, isUserInputError } from '../../src/errors.js';

/** A refusal with its HTTP status; `message` is shown to the user as it is. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra headers, e.g. `Allow` for 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface PublicError {
  code: string;
  message: string;
}

/** The page: scripts, styles and fetches from this origin only; the overlay comes from here, previews from blob:. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Everything that is not the page (JSON, images, events) needs no sources at all. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox";

export function setSecurityHeaders(res: ServerResponse, page = false): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Content-Security-Policy', page ? PAGE_CSP : API_CSP);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(data.length),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(data);
}

export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
}

/** The HTTP status for a refusal from the assistant. */
const STATUS_BY_CODE: Partial<Record<UserInputErrorCode, number>> = {
  image_too_large: 413,
  image_empty: 422,
  image_unsupported: 422,
  image_corrupt: 422,
  image_too_many_pixels: 422,
  download_failed: 422,
  not_allowed: 403,
  rate_limited: 429,
  queue_full: 503,
  queue_unavailable: 503,
  cancelled: 409,
  model_pack_missing: 503,
  model_pack_invalid: 503,
  config_invalid: 503,
};

const INTERNAL_MESSAGE = 'Something went wrong while answering. Please try again; if it keeps happening, check the server log.';

/** What the user sees for any error: a UserInputError's own message, a generic one for anything else. */
export function publicError(error: unknown): PublicError & { status: number } {
  if (error instanceof HttpError) return { status: error.status, code: error.code, message: error.message };
  if (isUserInputError(error)) return { status: STATUS_BY_CODE[error.code] ?? 400, code: error.code, message: error.message };
  return { status: 500, code: 'internal', message: INTERNAL_MESSAGE };
}

// ---- request checks --------------------------------------------------------

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || host.startsWith('127.');
}

/**
 * Refuses requests whose Host is not this machine when the server is bound to
 * loopback (DNS rebinding), and cross-origin POSTs (a page elsewhere driving
 * the chat with the user's cookie).
 */
export function checkOrigin(req: IncomingMessage, boundToLoopback: boolean): void {
  const host = req.headers.host;
  if (!host) throw new HttpError(400, 'bad_request', 'The request has no Host header.');
  if (boundToLoopback) {
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    if (!isLoopback(name.toLowerCase())) {
      throw new HttpError(421, 'wrong_host', 'This chat only answers on its local address (127.0.0.1 or localhost).');
    }
  }
  const origin = req.headers.origin;
  if (req.method === 'POST' && origin !== undefined && origin !== 'null') {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (originHost !== host) throw new HttpError(403, 'cross_origin', 'Requests from other sites are not accepted.');
  }
}

/** The media type of the request without parameters, lower case. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function requireMediaType(req: IncomingMessage, expected: string): void {
  const actual = mediaType(req);
  if (actual !== expected) {
    const article = /^[aeiou]/i.test(expected) ? 'an' : 'a';
    throw new HttpError(415, 'unsupported_media_type', `Expected ${article} ${expected} request${actual ? `, got ${actual}` : ''}.`);
  }
}

/** Reads a small JSON body (empty means `{}`), refusing anything over `maxBytes`. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new HttpError(413, 'body_too_large', `The request body is over ${maxBytes} bytes.`, { Connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, 'body_too_large', `The request body is over ${maxBytes} bytes.`, { Connection: 'close' });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'bad_json', 'The request body is not valid JSON.');
  }
}

/** "20 MB", "195 KB", "512 bytes": sizes in messages, decimal like the assistant's. */
export function formatBytes(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)} KB`;
  return `${n} bytes`;
}
