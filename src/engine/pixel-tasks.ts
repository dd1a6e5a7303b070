/**
 * The engine's pixel work, run on worker threads (pixel-workers.ts): every
 * per-pixel loop of a turn would otherwise hold up the engine's thread. Each
 * task takes and returns plain, cloneable data.
 */
import { collectSoonAfter, gc } from '../memory/collect.js';
import { type TaskFailure, guarded, moving } from '../workers/task.js';
import { decodeImage } from './image.js';
import type { PackManifest } from './manifest.js';
import { clipPixelRows, preprocessScratch, samPixelRows } from './preprocess.js';
import type { DecodedImage } from './types.js';

/**
 * Decoded pixels live in shared memory: the CLIP and SAM tasks (and the
 * overlay's drawing, render/overlay-tasks.ts) read them on other threads
 * without a copy each. `into`, when large enough, is used instead of a new
 * buffer (the caller hands back the last image's: fresh memory costs page
 * faults, see scratch.ts); the result's buffer is whichever was used.
 */
export function decode(input: { bytes: Uint8Array; maxPixels: number; into?: SharedArrayBuffer }): Promise<DecodedImage | TaskFailure> {
  return guarded(async () => {
    const image = await decodeImage(input.bytes, { maxPixels: input.maxPixels });
    const size = image.data.byteLength;
    const memory = input.into && input.into.byteLength >= size ? input.into : new SharedArrayBuffer(size);
    const shared: DecodedImage = { width: image.width, height: image.height, data: new Uint8Array(memory, 0, size) };
    shared.data.set(image.data);
    // sharp's output is garbage now, but V8 frees such native buffers only at
    // its next collection, many decodes later; until then every decode writes
    // fresh memory, a page fault per 4 KiB. A young-generation collection
    // frees it now, and the allocator hands the same memory to the next decode.
    gc({ type: 'minor' });
    collectSoonAfter(shared.data.byteLength);
    return shared;
  });
}

/**
 * decode(), and CLIP's pixel values made from the pixels just decoded (still
 * in this core's cache), in the same task: the language model's path starts
 * with them, and as bands of their own they cost the turn two more thread
 * hops. The values come back moved, with what they took.
 */
export function decodeWithClip(input: { bytes: Uint8Array; maxPixels: number; into?: SharedArrayBuffer; clip: PackManifest['clip'] }) {
  return guarded(async () => {
    const image = await decode(input);
    if ('failed' in image) return image;
    const started = performance.now();
    const values = new Float32Array(3 * input.clip.size * input.clip.size);
    clipPixelRows(image, input.clip, values, 0, input.clip.size, scratch);
    return moving({ image, clip: values, clipMs: performance.now() - started }, [values.buffer]);
  });
}

/** Rows [from, to) of CLIP's pixel values, written into `out` (shared memory). */
export function clipRows(input: { image: DecodedImage; clip: PackManifest['clip']; out: Float32Array; from: number; to: number }) {
  return guarded(() => {
    clipPixelRows(input.image, input.clip, input.out, input.from, input.to, scratch);
    collectSoonAfter(input.image.data.byteLength);
  });
}

/** Rows [from, to) of SAM's pixel values, written into `out` (shared memory). */
export function samRows(input: { image: DecodedImage; sam: PackManifest['sam']; out: Float32Array; from: number; to: number }) {
  return guarded(() => {
    samPixelRows(input.image, input.sam, input.out, input.from, input.to, scratch);
    collectSoonAfter(input.image.data.byteLength);
  });
}

/** This thread's preprocessing memory, reused task after task. */
const scratch = preprocessScratch();
