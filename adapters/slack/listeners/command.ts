/**
 * `/lisa <question>`: acked at once with an ephemeral "working on it…", then
 * answered in the channel. Its conversation is the channel's
 * (`slack:<team>:<channel>:channel`), about the most recent image seen in the
 * channel (see ChannelImages) or a file linked in the text. Everything that
 * only the user should read (usage, no image, errors) goes to response_url,
 * which works in channels the bot is not in.
 */
import type { App, RespondFn, SlashCommand, webApi } from '@slack/bolt';
import { channelKey } from '../conversation.js';
import type { SlackDeps } from '../deps.js';
import { fileFromText, slackError } from '../files.js';
import { deliverReply, errorText } from '../outgoing.js';
import { ProgressMessage } from '../progress.js';
import { NOT_IN_CHANNEL, NO_IMAGE_HINT, WORKING_ON_IT, commandUsage, escapeMrkdwn, noImageForCommand, plainText, truncate } from '../text.js';
import { imageRefs } from '../incoming.js';

type WebClient = webApi.WebClient;

export function registerCommand(app: App, deps: SlackDeps): void {
  app.command(deps.command, async ({ command, ack, respond, client, context }) => {
    // Within Slack's 3 s: nothing may come before this.
    await ack({ response_type: 'ephemeral', text: WORKING_ON_IT });
    deps.background('slash command', () => runCommand(deps, client, command, respond, context.botUserId));
  });
}

async function runCommand(
  deps: SlackDeps,
  client: WebClient,
  command: SlashCommand,
  respond: RespondFn,
  botUserId: string | undefined,
): Promise<void> {
  const tell = async (text: string) => {
    try {
      await respond({ response_type: 'ephemeral', text });
    } catch (error) {
      deps.logger.warn({ err: slackError(error) }, 'slack: could not answer through response_url');
    }
  };
  const teamId = command.team_id;
  const channel = command.channel_id;
  const conversationKey = channelKey(teamId, channel);
  const access = { botToken: deps.botToken, fileHosts: deps.config.slack.fileHosts };

  let progress: ProgressMessage | undefined;
  try {
    const linked = await fileFromText(client, command.text ?? '', access);
    const question = plainText(linked?.rest ?? command.text ?? '', botUserId);
    if (!question) return await tell(commandUsage(deps.command));

    const file = linked?.file ?? deps.channelImages.latest(teamId, channel);
    const images = file ? imageRefs([file], deps) : [];
    if (images.length === 0 && !(await deps.assistant.hasImage(conversationKey))) {
      return await tell(noImageForCommand(deps.command));
    }

    const prefix = `<@${command.user_id}> asked: ${truncate(escapeMrkdwn(question), 500)}\n`;
    try {
      progress = await ProgressMessage.post(client, { channel, prefix }, deps.logger);
    } catch (error) {
      const { code } = slackError(error);
      deps.logger.warn({ err: slackError(error), channel }, 'slack: cannot post the /lisa answer in this channel');
      return await tell(code === 'not_in_channel' || code === 'channel_not_found' ? NOT_IN_CHANNEL : errorText(error, deps.logger, { channel }));
    }
    const current = progress;
    const reply = await deps.assistant.handle(
      {
        surface: 'slack',
        conversationKey,
        user: { id: command.user_id, name: command.user_name },
        channelId: channel,
        text: question,
        images,
        noImageHint: NO_IMAGE_HINT,
        requestId: `slack-cmd-${command.trigger_id}`,
      },
      { onProgress: (event) => current.progress(event) },
    );
    if (linked) deps.channelImages.remember(teamId, channel, linked.file);
    await deliverReply(deps, client, current, reply, undefined);
  } catch (error) {
    // The public "thinking…" goes away; the reason is for the user only.
    await progress?.remove();
    await tell(errorText(error, deps.logger, { conversationKey }));
  }
}
