import type { ImageStore } from '../conversation/index.js';
import type { ChatEngine } from '../engine/thread.js';
import type { DecodedImages } from '../workers/decoded-images.js';
import type { BoundingBox, ChatResult, ChatTurn, RleMask, StageTimings } from '../engine/types.js';
import { UserInputError } from '../errors.js';

/**
 * An inference job: everything a worker needs, serialisable (a GPU worker on
 * another host gets it through the queue). The image travels by hash.
 */
export interface InferenceJob {
  imageHash: string;
  turns: ChatTurn[];
}

export interface InferenceSegment {
  rle: RleMask;
  bbox: BoundingBox;
  area: number;
  score: number;
}

export interface InferenceResult {
  text: string;
  ids: number[];
  segments: InferenceSegment[];
  timings: StageTimings;
  tokens: ChatResult['tokens'];
  imageEmbeddings: 'hit' | 'miss';
}

/**
 * Runs one job on an engine; the same function serves the in-process queue and
 * workers. `decodedImages`, where the engine shares this process, hands the
 * engine the pixels the overlay will be drawn on, so the image is decoded once.
 */
export function inferenceHandler(engine: ChatEngine, images: ImageStore, decodedImages?: DecodedImages) {
  return async (job: InferenceJob, context: { signal: AbortSignal }): Promise<InferenceResult> => {
    const image = await images.get(job.imageHash);
    if (!image) {
      throw new UserInputError("The conversation's image has expired. Send the image again.", 'no_image');
    }
    // An engine that has the image's embeddings reads no pixels: the overlay's decode then runs beside the chat.
    const decodeStarted = performance.now();
    const lease = decodedImages && !engine.hasImageEmbeddings(job.imageHash) ? await decodedImages.acquire(job.imageHash, image) : undefined;
    const decodeMs = lease ? performance.now() - decodeStarted : 0;
    let result: ChatResult;
    try {
      result = await engine.chat({ image, imageHash: job.imageHash, decoded: lease?.image, turns: job.turns, signal: context.signal });
    } finally {
      lease?.release();
    }
    if (lease) {
      // Decoded here rather than by the engine: still part of the turn's image decode,
      // bar the CLIP values made with it (when this turn waited for them).
      const clipMs = Math.min(decodeMs, lease.image.clip?.ms ?? 0);
      result.timings.imageDecode += decodeMs - clipMs;
      result.timings.clipPreprocess += clipMs;
      result.timings.total += decodeMs;
    }
    return {
      text: result.text,
      ids: result.ids,
      segments: result.segments.map((s) => ({ rle: s.rle, bbox: s.bbox, area: s.area, score: s.score })),
      timings: result.timings,
      tokens: result.tokens,
      imageEmbeddings: result.cache.imageEmbeddings,
    };
  };
}
