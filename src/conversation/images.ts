import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { UserInputError } from '../errors.js';
import { type KvBackend, type StoreOptions, idleMs, openKvBackend } from './backend.js';

/**
 * Image files by sha256. Jobs and sessions carry the hash, never the bytes, so
 * a GPU worker on another host reads the image from here (ARCHITECTURE.md).
 */
export interface ImageStore {
  /**
   * Stores the file once however often it is put; returns its sha256 hex. The
   * caller must not change `bytes` afterwards. `hash`, when the caller has it
   * already (from sha256HexAsync), saves hashing the file twice.
   */
  put(bytes: Uint8Array, hash?: string): Promise<string>;
  /** The exact bytes that were put (not to be changed), or undefined when unknown or expired. */
  get(hash: string): Promise<Uint8Array | undefined>;
  /** Whether the image is still stored, without decoding it. */
  has(hash: string): Promise<boolean>;
  close(): Promise<void>;
}

const IMAGES = 'images:';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Files up to this size are hashed on the spot: cheaper than webcrypto's own
 * cost per call in a turn, and a turn's decode starts only once its
 * image has a hash.
 */
const HASH_ON_THE_SPOT_BYTES = 4 * 2 ** 20;

/** The same, larger files hashed on libuv's thread pool: hashing a large upload on the spot would block the event loop noticeably. */
export async function sha256HexAsync(bytes: Uint8Array): Promise<string> {
  if (bytes.byteLength <= HASH_ON_THE_SPOT_BYTES) return sha256Hex(bytes);
  return Buffer.from(await crypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

/**
 * Images live for two idle periods and every put or get that finds less than
 * one period (plus the memory window below) left rewrites the entry. So an
 * image outlives, by construction, every session that still uses it (sessions
 * live one idle period after their last turn), while a re-put or a read costs
 * a rewrite at most once per period instead of on every call: images are the
 * largest values in the store.
 *
 * Images put or read in the last minute are also kept in this process's
 * memory (bounded): a turn reads its image right after storing it (the job
 * carries only the hash) and every follow-up reads it twice, each read a
 * round of JSON and base64 for a photo. Bytes are content-addressed, so a copy in
 * memory can never disagree with the store; the expiry rule above counts the
 * memory window, so an image served from memory is still in the store.
 *
 * Bytes go through the backend's binary values (KvBackend.setBytes), not
 * keyv's JSON: base64 and JSON for a photo held the event loop on every
 * upload, which a burst of uploads turned into long stalls.
 */
export async function createImageStore(target: string | KvBackend, options: StoreOptions): Promise<ImageStore> {
  const owned = typeof target === 'string';
  const backend = owned ? await openKvBackend(target) : target;
  const idle = idleMs(options);
  const ttl = 2 * idle;
  const memoryMs = Math.min(RECENT_MS, idle / 2);
  const stale = (expires: number | undefined) => expires !== undefined && expires - Date.now() < idle + memoryMs;
  const recent = new LRUCache<string, Uint8Array>({
    maxSize: RECENT_BYTES,
    sizeCalculation: (bytes) => Math.max(1, bytes.byteLength),
    ttl: memoryMs,
    // The window counts from the last check against the store, never from a hit in
    // memory, on the store's clock (expiry is wall-clock time).
    updateAgeOnGet: false,
    perf: { now: () => Date.now() },
    ttlResolution: 0,
    ttlAutopurge: true,
  });

  return {
    async put(bytes, known) {
      if (bytes.byteLength === 0) throw new UserInputError('The image file is empty.', 'image_empty');
      const hash = known ?? (await sha256HexAsync(bytes));
      if (recent.has(hash)) return hash;
      const key = IMAGES + hash;
      await backend.withLock(key, async () => {
        const existing = await backend.getBytes(key);
        if (existing !== undefined && !stale(existing.expires)) return;
        await backend.setBytes(key, bytes, ttl);
      });
      recent.set(hash, bytes);
      return hash;
    },

    async get(hash) {
      if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
      const remembered = recent.get(hash);
      if (remembered) return remembered;
      const key = IMAGES + hash;
      const entry = await backend.getBytes(key);
      if (entry === undefined) return undefined;
      if (stale(entry.expires)) {
        await backend.withLock(key, () => backend.setBytes(key, entry.value, ttl));
      }
      recent.set(hash, entry.value);
      return entry.value;
    },

    async has(hash) {
      return /^[0-9a-f]{64}$/.test(hash) && (recent.has(hash) || (await backend.getBytes(IMAGES + hash)) !== undefined);
    },

    async close() {
      recent.clear();
      if (owned) await backend.close();
    },
  };
}

/** How long, at most, an image checked against the store is served from memory. */
const RECENT_MS = 60_000;
/** Memory for those images: a few dozen photos. */
const RECENT_BYTES = 64 * 2 ** 20;
