import type { AssistantPort } from '../../src/assistant/types.js';
import type { Config } from '../../src/config/index.js';
import type { Logger } from '../../src/logger.js';
import type { ChannelImages } from './conversation.js';

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
