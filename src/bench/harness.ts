/**
 * The bench's view of lisa-bot: the real runtime (engine, SQLite sessions,
 * in-process queue, assistant) as `lisa-bot serve` builds it, with an
 * observer on the engine so each turn's stage timings, token counts and cache
 * outcome can be matched to the turn that caused them. Turns go through
 * `assistant.handle` with image bytes, exactly as a surface hands them in, so
 * a turn's wall time includes everything a user waits for: sniffing and
 * storing the image, the session, the queue, the engine, RLE, and drawing and
 * encoding the overlay in the configured format.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { OverlayFormat } from '../render/formats.js';
import type { RunningSurface, SurfaceContext } from '../assistant/surface.js';
import type { Reply } from '../assistant/types.js';
import { type Config, type SurfaceConfig, loadConfig } from '../config/index.js';
import { cliKey, sha256Hex } from '../conversation/index.js';
import type { ProviderName } from '../engine/providers.js';
import type { ChatRequest, ChatResult, StageTimings } from '../engine/types.js';
import { type Logger, createLogger } from '../logger.js';
import { type Runtime, createRuntime } from '../runtime.js';

/**
 * A chat surface as the bench needs it: its config section, and how to start it
 * (the web chat, for the load test). The CLI hands in the registry
 * (adapters/index.ts): the core imports no adapter.
 */
export interface BenchSurface extends SurfaceConfig {
  start(ctx: SurfaceContext): Promise<RunningSurface>;
}

export interface HarnessSettings {
  model: string;
  surfaces: readonly BenchSurface[];
  /** A YAML file laid over the defaults, as for `serve`. */
  config?: string;
  provider?: ProviderName;
  format?: OverlayFormat;
  /** Room the queue must have: the concurrent conversations plus the web posts. */
  queueRoom: number;
}

/** What the engine reported for one chat, and the graph runs seen during it. */
export interface ChatRecord {
  timings: StageTimings;
  tokens: ChatResult['tokens'];
  imageCache: 'hit' | 'miss';
  /** Time with at least one graph running (the union of the runs' intervals), ms. */
  graphMs: number;
  /** The runs' durations summed: above graphMs where graphs ran side by side. */
  graphSerialMs: number;
  /** Per graph: summed run time (ms) and number of runs. */
  byGraph: Record<string, { ms: number; runs: number }>;
  /**
   * The longest single run() call, to set beside the event loop's max delay:
   * onnxruntime-node 1.30 executes a run synchronously on the JS thread (in a
   * setImmediate), so runs go one at a time and block the loop while they
   * execute. A call's interval includes any wait behind another graph's run.
   */
  longestRun: { graph: string; ms: number };
}

interface GraphRun {
  graph: string;
  start: number;
  end: number;
}

/** Length of the union of [start, end) intervals. */
function unionLength(runs: readonly GraphRun[]): number {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  let total = 0;
  let from = Number.NEGATIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const run of sorted) {
    if (run.start > to) {
      if (to > from) total += to - from;
      from = run.start;
      to = run.end;
    } else if (run.end > to) {
      to = run.end;
    }
  }
  if (to > from) total += to - from;
  return total;
}

export interface TurnRecord {
  /** 1-based turn of its conversation. */
  turn: number;
  /** assistant.handle() called -> reply. */
  wallMs: number;
  /** assistant.handle() called -> the queue's 'started' event. */
  queueWaitMs: number;
  chat: ChatRecord;
  reply: Reply;
}

/** Questions that name toy palette colours, so the toy pack draws real masks on the standard image. */
const QUESTIONS = ['Please segment the red object in this picture.', 'And where is the blue one?', 'Now show me the red one again.'];

export class Harness {
  private readonly chats = new Map<string, ChatRecord>();
  private conversations = 0;

