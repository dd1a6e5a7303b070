/**
 * Big per-turn buffers, kept for the next turn instead of freed.
 *
 * A fresh buffer costs a page fault per 4 KiB the first time it is written,
 * and that is slow on virtual machines that hand freed memory back to the
 * host: first writes to fresh memory cost far more than second writes, so a
 * SAM input (12 MiB) allocated per turn paid for its page faults before any
 * arithmetic. One idle buffer is kept; a caller that finds
 * it taken (a turn still running) gets a fresh one, so correctness never
 * depends on timing. Reused memory is not cleared: callers write every byte
 * they later read.
 */
import { LARGE_BUFFER_BYTES, collectSoonAfter } from './collect.js';

/**
 * An idle buffer this large (a large image's masks, contour map or work area)
 * is kept only LARGE_KEEP_MS, then dropped and collected. Held for minutes in
 * each worker, a 6000x6000 image's ~70 MB of them stayed resident after its
 * turn; the fixed-size ones (the 12 MiB SAM input) and a photo's stay below.
 */
export const LARGE_SCRATCH_BYTES = 16 * 2 ** 20;
/** Long enough for a run of large images and a quick follow-up (also how long decoded-images.ts keeps a large image). */
export const LARGE_KEEP_MS = 30_000;

export class ScratchBuffer<B extends ArrayBuffer | SharedArrayBuffer = ArrayBuffer> {
  private idle: B | undefined;
  private dropTimer: NodeJS.Timeout | undefined;

  /**
   * @param allocate makes a buffer of exactly this many bytes
   * @param keepBytes buffers larger than this are dropped on return, not kept
   *   (a one-off huge image should not pin its memory for good)
   * @param keepMs an idle buffer is dropped after this long unused, like the
   *   pixel threads (pool.ts): an idle server holds no pixel memory for long
   */
  constructor(
    private readonly allocate: (bytes: number) => B,
    private readonly keepBytes = 64 * 2 ** 20,
    private readonly keepMs = 10 * 60_000,
  ) {}

  /** A buffer of at least `bytes`, owned by the caller until give() (or forever: it may just be dropped). */
  take(bytes: number): B {
    const idle = this.idle;
    if (idle && idle.byteLength >= bytes) {
      this.idle = undefined;
      return idle;
    }
    return this.allocate(bytes);
  }

  /** Offers `buffer` back for the next take(); the caller must not touch it afterwards. */
  give(buffer: B): void {
    // A transferred ArrayBuffer reads as 0 bytes: nothing left to keep.
    if (buffer.byteLength === 0 || buffer.byteLength > this.keepBytes) return;
    if (!this.idle || this.idle.byteLength < buffer.byteLength) this.idle = buffer;
    clearTimeout(this.dropTimer);
    const large = this.idle.byteLength >= LARGE_SCRATCH_BYTES;
    this.dropTimer = setTimeout(
      () => {
        this.idle = undefined;
        // Dropped memory is freed only by this thread's collections, which an idle thread does not run.
        if (large) collectSoonAfter(LARGE_BUFFER_BYTES);
      },
      large ? Math.min(this.keepMs, LARGE_KEEP_MS) : this.keepMs,
    );
    this.dropTimer.unref();
  }
}

export function scratchArrayBuffer(keepBytes?: number): ScratchBuffer<ArrayBuffer> {
  return new ScratchBuffer((bytes) => new ArrayBuffer(bytes), keepBytes);
}

export function scratchSharedBuffer(keepBytes?: number): ScratchBuffer<SharedArrayBuffer> {
  return new ScratchBuffer((bytes) => new SharedArrayBuffer(bytes), keepBytes);
}

/**
 * Runs `use` on `bytes` in shared memory: `bytes` itself when it is shared
 * already, else a copy in `scratch`'s buffer, which `use` owns until it settles.
 *
 * Why: a Uint8Array posted to another thread is cloned, into memory freshly
 * allocated on both sides: a photo posted to a pixel worker held the sender's
 * event loop and arrived several times later than through shared memory. A
 * copy into reused memory costs next to nothing.
 */
export async function withSharedBytes<T>(
  scratch: ScratchBuffer<SharedArrayBuffer>,
  bytes: Uint8Array,
  use: (shared: Uint8Array) => Promise<T>,
): Promise<T> {
  if (bytes.buffer instanceof SharedArrayBuffer) return use(bytes);
  const memory = scratch.take(bytes.byteLength);
  const shared = new Uint8Array(memory, 0, bytes.byteLength);
  shared.set(bytes);
  try {
    return await use(shared);
  } finally {
    scratch.give(memory);
  }
}
