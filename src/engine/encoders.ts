/**
 * An image file through LISA's two image encoders: decoded and preprocessed
 * for CLIP and SAM on the pixel workers side by side, the vision encoder run
 * now and the SAM encoder as a promise, awaited only for masks (it does not
 * depend on the text). With a SAM thread (sam-thread.ts) the SAM encoder runs
 * while this thread runs the vision encoder and the language model; without
 * one, it runs here and the graphs take turns (onnxruntime-node's run() holds
 * the calling thread for a whole graph).
 */
import { UserInputError } from '../errors.js';
import type { ImageEmbeddings } from './caches.js';
import { type LoadedPack, runGraph } from './pack.js';
import { samResizeShape } from './preprocess.js';
import { floatData, floatTensor } from './tensors.js';
import type { StageTimings } from './types.js';
import { collectSoonAfter } from '../memory/collect.js';
import { scratchArrayBuffer, scratchSharedBuffer } from '../memory/scratch.js';
import type { PixelWorkers } from './pixel-workers.js';
import type { SamEncoderThread } from './sam-thread.js';

export class ImageEncoders {
  /** The SAM encoder's input (12 MiB for SAM's 1024 frame), reused turn after turn: see scratch.ts. */
  private readonly samInput = scratchArrayBuffer();
  /** Decoded pixels, needed only until both preprocessings have read them; reused likewise. */
  private readonly decodedPixels = scratchSharedBuffer();

  /** @param samThread where the SAM encoder runs when not on this thread (sam-thread.ts) */
  constructor(
    private readonly pack: LoadedPack,
    private readonly pool: PixelWorkers,
    private readonly maxImagePixels: number,
    private readonly samThread?: SamEncoderThread,
  ) {}

  /** CLIP features (with samEmbeddings still empty), and SAM's embeddings to come. */
  async encode(file: Uint8Array, timings: StageTimings): Promise<{ features: ImageEmbeddings; sam: Promise<Float32Array> }> {
    const { manifest } = this.pack;
    const pool = this.pool;
    const started = performance.now();
    // CLIP's values come with the decode: they lead to the language model, the longer path whenever the encoders are fast.
    const { image: decoded, clip: clipInput, clipMs } = await pool.decodeWithClip(file, this.maxImagePixels, this.decodedPixels.take(0), manifest.clip);
    timings.imageDecode = performance.now() - started - clipMs;
    timings.clipPreprocess = clipMs;
    // Before any pixel work starts: nothing may still be reading the pixels when this throws.
    const samShape = samResizeShape(decoded.width, decoded.height, manifest.sam.size);
    if (samShape.width === 0 || samShape.height === 0) {
      this.decodedPixels.give(decoded.data.buffer as SharedArrayBuffer);
      throw tooThin(decoded.width, decoded.height, manifest.sam.size);
    }
    const preprocessStart = performance.now();
    const resized = samResizeShape(decoded.width, decoded.height, manifest.sam.size);
    const samFloats = 3 * manifest.sam.size * manifest.sam.size;
    const samInput = this.samInput.take(samFloats * 4);
    const samPixels = pool.sam(decoded, manifest.sam, new Float32Array(samInput, 0, samFloats));
    // The decoded pixels' memory is given back once SAM's preprocessing is done with it, whatever the outcome.
    void samPixels.then(() => undefined, () => undefined).then(() => {
      this.decodedPixels.give(decoded.data.buffer as SharedArrayBuffer);
      collectSoonAfter(decoded.data.buffer.byteLength); // a large one is not kept: see memory.ts
    });
    let inputMemory = samInput;
    const sam = samPixels
      .then(async (pixels) => {
        timings.samPreprocess = performance.now() - preprocessStart;
        if (this.samThread) {
          const encoded = await this.samThread.encode(pixels);
          inputMemory = encoded.pixels.buffer as ArrayBuffer;
          this.pack.onGraphRun?.({ graph: 'samImageEncoder', start: encoded.start, end: encoded.end });
          timings.samEncoder = encoded.end - encoded.start;
          return encoded.embeddings;
        }
        const samStarted = performance.now();
        const out = await runGraph(this.pack, 'samImageEncoder', {
          pixel_values: floatTensor('float32', pixels, [1, 3, manifest.sam.size, manifest.sam.size]),
        });
        timings.samEncoder = performance.now() - samStarted;
        return out.image_embeddings!.data as Float32Array;
      })
      // Given back only once the encoder is done with it, whatever happened to the chat
      // (moved to the SAM thread and lost with a failure there, it reads as 0 bytes: not kept).
      .finally(() => this.samInput.give(inputMemory));
    sam.catch(() => undefined); // awaited later; keep an early failure from being "unhandled"
    const visionStarted = performance.now();
    const vision = await runGraph(this.pack, 'visionEncoder', {
      pixel_values: floatTensor('float32', clipInput, [1, 3, manifest.clip.size, manifest.clip.size]),
    });
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
