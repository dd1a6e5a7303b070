import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { Engine } from '../engine/engine.js';
import { decodeImage } from '../engine/image.js';
import { loadConfig } from '../config/index.js';
import { cliKey } from '../conversation/index.js';
import { decodeRle, maskUnion } from '../engine/mask.js';
import type { ProviderName } from '../engine/pack.js';
import type { ChatResult } from '../engine/types.js';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { replaceSegTokens } from '../render/markers.js';
import { renderMaskPng, renderOverlay } from '../render/overlay.js';
import { segmentColour } from '../render/palette.js';
import { createRuntime } from '../runtime.js';
import { writeFileAtomic } from './output.js';

interface AskOptions {
  model?: string;
  image?: string;
  session?: string;
  config?: string;
  out?: string;
  maskOut?: string;
  json?: boolean;
  provider?: ProviderName;
  maxPixels: string;
}

const OVERLAY_FORMATS = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' } as const;

export function registerAsk(program: Command): void {
  program
    .command('ask')
    .description('answer one question about an image; masks go to an overlay image')
    .argument('<question...>', 'what to ask about the image')
    .option('--model <dir>', 'model pack folder (make the toy one with `lisa-bot models toy`); with --session, model.path of the config by default')
    .option('--image <file>', 'the image (JPEG, PNG, WebP, GIF, TIFF, AVIF); with --session, optional: the conversation keeps its image')
    .option('--session <name>', 'continue (or start) the stored conversation NAME, through the same sessions as the chat surfaces')
    .option('--config <file>', 'with --session: YAML config laid over config/default.yaml')
    .option('--out <file>', 'write the overlay here (.png, .jpg or .webp)')
    .option('--mask-out <file>', 'write the union of all masks as an 8-bit PNG (255 inside)')
    .option('--json', 'print text, segments (RLE) and timings as JSON')
    .addOption(new Option('--provider <name>', 'execution provider to try first').choices(['cpu', 'cuda', 'tensorrt']))
    .option('--max-pixels <n>', 'refuse images with more pixels than this', '40000000')
    .action(async (words: string[], options: AskOptions) => {
      if (options.session !== undefined) await askInSession(words.join(' '), options);
      else await ask(words.join(' '), options);
    });
}

async function readImage(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserInputError(`Image file not found: ${file}`, 'image_missing');
    if (code === 'EISDIR') throw new UserInputError(`Image path is a folder, not a file: ${file}`, 'image_missing');
    throw new UserInputError(`Image file cannot be read: ${file} (${code ?? (error as Error).message})`, 'image_missing');
  }
}

function overlayFormat(file: string) {
  const format = OVERLAY_FORMATS[path.extname(file).toLowerCase() as keyof typeof OVERLAY_FORMATS];
  if (!format) throw new UserInputError(`--out must end in .png, .jpg, .jpeg or .webp: ${file}`, 'image_unsupported');
  return format;
}

async function ask(question: string, options: AskOptions): Promise<void> {
  if (question.trim() === '') throw new UserInputError('The question is empty. Ask something about the image.', 'question_empty');
  const maxPixels = Number(options.maxPixels);
  if (!Number.isInteger(maxPixels) || maxPixels <= 0) throw new UserInputError(`--max-pixels must be a positive whole number`, 'config_invalid');
  if (!options.model) throw new UserInputError('--model is required (or use --session to go through the configured model)', 'model_pack_missing');
  if (!options.image) throw new UserInputError('--image is required (or use --session to continue a conversation that has one)', 'image_missing');
  const format = options.out ? overlayFormat(options.out) : undefined;
  const image = await readImage(options.image);
  // Decoded once, before the model loads: a bad file fails fast, and the overlay reuses the pixels.
  const decoded = await decodeImage(image, { maxPixels });
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const engine = await Engine.open(options.model, {
    providers: options.provider ? [options.provider, 'cpu'] : ['cpu'],
    maxImagePixels: maxPixels,
    logger,
  });
  try {
    const result = await engine.chat({ image, decoded, turns: [{ user: question }] });
    const seg = engine.manifest.tokens.seg;
    if (options.out) {
      const masks = result.segments.map((s, i) => ({ mask: decodeRle(s.rle), rgb: segmentColour(i).rgb }));
      const overlay = await renderOverlay(decoded, masks, { format });
      await writeFileAtomic(options.out, overlay.data);
    }
    if (options.maskOut) {
      const union = maskUnion(result.segments.map((s) => decodeRle(s.rle)), decoded.width, decoded.height);
      await writeFileAtomic(options.maskOut, await renderMaskPng(union));
    }
    process.stdout.write(options.json ? `${JSON.stringify(jsonResult(result))}\n` : textResult(result, seg));
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

function textResult(result: ChatResult, seg: string): string {
  const lines = [replaceSegTokens(result.text, seg, (i) => `[mask ${i + 1}]`)];
  if (result.segments.length === 0) lines.push('(no mask: the answer points at nothing in the image)');
  result.segments.forEach((s, i) => {
    const total = s.rle.size[0] * s.rle.size[1];
    lines.push(
      s.area === 0
        ? `[mask ${i + 1}] empty: nothing in the image matched`
        : `[mask ${i + 1}] ${((100 * s.area) / total).toFixed(1)}% of the image, box x=${s.bbox[0]} y=${s.bbox[1]} w=${s.bbox[2]} h=${s.bbox[3]}, score ${s.score.toFixed(2)}`,
    );
  });
  return `${lines.join('\n')}\n`;
}

/** `ask --session NAME`: one turn through the assistant, so the conversation is stored like any chat's. */
async function askInSession(question: string, options: AskOptions): Promise<void> {
  const config = loadConfig({ file: options.config });
  if (options.model) config.model.path = options.model;
  if (options.provider) config.model.providers = [options.provider, 'cpu'];
  const format = options.out ? overlayFormat(options.out) : undefined;
  const image = options.image ? await readImage(options.image) : undefined;
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const runtime = await createRuntime(config, logger);
  try {
    const reply = await runtime.assistant.handle(
      {
        surface: 'cli',
        conversationKey: cliKey(options.session!),
        user: { id: userInfo().username },
        text: question,
        images: image ? [{ kind: 'bytes', data: image }] : [],
      },
      { overlay: { format } },
    );
    if (options.out && reply.overlay) await writeFileAtomic(options.out, reply.overlay.data);
    if (options.maskOut) {
      const masks = reply.segments.map((s) => decodeRle(s.rle));
      const [height, width] = reply.segments[0]?.rle.size ?? [0, 0];
      if (masks.length > 0) await writeFileAtomic(options.maskOut, await renderMaskPng(maskUnion(masks, width, height)));
    }
    if (options.json) {
      const segments = reply.segments.map((s) => ({ area: s.area, bbox: s.bbox, score: s.score, rle: s.rle }));
      process.stdout.write(`${JSON.stringify({ text: reply.rawText, ids: reply.ids, segments, timings: reply.timings, turn: reply.turnIndex + 1 })}\n`);
    } else {
      const text = replaceSegTokens(reply.rawText, runtime.engine.manifest.tokens.seg, (i) => `[mask ${i + 1}]`);
      const lines = [reply.demoNotice, text, `(turn ${reply.turnIndex + 1} of session "${options.session}")`];
      process.stdout.write(`${lines.filter(Boolean).join('\n')}\n`);
    }
  } finally {
    await runtime.close();
  }
}
