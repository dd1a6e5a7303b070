/**
 * Where a turn's time goes: the engine's stage timings, and what lisa-bot
 * itself adds around the graphs.
 *
 * Definitions (all milliseconds, per turn):
 * - `graph`: time during which at least one graph was running — the union
 *   of the intervals of every graph run of the turn (the engine times each in
 *   runGraph, pack.ts, and lists them in ChatResult.graphRuns). Stage timings
 *   overlap (the SAM encoder is awaited only for masks), so their sum means
 *   little; the union is what the turn actually spent waiting on graphs,
 *   whatever the engine's schedule. It includes onnxruntime-node's own
 *   copying of inputs and outputs (the KV cache, every step, on the host).
 *   onnxruntime-node 1.30's run() holds the thread that calls it for the
 *   whole graph, so on the engine thread graphs run one at a time (a run
 *   started "beside" another first waits for it; the union counts that wait
 *   once, as the other run's execution).
 * - `graphSerial`: the runs' durations summed. graphSerial - graph is time
 *   that runs spent waiting for one another on the engine thread or, with the
 *   SAM encoder on a thread of its own (EngineOptions.samThread), really
 *   running at the same time.
 * - `engineHost` = engine total - graph: decoding, preprocessing,
 *   tokenising, embedding splices, KV-cache copies, mask postprocess — the
 *   part of it that no graph run hides. Host work that overlaps a graph run
 *   costs no latency by this measure, but on a CPU it shares the cores, so
 *   it shows up as slower graphs instead: compare the graph stages too.
 * - `outsideEngine` = wall - engine total: the assistant's side — image
 *   sniffing and storage, sessions, the queue, the overlay (drawn and encoded
 *   in the configured format).
 * - `host` = wall - graph = engineHost + outsideEngine: everything lisa-bot
 *   adds to a turn besides running the graphs.
 * - `wall`: assistant.handle() called -> reply; `queueWait`: called -> the
 *   queue's 'started' event (includes the checks and storage before queueing).
 */
import type { ChatResult, StageTimings } from '../engine/types.js';
import type { TurnRecord } from './harness.js';
import { type Summary, collect, median, summariseAll } from './stats.js';

export const TURN_KEYS = ['graph', 'graphSerial', 'engineHost', 'outsideEngine', 'host', 'wall', 'queueWait'] as const;
export type TurnKey = (typeof TURN_KEYS)[number];

export function turnBreakdown(record: TurnRecord): Record<TurnKey, number> {
  const { timings, graphMs, graphSerialMs } = record.chat;
  return {
    graph: graphMs,
    graphSerial: graphSerialMs,
    engineHost: timings.total - graphMs,
    outsideEngine: record.wallMs - timings.total,
    host: record.wallMs - graphMs,
    wall: record.wallMs,
    queueWait: record.queueWaitMs,
  };
}

export interface GroupSummary {
  turns: number;
  /** Every key of StageTimings, as the engine reports it. */
  stages: Record<keyof StageTimings, Summary>;
  /** The breakdown above. */
  turn: Record<TurnKey, Summary>;
  /** Per graph: run time per turn (ms) and runs per turn (median). */
  graphs: Record<string, Summary & { runs: number }>;
  /** Medians of the engine's token counts. */
  tokens: ChatResult['tokens'];
  imageCache: { hits: number; misses: number };
  segments: number;
  /** The longest single graph run of these turns (compare with the event loop's max delay). */
  longestGraphRun: { graph: string; ms: number };
}

export function summariseTurns(records: readonly TurnRecord[]): GroupSummary | undefined {
  if (records.length === 0) return undefined;
  const stages: Record<string, number[]> = {};
  const turn: Record<string, number[]> = {};
  const graphMs: Record<string, number[]> = {};
  const graphRuns: Record<string, number[]> = {};
  const graphNames = new Set(records.flatMap((r) => Object.keys(r.chat.byGraph)));
  for (const record of records) {
    collect(stages, record.chat.timings as unknown as Record<string, number>);
    collect(turn, turnBreakdown(record));
    for (const name of graphNames) {
      collect(graphMs, { [name]: record.chat.byGraph[name]?.ms ?? 0 });
      collect(graphRuns, { [name]: record.chat.byGraph[name]?.runs ?? 0 });
    }
  }
  const graphs: GroupSummary['graphs'] = {};
  for (const [name, summary] of Object.entries(summariseAll(graphMs))) graphs[name] = { ...summary, runs: median(graphRuns[name]!) };
  const tokens = (key: keyof ChatResult['tokens']) => median(records.map((r) => r.chat.tokens[key]));
  return {
    turns: records.length,
    stages: summariseAll(stages) as GroupSummary['stages'],
    turn: summariseAll(turn) as GroupSummary['turn'],
    graphs,
    tokens: { prompt: tokens('prompt'), generated: tokens('generated'), reusedFromCache: tokens('reusedFromCache'), decodeRuns: tokens('decodeRuns') },
    imageCache: {
      hits: records.filter((r) => r.chat.imageCache === 'hit').length,
      misses: records.filter((r) => r.chat.imageCache === 'miss').length,
    },
    segments: median(records.map((r) => r.reply.segments.length)),
    longestGraphRun: records.map((r) => r.chat.longestRun).reduce((a, b) => (b.ms > a.ms ? b : a)),
  };
}
