import { packFingerprint } from '../engine/manifest.js';
import type { ChatEngine, ChatResult, ChatTurn, GraphRun, Segment, StageTimings } from '../engine/types.js';
import { UserInputError } from '../errors.js';
import type { JobHandler } from '../jobs/queue.js';
import type { Metrics } from '../metrics/index.js';

/**
 * An inference job: everything a worker needs, serialisable (a GPU worker on
 * another host gets it through the queue). The image travels by hash; the
 * engine reads its file from the image store it was made with.
 */
export interface InferenceJob {
  imageHash: string;
  /** The question last, after the earlier turns about the same image (text only, trimmed to the context window). */
  turns: ChatTurn[];
  /** packFingerprint() of the pack the turns were counted and trimmed for. */
  pack: string;
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
  const pack = packFingerprint(engine.manifest);
  return async (job: InferenceJob, context: { signal: AbortSignal }): Promise<InferenceResult> => {
    if (job.pack !== pack) {
      // A deployment mistake, not the asker's: said to the operator, in the log and the reply.
      throw new UserInputError(
        `This LISA worker runs model pack ${pack}, but the bot queued the question for ${job.pack}. The operator must give serve and its workers the same model.path.`,
        'model_pack_invalid',
      );
    }
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

/**
 * The handler with its graph runs and cache use counted, where the model runs
 * (the serving process without a queue, each worker with one): counted once,
 * never again by a process that only receives the result.
 */
export function measuredHandler(handler: JobHandler<InferenceJob, InferenceResult>, metrics: Metrics): JobHandler<InferenceJob, InferenceResult> {
  return async (job, context) => {
    const result = await handler(job, context);
    metrics.inferenceDone(result);
    return result;
  };
}
