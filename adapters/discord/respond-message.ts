/**
 * Answers a message (a mention or a follow-up): typing while the job runs, a
 * "queued — position N" status reply while it waits, then the answer as a
 * reply to the message (long answers as a chain of replies, so that replying
 * to any part continues the conversation), and the status removed.
 */
import type { Message, MessageCreateOptions } from 'discord.js';
import type { ProgressEvent, Reply } from '../../src/assistant/types.js';
import type { Logger } from '../../src/logger.js';
import { DEFAULT_UPLOAD_LIMIT, type OutgoingMessage, formatReply, formatText } from './outgoing.js';
import { StatusLine, Typing } from './progress.js';
import type { Responder } from './run.js';

export class MessageResponder implements Responder {
  readonly uploadLimit = DEFAULT_UPLOAD_LIMIT;
  private readonly typing: Typing;
  private readonly status: StatusLine;
  private statusMessage: Message | undefined;

  constructor(
    private readonly message: Message,
    logger: Logger,
  ) {
    const channel = message.channel;
    this.typing = new Typing(() => ('sendTyping' in channel ? channel.sendTyping() : Promise.resolve()), logger);
    this.status = new StatusLine((text) => this.showStatus(text), logger);
    this.typing.start();
  }

  progress(event: ProgressEvent): void {
    this.status.progress(event);
  }

  async deliver(reply: Reply): Promise<string[]> {
    this.typing.stop();
    const ids = await this.post(formatReply(reply));
    this.status.set(null);
    await this.status.settle();
    return ids;
  }

  async fail(text: string): Promise<void> {
    this.typing.stop();
    await this.status.settle();
    if (this.statusMessage) {
      // The status line becomes the error: one message, not two.
      const status = this.statusMessage;
      this.status.detach();
      this.statusMessage = undefined;
      const edited = await status.edit({ content: text, allowedMentions: { parse: [] } }).then(
        () => true,
        () => false, // deleted meanwhile: reply instead
      );
      if (edited) return;
    }
    await this.post(formatText(text));
  }

  async close(): Promise<void> {
    this.typing.stop();
    this.status.set(null);
    await this.status.settle();
  }

  /** Posts messages as a chain of replies starting at the user's message; returns their ids. */
  private async post(parts: OutgoingMessage[]): Promise<string[]> {
    const ids: string[] = [];
    let target = this.message;
    for (const [i, part] of parts.entries()) {
      const options: MessageCreateOptions = {
        content: part.content,
        files: part.files,
        // Never ping @everyone or roles from model text; ping the asker on the first part only.
        allowedMentions: { parse: [], repliedUser: i === 0 },
      };
      target = await target.reply({ ...options, failIfNotExists: false });
      ids.push(target.id);
    }
    return ids;
  }

  private async showStatus(text: string | null): Promise<void> {
    if (text === null) {
      const status = this.statusMessage;
      this.statusMessage = undefined;
      await status?.delete();
      return;
    }
    if (this.statusMessage) {
      await this.statusMessage.edit({ content: text, allowedMentions: { parse: [] } });
      return;
    }
    this.statusMessage = await this.message.reply({
      content: text,
      allowedMentions: { parse: [], repliedUser: false },
      failIfNotExists: false,
    });
  }
}
