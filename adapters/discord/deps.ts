import type { Client } from 'discord.js';
import type { AssistantPort } from '../../src/assistant/types.js';
import type { Config } from '../../src/config/index.js';
import type { Logger } from '../../src/logger.js';
import type { ConversationResolver } from './conversation.js';
import type { TurnRunner } from './run.js';

/** What every handler of the Discord surface gets. */
export interface DiscordDeps {
  client: Client<true>;
  assistant: AssistantPort;
  config: Config;
  logger: Logger;
  conversations: ConversationResolver;
  runner: TurnRunner;
}

/** How long a platform event id is remembered, against a resumed gateway replaying it. */
export const EVENT_DEDUPE_MS = 60 * 60 * 1000;
