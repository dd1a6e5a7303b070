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
import type { OverlayFormat } from '../render/formats.js';
import { renderOverlay } from '../render/overlay.js';
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
 * instead of a new buffer (the caller hands back the last image's: fresh
 * memory costs page faults, see scratch.ts); the result's buffer is whichever
 * was used.
 */
export function decode(input: { bytes: Uint8Array; maxPixels: number; into?: SharedArrayBuffer }): Promise<DecodedImage | UserErrorValue> {
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
