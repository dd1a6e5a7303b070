/**
 * Pixel work that runs on worker threads: every per-pixel loop of a turn
 * (decoding, resampling, normalising, overlay drawing) would
 * otherwise block the event loop that serves the chat surfaces for tens of ms
 * per turn. Each task takes and returns plain, cloneable data.
 */
import { Piscina } from 'piscina';
import { UserInputError } from '../errors.js';
import { decodeImage } from '../engine/image.js';
import type { PackManifest } from '../engine/manifest.js';
import { decodeRle } from '../engine/mask.js';
import { clipPixelRows, samPixelRows } from '../engine/preprocess.js';
import type { BoundingBox, DecodedImage, RleMask } from '../engine/types.js';
import { type OverlayFormat, renderOverlay } from '../render/overlay.js';
import { collectSoonAfter, gc } from './memory.js';
import { scratchArrayBuffer } from './scratch.js';

/**
 * A UserInputError loses its class and code crossing threads (structured
 * clone keeps only standard errors), so tasks hand it back as a value and the
 * pool throws it again on the calling side.
 */
export interface UserErrorValue {
  userError: { message: string; code: string };
}

async function guarded<T>(work: () => Promise<T> | T): Promise<T | UserErrorValue> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof UserInputError) return { userError: { message: error.message, code: error.code } };
    throw error;
  }
}

/** Hands `value` back with `transfer` moved, not copied (the main thread must not pay for a clone). */
function moving<T>(value: T, transfer: ArrayBufferLike[]): T {
  return Piscina.move({
    get [Piscina.transferableSymbol]() {
      return transfer;
    },
    get [Piscina.valueSymbol]() {
      return value;
    },
  } as never) as unknown as T;
}

/**
 * Decoded pixels live in shared memory: the CLIP and SAM tasks read them on
 * other threads without a copy each. `into`, when large enough, is used
 * instead of a new buffer (the engine hands back the last turn's: fresh
 * memory costs page faults, see scratch.ts); the result's buffer is whichever
 * was used.
 */
export function decode(input: {
  bytes: Uint8Array;
  maxPixels: number;
  into?: SharedArrayBuffer;
  clip?: PackManifest['clip'];
}): Promise<DecodedImage | UserErrorValue> {
  return guarded(async () => {
    const shared = await decodeToShared(input.bytes, input.maxPixels, input.into, input.clip);
    // sharp's output (6 MB for a 1080p photo) is garbage now, but V8 frees such
    // native buffers only at its next collection, many decodes later; until then
    // every decode writes fresh memory, ~1500 page faults (~23 ms of a 35 ms
    // decode on the CI VM). A young-generation collection (~0.5 ms) frees it now,
    // and the allocator hands the same memory to the next decode.
    gc({ type: 'minor' });
    collectSoonAfter(shared.data.byteLength);
    return shared;
  });
}

/**
 * With `clip`, CLIP's pixel values are made here too, from the pixels just
 * decoded (still in this core's cache), into the same memory after them: the
 * LLM's path starts with them, and made on the engine's workers they cost a
 * 1080p turn two more thread hops and ~10 ms of wall time for ~4 ms of work,
 * while the engine thread, idle, waited.
 */
async function decodeToShared(bytes: Uint8Array, maxPixels: number, into: SharedArrayBuffer | undefined, clip?: PackManifest['clip']): Promise<DecodedImage> {
  const image = await decodeImage(bytes, { maxPixels });
  const size = image.data.byteLength;
  const clipAt = Math.ceil(size / 4) * 4;
  const clipFloats = clip ? 3 * clip.size * clip.size : 0;
  const total = clipAt + clipFloats * 4;
  const memory = into && into.byteLength >= total ? into : new SharedArrayBuffer(total);
  const decoded: DecodedImage = { width: image.width, height: image.height, data: new Uint8Array(memory, 0, size) };
  if (clip) {
    const started = performance.now();
    const values = new Float32Array(memory, clipAt, clipFloats);
    clipPixelRows(image, clip, values, 0, clip.size);
    decoded.clip = { settings: clip, values, ms: performance.now() - started };
  }
  decoded.data.set(image.data);
  return decoded;
}

/** Rows [from, to) of CLIP's pixel values, written into `out` (shared memory). */
export function clipRows(input: { image: DecodedImage; clip: PackManifest['clip']; out: Float32Array; from: number; to: number }): void {
  clipPixelRows(input.image, input.clip, input.out, input.from, input.to);
  collectSoonAfter(input.image.data.byteLength);
}

/** Rows [from, to) of SAM's pixel values, written into `out` (shared memory). */
export function samRows(input: { image: DecodedImage; sam: PackManifest['sam']; out: Float32Array; from: number; to: number }): void {
  samPixelRows(input.image, input.sam, input.out, input.from, input.to);
  collectSoonAfter(input.image.data.byteLength);
}

/** Draws on `image` (shared memory, read only: see DecodedImages) and encodes the result. */
export async function overlay(input: {
  image: DecodedImage;
  segments: { rle: RleMask; rgb: [number, number, number]; bbox: BoundingBox }[];
  format: OverlayFormat;
}) {
  const { image } = input;
  const pixels = image.width * image.height;
  const maskMemory = overlayMasks.take(pixels * input.segments.length);
  try {
    const rendered = await renderOverlay(
      image,
      input.segments.map((s, i) => ({ mask: decodeRle(s.rle, new Uint8Array(maskMemory, i * pixels, pixels)), rgb: s.rgb, bbox: s.bbox })),
      { format: input.format },
    );
    // Moved, not cloned: the encoded image owns its memory (see RenderedImage).
    return moving(rendered, [rendered.data.buffer]);
  } finally {
    overlayMasks.give(maskMemory);
    collectSoonAfter(image.data.byteLength);
  }
}

/** The decoded masks of an overlay, reused from one overlay to the next (see scratch.ts). */
const overlayMasks = scratchArrayBuffer();
