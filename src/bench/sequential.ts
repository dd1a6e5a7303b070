/**
 * Sequential runs: one conversation at a time, so every number is the cost
 * of one turn with nothing else competing. Per image: warm-up conversations
 * (JIT, onnxruntime's arenas, SQLite; not recorded), then `runs` measured
 * conversations of `turns` turns, each on its own copy of the image (a cold
 * first turn) and in a fresh conversation (follow-ups start from the same
 * state every run: the image cached by turn 1, the KV cache of turns 1..n-1).
 * Then two host steps timed in isolation, through the same pixel workers the
 * turn uses: decoding the image, and the overlay in every format (the
 * turn itself draws only the configured one).
 */
import { overlayImage } from '../assistant/reply.js';
import { type OverlayFormat, overlayFormats } from '../render/formats.js';
import type { ReplySegment } from '../assistant/types.js';
import { imageInfo } from '../engine/image.js';
import { OverlayWorkers } from '../render/overlay-workers.js';
import { type GroupSummary, summariseTurns } from './breakdown.js';
import type { Harness, TurnRecord } from './harness.js';
import { type LoopDelay, startLoopMonitor } from './loop.js';
import { type Summary, median, summarise } from './stats.js';

export interface BenchImage {
  label: string;
  bytes: Uint8Array;
}

export interface SequentialOptions {
  runs: number;
  warmup: number;
  turns: number;
  /** Bytes no earlier conversation used (see images.ts). */
  variant(image: BenchImage): Uint8Array;
}

export interface ImageResult {
  file: { bytes: number; width: number; height: number };
  runs: number;
  first?: GroupSummary;
  /** Turns 2..N of each conversation. */
  followUp?: GroupSummary;
  /** median(follow-up wall) / median(first-turn wall). */
  followUpRatio?: number;
  /** Host steps timed alone (ms): the image decode, and the overlay per format. */
  hostSteps: Record<string, Summary>;
  eventLoopDelay: LoopDelay;
  /**
   * Minor page faults of the whole process (every thread) per measured turn.
   * On VMs like the CI machine a fault costs ~15 µs, so fresh memory written
   * on every turn shows here before it shows as a slower stage.
   */
  pageFaultsPerTurn: number;
}

export async function runSequential(harness: Harness, image: BenchImage, options: SequentialOptions): Promise<ImageResult> {
  for (let i = 0; i < options.warmup; i++) await harness.conversation(options.variant(image), options.turns);
  const records: TurnRecord[] = [];
  const loop = startLoopMonitor();
  const faultsBefore = process.resourceUsage().minorPageFault;
  for (let i = 0; i < options.runs; i++) records.push(...(await harness.conversation(options.variant(image), options.turns)));
  const faults = process.resourceUsage().minorPageFault - faultsBefore;
  const eventLoopDelay = loop.stop();

  const firsts = records.filter((r) => r.turn === 1);
  const followUps = records.filter((r) => r.turn > 1);
  const first = summariseTurns(firsts);
  const followUp = summariseTurns(followUps);
  const info = await imageInfo(image.bytes, { maxPixels: harness.config.limits.maxImagePixels });
  const segments = records[records.length - 1]?.reply.segments ?? [];
  return {
    file: { bytes: image.bytes.byteLength, width: info.width, height: info.height },
    runs: options.runs,
    first,
    followUp,
    followUpRatio:
      first && followUp ? median(followUps.map((r) => r.wallMs)) / Math.max(1e-9, median(firsts.map((r) => r.wallMs))) : undefined,
    hostSteps: options.runs > 0 ? await hostSteps(harness, image, segments, Math.min(10, Math.max(3, options.runs))) : {},
    eventLoopDelay,
    pageFaultsPerTurn: records.length > 0 ? Math.round(faults / records.length) : 0,
  };
}

async function timed(times: number, step: () => unknown): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await step();
    samples.push(performance.now() - t0);
  }
  return summarise(samples);
}

async function hostSteps(harness: Harness, image: BenchImage, segments: readonly ReplySegment[], times: number) {
  const pixels = new OverlayWorkers(2);
  try {
    const maxPixels = harness.config.limits.maxImagePixels;
    // Into one reused buffer, as turns decode (DecodedImages): fresh memory would add page faults to every turn.
    let memory: SharedArrayBuffer | undefined;
    const decodeInto = async () => (memory = (await pixels.decode(image.bytes, maxPixels, memory)).data.buffer as SharedArrayBuffer);
    const steps: Record<string, Summary> = { imageDecode: await timed(times, decodeInto) };
    if (segments.length > 0) {
      // Drawing and encoding only: a turn draws on pixels decoded already (see DecodedImages).
      const decoded = await pixels.decode(image.bytes, maxPixels);
      for (const format of overlayFormats) steps[`overlay.${format}`] = await timed(times, () => overlayImage(pixels, decoded, segments, { format }));
    }
    return steps;
  } finally {
    await pixels.close();
  }
}
