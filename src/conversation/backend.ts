import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { UserInputError } from '../errors.js';
import { openRedisStore } from './backend-redis.js';
import type { Specifics } from './backend-specifics.js';

/**
 * One keyv connection shared by the session, image and dedupe stores. Each
 * store prefixes its keys with its namespace (`sessions:`, `images:`,
 * `dedupe:`) itself, because keyv's own namespace lives on the adapter and
 * would be overwritten when two Keyv instances share one adapter.
 */
export interface KvBackend {
  readonly kind: 'sqlite' | 'redis';
  /** The value and its expiry (epoch ms), or undefined when absent or expired. */
  getEntry<T>(key: string): Promise<{ value: T; expires: number | undefined } | undefined>;
  get<T>(key: string): Promise<T | undefined>;
  /** One write of the whole value: readers see the old value or the new one, never a mix. */
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
  /**
   * Binary values (image files), kept apart from the JSON ones: stored as
   * bytes where the store can (SQLite), so a photo costs no base64 and no
   * JSON on this thread.
   */
  getBytes(key: string): Promise<{ value: Uint8Array; expires: number | undefined } | undefined>;
  setBytes(key: string, value: Uint8Array, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Atomically claims `key` for `ttlMs`; true only for the first claimer (across processes on Redis). */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Runs `fn` while holding a lock on `key`: an in-process mutex, plus on Redis
   * a lock key (SET NX PX) so that processes sharing the Redis serialise too.
   */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** store.sessionIdleMinutes: a session untouched this long is gone, and so are its images. */
  idleMinutes: number;
}

export function idleMs(options: StoreOptions): number {
  if (!(options.idleMinutes > 0)) throw new RangeError(`idleMinutes must be positive, got ${options.idleMinutes}`);
  return options.idleMinutes * 60_000;
}

/**
 * Opens `sqlite://<file>` (relative to process.cwd()) or `redis://...`; `field`
 * names the config key in errors. A Redis that does not answer within
 * `connectTimeoutMs` is a config error naming the URL; one that goes away
 * later makes operations fail at once with 'queue_unavailable' until it is back.
 */
export async function openKvBackend(url: string, field = 'store.url', options: { connectTimeoutMs?: number } = {}): Promise<KvBackend> {
  if (url.startsWith('sqlite://')) return openSqlite(url, field);
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { keyv, specifics } = await openRedisStore(url, field, options.connectTimeoutMs);
    return new KeyvBackend('redis', keyv, new LocalLocks(), specifics);
  }
  throw new UserInputError(
    `${field} must be sqlite://<file> or redis://host:port/db, got ${JSON.stringify(url)}`,
    'config_invalid',
  );
}

// Expired rows are only dropped by keyv when read; sweep the rest so the file does not grow forever.
const SWEEP_INTERVAL_MS = 10 * 60_000;
/** SQLite's table for binary values (keyv's holds JSON text only). */
const BYTES_TABLE = 'lisa_bytes';

