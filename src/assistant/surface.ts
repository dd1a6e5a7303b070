import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics, Readiness } from '../metrics/index.js';
import type { AssistantPort } from './types.js';

/** What `lisa-bot serve` hands each surface (adapters/web, adapters/discord, adapters/slack). */
export interface SurfaceContext {
  assistant: AssistantPort;
  config: Config;
  logger: Logger;
  /** This process's metrics, for a surface that serves `/metrics` (the web chat). */
  metrics?: Metrics;
  /** Whether this process is ready to answer, for a surface that serves `/readyz`. */
  readiness?: Readiness;
}

/** A started surface; `stop` closes its connections and servers. */
export interface RunningSurface {
  name: string;
  /** Where it listens, for the start-up log (web, Slack HTTP mode). */
  url?: string;
  stop(): Promise<void>;
}
