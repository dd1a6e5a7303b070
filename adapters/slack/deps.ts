import type { AssistantPort } from '../../src/assistant/types.js';
import type { Config } from '../../src/config/index.js';
import { slackKey } from '../../src/conversation/keys.js';
import type { Logger } from '../../src/logger.js';
import type { SlackFile } from './files.js';

/** What every listener needs; built once in app.ts. */
export interface SlackDeps {
  assistant: AssistantPort;
  config: Config;
  logger: Logger;
  /** Sent only with file downloads from `config.slack.fileHosts` (and by the Web API client to Slack). */
  botToken: string;
  channelImages: ChannelImages;
  /** The slash command this app answers, e.g. `/lisa`. */
  command: string;
  /** Runs work after the platform was acked; `idle()` / `stop()` wait for it. */
  background(name: string, work: () => Promise<void>): void;
}

/** Events are retried for 5 minutes (immediately, +1 min, +5 min): keep their ids longer. */
export const EVENT_DEDUPE_TTL_MS = 10 * 60_000;
/** A job's reply is posted once, whatever redelivers it. */
export const POST_DEDUPE_TTL_MS = 24 * 60 * 60_000;

/**
 * The conversation of `/lisa` in a channel. Thread keys end in a message ts
 * (digits and a dot), so the literal part `channel` can never collide with one.
 */
export function channelKey(teamId: string, channelId: string): string {
  return slackKey(teamId, channelId, 'channel');
}

/**
 * The most recent image this process saw in each channel: posted with a mention
 * (in the channel or any of its threads) and answered, or named in a `/lisa`.
 * `/lisa` without a file link sends it along, so the channel conversation
 * follows the newest image; the conversation itself (history, current image)
 * lives in the session store, so after a restart `/lisa` goes on with the
 * channel conversation's image until a new one is posted.
 */
export class ChannelImages {
  private readonly latestByChannel = new Map<string, SlackFile>();

  constructor(private readonly capacity = 5000) {}

  remember(teamId: string, channelId: string, file: SlackFile): void {
    const key = `${teamId}:${channelId}`;
    this.latestByChannel.delete(key);
    this.latestByChannel.set(key, file);
    if (this.latestByChannel.size > this.capacity) {
      const oldest = this.latestByChannel.keys().next().value;
      if (oldest !== undefined) this.latestByChannel.delete(oldest);
    }
  }

  latest(teamId: string, channelId: string): SlackFile | undefined {
    return this.latestByChannel.get(`${teamId}:${channelId}`);
  }
}
