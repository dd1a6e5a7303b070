import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isUserInputError } from './errors.js';
import { registerAsk } from './cli/ask.js';
import { registerDiscord } from './cli/discord.js';
import { registerBench } from './cli/bench.js';
import { registerEval } from './cli/eval.js';
import { registerModels } from './cli/models.js';
import { registerServe } from './cli/serve.js';
import { registerWorker } from './cli/worker.js';

/**
 * `lisa-bot <command>`. Exit codes: 0 success, 2 bad input (one line on
 * stderr says why), 1 anything else.
 */
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const program = new Command('lisa-bot')
  .description('LISA reasoning segmentation: answers questions about images with text and masks')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride();

registerAsk(program);
registerBench(program);
registerEval(program);
registerModels(program);
registerServe(program);
registerWorker(program);
registerDiscord(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit 0; a bad flag is bad input.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (isUserInputError(error)) {
    process.stderr.write(`lisa-bot: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`lisa-bot: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  }
}
