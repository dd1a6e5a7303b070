/**
 * GPU check: how fast a converted pack runs on each execution provider, and
 * how far its decoding is from the memory-bandwidth floor.
 *
 *   npm run bench:gpu -- --model PACK [--turns N] [--providers cuda,webgpu,cpu]
 *                        [--image FILE] [--bandwidth GBps] [--json]
 *
 * Converts nothing. docs/performance.md says how to read it.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { providerNames } from '../config/index.js';
import { loadManifest } from '../engine/manifest.js';
import type { ProviderName } from '../engine/providers.js';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { knownBandwidth, nvidiaGpuName } from './gpu-device.js';
import { type GpuBenchReport, formatGpuReport, providerReport } from './gpu-report.js';
import { decoderWeightBytes, runProvider } from './gpu-run.js';

/** A mistake in the command line: said in one line, exit status 2. */
class UsageError extends Error {}

const USAGE = 'usage: npm run bench:gpu -- --model PACK [--turns N] [--providers cuda,webgpu,cpu] [--image FILE] [--bandwidth GBps] [--json]';
const DEFAULT_QUESTION = 'Can you segment the most prominent object in this image?';

export interface GpuBenchOptions {
  model: string;
  turns: number;
  providers: ProviderName[];
  image?: string;
  bandwidth?: number;
  question: string;
  json: boolean;
}

export function parseGpuBenchArgs(argv: string[]): GpuBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      turns: { type: 'string', default: '3' },
      providers: { type: 'string', default: 'cuda,webgpu,cpu' },
      image: { type: 'string' },
      bandwidth: { type: 'string' },
      question: { type: 'string', default: DEFAULT_QUESTION },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.model) throw new UsageError(`--model is required. ${USAGE}`);
  const turns = Number(values.turns);
  if (!Number.isInteger(turns) || turns < 1) throw new UsageError(`--turns must be a whole number >= 1, not "${values.turns}"`);
  const providers = values.providers.split(',').map((p) => p.trim()).filter(Boolean);
  const unknown = providers.filter((p) => !(providerNames as readonly string[]).includes(p));
  if (unknown.length > 0 || providers.length === 0) {
    throw new UsageError(`unknown provider "${unknown.join('", "')}": --providers takes a comma-separated list of ${providerNames.join(', ')}`);
  }
  let bandwidth: number | undefined;
  if (values.bandwidth !== undefined) {
    bandwidth = Number(values.bandwidth);
    if (!(bandwidth > 0)) throw new UsageError(`--bandwidth must be a positive number of GB/s, not "${values.bandwidth}"`);
  }
  return { model: values.model, turns, providers: [...new Set(providers)] as ProviderName[], image: values.image, bandwidth, question: values.question, json: values.json };
}

/** A 640x480 scene with a few shapes, for runs without --image. */
async function defaultImage(): Promise<Uint8Array> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"><rect width="640" height="480" fill="#dfe8ee"/>
    <circle cx="200" cy="220" r="90" fill="#c0392b"/><rect x="360" y="140" width="180" height="160" fill="#2e6da4"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export async function runGpuBench(options: GpuBenchOptions): Promise<GpuBenchReport> {
  const manifest = await loadManifest(options.model);
  const image = options.image ? await readFile(options.image) : await defaultImage();
  const gpu = await nvidiaGpuName();
  const tableBandwidth = gpu ? knownBandwidth(gpu) : undefined;
  const bandwidth = options.bandwidth ? { gbps: options.bandwidth, source: 'flag' as const } : tableBandwidth ? { gbps: tableBandwidth, source: 'table' as const } : null;
  const weights = await decoderWeightBytes(options.model, manifest);
  // Warnings (a provider that could not load) reach the terminal; the rest would drown the table.
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const providers = [];
  for (const provider of options.providers) {
    const run = await runProvider(options.model, provider, { turns: options.turns, image, question: options.question, logger });
    providers.push(providerReport(run, weights, bandwidth?.gbps));
  }
  return {
    pack: { dir: options.model, name: manifest.name, dtype: manifest.dtype, decoderForm: manifest.decoder.form, decoderWeightBytes: weights },
    gpu: gpu ?? null,
    bandwidth,
    turnsPerProvider: options.turns,
    providers,
  };
}

async function main(): Promise<void> {
  try {
    const options = parseGpuBenchArgs(process.argv.slice(2));
    const report = await runGpuBench(options);
    process.stdout.write(`${options.json ? JSON.stringify(report, null, 2) : formatGpuReport(report)}\n`);
  } catch (error) {
    const known = error instanceof UsageError || error instanceof UserInputError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`bench:gpu: ${known ? (error as Error).message : (error as Error).stack}\n`);
    process.exitCode = known ? 2 : 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
