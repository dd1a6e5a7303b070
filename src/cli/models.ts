import type { Command } from 'commander';
import { writeBenchPack } from '../../models/generator/bench.js';
import { writeToyPack } from '../../models/generator/toy.js';

export function registerModels(program: Command): void {
  const models = program.command('models').description('make and inspect model packs');
  models
    .command('toy')
    .description('write the toy pack: a tiny LISA that really segments palette colours (a demo, not LISA)')
    .requiredOption('--out <dir>', 'folder to write the pack into')
    .option('--dtype <dtype>', 'float32 or float16', 'float32')
    .action(async (options: { out: string; dtype: string }) => {
      if (options.dtype !== 'float32' && options.dtype !== 'float16') {
        program.error(`--dtype must be float32 or float16, not "${options.dtype}"`, { exitCode: 2 });
      }
      await writeToyPack(options.out, { dtype: options.dtype as 'float32' | 'float16' });
      process.stdout.write(`toy pack written to ${options.out}\n`);
    });
  models
    .command('bench')
    .description('write the bench pack: LISA-shaped graphs with fixed random weights, to measure speed (answers are nonsense)')
    .requiredOption('--out <dir>', 'folder to write the pack into')
    .option('--dtype <dtype>', 'float32 or float16', 'float32')
    .action(async (options: { out: string; dtype: string }) => {
      if (options.dtype !== 'float32' && options.dtype !== 'float16') {
        program.error(`--dtype must be float32 or float16, not "${options.dtype}"`, { exitCode: 2 });
      }
      await writeBenchPack(options.out, { dtype: options.dtype as 'float32' | 'float16' });
      process.stdout.write(`bench pack written to ${options.out}\n`);
    });
}
