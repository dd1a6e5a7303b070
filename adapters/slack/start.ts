/**
 * The Slack surface connected: Socket Mode with SLACK_APP_TOKEN by default
 * (`slack.mode: socket`, no public URL needed); HTTP mode with
 * SLACK_SIGNING_SECRET (`slack.mode: http`) on `slack.port`, Bolt's
 * `/slack/events` path, where Bolt verifies every request's signature and
 * timestamp. The Web API base is `slack.apiUrl`. Loaded by the registry entry
 * (index.ts) only when switched on.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { webApi } from '@slack/bolt';
import type { RunningSurface, SurfaceContext } from '../../src/assistant/surface.js';
import type { Config } from '../../src/config/index.js';
import { UserInputError } from '../../src/errors.js';
import { type SlackCredentials, type SlackIdentity, createSlackApp, toBoltLogger, webClientOptions } from './app.js';
import { slackError } from './files.js';

export interface SlackSurface extends RunningSurface {
  /** Resolves when every event received so far has been fully handled (for tests). */
  idle(): Promise<void>;
  /** The bot user, as auth.test named it. */
  identity: SlackIdentity;
}

/** How long stop() waits for answers in progress before it gives up on them. */
const STOP_GRACE_MS = 30_000;

/** The tokens `slack.mode` needs, or a start-up error that names the missing environment variable. */
export function slackCredentials(config: Config): SlackCredentials {
  const { SLACK_BOT_TOKEN: botToken, SLACK_APP_TOKEN: appToken, SLACK_SIGNING_SECRET: signingSecret } = config.secrets;
  const fail = (message: string): never => {
    throw new UserInputError(`Slack: ${message}`, 'config_invalid');
  };
  if (!botToken) return fail('SLACK_BOT_TOKEN is not set (the Bot User OAuth Token, xoxb-…, from OAuth & Permissions).');
  if (!botToken.startsWith('xoxb-')) fail('SLACK_BOT_TOKEN must be a bot token (xoxb-…), from OAuth & Permissions.');
  if (config.slack.mode === 'socket') {
    if (!appToken) {
      return fail(
        'slack.mode is socket, which needs SLACK_APP_TOKEN (an app-level token, xapp-…, with connections:write, ' +
          'from Basic Information > App-Level Tokens); or set slack.mode to http and SLACK_SIGNING_SECRET.',
      );
    }
    if (!appToken.startsWith('xapp-')) fail('SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write.');
    return { mode: 'socket', botToken, appToken };
  }
  if (!signingSecret) {
    return fail(
      'slack.mode is http, which needs SLACK_SIGNING_SECRET (from Basic Information > App Credentials); ' +
        'or set slack.mode to socket and SLACK_APP_TOKEN.',
    );
  }
  return { mode: 'http', botToken, signingSecret };
}

export async function startSlack(ctx: SurfaceContext): Promise<SlackSurface> {
  const credentials = slackCredentials(ctx.config);
  const identity = await whoAmI(ctx, credentials.botToken);
  const { app, idle } = createSlackApp(ctx, credentials, identity);
  const logger = ctx.logger.child({ surface: 'slack' });

  let url: string | undefined;
  try {
    if (credentials.mode === 'http') {
      const server = (await app.start(ctx.config.slack.port)) as Server;
      url = `http://localhost:${(server.address() as AddressInfo).port}/slack/events`;
    } else {
      await app.start();
    }
  } catch (error) {
    const { code, message } = slackError(error);
    if (credentials.mode === 'socket' && (code === 'invalid_auth' || code === 'not_authed')) {
      throw new UserInputError('Slack: SLACK_APP_TOKEN was refused (invalid_auth); create an app-level token with connections:write.', 'config_invalid');
    }
    throw new Error(`Slack: could not start ${credentials.mode} mode: ${message}`);
  }
  logger.info({ mode: credentials.mode, botUserId: identity.botUserId }, 'slack: connected');

  return {
    name: 'slack',
    url,
    identity,
    idle,
    async stop() {
      await app.stop().catch((error: unknown) => logger.warn({ err: slackError(error) }, 'slack: stop failed'));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS);
      });
      if ((await Promise.race([idle(), timedOut])) === 'timeout') logger.warn('slack: stopped with answers still in progress');
      clearTimeout(timer);
    },
  };
}

/** auth.test: fails fast, with a message naming the variable, when the bot token is wrong. */
async function whoAmI(ctx: SurfaceContext, botToken: string): Promise<SlackIdentity> {
  const logger = toBoltLogger(ctx.logger.child({ surface: 'slack' }));
  const client = new webApi.WebClient(botToken, { ...webClientOptions(ctx, logger), retryConfig: { retries: 2 } });
  try {
    const result = await client.auth.test();
    if (!result.user_id || !result.bot_id) throw new Error('auth.test returned no bot user: is SLACK_BOT_TOKEN a bot token?');
    return { botUserId: result.user_id, botId: result.bot_id };
  } catch (error) {
    const { code, message } = slackError(error);
    if (code === 'invalid_auth' || code === 'not_authed' || code === 'token_revoked' || code === 'account_inactive') {
      throw new UserInputError(`Slack: SLACK_BOT_TOKEN was refused (${code}); copy the Bot User OAuth Token again.`, 'config_invalid');
    }
    throw new Error(`Slack: could not reach the Web API at ${ctx.config.slack.apiUrl}: ${message}`);
  }
}
