import { type Command, Option } from 'commander';
import { surfaces } from '../../adapters/index.js';
import { loadConfig } from '../config/index.js';
import type { ProviderName } from '../engine/providers.js';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { percent } from '../eval/metrics.js';
import { duration } from '../eval/progress.js';
import { type EvalReport, runEval } from '../eval/run.js';
import type { EvalMode } from '../eval/results.js';
import { maxPixelsOption, providerOption, wholeNumber } from './options.js';

interface EvalCliOptions {
  model?: string;
  data?: string;
  mode: EvalMode;
  limit?: string;
  out?: string;
  json?: boolean;
  overlays?: string;
  provider?: ProviderName;
  maxPixels?: string;
}

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED_EXIT = 130;

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description("score a model pack on a ReasonSeg folder with the paper's metrics (gIoU, cIoU)")
    .option('--model <dir>', 'model pack folder')
    .option('--data <dir>', 'a ReasonSeg split folder (NAME.jpg + NAME.json), e.g. ReasonSeg/val')
    .addOption(new Option('--mode <mode>', 'paper: the answer "[SEG]." is given (the paper\'s protocol); chat: the model answers the plain question').choices(['paper', 'chat']).default('paper'))
    .option('--limit <n>', 'only the first N samples (by file name)')
    .option('--out <file>', 'append one JSON line per sample here; a rerun with the same file resumes')
    .option('--json', 'print the result as one JSON object')
    .option('--overlays <dir>', 'write each image with its ground truth (green; ignored: grey) and prediction (magenta)')
    .addOption(providerOption())
    .addOption(maxPixelsOption('skip'))
    .action(async (options: EvalCliOptions) => {
      await evalCommand(options);
    });
}

async function evalCommand(options: EvalCliOptions): Promise<void> {
  if (!options.model) throw new UserInputError('--model is required: a model pack folder', 'model_pack_missing');
  if (!options.data) throw new UserInputError('--data is required: a ReasonSeg folder such as ReasonSeg/val', 'config_invalid');
  const limit = options.limit === undefined ? undefined : wholeNumber('--limit', options.limit, 1);
  const maxPixels = options.maxPixels === undefined ? loadConfig({ surfaces }).limits.maxImagePixels : wholeNumber('--max-pixels', options.maxPixels, 1);
  // The first Ctrl-C lets the sample in progress finish and be saved; a second one quits at once.
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(INTERRUPTED_EXIT);
    stop.abort();
    process.stderr.write('\nStopping after the current sample (Ctrl-C again to quit now).\n');
  };
  process.on('SIGINT', onSigint);
  let report: EvalReport;
  try {
    report = await runEval({
      model: options.model,
      data: options.data,
      mode: options.mode,
      limit,
      out: options.out,
      overlays: options.overlays,
      provider: options.provider,
      maxPixels,
      logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn' }),
      stderr: process.stderr,
      signal: stop.signal,
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  process.stdout.write(options.json ? `${JSON.stringify(jsonReport(report))}\n` : table(report, options.out));
  if (report.interrupted) process.exitCode = INTERRUPTED_EXIT;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function jsonReport(r: EvalReport) {
  return {
    samples: r.samples,
    gIoU: round2(r.gIoU),
    cIoU: round2(r.cIoU),
    mode: r.mode,
    model: r.model,
    elapsedMs: Math.round(r.elapsedMs),
    skipped: r.skipped,
    samplesPerSecond: round2(r.samplesPerSecond),
    interrupted: r.interrupted,
  };
}

function table(r: EvalReport, out: string | undefined): string {
  const rows: [string, string][] = [
    ['model', r.model],
    ['mode', r.mode],
    ['samples', `${r.samples}${r.skipped > 0 ? ` (${r.skipped} skipped)` : ''}${r.interrupted ? ' (stopped early: rerun with the same --out to go on)' : ''}`],
    ['gIoU', percent(r.gIoU)],
    ['cIoU', percent(r.cIoU)],
    ['time', `${duration(r.elapsedMs / 1000)}, ${r.samplesPerSecond.toFixed(2)} samples/s (${r.scoredNow} scored now${out && r.scoredNow < r.samples ? `, ${r.samples - r.scoredNow} from ${out}` : ''})`],
  ];
  return `${rows.map(([k, v]) => `${k.padEnd(8)}${v}`).join('\n')}\n`;
}
