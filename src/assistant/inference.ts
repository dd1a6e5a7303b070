import type { ImageStore } from '../conversation/index.js';
import type { ChatEngine } from '../engine/thread.js';
import type { BoundingBox, ChatTurn, RleMask, StageTimings } from '../engine/types.js';
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
  segments: InferenceSegment[];
  timings: StageTimings;
  tokens: { prompt: number; generated: number; reusedFromCache: number };
  imageEmbeddings: 'hit' | 'miss';
}

/** Runs one job on an engine; the same function serves the in-process queue and workers. */
export function inferenceHandler(engine: ChatEngine, images: ImageStore) {
  return async (job: InferenceJob, context: { signal: AbortSignal }): Promise<InferenceResult> => {
    const image = await images.get(job.imageHash);
    if (!image) {
      throw new UserInputError("The conversation's image has expired. Send the image again.", 'no_image');
    }
    const result = await engine.chat({ image, imageHash: job.imageHash, turns: job.turns, signal: context.signal });
    return {
      text: result.text,
      segments: result.segments.map((s) => ({ rle: s.rle, bbox: s.bbox, area: s.area, score: s.score })),
      timings: result.timings,
      tokens: result.tokens,
      imageEmbeddings: result.cache.imageEmbeddings,
    };
  };
}
