import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { AssistantPort } from './types.js';

/** What `lisa-bot serve` hands each surface (adapters/web, adapters/discord, adapters/slack). */
export interface SurfaceContext {
  assistant: AssistantPort;
  config: Config;
  logger: Logger;
}

/** A started surface; `stop` closes its connections and servers. */
export interface RunningSurface {
  name: string;
  /** Where it listens, for the start-up log (web, Slack HTTP mode). */
  url?: string;
  stop(): Promise<void>;
}
