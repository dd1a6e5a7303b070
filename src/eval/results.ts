/**
 * The `--out` JSONL: one line per scored sample, appended as soon as it is
 * scored, so a run stopped at any point (Ctrl-C, a crash, a reboot) loses at
 * most the sample in progress, and a rerun with the same file resumes.
 */
import { access, appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../errors.js';
import { writeFileAtomic } from '../atomic-file.js';

export type EvalMode = 'paper' | 'chat';

export interface ResultLine {
  image: string;
  text: string;
  mode: EvalMode;
  intersection: number;
  union: number;
  iou: number;
  ms: number;
  /** Chat mode: what the model wrote. */
  answer?: string;
}

function isResultLine(value: unknown): value is ResultLine {
  const v = value as ResultLine;
  return (
    typeof v === 'object' && v !== null && typeof v.image === 'string' && (v.mode === 'paper' || v.mode === 'chat') &&
    Number.isFinite(v.intersection) && Number.isFinite(v.union)
  );
}

/**
 * Results already in `file` (none when it does not exist). A line cut short
 * by a kill is dropped, and the file rewritten without it so that appends
 * start on a line of their own. Results of the other mode are refused: one
 * file, one protocol.
 */
export async function readResults(file: string, mode: EvalMode): Promise<Map<string, ResultLine>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // Found out now rather than after the first sample has been scored.
      await access(path.dirname(path.resolve(file))).catch(() => {
        throw new UserInputError(`--out folder not found: ${path.dirname(file)}`, 'config_invalid');
      });
      return new Map();
    }
    throw new UserInputError(`--out file cannot be read: ${file} (${code ?? (error as Error).message})`, 'config_invalid');
  }
  const results = new Map<string, ResultLine>();
  const kept: string[] = [];
  let dropped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (!isResultLine(parsed)) {
      dropped++;
      continue;
    }
    if (parsed.mode !== mode) {
      throw new UserInputError(
        `--out ${file} holds ${parsed.mode}-mode results and this run is --mode ${mode}: give each mode its own file.`,
        'config_invalid',
      );
    }
    results.set(parsed.image, parsed);
    kept.push(line);
  }
  if (dropped > 0 || (text !== '' && !text.endsWith('\n'))) {
    await writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
  }
  return results;
}

export async function appendResult(file: string, line: ResultLine): Promise<void> {
  try {
    await appendFile(file, `${JSON.stringify(line)}\n`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserInputError(`--out file cannot be written: ${file} (${code ?? (error as Error).message})`, 'config_invalid');
  }
}
