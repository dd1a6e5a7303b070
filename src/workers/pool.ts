import os from 'node:os';
import { Piscina } from 'piscina';
import type { PackManifest } from '../engine/manifest.js';
import { samResizeShape } from '../engine/preprocess.js';
import type { BoundingBox, DecodedImage, RleMask } from '../engine/types.js';
import type { OverlayFormat } from '../render/formats.js';
import type { RenderedImage } from '../render/overlay.js';
import { scratchSharedBuffer, withSharedBytes } from './scratch.js';
import type { UserErrorValue } from './tasks.js';
import { UserInputError, type UserInputErrorCode } from '../errors.js';

/**
 * The pixel workers, shared by everything in the process (engine and
 * renderer) and reference-counted: the last user to release it stops the
 * threads, so a CLI run exits and an idle server holds none for long.
 */
export class PixelPool {
  constructor(private readonly piscina: Piscina) {}

  /** Pixels in shared memory: `into`'s when it is large enough (see tasks.ts). */
  async decode(bytes: Uint8Array, maxPixels: number, into?: SharedArrayBuffer): Promise<DecodedImage> {
    return withSharedBytes(this.files, bytes, async (file) => unwrap(await this.piscina.run({ bytes: file, maxPixels, into }, { name: 'decode' })));
  }

  /** Image files on their way to the decoder (see withSharedBytes). */
  private readonly files = scratchSharedBuffer();

  /**
   * CLIP pixel values, in `parts` row bands on as many threads: the LLM waits
   * for them, so they are queued before SAM's bands and finish first.
   */
  async clip(image: DecodedImage, clip: PackManifest['clip'], parts = 2): Promise<Float32Array> {
    const shared = new Float32Array(new SharedArrayBuffer(3 * clip.size * clip.size * 4));
    await settledBands(clip.size, parts, (from, to) => this.piscina.run({ image, clip, out: shared, from, to }, { name: 'clipRows' }));
    // onnxruntime-node refuses tensors over shared memory (600 KB: a copy is nothing).
    return shared.slice();
  }

  /** The SAM bands' shared output, reused turn after turn (see scratch.ts). */
  private readonly samShared = scratchSharedBuffer();

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
      await settledBands(rows, parts, (from, to) => this.piscina.run({ image, sam, out, from, to }, { name: 'samRows' }));
      // onnxruntime-node refuses tensors over shared memory, hence the copy
      // (~2 ms into warm memory); the rows below the image are padding.
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

  /** Draws on `image`, which must stay unchanged until this settles. */
  async overlay(
    image: DecodedImage,
    segments: { rle: RleMask; rgb: [number, number, number]; bbox: BoundingBox }[],
    format: OverlayFormat,
  ): Promise<Omit<RenderedImage, 'data'> & { data: Uint8Array }> {
    return this.piscina.run({ image, segments, format }, { name: 'overlay' });
  }
}

/**
 * Runs `band` over [0, rows) cut in `parts`, and settles only when every band
 * has: a failed band must not let the caller reuse a buffer another still writes.
 */
async function settledBands(rows: number, parts: number, band: (from: number, to: number) => Promise<unknown>): Promise<void> {
  const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((rows * i) / parts));
  const results = await Promise.allSettled(bounds.slice(0, -1).map((from, i) => (from < bounds[i + 1]! ? band(from, bounds[i + 1]!) : undefined)));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Throws again, as a UserInputError, what a task handed back as one (see tasks.ts). */
function unwrap<T>(value: T | UserErrorValue): T {
  if (value && typeof value === 'object' && 'userError' in value) {
    throw new UserInputError(value.userError.message, value.userError.code as UserInputErrorCode);
  }
  return value as T;
}

let shared: { pool: PixelPool; piscina: Piscina; users: number } | undefined;

/**
 * `maxThreads` counts when this call creates the pool (the first user in this
 * thread): the engine wants two (CLIP and SAM preprocessing side by side), the
 * decoder and renderer beside an engine thread one (see runtime.ts: every extra
 * thread contends with ONNX Runtime for the cores).
 */
export function acquirePixelPool(maxThreads = Math.max(2, Math.min(4, os.availableParallelism()))): { pool: PixelPool; release: () => Promise<void> } {
  if (!shared) {
    const piscina = new Piscina({
      filename: new URL('./entry.js', import.meta.url).href,
      minThreads: 0,
      maxThreads,
      // A thread takes ~0.7 s to start (TypeScript, sharp), which a user would wait
      // for on the next question; chat turns come minutes apart, so threads stay
      // for 10 idle minutes, then exit so that an idle server holds no pixel memory.
      idleTimeout: 10 * 60_000,
      // With atomics, an idle worker blocks in Atomics.wait inside its last task's
      // handler frame: that task's pixels and result stay referenced, and no timer,
      // collection or scratch release of the worker can run, until the next task.
      atomics: 'disabled',
    });
    shared = { pool: new PixelPool(piscina), piscina, users: 0 };
  }
  const entry = shared;
  entry.users++;
  let released = false;
  return {
    pool: entry.pool,
    async release() {
      if (released) return;
      released = true;
      entry.users--;
      if (entry.users === 0 && shared === entry) {
        shared = undefined;
        await entry.piscina.destroy();
      }
    },
  };
}
