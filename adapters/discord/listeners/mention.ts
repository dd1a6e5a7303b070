/**
 * messageCreate: a mention of the bot (with an image, or replying to a message
 * with one), a follow-up (a reply to the bot's answer, a message in the
 * conversation's thread), or a DM. Other bots, webhooks and the bot itself are
 * ignored. Without the Message Content intent only mentions and DMs carry the
 * text, so only they are answered.
 */
import { type Message, MessageReferenceType } from 'discord.js';
import type { ImageRef, IncomingTurn } from '../../../src/assistant/types.js';
import { UserInputError } from '../../../src/errors.js';
import { refusal } from '../access.js';
import { CONTEXT_COMMAND } from '../commands.js';
import type { ChainMessage } from '../conversation.js';
import { type DiscordDeps, EVENT_DEDUPE_MS } from '../deps.js';
import { MessageResponder } from '../respond-message.js';
import { NO_IMAGE_HINT, imageRefs, mentionsBot, questionOf, turnUser } from '../incoming.js';
import { errorFields } from '../log.js';

export async function onMessageCreate(deps: DiscordDeps, message: Message): Promise<void> {
  const { assistant, config, logger } = deps;
  if (message.author.bot || message.webhookId !== null || message.system) return;
  if (!(await isForBot(deps, message))) return;
  // A resumed gateway may deliver the same message again; a second process sees it too.
  if (!(await assistant.firstDelivery(`discord:event:${message.id}`, EVENT_DEDUPE_MS))) return;

  const refused = refusal({ guildId: message.guildId, member: message.member }, config);
  if (refused) {
    await message
      .reply({ content: refused, allowedMentions: { parse: [], repliedUser: false }, failIfNotExists: false })
      .catch((error: unknown) => logger.warn(errorFields(error), 'discord: could not post a refusal'));
    return;
  }
  await deps.runner.run(() => buildTurn(deps, message), new MessageResponder(message, logger));
}

async function isForBot(deps: DiscordDeps, message: Message): Promise<boolean> {
  const botId = deps.client.user.id;
  if (!message.inGuild()) return true;
  if (mentionsBot(message, botId)) return true;
  // Without the intent, other messages arrive with no text: nothing to answer.
  if (!deps.config.discord.messageContentIntent) return false;
  const referenceId = replyReference(message);
  if (referenceId) {
    // Discord sends the replied-to message along; when it does not, ask the resolver.
    const repliedUser = message.mentions.repliedUser;
    if (repliedUser ? repliedUser.id === botId : await deps.conversations.isBotMessage(message.channelId, referenceId)) return true;
  }
  const channel = message.channel;
  if (channel.isThread()) {
    const thread = await deps.conversations.forThread(channel.id, channel.parentId);
    return thread.fromStarter || (await deps.assistant.hasImage(thread.key));
  }
  return false;
}

async function buildTurn(deps: DiscordDeps, message: Message): Promise<IncomingTurn> {
  const botId = deps.client.user.id;
  const channel = message.channel;
  const conversationKey = channel.isThread()
    ? (await deps.conversations.forThread(channel.id, channel.parentId)).key
    : await deps.conversations.forUserMessage(chainMessage(message), {
        channelId: message.channelId,
        dm: !message.inGuild(),
      });
  return {
    surface: 'discord',
    conversationKey,
    user: turnUser(message.author),
    channelId: channel.isThread() && channel.parentId ? channel.parentId : message.channelId,
    text: questionOf(message, botId),
    images: await imagesOf(deps, message),
    noImageHint: NO_IMAGE_HINT,
    requestId: message.id,
  };
}

/** The message's image; else, when it replies to someone else's message, that message's image. */
async function imagesOf(deps: DiscordDeps, message: Message): Promise<ImageRef[]> {
  const own = imageRefs(message.attachments.values(), deps.config);
  const referenceId = replyReference(message);
  if (own.length > 0 || !referenceId || message.mentions.repliedUser?.id === deps.client.user.id) return own;
  const referenced = await message.channel.messages.fetch(referenceId).catch((error: unknown) => {
    deps.logger.debug(errorFields(error), 'discord: could not fetch the replied-to message');
    return undefined;
  });
  // The bot's own messages carry overlays: a follow-up uses the conversation's image instead.
  if (!referenced || referenced.author.id === deps.client.user.id) return [];
  const images = imageRefs(referenced.attachments.values(), deps.config);
  const hidden = referenced.content === '' && referenced.attachments.size === 0 && referenced.embeds.length === 0;
  if (images.length === 0 && hidden && !deps.config.discord.messageContentIntent && !message.channel.isThread()) {
    // Without the intent, Discord hides the content and files of messages that do not mention the bot.
    throw new UserInputError(
      `I can't see the image of the message you replied to (I only see messages that mention me). ` +
        `Attach the image to your question, or use "${CONTEXT_COMMAND}" on that message.`,
      'no_image',
    );
  }
  return images;
}

/** The id of the message this one replies to (same channel; forwards are not replies). */
function replyReference(message: Message): string | undefined {
  const reference = message.reference;
  if (!reference?.messageId || reference.type === MessageReferenceType.Forward) return undefined;
  return reference.channelId === message.channelId ? reference.messageId : undefined;
}

function chainMessage(message: Message): ChainMessage {
  const referenceId = replyReference(message);
  return {
    id: message.id,
    authorId: message.author.id,
    mentions: [...message.mentions.users.keys()],
    ...(referenceId ? { referenceId } : {}),
  };
}
