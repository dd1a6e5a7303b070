/**
 * `/segment question:<text> [image:<attachment>]`: deferred at once, answered
 * by editing the deferred reply. The channel's conversation carries it, so a
 * `/segment` without an image asks about the last image given there.
 */
import { type ChatInputCommandInteraction, DiscordAPIError, type Interaction, MessageFlags } from 'discord.js';
import type { IncomingTurn } from '../../../src/assistant/types.js';
import { UserInputError } from '../../../src/errors.js';
import { refusal } from '../access.js';
import { IMAGE_OPTION, QUESTION_FIELD } from '../commands.js';
import { channelKey } from '../conversation.js';
import type { DiscordDeps } from '../deps.js';
import { type DeferredInteraction, InteractionResponder } from '../respond-interaction.js';
import { NO_IMAGE_HINT, imageRefs, turnUser } from '../incoming.js';
import { errorFields } from '../log.js';

/** "Interaction has already been acknowledged": another delivery of it is being answered. */
const ALREADY_ACKNOWLEDGED = 40060;

export async function onSegmentCommand(deps: DiscordDeps, interaction: ChatInputCommandInteraction): Promise<void> {
  if (!(await acknowledge(deps, interaction))) return;
  const { config, assistant } = deps;
  await deps.runner.run(async (): Promise<IncomingTurn> => {
    const conversationKey = channelKey(interaction.channelId);
    const attachment = interaction.options.getAttachment(IMAGE_OPTION);
    const images = imageRefs(attachment ? [attachment] : [], config);
    if (images.length === 0 && !(await assistant.hasImage(conversationKey))) {
      throw new UserInputError(
        "There is no image in this channel's conversation yet: add one with `/segment question:… image:…`.",
        'no_image',
      );
    }
    return {
      surface: 'discord',
      conversationKey,
      user: turnUser(interaction.user),
      channelId: placeOf(interaction),
      text: interaction.options.getString(QUESTION_FIELD, true),
      images,
      noImageHint: NO_IMAGE_HINT,
      requestId: interaction.id,
    };
  }, new InteractionResponder(interaction, deps.client, deps.logger));
}

/**
 * Refuses (ephemerally) or defers, before anything slow: Discord wants an
 * answer within 3 s. False when there is nothing more to do.
 */
export async function acknowledge(deps: DiscordDeps, interaction: DeferredInteraction): Promise<boolean> {
  const refused = refusal({ guildId: interaction.guildId, member: interaction.member }, deps.config);
  try {
    if (refused) {
      await interaction.reply({ content: refused, flags: MessageFlags.Ephemeral });
      return false;
    }
    await interaction.deferReply();
    return true;
  } catch (error) {
    if (error instanceof DiscordAPIError && error.code === ALREADY_ACKNOWLEDGED) return false;
    // Too late or refused: the responder posts in the channel instead.
    deps.logger.warn(errorFields(error), 'discord: could not acknowledge an interaction');
    return !refused;
  }
}

/** The channel for the allow-list: a thread counts as its parent channel. */
export function placeOf(interaction: Interaction): string | undefined {
  const channel = interaction.channel;
  if (channel?.isThread() && channel.parentId) return channel.parentId;
  return interaction.channelId ?? undefined;
}
