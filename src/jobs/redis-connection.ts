/**
 * How the BullMQ submitter and worker talk to Redis when it is slow to come,
 * goes away, or comes back: start-up waits a bounded time and names the URL;
 * later the clients reconnect by themselves for as long as the object lives,
 * and stop trying once it is closed, so closing never waits on a Redis that is gone.
 */
import type { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { redisUnreachable } from '../errors.js';

/** queue.connectTimeoutMs when the caller gives none. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Reconnect attempts back off up to this pause, so a returning Redis is noticed soon. */
const MAX_RECONNECT_DELAY_MS = 2_000;

/** The connection settings every client of one submitter or worker shares. */
export class Reconnects {
  private stopped = false;

  constructor(
    readonly url: string,
    private readonly connectTimeoutMs: number,
  ) {}

  /** ioredis options (also BullMQ's `connection`): retry until stop(). */
  options(): { url: string; connectTimeout: number; retryStrategy: (attempt: number) => number | null } {
    return {
      url: this.url,
      connectTimeout: Math.min(this.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
      retryStrategy: (attempt: number) => (this.stopped ? null : Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS)),
    };
  }

  /**
   * A client for short commands that fail at once while Redis is unreachable
   * (no offline queue, no retry of a command cut off by a disconnect, a
   * bounded wait for each reply), so callers can answer "busy" instead of
   * waiting. Not for blocking commands.
   */
  promptClient(): Redis {
    const client = new Redis(this.url, {
      ...this.options(),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A connection that died without closing (a network cut) would otherwise hold a command until the OS notices.
      commandTimeout: this.connectTimeoutMs,
    });
    // Failures reach the callers of commands; an unhandled 'error' event would end the process.
    client.on('error', () => undefined);
    return client;
  }

  /** After this, clients give up at their next reconnect attempt. */
  stop(): void {
    this.stopped = true;
  }
}

/** Resolves once the client is connected and ready for commands. */
export function clientReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const ready = () => {
      client.off('end', end);
      resolve();
    };
    const end = () => {
      client.off('ready', ready);
      reject(new Error('connection closed'));
    };
    client.once('ready', ready);
    client.once('end', end);
  });
}

/**
 * Waits for `ready` at most `timeoutMs`; rejects with a config error naming
 * `field` and the URL and giving the last connection error the `emitters`
 * reported (e.g. "connect ECONNREFUSED 127.0.0.1:6379").
 */
export async function reachWithin<T>(
  field: string,
  url: string,
  timeoutMs: number,
  emitters: EventEmitter[],
  ready: Promise<T>,
): Promise<T> {
  let lastError: Error | undefined;
  const record = (error: Error) => {
    lastError = error;
  };
  for (const emitter of emitters) emitter.on('error', record);
  let timer: NodeJS.Timeout | undefined;
  const reason = () => lastError?.message ?? `no answer within ${timeoutMs} ms`;
  try {
    return await Promise.race([
      ready.catch((error: unknown) => {
        throw redisUnreachable(field, url, lastError ? reason() : (error as Error).message);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(redisUnreachable(field, url, reason())), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    for (const emitter of emitters) emitter.off('error', record);
  }
}

/** Errors that mean "Redis is not there right now", as opposed to a refused or broken command. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { name?: string; message?: string } | undefined;
  if (e?.name === 'MaxRetriesPerRequestError') return true;
  return /Connection is closed|enableOfflineQueue|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Command timed out|Socket closed/i.test(
    e?.message ?? '',
  );
}
