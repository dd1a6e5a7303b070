/**
 * Options and checks that several commands share (ask, eval, bench), so each
 * reads and fails the same way everywhere.
 */
import { Option } from 'commander';
import { providerNames } from '../config/index.js';
import { UserInputError } from '../errors.js';

export function providerOption(): Option {
  return new Option('--provider <name>', 'execution provider to try first').choices(providerNames);
}

/** `--max-pixels`; without it, the config's `limits.maxImagePixels` applies. */
export function maxPixelsOption(what: 'refuse' | 'skip'): Option {
  return new Option('--max-pixels <n>', `${what} images with more pixels than this (default: limits.maxImagePixels of the config)`);
}

/** A flag's whole-number value, at least `min`; anything else is the user's mistake, said with the flag. */
export function wholeNumber(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UserInputError(`${flag} must be a ${min === 1 ? 'positive whole number' : `whole number >= ${min}`}, not "${value}"`, 'config_invalid');
  }
  return n;
}

/** A provider asked for by name and not used is said in one line: the fallback is logged only at info, which the CLI does not show. */
export function noteProvider(requested: string | undefined, used: string): void {
  if (requested && requested !== used) process.stderr.write(`lisa-bot: --provider ${requested} is not available here; ran on ${used}\n`);
}
