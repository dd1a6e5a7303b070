/**
 * The wiring, in one place: the Bolt app for the configured mode, the shared
 * listener dependencies, and the listeners.
 */
import { App, HTTPReceiver, LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import { inspect } from 'node:util';
import type { SurfaceContext } from '../../src/assistant/surface.js';
import type { Logger } from '../../src/logger.js';
import { ChannelImages } from './conversation.js';
import type { SlackDeps } from './deps.js';
import { registerCommand } from './listeners/command.js';
import { registerMention } from './listeners/mention.js';
import { registerThreadReplies } from './listeners/thread.js';

/** The tokens of one mode; see credentials() in index.ts. */
export type SlackCredentials =
  | { mode: 'socket'; botToken: string; appToken: string }
  | { mode: 'http'; botToken: string; signingSecret: string };

export interface SlackIdentity {
  botUserId: string;
  botId: string;
}

export const SLASH_COMMAND = '/lisa';

/** Web API options shared by the start-up check and the app: the base URL from config, bounded retries. */
export function webClientOptions(ctx: SurfaceContext, logger: BoltLogger): webApi.WebClientOptions {
  return {
    slackApiUrl: ctx.config.slack.apiUrl,
    logger,
    retryConfig: webApi.retryPolicies.fiveRetriesInFiveMinutes,
    timeout: 60_000,
  };
}

export interface SlackApp {
  app: App;
  deps: SlackDeps;
  /** Resolves when no work is in flight (tests; graceful stop). */
  idle(): Promise<void>;
}

export function createSlackApp(ctx: SurfaceContext, credentials: SlackCredentials, identity: SlackIdentity): SlackApp {
  const logger = ctx.logger.child({ surface: 'slack' });
  const boltLogger = toBoltLogger(logger);
  const inFlight = new Set<Promise<void>>();

  const deps: SlackDeps = {
    assistant: ctx.assistant,
    config: ctx.config,
    logger,
    botToken: credentials.botToken,
    channelImages: new ChannelImages(),
    command: SLASH_COMMAND,
    background(name, work) {
      const running: Promise<void> = Promise.resolve()
        .then(work)
        .catch((error: unknown) => logger.error({ err: error, work: name }, 'slack: unhandled error'))
        .finally(() => inFlight.delete(running));
      inFlight.add(running);
    },
  };

  const common = {
    token: credentials.botToken,
    botId: identity.botId,
    botUserId: identity.botUserId,
    // index.ts has checked the token with auth.test already.
    tokenVerificationEnabled: false,
    logger: boltLogger,
    clientOptions: webClientOptions(ctx, boltLogger),
    convoStore: false as const,
  };
  const app =
    credentials.mode === 'socket'
      ? new App({ ...common, socketMode: true, appToken: credentials.appToken })
      : new App({
          ...common,
          receiver: new HTTPReceiver({
            signingSecret: credentials.signingSecret,
            port: ctx.config.slack.port,
            // Ack (HTTP 200) before the listeners run; Bolt verifies signature and timestamp first.
            processBeforeResponse: false,
            logger: boltLogger,
          }),
        });

  app.error(async (error) => {
    logger.error({ err: error }, 'slack: error in a listener');
  });

  registerMention(app, deps);
  registerCommand(app, deps);
  if (ctx.config.slack.threadRepliesWithoutMention) registerThreadReplies(app, deps);

  return {
    app,
    deps,
    async idle() {
      while (inFlight.size > 0) {
        await Promise.allSettled([...inFlight]);
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}

/** Bolt and the Web API client log through the project's logger (pino redacts tokens in objects). */
export function toBoltLogger(logger: Logger): BoltLogger {
  const format = (parts: unknown[]) =>
    parts.map((p) => (typeof p === 'string' ? p : p instanceof Error ? p.message : inspect(p, { depth: 2, breakLength: Infinity }))).join(' ');
  let level: LogLevel = pinoToBolt(logger.level);
  return {
    debug: (...parts) => logger.debug(format(parts)),
    info: (...parts) => logger.info(format(parts)),
    warn: (...parts) => logger.warn(format(parts)),
    error: (...parts) => logger.error(format(parts)),
    setLevel: (next) => {
      level = next;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

function pinoToBolt(level: string): LogLevel {
  if (level === 'trace' || level === 'debug') return LogLevel.DEBUG;
  if (level === 'info') return LogLevel.INFO;
  if (level === 'warn') return LogLevel.WARN;
  return LogLevel.ERROR;
}
