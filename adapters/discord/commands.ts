/**
 * The application commands: `/segment` and the message context menu
 * "Segment with LISA". Registered by register.ts, routed by index.ts.
 */
import {
  ApplicationCommandType,
  ApplicationIntegrationType,
  ContextMenuCommandBuilder,
  InteractionContextType,
  SlashCommandBuilder,
  type RESTPostAPIApplicationCommandsJSONBody,
} from 'discord.js';

export const SEGMENT_COMMAND = 'segment';
export const CONTEXT_COMMAND = 'Segment with LISA';
/** Modal custom ids: `lisa:ask:<target message id>`. */
export const MODAL_PREFIX = 'lisa:ask:';
export const QUESTION_FIELD = 'question';
export const IMAGE_OPTION = 'image';

const contexts = [InteractionContextType.Guild, InteractionContextType.BotDM];

export function commandDefinitions(): RESTPostAPIApplicationCommandsJSONBody[] {
  const segment = new SlashCommandBuilder()
    .setName(SEGMENT_COMMAND)
    .setDescription('Ask LISA about an image: the answer, with the regions it names outlined')
    .setContexts(contexts)
    .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
    // Discord lists required options first.
    .addStringOption((option) =>
      option
        .setName(QUESTION_FIELD)
        .setDescription('Your question, e.g. "what should I hold to pour the tea?"')
        .setRequired(true)
        .setMaxLength(4000),
    )
    .addAttachmentOption((option) =>
      option
        .setName(IMAGE_OPTION)
        .setDescription("The image (optional: without it, this channel's conversation image is used)")
        .setRequired(false),
    );
  const contextMenu = new ContextMenuCommandBuilder()
    .setName(CONTEXT_COMMAND)
    .setType(ApplicationCommandType.Message)
    .setContexts(contexts)
    .setIntegrationTypes(ApplicationIntegrationType.GuildInstall);
  return [segment.toJSON(), contextMenu.toJSON()];
}
