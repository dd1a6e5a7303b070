/** `lisa-bot bench`: runs the measurements and gathers one result object. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { OverlayFormat } from '../render/formats.js';
import type { ProviderName } from '../engine/providers.js';
import { UserInputError } from '../errors.js';
import { type ConcurrentResult, runConcurrent } from './concurrent.js';
import { type BenchSurface, Harness } from './harness.js';
import { canMakeVariants, imageVariant } from './images.js';
import { type MachineInfo, machineInfo } from './machine.js';
import { type BenchImage, type ImageResult, runSequential } from './sequential.js';

export interface BenchOptions {
  model: string;
  /** The chat surfaces (the registry, from the CLI): their config sections, and the web chat for the load test. */
  surfaces: readonly BenchSurface[];
  images: readonly string[];
  turns: number;
  runs: number;
  warmup: number;
  concurrency: number;
  webPosts: number;
  config?: string;
  provider?: ProviderName;
  format?: OverlayFormat;
}

interface CacheUse {
  entries: number;
  bytes: number;
  limitBytes: number;
  hits: number;
  misses: number;
}

export interface BenchResult {
  machine: MachineInfo & { provider: string };
  pack: { name: string; dtype: string; layers: number; hidden: number; vocab: number };
  settings: { runs: number; warmup: number; turns: number; concurrency: number; webPosts: number; format: OverlayFormat };
  /** Sequential runs, by image file name. */
  images: Record<string, ImageResult>;
  concurrent?: ConcurrentResult;
  /** At the end of the whole run; hits and misses count every turn, warm-ups included. */
  cache: { imageEmbeddings: CacheUse; kv: CacheUse };
  memory: { peakRssMb: number; rssMb: number };
  elapsedMs: number;
}

async function readImages(files: readonly string[]): Promise<BenchImage[]> {
  const images: BenchImage[] = [];
  const labels = new Set<string>();
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new UserInputError(`Image file cannot be read: ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 'image_missing');
    }
    if (!canMakeVariants(bytes)) {
      throw new UserInputError(`${file}: lisa-bot bench needs JPEG or PNG images (each run gets its own copy, tagged with a comment).`, 'image_unsupported');
    }
    let label = path.basename(file);
    for (let n = 2; labels.has(label); n++) label = `${path.basename(file)}#${n}`;
    labels.add(label);
    images.push({ label, bytes });
  }
  return images;
}

export async function runBench(options: BenchOptions, progress: (line: string) => void = () => undefined): Promise<BenchResult> {
  const started = performance.now();
  const machine = machineInfo();
  const images = await readImages(options.images);
  let copies = 0;
  const variant = (image: BenchImage) => imageVariant(image.bytes, `lisa-bot bench ${process.pid} ${copies++}`);
  const harness = await Harness.open({
    model: options.model,
    surfaces: options.surfaces,
    config: options.config,
    provider: options.provider,
    format: options.format,
    queueRoom: options.concurrency + options.webPosts + 8,
  });
  try {
    const engine = harness.runtime.engine;
    const manifest = engine.manifest;
    const results: Record<string, ImageResult> = {};
    for (const image of images) {
      progress(`${image.label}: ${options.warmup} warm-up and ${options.runs} measured conversation(s) of ${options.turns} turn(s)`);
      const result = await runSequential(harness, image, { runs: options.runs, warmup: options.warmup, turns: options.turns, variant });
      if (options.runs > 0) results[image.label] = result;
    }
    let concurrent: ConcurrentResult | undefined;
    if (options.concurrency > 1 || options.webPosts > 0) {
      progress(`${options.concurrency} concurrent conversation(s)${options.webPosts > 0 ? `, ${options.webPosts} web post(s)` : ''}`);
      concurrent = await runConcurrent(harness, {
        concurrency: options.concurrency,
        turns: options.turns,
        webPosts: options.webPosts,
        images,
        variant,
      });
    }
    const stats = engine.stats();
    const limits = harness.config.model.cache;
    return {
      machine: { ...machine, provider: engine.provider },
      pack: { name: manifest.name, dtype: manifest.dtype, layers: manifest.decoder.layers, hidden: manifest.decoder.hidden, vocab: manifest.decoder.vocab },
      settings: {
        runs: options.runs,
        warmup: options.warmup,
        turns: options.turns,
        concurrency: options.concurrency,
        webPosts: options.webPosts,
        format: harness.config.render.format,
      },
      images: results,
      concurrent,
      cache: {
        imageEmbeddings: { ...stats.imageCache, limitBytes: limits.imageBytes },
        kv: { ...stats.kvCache, limitBytes: limits.kvBytes },
      },
      memory: { peakRssMb: process.resourceUsage().maxRSS / 1024, rssMb: process.memoryUsage.rss() / 2 ** 20 },
      elapsedMs: performance.now() - started,
    };
  } finally {
    await harness.close();
  }
}
