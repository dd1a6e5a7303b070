/**
 * The engine's pixel work on worker threads (pixel-tasks.ts): decoding an
 * image file and making CLIP's and SAM's pixel values from it, in row bands
 * side by side. The engine makes its own, with the threads it wants, and
 * closes it with itself.
 */
import os from 'node:os';
import { type ScratchBuffer, scratchSharedBuffer, withSharedBytes } from '../memory/scratch.js';
import { WorkerPool, settledBands } from '../workers/pool.js';
import type { PackManifest } from './manifest.js';
import { samResizeShape } from './preprocess.js';
import type { DecodedImage } from './types.js';

export class PixelWorkers {
  private readonly pool: WorkerPool;
  /** Image files on their way to the decoder (see withSharedBytes). */
  private readonly files: ScratchBuffer<SharedArrayBuffer> = scratchSharedBuffer();
  /** The SAM bands' shared output, reused turn after turn (see scratch.ts). */
  private readonly samShared: ScratchBuffer<SharedArrayBuffer> = scratchSharedBuffer();

  /** At least two threads: CLIP's and SAM's preprocessing side by side. */
  constructor(threads = Math.max(2, Math.min(4, os.availableParallelism()))) {
    this.pool = new WorkerPool(new URL('./pixel-entry.js', import.meta.url), threads);
  }

  /** Pixels in shared memory: `into`'s when it is large enough (see pixel-tasks.ts). */
  async decode(bytes: Uint8Array, maxPixels: number, into?: SharedArrayBuffer): Promise<DecodedImage> {
    return withSharedBytes(this.files, bytes, (file) => this.pool.run<DecodedImage>('decode', { bytes: file, maxPixels, into }));
  }

  /** decode(), and CLIP's pixel values made with it on the same thread (see pixel-tasks.ts), with the ms they took. */
  async decodeWithClip(
    bytes: Uint8Array,
    maxPixels: number,
    into: SharedArrayBuffer | undefined,
    clip: PackManifest['clip'],
  ): Promise<{ image: DecodedImage; clip: Float32Array; clipMs: number }> {
    return withSharedBytes(this.files, bytes, (file) => this.pool.run('decodeWithClip', { bytes: file, maxPixels, into, clip }));
  }

  /**
   * CLIP pixel values, in `parts` row bands on as many threads: the LLM waits
   * for them, so they are queued before SAM's bands and finish first.
   */
  async clip(image: DecodedImage, clip: PackManifest['clip'], parts = 2): Promise<Float32Array> {
    const shared = new Float32Array(new SharedArrayBuffer(3 * clip.size * clip.size * 4));
    await settledBands(clip.size, parts, (from, to) => this.pool.run('clipRows', { image, clip, out: shared, from, to }));
    // onnxruntime-node refuses tensors over shared memory (CLIP's input is small: a copy is nothing).
    return shared.slice();
  }

  /**
   * SAM pixel values (the resized size inside the frame is samResizeShape()),
   * written into `target` (3 x size x size floats, any previous content) and
   * returned. The rows are split in `parts` tasks writing one shared buffer: on
   * a first turn this is the longest pixel job, and threads would otherwise idle.
   */
  async sam(image: DecodedImage, sam: PackManifest['sam'], target: Float32Array, parts = 2): Promise<Float32Array> {
    const planeSize = sam.size * sam.size;
    if (target.length !== 3 * planeSize) throw new Error(`SAM target holds ${target.length} floats, expected ${3 * planeSize}`);
    const shared = this.samShared.take(3 * planeSize * 4);
    try {
      const out = new Float32Array(shared, 0, 3 * planeSize);
      const rows = samResizeShape(image.width, image.height, sam.size).height;
      await settledBands(rows, parts, (from, to) => this.pool.run('samRows', { image, sam, out, from, to }));
      // onnxruntime-node refuses tensors over shared memory, hence the copy into
      // warm memory; the rows below the image are padding.
      const filled = rows * sam.size;
      for (let c = 0; c < 3; c++) {
        const base = c * planeSize;
        target.set(out.subarray(base, base + filled), base);
        target.fill(0, base + filled, base + planeSize);
      }
      return target;
    } finally {
      this.samShared.give(shared);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
