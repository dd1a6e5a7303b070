/**
 * Slack messages -> IncomingTurns: the question as plain text, the user, and
 * the message's image files (files.ts) as references the assistant downloads
 * with the bot token.
 */
import type { webApi } from '@slack/bolt';
import type { ImageRef, IncomingTurn } from '../../src/assistant/types.js';
import { type ThreadMessage, threadKey, threadOf } from './conversation.js';
import type { SlackDeps } from './deps.js';
import { type SlackFile, completeFiles, fetchMessageFiles, imageRefFromFile, orderFiles } from './files.js';
import { NO_IMAGE_HINT, plainText } from './text.js';

type WebClient = webApi.WebClient;

/** The job id of a message: a redelivery, or the app_mention and message events of one message, map onto one job. */
export function requestIdOf(teamId: string, channel: string, ts: string): string {
  return `slack-${teamId}-${channel}-${ts}`;
}

export function imageRefs(files: readonly SlackFile[], deps: Pick<SlackDeps, 'botToken' | 'config'>): ImageRef[] {
  const access = { botToken: deps.botToken, fileHosts: deps.config.slack.fileHosts };
  return files.map((file) => imageRefFromFile(file, access)).filter((ref): ref is ImageRef => ref !== undefined);
}

/**
 * The turn for a message in a thread. Files come from the event, or from the
 * message itself when the event had none; a mention in a thread that has no
 * image yet ("@LISA what is this?" under someone's photo) uses the parent's.
 * `file` is the image sent along, if any.
 */
export async function threadTurn(
  deps: SlackDeps,
  client: WebClient,
  message: ThreadMessage,
  botUserId: string | undefined,
): Promise<{ turn: IncomingTurn; file?: SlackFile }> {
  const key = threadKey(message);
  const { channel, ts, threadTs } = message;
  let files = message.files ?? (await fetchMessageFiles(client, { channel, ts, threadTs }, deps.logger)) ?? [];
  if (files.length === 0 && threadTs !== undefined && threadTs !== ts && !(await deps.assistant.hasImage(key))) {
    files = (await fetchMessageFiles(client, { channel, ts: threadTs }, deps.logger)) ?? [];
  }
  files = orderFiles(await completeFiles(client, files, deps.logger));
  const images = imageRefs(files, deps);
  return {
    turn: {
      surface: 'slack',
      conversationKey: key,
      user: { id: message.user },
      channelId: channel,
      text: plainText(message.text, botUserId),
      images,
      noImageHint: NO_IMAGE_HINT,
      requestId: requestIdOf(message.teamId, channel, ts),
    },
    file: files.find((f) => f.url_private_download ?? f.url_private),
  };
}
