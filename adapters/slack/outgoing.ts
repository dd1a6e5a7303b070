/**
 * Posting to Slack: the "thinking…" message that follows a job's progress and
 * becomes the answer, the overlay upload, and the error texts.
 */
import type { webApi } from '@slack/bolt';
import type { ProgressEvent, Reply } from '../../src/assistant/types.js';
import { isUserInputError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { POST_DEDUPE_TTL_MS, type SlackDeps } from './deps.js';
import { slackError } from './files.js';
import { DOWNLOADING, GENERIC_ERROR, THINKING, UPLOAD_FAILED, escapeMrkdwn, queuedText, truncate } from './text.js';

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

/** The answer as a Slack message: the text with its coloured markers, and the demo notice when there is one. */
export function replyText(reply: Reply): string {
  const answer = escapeMrkdwn(reply.text.trim()) || '_(no answer)_';
  return reply.demoNotice ? `${answer}\n_${escapeMrkdwn(reply.demoNotice)}_` : answer;
}

/**
 * Puts a reply in place of the progress message and uploads its overlay in the
 * same place (thread or channel). A job's reply is posted once: when the job id
 * was already claimed (a redelivery that reached the same job), the progress
 * message is removed instead. Returns whether this call posted it.
 */
export async function deliverReply(
  deps: Pick<SlackDeps, 'assistant' | 'logger'>,
  client: WebClient,
  message: ProgressMessage,
  reply: Reply,
  threadTs: string | undefined,
): Promise<boolean> {
  if (!(await deps.assistant.firstDelivery(`slack:post:${reply.jobId}`, POST_DEDUPE_TTL_MS))) {
    deps.logger.info({ jobId: reply.jobId }, 'slack: reply already posted for this job');
    await message.remove();
    return false;
  }
  const text = replyText(reply);
  await message.finish(text);
  if (reply.overlay) {
    try {
      const destination = threadTs !== undefined ? { channel_id: message.channel, thread_ts: threadTs } : { channel_id: message.channel };
      await client.files.uploadV2({
        ...destination,
        file: reply.overlay.data,
        filename: reply.overlay.filename,
        title: 'LISA overlay',
        alt_text: truncate(`The image with the masks of the answer drawn on it: ${reply.rawText}`, 1000),
      });
    } catch (error) {
      deps.logger.error({ err: slackError(error), jobId: reply.jobId }, 'slack: overlay upload failed');
      await message.finish(`${text}\n${UPLOAD_FAILED}`).catch(() => undefined);
    }
  }
  return true;
}

/** What the user reads for an error: the assistant's own words for their mistakes, a generic line otherwise (logged). */
export function errorText(error: unknown, logger: Logger, context: Record<string, unknown>): string {
  if (isUserInputError(error)) return escapeMrkdwn(error.message);
  logger.error({ err: error, ...context }, 'slack: request failed');
  return GENERIC_ERROR;
}
