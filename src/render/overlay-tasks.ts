/**
 * The renderer's pixel work, run on worker threads (overlay-workers.ts):
 * decoding and drawing would otherwise block the event loop that serves the
 * chat surfaces. Each task takes and returns plain, cloneable data.
 */
import { decodeRle } from '../engine/mask.js';
import type { BoundingBox, DecodedImage, RleMask } from '../engine/types.js';
import { collectSoonAfter } from '../memory/collect.js';
import { scratchArrayBuffer } from '../memory/scratch.js';
import { guarded, moving } from '../workers/task.js';
import type { OverlayFormat } from './formats.js';
import { overlayScratch, renderOverlay } from './overlay.js';

/** The same decode as the engine's (into shared memory, reusing `into`). */
export { decode } from '../engine/pixel-tasks.js';

/** Draws on `image` (shared memory, read only: see DecodedImages) and encodes the result. */
export function overlay(input: { image: DecodedImage; segments: { rle: RleMask; rgb: [number, number, number]; bbox: BoundingBox }[]; format: OverlayFormat }) {
  return guarded(async () => {
    const { image } = input;
    const pixels = image.width * image.height;
    const maskMemory = scratch.masks.take(pixels * input.segments.length);
    try {
      const rendered = await renderOverlay(
        image,
        input.segments.map((s, i) => ({ mask: decodeRle(s.rle, new Uint8Array(maskMemory, i * pixels, pixels)), rgb: s.rgb, bbox: s.bbox })),
        { format: input.format, scratch },
      );
      // Moved, not cloned: the encoded image owns its memory (see RenderedImage).
      return moving(rendered, [rendered.data.buffer]);
    } finally {
      scratch.masks.give(maskMemory);
      collectSoonAfter(image.data.byteLength);
    }
  });
}

/** This thread's overlay memory, and the decoded masks, reused from one overlay to the next (see scratch.ts). */
const scratch = { ...overlayScratch(), masks: scratchArrayBuffer() };
