/**
 * The answer posted to Slack: the text in place of the progress message
 * (progress.ts), the overlay uploaded in the same place, and the error texts.
 */
import type { webApi } from '@slack/bolt';
import type { Reply } from '../../src/assistant/types.js';
import { isUserInputError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { POST_DEDUPE_TTL_MS, type SlackDeps } from './deps.js';
import { slackError } from './files.js';
import type { ProgressMessage } from './progress.js';
import { GENERIC_ERROR, UPLOAD_FAILED, escapeMrkdwn, truncate } from './text.js';

type WebClient = webApi.WebClient;

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
