/**
 * An image through LISA's two image encoders: decoded (unless the caller did),
 * preprocessed for CLIP and SAM on the pixel workers side by side, the vision
 * encoder run now and the SAM encoder as a promise. The SAM encoder runs while
 * the LLM decodes (they are independent) and is awaited only for masks.
 */
import { UserInputError } from '../errors.js';
import type { ImageEmbeddings } from './caches.js';
import type { PackManifest } from './manifest.js';
import type { LoadedPack } from './pack.js';
import { samResizeShape } from './preprocess.js';
import { floatData, floatTensor } from './tensors.js';
import type { ChatRequest, StageTimings } from './types.js';
import type { PixelPool } from '../workers/pool.js';
import { collectSoonAfter } from '../workers/memory.js';
import { scratchArrayBuffer, scratchSharedBuffer } from '../workers/scratch.js';

export class ImageEncoders {
  /** Settles when the latest encode's preprocessing no longer reads its decoded pixels. */
  pixelReads: Promise<unknown> = Promise.resolve();
  /** The SAM encoder's input (12 MiB for SAM's 1024 frame), reused turn after turn: see scratch.ts. */
  private readonly samInput = scratchArrayBuffer();
  /** The vision encoder's input when the caller made CLIP's values (600 KB), reused likewise. */
  private readonly clipInput = scratchArrayBuffer();
  /** Decoded pixels, needed only until both preprocessings have read them; reused likewise. */
  private readonly decodedPixels = scratchSharedBuffer();

  constructor(
    private readonly pack: LoadedPack,
    private readonly pool: PixelPool,
    private readonly maxImagePixels: number,
  ) {}

  /** CLIP features (with samEmbeddings still empty), and SAM's embeddings to come. */
  async encode(request: ChatRequest, timings: StageTimings): Promise<{ features: ImageEmbeddings; sam: Promise<Float32Array> }> {
    const { manifest, sessions } = this.pack;
    const pool = this.pool;
    const started = performance.now();
    const decoded = request.decoded ?? (await pool.decode(request.image, this.maxImagePixels, this.decodedPixels.take(0)));
    timings.imageDecode = performance.now() - started;
    // Before any pixel work starts: nothing may still be reading the pixels when this throws.
    const samShape = samResizeShape(decoded.width, decoded.height, manifest.sam.size);
    if (samShape.width === 0 || samShape.height === 0) {
      if (!request.decoded) this.decodedPixels.give(decoded.data.buffer as SharedArrayBuffer);
      throw tooThin(decoded.width, decoded.height, manifest.sam.size);
    }
    const preprocessStart = performance.now();
    // CLIP first: it leads to the LLM, the longer path whenever the encoders are fast.
    // Made already where the caller decoded the image with this model's settings.
    const madeClip = decoded.clip && sameClipSettings(decoded.clip.settings, manifest.clip) ? decoded.clip : undefined;
    const clipMemory = madeClip ? this.clipInput.take(madeClip.values.byteLength) : undefined;
    const clipPixels = madeClip && clipMemory ? Promise.resolve(copyInto(clipMemory, madeClip.values)) : pool.clip(decoded, manifest.clip);
    const resized = samResizeShape(decoded.width, decoded.height, manifest.sam.size);
    const samFloats = 3 * manifest.sam.size * manifest.sam.size;
    const samInput = this.samInput.take(samFloats * 4);
    const samPixels = pool.sam(decoded, manifest.sam, new Float32Array(samInput, 0, samFloats));
    this.pixelReads = Promise.allSettled([clipPixels, samPixels]);
    // Our own decode's memory is given back once both preprocessings are done with it, whatever the outcome.
    if (!request.decoded) {
      void this.pixelReads.then(() => {
        this.decodedPixels.give(decoded.data.buffer as SharedArrayBuffer);
        collectSoonAfter(decoded.data.buffer.byteLength); // a large one is not kept: see memory.ts
      });
    }
    const sam = samPixels
      .then(async (pixels) => {
        timings.samPreprocess = performance.now() - preprocessStart;
        const samStarted = performance.now();
        const out = await sessions.samImageEncoder.run({
          pixel_values: floatTensor('float32', pixels, [1, 3, manifest.sam.size, manifest.sam.size]),
        });
        timings.samEncoder = performance.now() - samStarted;
        return out.image_embeddings!.data as Float32Array;
      })
      // Given back only once the encoder is done with it, whatever happened to the chat.
      .finally(() => this.samInput.give(samInput));
    sam.catch(() => undefined); // awaited later; keep an early failure from being "unhandled"
    const clipInput = await clipPixels;
    timings.clipPreprocess = performance.now() - preprocessStart;
    const visionStarted = performance.now();
    let vision: Awaited<ReturnType<typeof sessions.visionEncoder.run>>;
    try {
      vision = await sessions.visionEncoder.run({
        pixel_values: floatTensor('float32', clipInput, [1, 3, manifest.clip.size, manifest.clip.size]),
      });
    } finally {
      if (clipMemory) this.clipInput.give(clipMemory);
    }
    timings.visionEncoder = performance.now() - visionStarted;
    const features: ImageEmbeddings = {
      clipFeatures: floatData(vision.image_features!),
      samEmbeddings: new Float32Array(0),
      original: { width: decoded.width, height: decoded.height },
      resized,
    };
    return { features, sam };
  }
}

/**
 * SAM scales the longest side to `size` and rounds the other, to 0 beyond a
 * 2 x size aspect ratio; the reference fails there too (an empty resize).
 */
function tooThin(width: number, height: number, size: number): UserInputError {
  return new UserInputError(
    `The image is ${width} x ${height} pixels: too thin for the model, which scales its longest side to ${size} pixels ` +
      `and would leave the shortest under one pixel. Send one whose long side is at most ${2 * size} times its short side.`,
    'image_unsupported',
  );
}

function sameClipSettings(a: PackManifest['clip'], b: PackManifest['clip']): boolean {
  return a.size === b.size && a.resample === b.resample && a.mean.every((v, i) => v === b.mean[i]) && a.std.every((v, i) => v === b.std[i]);
}

/** `values` copied into `memory` (onnxruntime-node refuses tensors over shared memory). */
function copyInto(memory: ArrayBuffer, values: Float32Array): Float32Array {
  const out = new Float32Array(memory, 0, values.length);
  out.set(values);
  return out;
}
