import type { ChatEngine, ChatResult, ChatTurn, GraphRun, Segment, StageTimings } from '../engine/types.js';

/**
 * An inference job: everything a worker needs, serialisable (a GPU worker on
 * another host gets it through the queue). The image travels by hash; the
 * engine reads its file from the image store it was made with.
 */
export interface InferenceJob {
  imageHash: string;
  turns: ChatTurn[];
}

export interface InferenceResult {
  text: string;
  ids: number[];
  segments: Segment[];
  timings: StageTimings;
  tokens: ChatResult['tokens'];
  imageEmbeddings: 'hit' | 'miss';
  /** Every graph run of the turn (for the per-graph time metric). */
  graphRuns: GraphRun[];
}

/**
 * Runs one job on an engine: the handler of the in-process queue, and the
 * very one a worker on another host will run. Plain data in and out; nothing
 * shared with whoever submitted the job.
 */
export function inferenceHandler(engine: ChatEngine) {
  return async (job: InferenceJob, context: { signal: AbortSignal }): Promise<InferenceResult> => {
    const result = await engine.chat({ imageHash: job.imageHash, turns: job.turns, signal: context.signal });
    return {
      text: result.text,
      ids: result.ids,
      segments: result.segments.map((s) => ({ rle: s.rle, bbox: s.bbox, area: s.area, score: s.score })),
      timings: result.timings,
      tokens: result.tokens,
      imageEmbeddings: result.cache.imageEmbeddings,
      graphRuns: result.graphRuns.map((r) => ({ graph: r.graph, startMs: r.startMs, endMs: r.endMs })),
    };
  };
}
