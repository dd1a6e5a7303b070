/**
 * Decoded images by content hash, in shared memory (the pixel worker that
 * draws an overlay reads them without a copy), so that the overlays of a
 * conversation's turns decode its image once.
 *
 * Pixels are leased: a buffer is recycled for another image only when nobody
 * holds it, so a late reader can never see another image's pixels.
 */
import type { DecodedImage } from '../engine/types.js';
import type { OverlayWorkers } from './overlay-workers.js';
import { LARGE_BUFFER_BYTES, collectSoonAfter } from '../memory/collect.js';
import { LARGE_KEEP_MS, scratchSharedBuffer } from '../memory/scratch.js';

export interface DecodedImageLease {
  image: DecodedImage;
  /** Once only; the pixels must not be read afterwards. */
  release(): void;
}

export interface DecodedImagesOptions {
  /** Images over this many pixels are refused before decoding (limits.maxImagePixels). */
  maxPixels: number;
}

/**
 * Of the images nobody holds, only the most recent is kept (whatever its size:
 * it is the likeliest next one). Keeping more saves little, since an overlay's
 * decode runs beside the chat, and each kept image is one less recycled
 * buffer: decoding into fresh memory is several times slower.
 */
const KEEP_MS = 10 * 60_000; // then even that one goes: an idle server holds no pixels
// A large image (see memory.ts) is kept only LARGE_KEEP_MS (scratch.ts), long
// enough for its own turn's overlay and a quick follow-up: held for minutes, a
// run of them would keep hundreds of MB resident between turns for a small
// chance of a reuse.

interface Entry {
  hash: string;
  pixels: Promise<DecodedImage>;
  /** Set once decoded. */
  image?: DecodedImage;
  users: number;
}

export class DecodedImages {
  /** Least recently used first. */
  private readonly entries = new Map<string, Entry>();
  /** One spare buffer from an evicted image: fresh memory costs a page fault per 4 KiB (see scratch.ts). */
  private readonly spare = scratchSharedBuffer();
  private dropTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: Pick<OverlayWorkers, 'decode'>,
    private readonly options: DecodedImagesOptions,
  ) {}

  /** True when `hash` is decoded or being decoded. */
  has(hash: string): boolean {
    return this.entries.has(hash);
  }

  /** The pixels of `bytes` (whose sha256 is `hash`), decoded at most once while kept. */
  async acquire(hash: string, bytes: Uint8Array): Promise<DecodedImageLease> {
    const entry = this.entry(hash, bytes);
    entry.users++;
    let image: DecodedImage;
    try {
      image = await entry.pixels;
    } catch (error) {
      entry.users--;
      throw error;
    }
    let released = false;
    return {
      image,
      release: () => {
        if (released) return;
        released = true;
        entry.users--;
        this.trim();
        this.touch();
      },
    };
  }

  /** Starts decoding `bytes` unless it is kept already; a failure is reported by the next acquire(). */
  prefetch(hash: string, bytes: Uint8Array): void {
    this.entry(hash, bytes);
  }

  /** Drops every image nobody holds. */
  clear(): void {
    for (const entry of [...this.entries.values()]) if (entry.users === 0) this.evict(entry);
  }

  private entry(hash: string, bytes: Uint8Array): Entry {
    const existing = this.entries.get(hash);
    if (existing) {
      // Most recently used last.
      this.entries.delete(hash);
      this.entries.set(hash, existing);
      this.touch();
      return existing;
    }
    const entry: Entry = { hash, users: 0, pixels: this.pool.decode(bytes, this.options.maxPixels, this.spare.take(0)) };
    entry.pixels.then(
      (image) => {
        entry.image = image;
        this.trim();
        this.touch();
      },
      () => {
        // Not kept: the next acquire tries again (and reports the error itself).
        if (this.entries.get(hash) === entry) this.entries.delete(hash);
      },
    );
    this.entries.set(hash, entry);
    this.touch();
    return entry;
  }

  /** Evicts every decoded image nobody holds but the newest. */
  private trim(): void {
    const newest = [...this.entries.values()].at(-1);
    for (const entry of this.entries.values()) {
      if (entry !== newest && entry.users === 0 && entry.image) this.evict(entry);
    }
  }

  private evict(entry: Entry): void {
    this.entries.delete(entry.hash);
    // Decoded pixels are views of a SharedArrayBuffer (pool.decode): offered for the next decode.
    if (entry.image && entry.users === 0) this.spare.give(entry.image.data.buffer as SharedArrayBuffer);
    // Once this thread's handle is collected too (the other threads collect their own).
    if (entry.image) collectSoonAfter(entry.image.data.buffer.byteLength);
  }

  /** The decoded bytes held here (kept images and those in use). */
  get bytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.image?.data.buffer.byteLength ?? 0;
    return total;
  }

  private touch(): void {
    clearTimeout(this.dropTimer);
    const newest = [...this.entries.values()].at(-1);
    const large = (newest?.image?.data.buffer.byteLength ?? 0) >= LARGE_BUFFER_BYTES;
    this.dropTimer = setTimeout(() => this.clear(), large ? LARGE_KEEP_MS : KEEP_MS);
    this.dropTimer.unref();
  }
}
