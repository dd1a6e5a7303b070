/**
 * Giving large pixel memory back to the system.
 *
 * A decoded image lives in a SharedArrayBuffer that several threads see (the
 * decoder, the engine thread, the pixel workers, the main thread). Its memory
 * is freed only once every one of those threads has collected its handle, and
 * a thread that allocates little (an idle worker, the engine thread between
 * turns) may not collect for hours: each large image stayed resident long
 * after its turn, and a run of large images added up to gigabytes. So a
 * thread that has touched a large buffer collects soon after, once, off the
 * hot path. Small images never trigger it: their buffers are reused
 * (scratch.ts), and a collection costs more than it returns. Without the
 * collection the memory test's soak settles well above one decoded image
 * (docs/engine.md), so it stays: in this module only.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import sharp from 'sharp';

/**
 * libvips' operation cache is process-wide, and each thread that loads sharp
 * resets it to sharp's defaults (up to 100 operations): off in every thread
 * that imports this module. Every turn's image is a new input, so it never
 * hits, and what it holds stays resident between turns.
 */
sharp.cache(false);

/** Buffers of this size or more are worth a collection of their own. */
export const LARGE_BUFFER_BYTES = 32 * 2 ** 20;

type Gc = (options?: { type: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

/** V8's gc() (exposed here without --expose-gc on the command line, which worker threads refuse). */
export const gc: Gc = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as Gc;
})();

/**
 * How long a thread must go without touching a large buffer before it
 * collects once more. The collection right after a task misses what the rest
 * of the turn leaves behind, and an idle thread may never collect again: after
 * a run of 6000x6000 images a server held up to ~100 MB of such garbage until
 * something else ran a collection, and scratch buffers dropped after their
 * keep time (scratch.ts) were freed only by this later collection
 * (docs/memory.md).
 */
export const QUIET_COLLECT_MS = 5_000;

let pending: NodeJS.Immediate | undefined;
let quiet: NodeJS.Timeout | undefined;
let collections = 0;

/**
 * Collects this thread's garbage soon (once, however often it is asked before
 * then) when `bytes` is large: after the current task has handed its result
 * back, so the caller never waits for it; and once more when the thread has
 * gone QUIET_COLLECT_MS without a large buffer.
 */
export function collectSoonAfter(bytes: number): void {
  if (bytes < LARGE_BUFFER_BYTES) return;
  clearTimeout(quiet);
  quiet = setTimeout(() => {
    quiet = undefined;
    collections++;
    gc();
  }, QUIET_COLLECT_MS);
  quiet.unref();
  if (pending) return;
  pending = setImmediate(() => {
    pending = undefined;
    collections++;
    // No options: in Node 20, gc({ type: 'major' }) left the shared buffers allocated.
    gc();
  });
  // A collection is not a reason to keep a thread (or a CLI run) alive.
  pending.unref();
}

/** How many collections collectSoonAfter() has run in this thread (for tests). */
export function largeBufferCollections(): number {
  return collections;
}
