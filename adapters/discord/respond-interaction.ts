/**
 * Answers a deferred interaction (/segment, the context menu's modal): status
 * and answer by editing the deferred reply, longer answers as follow-ups. The
 * interaction token lives 15 minutes; after that (or when the token is refused)
 * the answer is posted in the channel instead, mentioning the user.
 */
import {
  DiscordAPIError,
  type Client,
  type Message,
  type MessageCreateOptions,
  type ModalSubmitInteraction,
  type ChatInputCommandInteraction,
  type SendableChannels,
} from 'discord.js';
import type { ProgressEvent, Reply } from '../../src/assistant/types.js';
import type { Logger } from '../../src/logger.js';
import { DEFAULT_UPLOAD_LIMIT, type OutgoingMessage, formatReply, formatText } from './outgoing.js';
import { StatusLine } from './progress.js';
import type { Responder } from './run.js';
import { errorFields } from './log.js';

/** An interaction token's life, and the margin kept so that a request does not race its expiry. */
export const TOKEN_LIFE_MS = 15 * 60 * 1000;
const TOKEN_MARGIN_MS = 30 * 1000;

/** Discord's answers for a dead or unknown token: Unknown Webhook, Unknown Message, Unknown interaction, Invalid Webhook Token. */
const TOKEN_ERRORS = new Set([10015, 10008, 10062, 50027]);

export type DeferredInteraction = ChatInputCommandInteraction | ModalSubmitInteraction;

export class InteractionResponder implements Responder {
  readonly uploadLimit: number;
  private readonly status: StatusLine;
  private tokenDead: boolean;

  constructor(
    private readonly interaction: DeferredInteraction,
    private readonly client: Client,
    private readonly logger: Logger,
    /** The message an answer posted in the channel replies to (the context menu's target). */
    private readonly replyTo?: string,
  ) {
    this.uploadLimit = interaction.attachmentSizeLimit || DEFAULT_UPLOAD_LIMIT;
    this.tokenDead = !interaction.deferred;
    this.status = new StatusLine(async (text) => {
      if (text !== null && this.tokenAlive()) await this.interaction.editReply({ content: text });
    }, logger);
  }

  progress(event: ProgressEvent): void {
    this.status.progress(event);
  }

  async deliver(reply: Reply): Promise<string[]> {
    await this.status.settle();
    this.status.detach();
    return this.post((prefix) => formatReply(reply, prefix));
  }

  async fail(text: string): Promise<void> {
    await this.status.settle();
    this.status.detach();
    await this.post((prefix) => formatText(text, prefix));
  }

  async close(): Promise<void> {
    await this.status.settle();
    this.status.detach();
  }

  private tokenAlive(): boolean {
    return !this.tokenDead && Date.now() < this.interaction.createdTimestamp + TOKEN_LIFE_MS - TOKEN_MARGIN_MS;
  }

  private async post(format: (prefix: string) => OutgoingMessage[]): Promise<string[]> {
    if (this.tokenAlive()) {
      const parts = format('');
      const ids: string[] = [];
      try {
        for (const [i, part] of parts.entries()) {
          const options = { content: part.content, files: part.files, allowedMentions: { parse: [] } };
          const sent: Message = i === 0
            ? await this.interaction.editReply({ ...options, attachments: [] })
            : await this.interaction.followUp(options);
          ids.push(sent.id);
        }
        return ids;
      } catch (error) {
        if (!(error instanceof DiscordAPIError && TOKEN_ERRORS.has(Number(error.code)))) throw error;
        this.tokenDead = true;
        this.logger.warn(errorFields(error), 'discord: interaction token refused; answering in the channel');
        if (ids.length > 0) return [...ids, ...(await this.postInChannel(parts.slice(ids.length)))];
      }
    }
    return this.postInChannel(format(`<@${this.interaction.user.id}> `));
  }

  /** The fallback once the token has expired: plain channel messages, the first pinging the user. */
  private async postInChannel(parts: OutgoingMessage[]): Promise<string[]> {
    const channel = (this.interaction.channel ??
      (await this.client.channels.fetch(this.interaction.channelId!))) as SendableChannels | null;
    if (!channel || !('send' in channel)) throw new Error(`cannot post in channel ${this.interaction.channelId}`);
    const ids: string[] = [];
    let target: string | undefined = this.replyTo;
    for (const [i, part] of parts.entries()) {
      const options: MessageCreateOptions = {
        content: part.content,
        files: part.files,
        allowedMentions: { parse: [], users: i === 0 ? [this.interaction.user.id] : [], repliedUser: false },
        ...(target ? { reply: { messageReference: target, failIfNotExists: false } } : {}),
      };
      const sent = await channel.send(options);
      ids.push(sent.id);
      target = sent.id;
    }
    return ids;
  }
}
