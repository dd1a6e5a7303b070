/**
 * Follow-ups without a mention (`slack.threadRepliesWithoutMention`): any
 * message in a thread that already has a LISA conversation continues it.
 * Messages that mention the bot are left to the app_mention listener.
 */
import type { App } from '@slack/bolt';
import { answerInThread } from '../converse.js';
import type { SlackDeps } from '../deps.js';
import type { SlackFile } from '../files.js';
import { mentions } from '../text.js';
import { threadKey } from '../conversation.js';

interface ThreadReplyEvent {
  subtype?: string;
  bot_id?: string;
  user?: string;
  channel: string;
  ts: string;
  thread_ts?: string;
  text?: string;
  files?: SlackFile[];
}

export function registerThreadReplies(app: App, deps: SlackDeps): void {
  app.event('message', async ({ event, body, context, client }) => {
    const reply = event as unknown as ThreadReplyEvent;
    if (reply.subtype !== undefined && reply.subtype !== 'file_share') return; // edits, deletions, joins, bot messages
    if (reply.bot_id !== undefined || reply.user === undefined) return;
    if (reply.thread_ts === undefined || reply.thread_ts === reply.ts) return;
    if (mentions(reply.text, context.botUserId)) return;
    const message = {
      teamId: context.teamId ?? body.team_id,
      channel: reply.channel,
      ts: reply.ts,
      threadTs: reply.thread_ts,
      user: reply.user,
      text: reply.text ?? '',
      files: reply.files,
    };
    deps.background('thread reply', async () => {
      // Only threads the bot is in: those whose conversation has an image.
      if (!(await deps.assistant.hasImage(threadKey(message)))) return;
      await answerInThread(deps, client, message, context.botUserId, body.event_id);
    });
  });
}
