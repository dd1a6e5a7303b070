import { type Command } from 'commander';
import { surfaces } from '../../adapters/index.js';
import { loadConfig } from '../config/index.js';
import { Engine } from '../engine/engine.js';
import { ImagesInMemory } from '../engine/images-in-memory.js';
import { decodeImage } from '../engine/image.js';
import { decodeRle } from '../engine/mask.js';
import type { ProviderName } from '../engine/providers.js';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import type { OverlayFormat } from '../render/formats.js';
import { renderOverlay } from '../render/overlay.js';
import { chooseSegmentColours } from '../render/colour-choice.js';
import { type AskAnswer, deliverAnswer } from './ask-answer.js';
import { checkMaskOut, checkOverlayOut, readImage, readQuestion } from './ask-input.js';
import { askInSession } from './ask-session.js';
import { maxPixelsOption, noteProvider, providerOption, wholeNumber } from './options.js';

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
  maxPixels?: string;
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
    .option('--config <file>', 'YAML config laid over the defaults (config/default.yaml, adapters/*/defaults.yaml) (limits; with --session, everything)')
    .option('--out <file>', 'write the overlay here (.png, .jpg or .webp)')
    .option('--mask-out <file>', 'write the union of all masks as an 8-bit PNG (255 inside; .png)')
    .option('--json', 'print text, segments (RLE) and timings as JSON')
    .addOption(providerOption())
    .addOption(maxPixelsOption('refuse'))
    .action(async (words: string[], options: AskOptions) => {
      // Before anything loads onnxruntime: a bad question, limit or output path costs no model run.
      const config = loadConfig({ file: options.config, surfaces });
      if (options.maxPixels !== undefined) config.limits.maxImagePixels = wholeNumber('--max-pixels', options.maxPixels, 1);
      if (options.model) config.model.path = options.model;
      if (options.provider) config.model.providers = [options.provider, 'cpu'];
      const question = await readQuestion(words, options, config.limits.maxQuestionChars);
      const format = options.out ? await checkOverlayOut(options.out) : undefined;
      if (options.maskOut) await checkMaskOut(options.maskOut);
      const answer =
        options.session !== undefined
          ? await askInSession({ session: options.session, question, image: options.image, provider: options.provider }, config, format)
          : await askOnce(question, options, config.limits.maxImagePixels, format);
      await deliverAnswer(answer, options);
    });
}

/** One question about one image, straight to the engine: nothing is stored. */
async function askOnce(question: string, options: AskOptions, maxPixels: number, format: OverlayFormat | undefined): Promise<AskAnswer> {
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
    let overlay: Uint8Array | undefined;
    if (options.out) {
      const colours = chooseSegmentColours(decoded, result.segments);
      const masks = result.segments.map((s, i) => ({ mask: decodeRle(s.rle), rgb: colours[i]!.rgb }));
      overlay = (await renderOverlay(decoded, masks, { format })).data;
    }
    return {
      text: result.text,
      seg: engine.manifest.tokens.seg,
      ids: result.ids,
      segments: result.segments,
      timings: result.timings,
      image: { width: decoded.width, height: decoded.height },
      overlay,
    };
  } finally {
    await engine.close();
  }
}
