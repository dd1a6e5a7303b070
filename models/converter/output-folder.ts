/**
 * The pack folder a conversion writes: everything goes to a temporary sibling
 * folder first and is renamed into place only when complete, so an interrupted
 * or failed conversion never leaves a folder that looks like a pack.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../../src/errors.js';

export interface OutputFolder {
  /** Where files are written while converting. */
  temp: string;
  /** Moves the finished folder into place (replacing an old pack with `force`). */
  commit(): Promise<void>;
  /** Removes what was written (failure or interruption). */
  discard(): Promise<void>;
}

export async function prepareOutputFolder(out: string, force: boolean): Promise<OutputFolder> {
  const target = path.resolve(out);
  if (existsSync(target)) {
    const info = await stat(target);
    if (!info.isDirectory()) throw new UserInputError(`--out ${out} is a file, not a folder.`, 'config_invalid');
    const entries = await readdir(target);
    if (entries.length > 0 && !force) {
      throw new UserInputError(`--out ${out} already exists and is not empty; pass --force to replace it.`, 'config_invalid');
    }
  }
  await mkdir(path.dirname(target), { recursive: true });
  const temp = `${target}.converting-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp);
  const removeOnSignal = () => {
    process.stderr.write(`\nlisa-bot: interrupted; removing the unfinished pack (${out} was not written).\n`);
    void rm(temp, { recursive: true, force: true }).finally(() => process.exit(130));
  };
  process.once('SIGINT', removeOnSignal);
  process.once('SIGTERM', removeOnSignal);
  const detach = () => {
    process.off('SIGINT', removeOnSignal);
    process.off('SIGTERM', removeOnSignal);
  };
  return {
    temp,
    async commit() {
      detach();
      if (existsSync(target)) {
        const old = `${target}.replaced-${process.pid}`;
        await rename(target, old);
        await rename(temp, target);
        await rm(old, { recursive: true, force: true });
      } else {
        await rename(temp, target);
      }
    },
    async discard() {
      detach();
      await rm(temp, { recursive: true, force: true });
    },
  };
}
