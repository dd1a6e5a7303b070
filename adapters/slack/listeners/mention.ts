/** `@LISA <question>` (with an image, or in a thread that has one): answered in the message's thread. */
import type { App } from '@slack/bolt';
import { answerInThread } from '../converse.js';
import type { SlackDeps } from '../deps.js';
import type { SlackFile } from '../files.js';

export function registerMention(app: App, deps: SlackDeps): void {
  app.event('app_mention', async ({ event, body, context, client }) => {
    // Other bots (and this one, which Bolt's ignoreSelf already drops) are never answered.
    if (event.bot_id !== undefined || event.subtype === 'bot_message' || event.user === undefined) return;
    const message = {
      teamId: context.teamId ?? body.team_id,
      channel: event.channel,
      ts: event.ts,
      threadTs: event.thread_ts,
      user: event.user,
      text: event.text ?? '',
      files: event.files as SlackFile[] | undefined,
    };
    // Bolt has acked the event already; the work runs after the listener returns.
    deps.background('app_mention', () => answerInThread(deps, client, message, context.botUserId, body.event_id));
  });
}
