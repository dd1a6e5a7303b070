/**
 * The Prometheus metrics of one lisa-bot process, on a registry of its own
 * (never prom-client's global one): each runtime, and so each test, starts
 * from zero. Fed by the runtime (model load, provider, queue) and by the
 * assistant where a turn settles; read by a surface's `/metrics` route.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GraphRun } from '../engine/types.js';
import { isUserInputError } from '../errors.js';

/** How a turn ended: a refusal the user reads carries its error code. */
type TurnOutcome = 'answered' | 'user_error' | 'internal_error' | 'cancelled';

/** What of a finished inference the metrics read (InferenceResult has it). */
export interface InferenceFacts {
  graphRuns: readonly GraphRun[];
  imageEmbeddings: 'hit' | 'miss';
  tokens: { prompt: number; reusedFromCache: number };
}

interface QueueDepth {
  readonly size: number;
  readonly running: number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly turns: Counter<'outcome' | 'code'>;
  private readonly turnSeconds: Histogram;
  private readonly graphSeconds: Histogram<'graph'>;
  private readonly imageCache: Counter<'result'>;
  private readonly promptPositions: Counter<'source'>;
  private readonly modelLoadSeconds: Gauge;
  private readonly provider: Gauge<'provider'>;
  private queue: QueueDepth | undefined;

  constructor() {
    const registers = [this.registry];
    this.turns = new Counter({
      name: 'lisabot_turns_total',
      help: 'Turns by how they ended: answered, user_error (code = the refusal shown to the user), internal_error, cancelled.',
      labelNames: ['outcome', 'code'],
      registers,
    });
    this.turnSeconds = new Histogram({
      name: 'lisabot_turn_duration_seconds',
      help: 'Answered turns, from handed to the assistant to the reply ready (queue wait, inference, overlay).',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.graphSeconds = new Histogram({
      name: 'lisabot_graph_duration_seconds',
      help: 'Each ONNX graph run of a turn, by graph name.',
      labelNames: ['graph'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.imageCache = new Counter({
      name: 'lisabot_image_embedding_cache_total',
      help: "Turns whose image embeddings came from the engine's cache (hit) or were computed (miss).",
      labelNames: ['result'],
      registers,
    });
    this.promptPositions = new Counter({
      name: 'lisabot_prompt_positions_total',
      help: "Prompt positions of the decoder, by whether their KV came from the engine's cache or was computed.",
      labelNames: ['source'],
      registers,
    });
    this.modelLoadSeconds = new Gauge({ name: 'lisabot_model_load_seconds', help: 'How long the model pack took to load.', registers });
    this.provider = new Gauge({
      name: 'lisabot_execution_provider',
      help: 'The onnxruntime execution provider the engine runs on (1 for the one in use).',
      labelNames: ['provider'],
      registers,
    });
    // Read at scrape time: the queue knows its depth, so no copy has to be kept up to date.
    const queue = () => this.queue;
    new Gauge({
      name: 'lisabot_queue_depth',
      help: 'Jobs in the queue, by state: waiting or running.',
      labelNames: ['state'],
      registers,
      collect() {
        const q = queue();
        if (!q) return;
        this.set({ state: 'waiting' }, q.size);
        this.set({ state: 'running' }, q.running);
      },
    });
  }

  watchQueue(queue: QueueDepth): void {
    this.queue = queue;
  }

  modelLoaded(seconds: number, provider: string): void {
    this.modelLoadSeconds.set(seconds);
    this.provider.reset();
    this.provider.set({ provider }, 1);
  }

  inferenceDone(result: InferenceFacts): void {
    for (const run of result.graphRuns) this.graphSeconds.observe({ graph: run.graph }, (run.endMs - run.startMs) / 1000);
    this.imageCache.inc({ result: result.imageEmbeddings });
    const reused = result.tokens.reusedFromCache;
    this.promptPositions.inc({ source: 'cache' }, reused);
    this.promptPositions.inc({ source: 'computed' }, result.tokens.prompt - reused);
  }

  turnAnswered(seconds: number): void {
    this.turns.inc({ outcome: 'answered', code: '' });
    this.turnSeconds.observe(seconds);
  }

  turnFailed(error: unknown): void {
    let outcome: TurnOutcome = 'internal_error';
    let code = '';
    if (isUserInputError(error)) {
      outcome = error.code === 'cancelled' ? 'cancelled' : 'user_error';
      code = error.code;
    }
    this.turns.inc({ outcome, code });
  }

  /** The Prometheus text exposition, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
