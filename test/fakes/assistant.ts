/**
 * A small stand-in for the assistant, for surface tests: it behaves like the
 * real one over the toy pack as seen from outside (refusals as UserInputError,
 * queued/started progress, one FIFO job at a time, "Sure, it is [SEG]." with
 * the mask of the colour named most recently) without a model or a store.
 */
import sharp from 'sharp';
import type { AssistantPort, HandleOptions, IncomingTurn, Reply, ReplySegment } from '../../src/assistant/types.js';
import { characterCount, questionTooLong } from '../../src/assistant/limits.js';
import { UserInputError } from '../../src/errors.js';
import { segmentColour } from '../../src/render/palette.js';
import { TOY_COLOUR_NAMES, TOY_PALETTE, toyColourIndex } from '../../models/generator/toy-palette.js';

export interface FakeAssistantOptions {
  maxImageBytes?: number;
  maxImagePixels?: number;
  maxQuestionChars?: number;
  name?: string;
  demo?: boolean;
}

interface Conversation {
  image?: Buffer;
  questions: string[];
}

const SNIFFED = /^(jpeg|png|webp|gif|tiff|heif)$/;

export class FakeAssistant implements AssistantPort {
  readonly model: { name: string; demo: boolean };
  readonly conversations = new Map<string, Conversation>();
  /** Every turn handed in, refused or not. */
  readonly received: IncomingTurn[] = [];
  /** Jobs wait for this before they start (tests hold the queue to watch "queued"). */
  gate: Promise<void> = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private readonly limits: Required<Pick<FakeAssistantOptions, 'maxImageBytes' | 'maxImagePixels' | 'maxQuestionChars'>>;

  constructor(options: FakeAssistantOptions = {}) {
    this.model = { name: options.name ?? 'toy', demo: options.demo ?? true };
    this.limits = {
      maxImageBytes: options.maxImageBytes ?? 20_000_000,
      maxImagePixels: options.maxImagePixels ?? 40_000_000,
      maxQuestionChars: options.maxQuestionChars ?? 2000,
    };
  }

  /** Holds every job until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => (release = resolve));
    return release;
  }

  async handle(turn: IncomingTurn, options: HandleOptions = {}): Promise<Reply> {
    this.received.push(turn);
    const question = turn.text.trim();
    if (question === '') throw new UserInputError('The question is empty. Ask something about the image.', 'question_empty');
    if (characterCount(question) > this.limits.maxQuestionChars) throw questionTooLong(this.limits.maxQuestionChars, characterCount(question));
    const ref = turn.images[0];
    let image: Buffer | undefined;
    if (ref) {
      if (ref.kind !== 'bytes') throw new Error('the fake assistant takes image bytes only');
      image = await this.checkImage(Buffer.from(ref.data));
    }
    const current = this.conversations.get(turn.conversationKey);
    image ??= current?.image;
    if (!image) throw new UserInputError("There's no image to look at yet. Attach an image and ask again.", 'no_image');
    const newContext = ref !== undefined;

    this.waiting++;
    options.onProgress?.({ type: 'queued', position: this.waiting });
    const gate = this.gate;
    const job = this.queue.then(async () => {
      try {
        await gate;
        if (options.signal?.aborted) throw new UserInputError('The request was cancelled.', 'cancelled');
        options.onProgress?.({ type: 'started' });
        return await this.answer(turn, question, image, newContext);
      } finally {
        this.waiting--;
      }
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  async resetConversation(conversationKey: string): Promise<void> {
    this.conversations.delete(conversationKey);
  }

  async firstDelivery(): Promise<boolean> {
    return true;
  }

  async hasImage(conversationKey: string): Promise<boolean> {
    return this.conversations.get(conversationKey)?.image !== undefined;
  }

  private async checkImage(bytes: Buffer): Promise<Buffer> {
    if (bytes.length === 0) throw new UserInputError('The image file is empty.', 'image_empty');
    if (bytes.length > this.limits.maxImageBytes) throw new UserInputError('The image is too large.', 'image_too_large');
    const meta = await sharp(bytes, { limitInputPixels: false })
      .metadata()
      .catch(() => undefined);
    if (!meta) {
      const text = bytes.subarray(0, 512).toString('utf8').toLowerCase();
      const what = text.includes('<html') || text.includes('<!doctype html') ? 'an HTML page' : 'not an image';
      throw new UserInputError(`That file is ${what}, not an image. Send a JPEG, PNG or WebP image.`, 'image_unsupported');
    }
    if (!SNIFFED.test(String(meta.format))) throw new UserInputError('That file is not a supported image.', 'image_unsupported');
    const pixels = (meta.width ?? 0) * (meta.height ?? 0);
    if (pixels > this.limits.maxImagePixels) {
      throw new UserInputError(`The image is ${meta.width}×${meta.height} pixels; the limit is ${this.limits.maxImagePixels} pixels.`, 'image_too_many_pixels');
    }
    return bytes;
  }

  private async answer(turn: IncomingTurn, question: string, image: Buffer, newContext: boolean): Promise<Reply> {
    const previous = this.conversations.get(turn.conversationKey);
    const questions = newContext || !previous ? [question] : [...previous.questions, question];
    // The toy model: the colour named most recently in the image context.
    const named = questions
      .flatMap((q) => [...q.toLowerCase().matchAll(new RegExp(`\\b(${TOY_COLOUR_NAMES.join('|')})\\b`, 'g'))].map((m) => m[1]!))
      .at(-1);
    const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const target = named ? TOY_PALETTE.findIndex((c) => c.name === named) : -1;
    const colour = segmentColour(0);
    let area = 0;
    let [x0, y0, x1, y1] = [info.width, info.height, -1, -1];
    for (let y = 0; y < info.height; y++) {
      for (let x = 0; x < info.width; x++) {
        const i = (y * info.width + x) * 3;
        if (target < 0 || toyColourIndex(data[i]!, data[i + 1]!, data[i + 2]!) !== target) continue;
        area++;
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
        for (let c = 0; c < 3; c++) data[i + c] = Math.round(data[i + c]! * 0.45 + colour.rgb[c]! * 0.55);
      }
    }
    const overlay = await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).png().toBuffer();
    const segment: ReplySegment = {
      index: 0,
      colour,
      bbox: area > 0 ? [x0, y0, x1 - x0 + 1, y1 - y0 + 1] : [0, 0, 0, 0],
      area,
      score: 1,
      rle: { size: [info.height, info.width], counts: '' },
      empty: area === 0,
    };
    this.conversations.set(turn.conversationKey, { image, questions });
    return {
      jobId: `${turn.surface}:${turn.requestId ?? 'fake'}`,
      conversationKey: turn.conversationKey,
      text: `Sure, it is ${colour.emoji}.`,
      rawText: 'Sure, it is [SEG].',
      ids: [],
      overlay: { data: overlay, contentType: 'image/png', format: 'png', width: info.width, height: info.height, filename: 'lisa-overlay.png' },
      segments: [segment],
      demoNotice: this.model.demo ? `Demo model "${this.model.name}": this is not LISA, only a tiny test model.` : undefined,
      turnIndex: questions.length - 1,
      timings: {
        imageDecode: 0, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0,
        segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 0,
      },
    };
  }
}
