/**
 * The Prometheus metrics of one lisa-bot process, on a registry of its own
 * (never prom-client's global one): each runtime, and so each test, starts
 * from zero. Fed by the runtime (model load, provider, queue) and by the
 * assistant where a turn settles, or on a worker by each job it runs; read by
 * `/metrics` (the web chat's, or the health server's: routes.ts).
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

/** The in-process queue: it knows its depth, read at scrape time. */
interface LocalQueue {
  readonly size: number;
  readonly running: number;
}

/** A queue shared through Redis (BullMQ): queue-wide counts, asked at scrape time. */
interface SharedQueue {
  counts(): Promise<{ waiting: number; running: number }>;
  /** Whether Redis is connected now; when it says no, counts() is not asked. */
  reachable?(): boolean;
}

export type QueueDepthSource = LocalQueue | SharedQueue;

interface QueueDepth {
  waiting: number;
  running: number;
}

export interface MetricsOptions {
  /**
   * How long a scrape waits for a shared queue's counts before leaving the
   * depth out. Well under Prometheus's default scrape timeout (10 s), so a
   * lost Redis costs one gauge, not the whole scrape.
   */
  queueCountsTimeoutMs?: number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly turns: Counter<'outcome' | 'code'>;
  private readonly turnSeconds: Histogram;
  private readonly graphSeconds: Histogram<'graph'>;
  private readonly imageCache: Counter<'result'>;
  private readonly promptPositions: Counter<'source'>;
  private readonly provider: Gauge<'provider'>;
  private queue: QueueDepthSource | undefined;
  /** The depth asked for by the scrape under way: both queue gauges read the one answer. */
  private depthProbe: Promise<QueueDepth | undefined> | undefined;
  private readonly queueCountsTimeoutMs: number;

  constructor(options: MetricsOptions = {}) {
    this.queueCountsTimeoutMs = options.queueCountsTimeoutMs ?? 2000;
    const registers = [this.registry];
    this.turns = new Counter({
      name: 'lisabot_turns_total',
      help:
        'Turns by how they ended: answered, user_error (code = the refusal shown to the user), internal_error, cancelled. ' +
        'On a worker: the jobs it ran, each a turn of some serve process.',
      labelNames: ['outcome', 'code'],
      registers,
    });
    this.turnSeconds = new Histogram({
      name: 'lisabot_turn_duration_seconds',
      help:
        'Answered turns, from handed to the assistant to the reply ready (queue wait, inference, overlay). ' +
        "On a worker: the job's run (inference), without the queue wait.",
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
    this.provider = new Gauge({
      name: 'lisabot_execution_provider',
      help: 'The onnxruntime execution provider the engine runs on (1 for the one in use).',
      labelNames: ['provider'],
      registers,
    });
    // Read at scrape time: the queue knows its depth, so no copy has to be kept up to date.
    const depth = () => this.queueDepth();
    new Gauge({
      name: 'lisabot_queue_depth',
      help: 'Jobs in the queue, by state: waiting or running. With Redis, queue-wide (every serve and worker); absent while Redis is unreachable.',
      labelNames: ['state'],
      registers,
      async collect() {
        const now = await depth();
        // A depth that could not be read is left out, not kept stale.
        this.reset();
        if (!now) return;
        this.set({ state: 'waiting' }, now.waiting);
        this.set({ state: 'running' }, now.running);
      },
    });
  }

  /** The queue whose depth /metrics shows: the in-process queue, or a shared one (BullMQ) by its queue-wide counts. */
  watchQueue(queue: QueueDepthSource): void {
    this.queue = queue;
    if ('counts' in queue) this.watchReachability();
  }

  modelLoaded(seconds: number, provider: string): void {
    // Made here, not up front: a process that loads no model (serve with a queue) shows no load time rather than 0.
    const loadSeconds =
      (this.registry.getSingleMetric('lisabot_model_load_seconds') as Gauge | undefined) ??
      new Gauge({ name: 'lisabot_model_load_seconds', help: 'How long the model pack took to load.', registers: [this.registry] });
    loadSeconds.set(seconds);
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

  /** Only a shared queue can be out of reach: the gauge exists once one is watched. */
  private watchReachability(): void {
    if (this.registry.getSingleMetric('lisabot_queue_reachable')) return;
    const depth = () => this.queueDepth();
    new Gauge({
      name: 'lisabot_queue_reachable',
      help: "1 while the job queue's Redis answers (its depth was read for this scrape), 0 otherwise.",
      registers: [this.registry],
      async collect() {
        this.set((await depth()) ? 1 : 0);
      },
    });
  }

  private queueDepth(): Promise<QueueDepth | undefined> {
    this.depthProbe ??= this.readQueueDepth().finally(() => {
      this.depthProbe = undefined;
    });
    return this.depthProbe;
  }

  private async readQueueDepth(): Promise<QueueDepth | undefined> {
    const queue = this.queue;
    if (!queue) return undefined;
    if (!('counts' in queue)) return { waiting: queue.size, running: queue.running };
    if (queue.reachable?.() === false) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, this.queueCountsTimeoutMs, undefined);
    });
    try {
      // Any failure to count is "unreachable" here: a scrape never fails for it.
      return await Promise.race([queue.counts(), timeout]).catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The Prometheus text exposition, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
