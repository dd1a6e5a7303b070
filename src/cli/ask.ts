import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { loadConfig, providerNames } from '../config/index.js';
import { Engine } from '../engine/engine.js';
import { ImagesInMemory } from '../engine/images-in-memory.js';
import { decodeImage } from '../engine/image.js';
import { decodeRle, maskUnion } from '../engine/mask.js';
import type { ProviderName } from '../engine/pack.js';
import type { ChatResult } from '../engine/types.js';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { replaceSegTokens } from '../render/markers.js';
import { renderMaskPng, renderOverlay } from '../render/overlay.js';
import { chooseSegmentColours } from '../render/colour-choice.js';
import { type OverlayFileFormat, checkMaskOut, checkOverlayOut, readQuestion } from './ask-input.js';
import { askInSession } from './ask-session.js';
import { writeFileAtomic } from './output.js';

export interface AskOptions {
  model?: string;
  image?: string;
  session?: string;
  config?: string;
  questionFile?: string;
  out?: string;
  maskOut?: string;
  json?: boolean;
  provider?: ProviderName;
  maxPixels: string;
}

export function registerAsk(program: Command): void {
  program
    .command('ask')
    .description('answer one question about an image; masks go to an overlay image')
    .argument('[question...]', 'what to ask about the image; "-" reads it from stdin')
    .option('--question-file <file>', 'read the question from this file (for long questions)')
    .option('--model <dir>', 'model pack folder (make the toy one with `lisa-bot models toy`); with --session, model.path of the config by default')
    .option('--image <file>', 'the image (JPEG, PNG, WebP, GIF, TIFF, AVIF); with --session, optional: the conversation keeps its image')
    .option('--session <name>', 'continue (or start) the stored conversation NAME, through the same sessions as the chat surfaces')
    .option('--config <file>', 'YAML config laid over config/default.yaml (limits; with --session, everything)')
    .option('--out <file>', 'write the overlay here (.png, .jpg or .webp)')
    .option('--mask-out <file>', 'write the union of all masks as an 8-bit PNG (255 inside; .png)')
    .option('--json', 'print text, segments (RLE) and timings as JSON')
    .addOption(new Option('--provider <name>', 'execution provider to try first').choices(providerNames))
    .option('--max-pixels <n>', 'refuse images with more pixels than this', '40000000')
    .action(async (words: string[], options: AskOptions) => {
      // Before anything loads onnxruntime: a bad question or output path costs no model run.
      const config = loadConfig({ file: options.config });
      const question = await readQuestion(words, options, config.limits.maxQuestionChars);
      const format = options.out ? await checkOverlayOut(options.out) : undefined;
      if (options.maskOut) await checkMaskOut(options.maskOut);
      if (options.session !== undefined) await askInSession(question, options, config, format);
      else await ask(question, options, format);
    });
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

async function ask(question: string, options: AskOptions, format: OverlayFileFormat | undefined): Promise<void> {
  const maxPixels = Number(options.maxPixels);
  if (!Number.isInteger(maxPixels) || maxPixels <= 0) throw new UserInputError(`--max-pixels must be a positive whole number`, 'config_invalid');
  if (!options.model) throw new UserInputError('--model is required (or use --session to go through the configured model)', 'model_pack_missing');
  if (!options.image) throw new UserInputError('--image is required (or use --session to continue a conversation that has one)', 'image_missing');
  const image = await readImage(options.image);
  // Decoded here before the model loads, so a bad file fails fast; the overlay is drawn on these pixels.
  const decoded = await decodeImage(image, { maxPixels });
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const files = new ImagesInMemory();
  const engine = await Engine.open(options.model, {
    images: files,
    providers: options.provider ? [options.provider, 'cpu'] : ['cpu'],
    maxImagePixels: maxPixels,
    logger,
  });
  noteProvider(options.provider, engine.provider);
  try {
    const result = await engine.chat({ imageHash: files.add(image), turns: [{ user: question }] });
    const seg = engine.manifest.tokens.seg;
    if (options.out) {
      const colours = chooseSegmentColours(decoded, result.segments);
      const masks = result.segments.map((s, i) => ({ mask: decodeRle(s.rle), rgb: colours[i]!.rgb }));
      const overlay = await renderOverlay(decoded, masks, { format });
      await writeFileAtomic(options.out, overlay.data);
    }
    if (options.maskOut) {
      const union = maskUnion(result.segments.map((s) => decodeRle(s.rle)), decoded.width, decoded.height);
      await writeFileAtomic(options.maskOut, await renderMaskPng(union));
    }
    process.stdout.write(options.json ? `${JSON.stringify(jsonResult(result))}\n` : `${textLines(result.text, seg, result.segments).join('\n')}\n`);
  } finally {
    await engine.close();
  }
}

function jsonResult(result: ChatResult) {
  return {
    text: result.text,
    ids: result.ids,
    segments: result.segments.map((s) => ({ area: s.area, bbox: s.bbox, score: s.score, rle: s.rle })),
    timings: result.timings,
  };
}

/**
 * A provider asked for by name and not used is said, in one line: the fallback is
 * logged only at info (a CPU host's usual state), which the CLI does not show.
 */
export function noteProvider(requested: ProviderName | undefined, used: ProviderName): void {
  if (requested && requested !== used) process.stderr.write(`lisa-bot: --provider ${requested} is not available here; ran on ${used}\n`);
}

/** The answer with its [SEG] tokens as "[mask N]", then a line per mask (both `ask` modes). */
export function textLines(text: string, seg: string, segments: ChatResult['segments']): string[] {
  const lines = [replaceSegTokens(text, seg, (i) => `[mask ${i + 1}]`)];
  if (segments.length === 0) lines.push('(no mask: the answer points at nothing in the image)');
  segments.forEach((s, i) => {
    const total = s.rle.size[0] * s.rle.size[1];
    lines.push(
      s.area === 0
        ? `[mask ${i + 1}] empty: nothing in the image matched`
        : `[mask ${i + 1}] ${((100 * s.area) / total).toFixed(1)}% of the image, box x=${s.bbox[0]} y=${s.bbox[1]} w=${s.bbox[2]} h=${s.bbox[3]}, score ${s.score.toFixed(2)}`,
    );
  });
  return lines;
}
