/**
 * One turn in a thread, shared by mentions and thread follow-ups: dedupe the
 * event, show "thinking…", ask the assistant, put the answer in its place.
 */
import type { webApi } from '@slack/bolt';
import { EVENT_DEDUPE_TTL_MS, type SlackDeps } from './deps.js';
import { slackError } from './files.js';
import { type ThreadMessage, threadKey, threadOf } from './conversation.js';
import { threadTurn } from './incoming.js';
import { deliverReply, errorText } from './outgoing.js';
import { ProgressMessage } from './progress.js';

type WebClient = webApi.WebClient;

export async function answerInThread(
  deps: SlackDeps,
  client: WebClient,
  message: ThreadMessage,
  botUserId: string | undefined,
  eventId: string,
): Promise<void> {
  // Slack retries an event it thinks was not acked: the first delivery answers, the others stop here.
  if (!(await deps.assistant.firstDelivery(`slack:event:${eventId}`, EVENT_DEDUPE_TTL_MS))) {
    deps.logger.debug({ eventId }, 'slack: duplicate event delivery ignored');
    return;
  }
  const threadTs = threadOf(message);
  let progress: ProgressMessage;
  try {
    progress = await ProgressMessage.post(client, { channel: message.channel, threadTs }, deps.logger);
  } catch (error) {
    deps.logger.error({ err: slackError(error), channel: message.channel }, 'slack: cannot post in this channel');
    return;
  }
  try {
    const { turn, file } = await threadTurn(deps, client, message, botUserId);
    const reply = await deps.assistant.handle(turn, { onProgress: (event) => progress.progress(event) });
    if (file !== undefined && turn.images.length > 0) deps.channelImages.remember(message.teamId, message.channel, file);
    await deliverReply(deps, client, progress, reply, threadTs);
  } catch (error) {
    const text = errorText(error, deps.logger, { conversationKey: threadKey(message) });
    await progress.finish(text).catch((e: unknown) => {
      deps.logger.error({ err: slackError(e) }, 'slack: could not post the error message');
    });
  }
}
