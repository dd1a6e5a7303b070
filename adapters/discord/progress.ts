/**
 * Progress on Discord: a typing indicator kept alive while a job runs (it lasts
 * 10 s, so it is refreshed every 8 s), and one status line ("queued — position
 * N") whose updates are applied in order, latest wins.
 */
import type { ProgressEvent } from '../../src/assistant/types.js';
import type { Logger } from '../../src/logger.js';
import { errorFields } from './log.js';

export const TYPING_REFRESH_MS = 8_000;

/**
 * A job that starts within this time never gets a status message: the typing
 * indicator (or "thinking…") says enough, and Discord is spared two requests.
 */
export const STATUS_DELAY_MS = 1_500;

export class Typing {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.pulse();
    this.timer = setInterval(() => this.pulse(), TYPING_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private pulse(): void {
    this.send().catch((error: unknown) => this.logger.debug(errorFields(error), 'discord: typing indicator failed'));
  }
}

/**
 * One status message, shown, edited and removed through `apply`. The first
 * "queued" shows after STATUS_DELAY_MS only if the job is still waiting then;
 * once shown, it follows the position and says when the work starts. Calls to
 * `apply` never overlap; while one runs, only the newest wanted text is kept.
 */
export class StatusLine {
  private wanted: string | null = null;
  private shown: string | null = null;
  private running: Promise<void> | undefined;
  private delayed: NodeJS.Timeout | undefined;

  constructor(
    /** Shows `text`, or removes the status when `text` is null. */
    private readonly apply: (text: string | null) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  get visible(): boolean {
    return this.wanted !== null || this.shown !== null;
  }

  progress(event: ProgressEvent): void {
    if (event.type === 'queued') {
      const text = `⏳ queued — position ${event.position}`;
      if (this.visible) return this.set(text);
      clearTimeout(this.delayed);
      this.delayed = setTimeout(() => this.set(text), STATUS_DELAY_MS);
      this.delayed.unref();
    } else if (event.type === 'started') {
      clearTimeout(this.delayed);
      if (this.visible) this.set('⚙️ working on it…');
    }
  }

  set(text: string | null): void {
    clearTimeout(this.delayed);
    this.wanted = text;
    if (!this.running && this.wanted !== this.shown) this.running = this.flush();
  }

  /** Cancels a status not shown yet and waits for pending updates. */
  async settle(): Promise<void> {
    clearTimeout(this.delayed);
    while (this.running) await this.running;
  }

  /** Forgets the status without removing it (it was replaced by something else); call after `settle`. */
  detach(): void {
    this.wanted = null;
    this.shown = null;
  }

  private async flush(): Promise<void> {
    // Never settle synchronously: `running` is assigned after this returns.
    await undefined;
    try {
      while (this.wanted !== this.shown) {
        const text = this.wanted;
        try {
          await this.apply(text);
        } catch (error) {
          this.logger.warn(errorFields(error), 'discord: status update failed');
        }
        this.shown = text;
      }
    } finally {
      this.running = undefined;
    }
  }
}
