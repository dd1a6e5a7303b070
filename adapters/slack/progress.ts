/**
 * Progress on Slack: one "thinking…" message per turn that follows the job
 * (fetching the image, its place in the queue) and finally becomes the answer.
 */
import type { webApi } from '@slack/bolt';
import type { ProgressEvent } from '../../src/assistant/types.js';
import type { Logger } from '../../src/logger.js';
import { slackError } from './files.js';
import { DOWNLOADING, THINKING, queuedText, truncate } from './text.js';

type WebClient = webApi.WebClient;

/**
 * One message that shows progress and is finally replaced by the answer.
 * Progress updates are coalesced (only the newest pending text is sent), and
 * `finish` runs after every update, so the answer is never overwritten.
 */
export class ProgressMessage {
  private chain: Promise<void> = Promise.resolve();
  private pending: string | undefined;
  private shown: string;
  private done = false;

  private constructor(
    private readonly client: WebClient,
    readonly channel: string,
    readonly ts: string,
    private readonly prefix: string,
    initial: string,
    private readonly logger: Logger,
  ) {
    this.shown = initial;
  }

  /** Posts `prefix + THINKING` (in the thread when `threadTs` is set). */
  static async post(
    client: WebClient,
    where: { channel: string; threadTs?: string; prefix?: string },
    logger: Logger,
  ): Promise<ProgressMessage> {
    const prefix = where.prefix ?? '';
    const text = prefix + THINKING;
    const result = await client.chat.postMessage({
      channel: where.channel,
      text,
      ...(where.threadTs !== undefined ? { thread_ts: where.threadTs } : {}),
      unfurl_links: false,
      unfurl_media: false,
    });
    if (!result.ts) throw new Error('chat.postMessage returned no ts');
    return new ProgressMessage(client, result.channel ?? where.channel, result.ts, prefix, text, logger);
  }

  progress(event: ProgressEvent): void {
    if (this.done) return;
    const status = event.type === 'queued' ? queuedText(event.position) : event.type === 'downloading' ? DOWNLOADING : THINKING;
    this.pending = this.prefix + status;
    this.chain = this.chain.then(() => this.flush());
  }

  private async flush(): Promise<void> {
    const text = this.pending;
    this.pending = undefined;
    if (this.done || text === undefined || text === this.shown) return;
    this.shown = text;
    try {
      await this.client.chat.update({ channel: this.channel, ts: this.ts, text });
    } catch (error) {
      this.logger.warn({ err: slackError(error) }, 'slack: progress update failed');
    }
  }

  /** Replaces the message with `text` (after any progress update in flight). */
  async finish(text: string): Promise<void> {
    this.done = true;
    await this.chain;
    await this.client.chat.update({ channel: this.channel, ts: this.ts, text: truncate(this.prefix + text) });
  }

  async remove(): Promise<void> {
    this.done = true;
    await this.chain;
    try {
      await this.client.chat.delete({ channel: this.channel, ts: this.ts });
    } catch (error) {
      this.logger.warn({ err: slackError(error) }, 'slack: could not delete the progress message');
    }
  }
}
