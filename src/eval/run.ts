/**
 * One evaluation run: every sample of a ReasonSeg folder through a pack, in
 * the paper's protocol (teacher-forced `[SEG].`) or as a user would chat,
 * scored like the reference and appended to the results file as it goes.
 */
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Engine } from '../engine/engine.js';
import { ImagesInMemory } from '../engine/images-in-memory.js';
import { decodeImage } from '../engine/image.js';
import { loadManifest } from '../engine/manifest.js';
import { decodeRle } from '../engine/mask.js';
import type { ProviderName } from '../engine/providers.js';
import type { DecodedImage } from '../engine/types.js';
import { UserInputError, isUserInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import { renderOverlay } from '../render/overlay.js';
import { writeFileAtomic } from '../atomic-file.js';
import { type Summary, scoreSample, summarise } from './metrics.js';
import { Progress, type ProgressStream } from './progress.js';
import { BadSample, IGNORE, PAPER_ANSWER, type Sample, groundTruth, listSamples, paperQuestion, readAnnotation } from './reasonseg.js';
import { type EvalMode, type ResultLine, appendResult, readResults } from './results.js';

export interface EvalOptions {
  model: string;
  data: string;
  mode: EvalMode;
  /** The first N samples (by file name) only. */
  limit?: number;
  out?: string;
  overlays?: string;
  provider?: ProviderName;
  maxPixels: number;
  logger: Logger;
  /** Progress and warnings. */
  stderr: ProgressStream;
  /** Once aborted, the run stops after the sample in progress. */
  signal?: AbortSignal;
}

export interface EvalReport extends Summary {
  mode: EvalMode;
  /** The pack's name (lisa.json). */
  model: string;
  /** Wall time of this run, model loading included. */
  elapsedMs: number;
  /** Samples scored by this run (the rest came from --out). */
  scoredNow: number;
  /** Scored per second in this run, model loading excluded. */
  samplesPerSecond: number;
  skipped: number;
  /** Stopped by the signal before every sample was scored. */
  interrupted: boolean;
}

const TRUTH_RGB: [number, number, number] = [40, 200, 70];
const IGNORE_RGB: [number, number, number] = [128, 128, 128];
const PREDICTION_RGB: [number, number, number] = [230, 40, 200];

export async function runEval(options: EvalOptions): Promise<EvalReport> {
  const started = performance.now();
  let samples = await listSamples(options.data);
  if (samples.length === 0) {
    throw new UserInputError(`No samples in ${options.data}: it needs NAME.jpg images, each with NAME.json beside it (ReasonSeg's format).`, 'config_invalid');
  }
  if (options.limit !== undefined) samples = samples.slice(0, options.limit);
  // Read now, not when the first sample needs the model: a wrong --model fails at once.
  const manifest = await loadManifest(options.model);
  const previous = options.out ? await readResults(options.out, options.mode) : new Map<string, ResultLine>();
  const todo = samples.filter((s) => !previous.has(s.image));
  const scores: ResultLine[] = samples.flatMap((s) => previous.get(s.image) ?? []);
  const progress = new Progress(todo.length, options.stderr);
  if (scores.length > 0) progress.note(`Resuming: ${scores.length} of ${samples.length} samples already scored in ${options.out}.`);
  if (options.overlays) await mkdir(options.overlays, { recursive: true });
  if (todo.length > 0) progress.start();

  let engine: Engine | undefined;
  let skipped = 0;
  let firstSkip = '';
  let scoredNow = 0;
  let scoringMs = 0;
  try {
    for (const sample of todo) {
      if (options.signal?.aborted) break;
      let t0 = performance.now();
      let line: ResultLine | undefined;
      try {
        const input = await loadSample(sample, options.maxPixels);
        if (!engine) {
          // Loading the model is not scoring: left out of samples/s and the ETA.
          const opening = performance.now();
          engine = await openEngine(options);
          progress.exclude(performance.now() - opening);
          t0 += performance.now() - opening;
        }
        line = await scoreOne(engine, sample, input, options);
      } catch (error) {
        if (!(error instanceof BadSample) && !isUserInputError(error)) throw error;
        if (isUserInputError(error) && error.code.startsWith('model_pack')) throw error;
        skipped++;
        firstSkip ||= `${sample.image}: ${error.message}`;
        progress.note(`warning: skipped ${sample.image}: ${error.message}`);
      }
      if (line) {
        if (options.out) await appendResult(options.out, line);
        scores.push(line);
        scoredNow++;
        scoringMs += performance.now() - t0;
      }
      progress.tick(scores.length > 0 ? summarise(scores) : undefined);
    }
  } finally {
    progress.finish();
    await engine?.close();
  }
  if (scores.length === 0 && skipped > 0) {
    throw new UserInputError(`None of the ${skipped} samples in ${options.data} can be used (the first: ${firstSkip}).`, 'config_invalid');
  }
  const interrupted = scores.length + skipped < samples.length;
  return {
    ...summarise(scores),
    mode: options.mode,
    model: manifest.name,
    elapsedMs: performance.now() - started,
    scoredNow,
    samplesPerSecond: scoringMs > 0 ? (1000 * scoredNow) / scoringMs : 0,
    skipped,
    interrupted,
  };
}

interface SampleInput {
  bytes: Buffer;
  decoded: DecodedImage;
  truth: Uint8Array;
  text: string;
  question: string;
}

async function loadSample(sample: Sample, maxPixels: number): Promise<SampleInput> {
  const annotation = await readAnnotation(sample.jsonPath);
  let bytes: Buffer;
  try {
    bytes = await readFile(sample.imagePath);
  } catch (error) {
    throw new BadSample(`the image cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const decoded = await decodeImage(bytes, { maxPixels });
  const truth = groundTruth(annotation, decoded.width, decoded.height);
  return { bytes, decoded, truth, text: annotation.text, question: paperQuestion(annotation) };
}

/** The sample being scored: the engine reads its file from here by hash. */
const files = new ImagesInMemory();

async function openEngine(options: EvalOptions): Promise<Engine> {
  return Engine.open(options.model, {
    images: files,
    providers: options.provider ? [options.provider, 'cpu'] : ['cpu'],
    maxImagePixels: options.maxPixels,
    logger: options.logger,
  });
}

async function scoreOne(engine: Engine, sample: Sample, input: SampleInput, options: EvalOptions): Promise<ResultLine> {
  const started = performance.now();
  const { width, height } = input.decoded;
  const imageHash = files.add(input.bytes);
  const result = await engine
    .chat(
      options.mode === 'paper'
        ? { imageHash, turns: [{ user: input.question }], answer: PAPER_ANSWER }
        : { imageHash, turns: [{ user: input.text }] },
    )
    .finally(() => files.delete(imageHash));
  // The first [SEG]'s mask counts; an answer without one predicts nothing.
  const first = result.segments[0];
  const prediction = first ? decodeRle(first.rle).data : new Uint8Array(width * height);
  const score = scoreSample(prediction, input.truth);
  if (options.overlays) await writeOverlay(options.overlays, sample, input, prediction);
  return {
    image: sample.image,
    text: input.text,
    mode: options.mode,
    intersection: score.intersection,
    union: score.union,
    iou: score.iou,
    ms: Math.round(performance.now() - started),
    ...(options.mode === 'chat' ? { answer: result.text } : {}),
  };
}

/** The ground truth in green (ignored pixels grey) under the prediction in magenta. */
async function writeOverlay(dir: string, sample: Sample, input: SampleInput, prediction: Uint8Array): Promise<void> {
  const { width, height } = input.decoded;
  const only = (value: number) => ({ width, height, data: input.truth.map((v) => (v === value ? 1 : 0)) });
  const overlay = await renderOverlay(
    input.decoded,
    [
      { mask: only(1), rgb: TRUTH_RGB },
      { mask: only(IGNORE), rgb: IGNORE_RGB },
      { mask: { width, height, data: prediction }, rgb: PREDICTION_RGB },
    ],
    { format: 'jpeg' },
  );
  await writeFileAtomic(path.join(dir, sample.image), overlay.data);
}
