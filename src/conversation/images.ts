import { createHash } from 'node:crypto';
import { UserInputError } from '../errors.js';
import { type KvBackend, type StoreOptions, idleMs, openKvBackend } from './backend.js';

/**
 * Image files by sha256. Jobs and sessions carry the hash, never the bytes, so
 * a GPU worker on another host reads the image from here (ARCHITECTURE.md).
 */
export interface ImageStore {
  /** Stores the file once however often it is put; returns its sha256 hex. */
  put(bytes: Uint8Array): Promise<string>;
  /** The exact bytes that were put, or undefined when unknown or expired. */
  get(hash: string): Promise<Uint8Array | undefined>;
  /** Whether the image is still stored, without decoding it. */
  has(hash: string): Promise<boolean>;
  close(): Promise<void>;
}

const IMAGES = 'images:';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The same, hashed on libuv's thread pool: a 20 MB upload would block the event loop for tens of ms. */
export async function sha256HexAsync(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await crypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

/**
 * Images live for two idle periods and every put or get that finds less than
 * one period left rewrites the entry. So an image outlives, by construction,
 * every session that still uses it (sessions live one idle period after their
 * last turn), while a re-put or a read costs a rewrite at most once per period
 * instead of on every call: images are the largest values in the store.
 *
 * Bytes are stored as base64 text: keyv serialises values as JSON, where a
 * Uint8Array would become an object of numbered keys.
 */
export async function createImageStore(target: string | KvBackend, options: StoreOptions): Promise<ImageStore> {
  const owned = typeof target === 'string';
  const backend = owned ? await openKvBackend(target) : target;
  const idle = idleMs(options);
  const ttl = 2 * idle;
  const stale = (expires: number | undefined) => expires !== undefined && expires - Date.now() < idle;

  return {
    async put(bytes) {
      if (bytes.byteLength === 0) throw new UserInputError('The image file is empty.', 'image_empty');
      const hash = await sha256HexAsync(bytes);
      const key = IMAGES + hash;
      await backend.withLock(key, async () => {
        const existing = await backend.getEntry<string>(key);
        if (existing !== undefined && !stale(existing.expires)) return;
        await backend.set(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), ttl);
      });
      return hash;
    },

    async get(hash) {
      if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
      const key = IMAGES + hash;
      const entry = await backend.getEntry<string>(key);
      if (entry === undefined) return undefined;
      if (stale(entry.expires)) {
        await backend.withLock(key, () => backend.set(key, entry.value, ttl));
      }
      const buffer = Buffer.from(entry.value, 'base64');
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    },

    async has(hash) {
      return /^[0-9a-f]{64}$/.test(hash) && (await backend.getEntry<string>(IMAGES + hash)) !== undefined;
    },

    async close() {
      if (owned) await backend.close();
    },
  };
}