  private constructor(
    readonly runtime: Runtime,
    readonly config: Config,
    private readonly dir: string,
    private readonly surfaces: readonly BenchSurface[],
    private readonly logger: Logger,
  ) {
    const engine = runtime.engine;
    // Observe, don't change: the engine runs exactly as it does in `serve` (on
    // its own thread). It reports every graph run it made, so graph time is
    // measured, not reconstructed from stage timings (which overlap: see breakdown.ts).
    const chat = engine.chat.bind(engine);
    engine.chat = async (request: ChatRequest) => {
      const result = await chat(request);
      const mine: GraphRun[] = result.graphRuns.map((r) => ({ graph: r.graph, start: r.startMs, end: r.endMs }));
      const byGraph: ChatRecord['byGraph'] = {};
      let longestRun = { graph: '', ms: 0 };
      for (const r of mine) {
        if (r.end - r.start > longestRun.ms) longestRun = { graph: r.graph, ms: r.end - r.start };
        const entry = (byGraph[r.graph] ??= { ms: 0, runs: 0 });
        entry.ms += r.end - r.start;
        entry.runs++;
      }
      if (request.imageHash) {
        this.chats.set(`${request.imageHash}#${request.turns.length}`, {
          timings: result.timings,
          tokens: result.tokens,
          imageCache: result.cache.imageEmbeddings,
          graphMs: unionLength(mine),
          graphSerialMs: mine.reduce((n, r) => n + r.end - r.start, 0),
          byGraph,
          longestRun,
        });
      }
      return result;
    };
  }

  static async open(settings: HarnessSettings): Promise<Harness> {
    const loaded = loadConfig({ file: settings.config, surfaces: settings.surfaces });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-bench-'));
    const config: Config = {
      ...loaded,
      model: { ...loaded.model, path: settings.model, providers: settings.provider ? [settings.provider, 'cpu'] : loaded.model.providers },
      // A store of its own: the bench never touches the user's sessions.
      store: { ...loaded.store, url: `sqlite://${path.join(dir, 'sessions.sqlite')}` },
      web: { ...loaded.web, host: '127.0.0.1', port: 0 },
      limits: {
        ...loaded.limits,
        perUserPerMinute: 1_000_000,
        maxQueue: Math.max(loaded.limits.maxQueue, settings.queueRoom),
        allowedUsers: [],
        allowedChannels: [],
      },
      render: { format: settings.format ?? loaded.render.format },
    };
    const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
    try {
      return new Harness(await createRuntime(config, logger), config, dir, settings.surfaces, logger);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * One conversation of `turns` turns on `image` (bytes no earlier
   * conversation used: see images.ts), each turn sent after the previous
   * reply, as a person would. Follow-ups send no image: the conversation's
   * own image is used, whose embeddings the first turn just cached.
   */
  async conversation(image: Uint8Array, turns: number, onSubmitted?: () => void): Promise<TurnRecord[]> {
    const key = cliKey(`bench-${process.pid}-${this.conversations++}`);
    const hash = sha256Hex(image);
    const records: TurnRecord[] = [];
    for (let turn = 1; turn <= turns; turn++) {
      const t0 = performance.now();
      let started: number | undefined;
      const reply = await this.runtime.assistant.handle(
        {
          surface: 'cli',
          conversationKey: key,
          user: { id: 'bench' },
          text: QUESTIONS[(turn - 1) % QUESTIONS.length]!,
          images: turn === 1 ? [{ kind: 'bytes', data: image }] : [],
        },
        {
          onProgress: (event) => {
            if (event.type === 'queued' || event.type === 'started') onSubmitted?.();
            if (event.type === 'started') started ??= performance.now();
          },
        },
      );
      const wallMs = performance.now() - t0;
      const chat = this.chats.get(`${hash}#${turn}`);
      this.chats.delete(`${hash}#${turn}`);
      if (!chat) throw new Error(`bench: no engine record for turn ${turn} (was the image trimmed from the conversation?)`);
      records.push({ turn, wallMs, queueWaitMs: (started ?? t0) - t0, chat, reply });
    }
    return records;
  }

  /** Starts a surface (the web chat, for the load test) on this runtime, as `serve` would. */
  async startSurface(name: string): Promise<RunningSurface> {
    const surface = this.surfaces.find((s) => s.name === name);
    if (!surface) throw new Error(`bench: no ${name} surface among those handed in`);
    return surface.start({ assistant: this.runtime.assistant, config: this.config, logger: this.logger });
  }

  async close(): Promise<void> {
    try {
      await this.runtime.close();
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}
