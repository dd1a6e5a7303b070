/**
 * Load: `concurrency` conversations submitted at once through the assistant
 * (each on its own copy of an image, so every first turn does the full
 * work), with the event loop watched throughout. With `webPosts`, the web
 * chat is started on the same runtime and, once every conversation is queued
 * or running (the engine saturated), that many new turns are POSTed one after
 * another, each a new conversation with its own image copy, timing each until
 * its 202. They are cancelled afterwards (stopping the web chat cancels its
 * turns), so the run does not wait for dozens of answers nobody reads.
 */
import type { RunningSurface } from '../assistant/surface.js';
import { type GroupSummary, summariseTurns } from './breakdown.js';
import type { Harness, TurnRecord } from './harness.js';
import { type LoopDelay, startLoopMonitor } from './loop.js';
import type { BenchImage } from './sequential.js';
import { percentile } from './stats.js';
import { TurnPoster } from './web-client.js';

export interface ConcurrentOptions {
  concurrency: number;
  turns: number;
  webPosts: number;
  images: readonly BenchImage[];
  variant(image: BenchImage): Uint8Array;
}

export interface WebAccept {
  posts: number;
  p50: number;
  p99: number;
  max: number;
  /** Jobs waiting in the queue when each post was sent (running jobs not counted). */
  queueDepth: { min: number; max: number };
  /** Event-loop delay while the posts were being made. */
  eventLoopDelay: LoopDelay;
}

export interface ConcurrentResult {
  concurrency: number;
  turnsPerConversation: number;
  elapsedMs: number;
  turnsPerSecond: number;
  /** Latency of the turns under load (the breakdown of breakdown.ts, wall and queueWait included). */
  first: GroupSummary;
  followUp?: GroupSummary;
  queueWait: { p50: number; p99: number; max: number };
  eventLoopDelay: LoopDelay;
  web?: WebAccept;
}

export async function runConcurrent(harness: Harness, options: ConcurrentOptions): Promise<ConcurrentResult> {
  let web: RunningSurface | undefined;
  if (options.webPosts > 0) {
    web = await harness.startSurface('web');
  }
  try {
    const queued = new Set<number>();
    let allQueued!: () => void;
    const everyoneQueued = new Promise<void>((resolve) => (allQueued = resolve));
    const loop = startLoopMonitor();
    const t0 = performance.now();
    const conversations = Array.from({ length: options.concurrency }, (_, c) =>
      harness.conversation(options.variant(options.images[c % options.images.length]!), options.turns, () => {
        queued.add(c);
        if (queued.size === options.concurrency) allQueued();
      }),
    );
    const finished = Promise.all(conversations);
    finished.catch(() => undefined); // awaited below; a failure while posting must not also surface as unhandled
    let accept: WebAccept | undefined;
    if (web) {
      // A conversation that fails before queueing would leave everyoneQueued pending: fail with it instead.
      await Promise.race([everyoneQueued, finished]);
      accept = await postTurns(harness, web.url!, options);
      await web.stop();
      web = undefined;
    }
    const records: TurnRecord[] = (await finished).flat();
    const elapsedMs = performance.now() - t0;
    const eventLoopDelay = loop.stop();
    const waits = records.map((r) => r.queueWaitMs);
    return {
      concurrency: options.concurrency,
      turnsPerConversation: options.turns,
      elapsedMs,
      turnsPerSecond: records.length / (elapsedMs / 1000),
      first: summariseTurns(records.filter((r) => r.turn === 1))!,
      followUp: summariseTurns(records.filter((r) => r.turn > 1)),
      queueWait: { p50: percentile(waits, 50), p99: percentile(waits, 99), max: Math.max(...waits) },
      eventLoopDelay,
      web: accept,
    };
  } finally {
    await web?.stop();
  }
}

async function postTurns(harness: Harness, url: string, options: ConcurrentOptions): Promise<WebAccept> {
  const poster = new TurnPoster(url);
  const times: number[] = [];
  const depths: number[] = [];
  const loop = startLoopMonitor();
  try {
    for (let i = 0; i < options.webPosts; i++) {
      const image = options.images[i % options.images.length]!;
      const body = poster.body('What is in the middle of this picture?', options.variant(image));
      depths.push(harness.runtime.queue.size);
      const result = await poster.post(body);
      if (result.status !== 202) throw new Error(`bench: POST /api/turns answered ${result.status}, not 202: ${result.body.slice(0, 300)}`);
      times.push(result.ms);
    }
  } finally {
    poster.close();
  }
  return {
    posts: times.length,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    max: Math.max(...times),
    queueDepth: { min: Math.min(...depths), max: Math.max(...depths) },
    eventLoopDelay: loop.stop(),
  };
}
