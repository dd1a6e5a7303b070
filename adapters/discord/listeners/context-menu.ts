/**
 * "Segment with LISA" on a message: its image is checked at once (a message
 * without a usable image gets an ephemeral explanation), then a modal asks for
 * the question; the modal's submission is deferred and answered. The
 * conversation is `discord:<channel>:<target message>`.
 *
 * The image is taken from the command's interaction (Discord sends the target
 * message whole, even without the Message Content intent) and kept in memory
 * until the modal comes back; after a restart in between, the message is
 * fetched again.
 */
import {
  LabelBuilder,
  MessageFlags,
  type MessageContextMenuCommandInteraction,
  ModalBuilder,
  type ModalSubmitInteraction,
  TextInputBuilder,
  TextInputStyle,
} from 'discord.js';
import type { ImageRef, IncomingTurn } from '../../../src/assistant/types.js';
import { UserInputError, isUserInputError } from '../../../src/errors.js';
import { refusal } from '../access.js';
import { CONTEXT_COMMAND, MODAL_PREFIX, QUESTION_FIELD } from '../commands.js';
import { targetKey } from '../conversation.js';
import type { DiscordDeps } from '../deps.js';
import { InteractionResponder, TOKEN_LIFE_MS } from '../respond-interaction.js';
import { acknowledge, placeOf } from './segment.js';
import { NO_IMAGE_HINT, imageRefs, turnUser } from '../incoming.js';

const MAX_PENDING = 1_000;
/** Discord's cap on a text input. */
const TEXT_INPUT_MAX = 4000;

export class ContextMenu {
  /** `<user>:<target message>` -> its image, while the modal is open. */
  private readonly pending = new Map<string, { images: ImageRef[]; expires: number }>();

  constructor(private readonly deps: DiscordDeps) {}

  async onCommand(interaction: MessageContextMenuCommandInteraction): Promise<void> {
    const { config } = this.deps;
    const target = interaction.targetMessage;
    const refused = refusal({ guildId: interaction.guildId, member: interaction.member }, config);
    let problem = refused;
    let images: ImageRef[] = [];
    if (!problem) {
      try {
        images = imageRefs(target.attachments.values(), config);
        if (images.length === 0) problem = `That message has no image. Use "${CONTEXT_COMMAND}" on a message with a picture attached.`;
      } catch (error) {
        if (!isUserInputError(error)) throw error;
        problem = error.message;
      }
    }
    if (problem) {
      await interaction.reply({ content: problem, flags: MessageFlags.Ephemeral });
      return;
    }
    this.sweep();
    this.pending.set(`${interaction.user.id}:${target.id}`, { images, expires: Date.now() + TOKEN_LIFE_MS });
    await interaction.showModal(questionModal(target.id, config.limits.maxQuestionChars));
  }

  async onModalSubmit(interaction: ModalSubmitInteraction): Promise<void> {
    const targetId = interaction.customId.slice(MODAL_PREFIX.length);
    if (!(await acknowledge(this.deps, interaction))) return;
    await this.deps.runner.run(async (): Promise<IncomingTurn> => {
      const channelId = interaction.channelId!;
      return {
        surface: 'discord',
        conversationKey: targetKey(channelId, targetId),
        user: turnUser(interaction.user),
        channelId: placeOf(interaction),
        text: interaction.fields.getTextInputValue(QUESTION_FIELD),
        images: await this.imagesOf(interaction, targetId),
        noImageHint: NO_IMAGE_HINT,
        requestId: interaction.id,
      };
    }, new InteractionResponder(interaction, this.deps.client, this.deps.logger, targetId));
  }

  private async imagesOf(interaction: ModalSubmitInteraction, targetId: string): Promise<ImageRef[]> {
    const kept = this.pending.get(`${interaction.user.id}:${targetId}`);
    if (kept && kept.expires > Date.now()) return kept.images;
    const channel = interaction.channel ?? (await this.deps.client.channels.fetch(interaction.channelId!));
    const target = channel && 'messages' in channel ? await channel.messages.fetch(targetId).catch(() => undefined) : undefined;
    const images = target ? imageRefs(target.attachments.values(), this.deps.config) : [];
    if (images.length === 0) {
      throw new UserInputError(
        `I can no longer see that message's image; use "${CONTEXT_COMMAND}" on it again.`,
        'image_missing',
      );
    }
    return images;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.pending) if (entry.expires <= now) this.pending.delete(key);
    while (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
  }
}

function questionModal(targetId: string, maxQuestionChars: number): ModalBuilder {
  const input = new TextInputBuilder()
    .setCustomId(QUESTION_FIELD)
    .setStyle(TextInputStyle.Paragraph)
    .setRequired(true)
    .setMaxLength(Math.min(TEXT_INPUT_MAX, maxQuestionChars))
    .setPlaceholder('e.g. what should I hold to pour the tea?');
  return new ModalBuilder()
    .setCustomId(`${MODAL_PREFIX}${targetId}`)
    .setTitle(CONTEXT_COMMAND)
    .addLabelComponents(new LabelBuilder().setLabel('Your question about the image').setTextInputComponent(input));
}