async function openSqlite(url: string, field: string): Promise<KvBackend> {
  const file = url.slice('sqlite://'.length);
  if (file === '') {
    throw new UserInputError(`${field}: sqlite:// needs a file, e.g. sqlite://data/lisa-bot.sqlite`, 'config_invalid');
  }
  const absolute = file === ':memory:' ? file : path.resolve(file);
  if (absolute !== ':memory:') mkdirSync(path.dirname(absolute), { recursive: true });
  // busyTimeout: a second process (`lisa-bot ask` beside `serve`) may hold the write lock briefly.
  const adapter = new KeyvSqlite({ uri: `sqlite://${absolute}`, busyTimeout: 5000 });
  const keyv = new Keyv(adapter, { namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
  const sweep = async () => {
    await adapter.query(
      `DELETE FROM ${adapter.opts.table} WHERE json_valid(value) AND json_extract(value, '$.expires') < ?`,
      Date.now(),
    );
    await adapter.query(`DELETE FROM ${BYTES_TABLE} WHERE expires < ?`, Date.now());
  };
  try {
    // Write-ahead log, synced at checkpoints rather than on every commit: a turn's
    // image write (~1 MB) was slow with the default rollback journal, and
    // WAL lets a reader (`lisa-bot ask`) proceed while `serve` writes. A power
    // cut may lose the last turns; an application crash loses nothing.
    if (absolute !== ':memory:') {
      await adapter.query('PRAGMA journal_mode = WAL');
      await adapter.query('PRAGMA synchronous = NORMAL');
    }
    await adapter.query(`CREATE TABLE IF NOT EXISTS ${BYTES_TABLE} (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires INTEGER NOT NULL)`);
    await sweep();
  } catch (error) {
    throw new Error(`${field}: cannot open SQLite database ${absolute}: ${(error as Error).message}`, { cause: error });
  }
  const timer = setInterval(() => {
    // Housekeeping only: expiry is enforced on every read, so a failed sweep changes nothing visible.
    sweep().catch(() => undefined);
  }, SWEEP_INTERVAL_MS);
  timer.unref();

  const locks = new LocalLocks();
  return new KeyvBackend('sqlite', keyv, locks, {
    getBytes: async (key) => {
      const rows = (await adapter.query(`SELECT value, expires FROM ${BYTES_TABLE} WHERE key = ?`, key)) as { value: Buffer; expires: number }[];
      const row = rows[0];
      if (!row || row.expires <= Date.now()) return undefined;
      return { value: new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength), expires: row.expires };
    },
    setBytes: async (key, value, ttlMs) => {
      await adapter.query(
        `INSERT INTO ${BYTES_TABLE} (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires`,
        key,
        Buffer.from(value.buffer, value.byteOffset, value.byteLength),
        Date.now() + ttlMs,
      );
    },
    claim: (key, ttlMs) =>
      locks.run(key, async () => {
        if ((await keyv.getRaw(key)) !== undefined) return false;
        await keyv.set(key, 1, ttlMs);
        return true;
      }),
    lock: (_key, fn) => fn(),
    close: async () => {
      clearInterval(timer);
      await keyv.disconnect();
    },
  });
}

class KeyvBackend implements KvBackend {
  private closed = false;

  constructor(
    readonly kind: 'sqlite' | 'redis',
    private readonly keyv: Keyv,
    private readonly locks: LocalLocks,
    private readonly specifics: Specifics,
  ) {}

  async getEntry<T>(key: string): Promise<{ value: T; expires: number | undefined } | undefined> {
    const raw = await this.guard(() => this.keyv.getRaw<T>(key));
    if (raw === undefined || raw.value === undefined) return undefined;
    return { value: raw.value, expires: raw.expires ?? undefined };
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.getEntry<T>(key))?.value;
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    if (!(await this.guard(() => this.keyv.set(key, value, ttlMs)))) throw new Error(`store write failed for ${key}`);
  }

  getBytes(key: string) {
    return this.guard(() => this.specifics.getBytes(key));
  }

  setBytes(key: string, value: Uint8Array, ttlMs: number) {
    return this.guard(() => this.specifics.setBytes(key, value, ttlMs));
  }

  async delete(key: string): Promise<void> {
    await this.guard(() => this.keyv.delete(key));
  }

  claim(key: string, ttlMs: number): Promise<boolean> {
    return this.guard(() => this.specifics.claim(key, ttlMs));
  }

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(key, () => this.guard(() => this.specifics.lock(key, fn)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.specifics.close();
  }

  /** Store failures while the store is unreachable become the user's "busy, try again". */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.specifics.unavailable?.(error) ?? error;
    }
  }
}

/** A per-key promise chain: callers on one key run one at a time, in call order. */
class LocalLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    // Forget idle keys so the map does not grow with every conversation ever seen.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
