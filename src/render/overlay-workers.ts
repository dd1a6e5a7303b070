/**
 * The renderer's pixel work on worker threads (overlay-tasks.ts): decoding
 * the image an overlay is drawn on, and drawing and encoding the overlay.
 * Made by whoever draws overlays (the runtime, for the assistant), with the
 * threads it wants, and closed by it.
 */
import type { BoundingBox, DecodedImage, RleMask } from '../engine/types.js';
import { type ScratchBuffer, scratchSharedBuffer, withSharedBytes } from '../memory/scratch.js';
import { WorkerPool } from '../workers/pool.js';
import type { OverlayFormat } from './formats.js';
import type { RenderedImage } from './overlay.js';

export class OverlayWorkers {
  private readonly pool: WorkerPool;
  /** Image files on their way to the decoder (see withSharedBytes). */
  private readonly files: ScratchBuffer<SharedArrayBuffer> = scratchSharedBuffer();

  constructor(threads = 1) {
    this.pool = new WorkerPool(new URL('./overlay-entry.js', import.meta.url), threads);
  }

  /** Pixels in shared memory: `into`'s when it is large enough. */
  async decode(bytes: Uint8Array, maxPixels: number, into?: SharedArrayBuffer): Promise<DecodedImage> {
    return withSharedBytes(this.files, bytes, (file) => this.pool.run<DecodedImage>('decode', { bytes: file, maxPixels, into }));
  }

  /** Draws on `image`, which must stay unchanged until this settles. */
  async overlay(
    image: DecodedImage,
    segments: { rle: RleMask; rgb: [number, number, number]; bbox: BoundingBox }[],
    format: OverlayFormat,
  ): Promise<Omit<RenderedImage, 'data'> & { data: Uint8Array }> {
    return this.pool.run('overlay', { image, segments, format });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
