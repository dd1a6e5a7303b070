import { type Command, Option } from 'commander';
import { surfaces } from '../../adapters/index.js';
import { type OverlayFormat, overlayFormats } from '../render/formats.js';
import type { ProviderName } from '../engine/providers.js';
import { formatReport } from '../bench/report.js';
import { runBench } from '../bench/run.js';
import { stableJson } from '../bench/stats.js';
import { providerOption, wholeNumber } from './options.js';

interface BenchCliOptions {
  model: string;
  image: string[];
  turns: string;
  runs: string;
  warmup: string;
  concurrency: string;
  webPosts?: string;
  config?: string;
  provider?: ProviderName;
  format?: OverlayFormat;
  json?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure latency per stage, host overhead, follow-ups, concurrency and memory (see docs/performance.md)')
    .requiredOption('--model <dir>', 'model pack folder (make one with `lisa-bot models bench` or `models toy`)')
    .requiredOption('--image <file...>', 'JPEG or PNG image(s); each is measured on its own')
    .option('--turns <n>', 'turns per conversation: the first, then follow-ups on the same image', '1')
    .option('--runs <n>', 'measured conversations per image', '5')
    .option('--warmup <n>', 'unrecorded conversations per image first', '1')
    .option('--concurrency <n>', 'then submit this many conversations at once (1: no load test)', '1')
    .option('--web-posts <n>', 'while those are queued, POST this many turns to the web API and time the 202 (default 50 with --concurrency > 1)')
    .option('--config <file>', 'YAML config laid over the defaults (config/default.yaml, adapters/*/defaults.yaml) (caches, limits, render.format)')
    .addOption(providerOption())
    .addOption(new Option('--format <format>', 'overlay format (default: render.format of the config)').choices(overlayFormats))
    .option('--json', 'print stable JSON (sorted keys, 0.1 ms) instead of the table')
    .action(async (options: BenchCliOptions) => {
      const concurrency = wholeNumber('--concurrency', options.concurrency, 1);
      const result = await runBench(
        {
          model: options.model,
          surfaces,
          images: options.image,
          turns: wholeNumber('--turns', options.turns, 1),
          runs: wholeNumber('--runs', options.runs, 0),
          warmup: wholeNumber('--warmup', options.warmup, 0),
          concurrency,
          webPosts: options.webPosts === undefined ? (concurrency > 1 ? 50 : 0) : wholeNumber('--web-posts', options.webPosts, 0),
          config: options.config,
          provider: options.provider,
          format: options.format,
        },
        (line) => process.stderr.write(`bench: ${line}\n`),
      );
      process.stdout.write(options.json ? stableJson(result) : formatReport(result));
    });
}
