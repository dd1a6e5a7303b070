/**
 * What `lisa-bot ask` reads and checks before anything loads the model: the
 * question (from the arguments, a file or stdin, within the same limit as
 * every chat surface), the image file and the output paths, so that a mistake
 * costs no model run.
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { checkQuestion } from '../assistant/limits.js';
import { UserInputError } from '../errors.js';
import type { OverlayFormat } from '../render/formats.js';

export interface QuestionSource {
  questionFile?: string;
}

/**
 * The question, trimmed and checked against `maxQuestionChars`. A long
 * question belongs in a file or on stdin: onnxruntime crashes on a long
 * command line (engine/command-line.ts).
 */
export async function readQuestion(words: readonly string[], source: QuestionSource, maxQuestionChars: number): Promise<string> {
  if (source.questionFile !== undefined && words.length > 0) {
    throw new UserInputError('Give the question either as words or with --question-file, not both.', 'config_invalid');
  }
  let text: string;
  if (source.questionFile !== undefined) text = await readText(source.questionFile);
  else if (words.length === 1 && words[0] === '-') text = await readStdin();
  else text = words.join(' ');
  return checkQuestion(text, { maxQuestionChars, perUserPerMinute: 0, allowedUsers: [], allowedChannels: [] });
}

export async function readImage(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserInputError(`Image file not found: ${file}`, 'image_missing');
    if (code === 'EISDIR') throw new UserInputError(`Image path is a folder, not a file: ${file}`, 'image_missing');
    throw new UserInputError(`Image file cannot be read: ${file} (${code ?? (error as Error).message})`, 'image_missing');
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserInputError(`The question file cannot be read: ${file} (${code === 'ENOENT' ? 'not found' : (code ?? (error as Error).message)})`, 'config_invalid');
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const OVERLAY_FORMATS: Readonly<Record<string, OverlayFormat>> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' };

/** The overlay's format from `--out`'s extension, once the file is known to be writable. */
export async function checkOverlayOut(file: string): Promise<OverlayFormat> {
  const format = OVERLAY_FORMATS[path.extname(file).toLowerCase()];
  if (!format) throw new UserInputError(`--out must end in .png, .jpg, .jpeg or .webp: ${file}`, 'output_invalid');
  await checkWritable('--out', file);
  return format;
}

/** `--mask-out` is a lossless 8-bit PNG: a JPEG or WebP would blur the mask's edges into other values. */
export async function checkMaskOut(file: string): Promise<void> {
  if (path.extname(file).toLowerCase() !== '.png') {
    throw new UserInputError(`--mask-out writes a PNG (lossless, so the mask stays exactly 0 or 255): use a .png name, not ${file}`, 'output_invalid');
  }
  await checkWritable('--mask-out', file);
}

async function checkWritable(flag: string, file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const folder = await stat(dir).catch(() => undefined);
  if (!folder) throw new UserInputError(`${flag}: the folder ${dir} does not exist.`, 'output_invalid');
  if (!folder.isDirectory()) throw new UserInputError(`${flag}: ${dir} is not a folder.`, 'output_invalid');
  if ((await stat(file).catch(() => undefined))?.isDirectory()) throw new UserInputError(`${flag}: ${file} is a folder.`, 'output_invalid');
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new UserInputError(`${flag}: cannot write into ${dir} (permission denied).`, 'output_invalid');
  }
}
