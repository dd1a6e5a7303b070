/**
 * Assistants for the Discord tests: a scripted AssistantPort (each test says
 * what `handle` does) and a wrapper that records and can hold the turns handed
 * to any assistant (the real one over the toy pack included).
 */
import sharp from 'sharp';
import type { AssistantPort, HandleOptions, IncomingTurn, Reply } from '../../../src/assistant/types.js';

export interface Held {
  turn: IncomingTurn;
  options: HandleOptions;
}

/** Records every call; `hold()` makes `handle` wait (before the inner assistant sees the turn) until released. */
export class RecordingAssistant implements AssistantPort {
  readonly received: Held[] = [];
  readonly deliveries: { key: string; first: boolean }[] = [];
  private gate: Promise<void> = Promise.resolve();
  private listeners: (() => void)[] = [];

  constructor(private readonly inner: AssistantPort) {}

  get model() {
    return this.inner.model;
  }

  /** Holds new turns until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.gate = Promise.resolve();
      release();
    };
  }

  async handle(turn: IncomingTurn, options: HandleOptions = {}): Promise<Reply> {
    this.received.push({ turn, options });
    this.notify();
    await this.gate;
    return this.inner.handle(turn, options);
  }

  async firstDelivery(key: string, ttlMs: number): Promise<boolean> {
    const first = await this.inner.firstDelivery(key, ttlMs);
    this.deliveries.push({ key, first });
    this.notify();
    return first;
  }

  hasImage(key: string): Promise<boolean> {
    return this.inner.hasImage(key);
  }

  resetConversation(key: string): Promise<void> {
    return this.inner.resetConversation(key);
  }

  /** Resolves once `check` holds after some call (checked at once, too). */
  async until(check: () => boolean): Promise<void> {
    if (check()) return;
    await new Promise<void>((resolve) => {
      const listener = () => {
        if (!check()) return;
        this.listeners = this.listeners.filter((l) => l !== listener);
        resolve();
      };
      this.listeners.push(listener);
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

export type Script = (turn: IncomingTurn, options: HandleOptions) => Promise<Reply>;

/** An AssistantPort whose `handle` runs the current script; conversations remember images by key. */
export class ScriptedAssistant implements AssistantPort {
  readonly model = { name: 'scripted', demo: false };
  script: Script = (turn) => scriptedReply(turn, 'Sure, it is 🟥.');
  private readonly seen = new Set<string>();
  private readonly images = new Set<string>();

  async handle(turn: IncomingTurn, options: HandleOptions = {}): Promise<Reply> {
    const reply = await this.script(turn, options);
    if (turn.images.length > 0) this.images.add(turn.conversationKey);
    return reply;
  }

  async firstDelivery(key: string): Promise<boolean> {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  async hasImage(key: string): Promise<boolean> {
    return this.images.has(key);
  }

  async resetConversation(key: string): Promise<void> {
    this.images.delete(key);
  }
}

let overlayPng: Buffer | undefined;

/** A reply with `text` and a small PNG overlay (none when `overlay` is false). */
export async function scriptedReply(turn: IncomingTurn, text: string, overlay = true): Promise<Reply> {
  overlayPng ??= await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 221, g: 46, b: 68 } } }).png().toBuffer();
  return {
    jobId: `${turn.surface}:${turn.requestId}`,
    conversationKey: turn.conversationKey,
    text,
    rawText: text,
    ids: [],
    ...(overlay
      ? { overlay: { data: overlayPng, contentType: 'image/png', format: 'png' as const, width: 8, height: 6, filename: 'lisa-overlay.png' } }
      : {}),
    segments: [],
    turnIndex: 0,
    timings: {
      imageDecode: 0, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0,
      segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 0,
    },
  };
}
