/**
 * A small AssistantPort for the Slack tests, with the toy pack's behaviour:
 * every answer is "Sure, it is [SEG]." and the mask is the region of the
 * palette colour (red / blue) named most recently in the conversation. It
 * downloads URL refs the way the assistant contract says (only from
 * allowedHosts, headers only there, the content type checked), emits
 * downloading / queued / started progress, and maps a repeated requestId onto
 * the same job.
 */
import sharp from 'sharp';
import type { AssistantPort, HandleOptions, ImageRef, IncomingTurn, Reply } from '../../../src/assistant/types.js';
import { UserInputError } from '../../../src/errors.js';
import { BLUE, RED } from './images.js';

interface Raw {
  data: Buffer;
  width: number;
  height: number;
}

const TINT: [number, number, number] = [46, 204, 64];
const PALETTE = { red: RED, blue: BLUE } as const;
type Colour = keyof typeof PALETTE;

export class FakeAssistant implements AssistantPort {
  readonly model = { name: 'fake-toy', demo: true };
  readonly turns: IncomingTurn[] = [];
  /** Set to make the next handle() reject with it (once). */
  failNext: Error | undefined;
  private readonly sessions = new Map<string, { image: Raw; colour?: Colour; turns: number }>();
  private readonly jobs = new Map<string, Promise<Reply>>();
  private readonly seen = new Map<string, number>();
  private gate: Promise<void> = Promise.resolve();
  private jobCount = 0;

  /** Jobs started from now on wait (after "queued") until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      release();
      this.gate = Promise.resolve();
    };
  }

  async firstDelivery(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return false;
    this.seen.set(key, now + ttlMs);
    return true;
  }

  async hasImage(conversationKey: string): Promise<boolean> {
    return this.sessions.has(conversationKey);
  }

  async resetConversation(conversationKey: string): Promise<void> {
    this.sessions.delete(conversationKey);
  }

  handle(turn: IncomingTurn, options: HandleOptions = {}): Promise<Reply> {
    this.turns.push(turn);
    const jobId = turn.requestId ?? `job-${++this.jobCount}`;
    const existing = this.jobs.get(jobId);
    if (existing) return existing;
    const job = this.run(jobId, turn, options);
    this.jobs.set(jobId, job);
    job.catch(() => this.jobs.delete(jobId));
    return job;
  }

  private async run(jobId: string, turn: IncomingTurn, options: HandleOptions): Promise<Reply> {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    if (!turn.text.trim()) throw new UserInputError('Please ask a question about the image.', 'question_empty');
    let session = this.sessions.get(turn.conversationKey);
    if (turn.images.length > 0) {
      options.onProgress?.({ type: 'downloading' });
      const image = await load(turn.images[0]);
      session = { image, colour: session?.colour, turns: session?.turns ?? 0 };
    }
    if (!session) {
      throw new UserInputError('There is no image in this conversation yet: send one with your question.', 'no_image');
    }
    // Two positions at once: the adapter may show only the newest.
    options.onProgress?.({ type: 'queued', position: 3 });
    options.onProgress?.({ type: 'queued', position: 2 });
    await this.gate;
    options.onProgress?.({ type: 'started' });

    const named = [...turn.text.toLowerCase().matchAll(/\b(red|blue)\b/g)].map((m) => m[1] as Colour);
    const colour = named.at(-1) ?? session.colour ?? 'red';
    session.colour = colour;
    session.turns += 1;
    this.sessions.set(turn.conversationKey, session);
    const overlay = await tint(session.image, PALETTE[colour]);
    return {
      jobId,
      conversationKey: turn.conversationKey,
      text: 'Sure, it is 🟩.',
      rawText: 'Sure, it is [SEG].',
      ids: [],
      overlay: { data: overlay, contentType: 'image/png', format: 'png', width: session.image.width, height: session.image.height, filename: 'lisa-overlay.png' },
      segments: [],
      demoNotice: 'Demo model: it only finds the toy palette colours.',
      turnIndex: session.turns - 1,
      timings: { imageDecode: 0, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0, segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 0 },
    };
  }
}

async function load(ref: ImageRef): Promise<Raw> {
  let bytes: Buffer;
  if (ref.kind === 'bytes') {
    bytes = Buffer.from(ref.data);
  } else {
    const host = new URL(ref.url).hostname;
    if (!ref.allowedHosts.includes(host)) {
      throw new UserInputError(`I only fetch images from ${ref.allowedHosts.join(', ')}.`, 'download_failed');
    }
    const response = await fetch(ref.url, { headers: ref.headers, redirect: 'manual' });
    if (response.status !== 200) throw new UserInputError(`The image could not be downloaded (HTTP ${response.status}).`, 'download_failed');
    const type = response.headers.get('content-type') ?? '';
    if (!type.startsWith('image/')) {
      throw new UserInputError(`That file is not an image.${ref.notImageHint ? ` ${ref.notImageHint}` : ''}`, 'image_unsupported');
    }
    bytes = Buffer.from(await response.arrayBuffer());
  }
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Half-tints the pixels close to `target`. */
async function tint(image: Raw, target: readonly number[]): Promise<Buffer> {
  const out = Buffer.from(image.data);
  for (let i = 0; i < out.length; i += 3) {
    const close = Math.abs(out[i] - target[0]) + Math.abs(out[i + 1] - target[1]) + Math.abs(out[i + 2] - target[2]) < 60;
    if (close) for (let c = 0; c < 3; c++) out[i + c] = Math.round((out[i + c] + TINT[c]) / 2);
  }
  return sharp(out, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}
