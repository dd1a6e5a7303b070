import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Keyv } from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { UserInputError, redisUnreachable, storeUnavailable } from '../errors.js';
import type { Specifics } from './backend-specifics.js';

/** How long opening the store waits for Redis to answer when the caller gives no timeout. */
export const STORE_CONNECT_TIMEOUT_MS = 10_000;
/** Reconnect attempts back off up to this pause, so a returning Redis is noticed soon. */
const MAX_RECONNECT_DELAY_MS = 2_000;
const LOCK_TTL_MS = 10_000;
const LOCK_WAIT_MS = 15_000;
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * The Redis store: keyv over one node-redis client that this module owns.
 * Opening waits at most `connectTimeoutMs` and names the URL when Redis does
 * not answer. Later, commands fail at once while Redis is unreachable (no
 * offline queue) and read 'queue_unavailable' ("…can't reach its store…");
 * the client reconnects by itself.
 */
export async function openRedisStore(
  url: string,
  field: string,
  connectTimeoutMs = STORE_CONNECT_TIMEOUT_MS,
): Promise<{ keyv: Keyv; specifics: Specifics }> {
  let closing = false;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.min(connectTimeoutMs, STORE_CONNECT_TIMEOUT_MS),
      reconnectStrategy: (retries: number) => (closing ? false : Math.min((retries + 1) * 100, MAX_RECONNECT_DELAY_MS)),
    },
  });
  let lastError: Error | undefined;
  // Recorded for the start-up message; later failures reach the callers of commands.
  client.on('error', (error: Error) => (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      }),
    ]);
  } catch (error) {
    closing = true;
    client.destroy();
    throw redisUnreachable(field, url, (lastError ?? (error as Error)).message);
  } finally {
    clearTimeout(timer);
  }

  // Unlike keyv's own client, this one never gives up reconnecting, so the adapter never reconnects it itself.
  const adapter = new KeyvRedis(client, { throwOnConnectError: true, throwOnErrors: true });
  const keyv = new Keyv(adapter, { namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
  const claim = async (key: string, ttlMs: number) =>
    (await client.set(key, '1', { condition: 'NX', expiration: { type: 'PX', value: Math.max(1, Math.round(ttlMs)) } })) === 'OK';

  return {
    keyv,
    specifics: {
      // Base64 text through keyv: node-redis hands values back as strings unless asked per command.
      getBytes: async (key) => {
        const raw = await keyv.getRaw<string>(key);
        if (raw === undefined || typeof raw.value !== 'string') return undefined;
        const buffer = Buffer.from(raw.value, 'base64');
        return { value: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), expires: raw.expires ?? undefined };
      },
      setBytes: async (key, value, ttlMs) => {
        const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
        if (!(await keyv.set(key, text, ttlMs))) throw new Error(`store write failed for ${key}`);
      },
      claim,
      lock: async (key, fn) => {
        const lockKey = `locks:${key}`;
        const token = randomUUID();
        const deadline = Date.now() + LOCK_WAIT_MS;
        for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
          const acquired = await client.set(lockKey, token, { condition: 'NX', expiration: { type: 'PX', value: LOCK_TTL_MS } });
          if (acquired === 'OK') break;
          if (Date.now() > deadline) throw new Error(`timed out waiting for the lock on ${key}`);
          await sleep(delay);
        }
        try {
          return await fn();
        } finally {
          // Only our own lock: if it expired and someone else holds it now, leave theirs alone.
          // A release that fails (Redis gone) leaves the lock to expire; fn's outcome stands.
          await client.eval(RELEASE_SCRIPT, { keys: [lockKey], arguments: [token] }).catch(() => undefined);
        }
      },
      unavailable: (error) => (error instanceof UserInputError || client.isReady ? undefined : storeUnavailable(error)),
      close: async () => {
        closing = true;
        // A graceful close would wait for a Redis that is away; then the socket is just dropped.
        if (client.isReady) await client.close().catch(() => undefined);
        if (client.isOpen) client.destroy();
      },
    },
  };
}
