/**
 * The Discord surface (discord.js v14) connected: REST goes to `discord.apiUrl`
 * (Discord, a REST proxy, or a local fake in tests) and the gateway URL follows
 * from its GET /gateway/bot; events are routed to the listeners. Translation
 * only: every turn goes to the assistant (AssistantPort), every answer comes
 * back from it. Loaded by the registry entry (index.ts) only when switched on.
 */
import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, type Interaction, type Message, Partials } from 'discord.js';
import type { RunningSurface, SurfaceContext } from '../../src/assistant/surface.js';
import { UserInputError } from '../../src/errors.js';
import { CONTEXT_COMMAND, MODAL_PREFIX, SEGMENT_COMMAND } from './commands.js';
import { ContextMenu } from './listeners/context-menu.js';
import { ConversationResolver } from './conversation.js';
import type { DiscordDeps } from './deps.js';
import { onMessageCreate } from './listeners/mention.js';
import { createTurnRunner } from './run.js';
import { discordInviteUrl } from './register.js';
import { onSegmentCommand } from './listeners/segment.js';
import { errorFields } from './log.js';

/** How long `stop` lets turns in flight wind down (cancelled) before disconnecting. */
const STOP_GRACE_MS = 5_000;

export async function startDiscord(ctx: SurfaceContext): Promise<RunningSurface> {
  const { assistant, config } = ctx;
  const token = config.secrets.DISCORD_TOKEN;
  if (!token) throw new UserInputError('The Discord surface needs DISCORD_TOKEN in the environment.', 'config_invalid');
  const logger = ctx.logger.child({ surface: 'discord' });

  const client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.DirectMessages,
      ...(config.discord.messageContentIntent ? [GatewayIntentBits.MessageContent] : []),
    ],
    // DM channels are not cached up front; without this their messages would be dropped.
    partials: [Partials.Channel],
    rest: { api: config.discord.apiUrl },
    // Model text must never ping @everyone, roles or users; replies ping the asker.
    allowedMentions: { parse: [], repliedUser: true },
  });
  const conversations = new ConversationResolver(client.rest, () => client.user!.id, logger);
  const runner = createTurnRunner({ assistant, conversations, logger });
  const deps: DiscordDeps = { client: client as Client<true>, assistant, config, logger, conversations, runner };
  const contextMenu = new ContextMenu(deps);

  const handlers = new Set<Promise<void>>();
  const track = (what: string, work: () => Promise<void>) => {
    const running = work()
      .catch((error: unknown) => logger.error(errorFields(error), `discord: ${what} failed`))
      .finally(() => handlers.delete(running));
    handlers.add(running);
  };

  client.on(Events.MessageCreate, (message: Message) => track('message', () => onMessageCreate(deps, message)));
  client.on(Events.InteractionCreate, (interaction: Interaction) => {
    if (interaction.isChatInputCommand() && interaction.commandName === SEGMENT_COMMAND) {
      track('/segment', () => onSegmentCommand(deps, interaction));
    } else if (interaction.isMessageContextMenuCommand() && interaction.commandName === CONTEXT_COMMAND) {
      track('context menu', () => contextMenu.onCommand(interaction));
    } else if (interaction.isModalSubmit() && interaction.customId.startsWith(MODAL_PREFIX)) {
      track('modal', () => contextMenu.onModalSubmit(interaction));
    }
  });
  client.on(Events.Error, (error) => logger.error(errorFields(error), 'discord: client error'));
  client.on(Events.Warn, (message) => logger.warn(`discord: ${message}`));
  client.on(Events.ShardDisconnect, (event, shard) => logger.warn({ code: event.code, shard }, 'discord: gateway closed for good'));
  client.on(Events.ShardReconnecting, (shard) => logger.info({ shard }, 'discord: gateway reconnecting'));
  client.on(Events.ShardResume, (shard, replayed) => logger.info({ shard, replayed }, 'discord: gateway resumed'));

  const ready = once(client, Events.ClientReady);
  try {
    await client.login(token);
    await ready;
  } catch (error) {
    await client.destroy().catch(() => undefined);
    throw loginError(error);
  }
  logger.info(
    {
      user: client.user?.tag,
      guilds: client.guilds.cache.size,
      messageContent: config.discord.messageContentIntent,
      invite: client.application ? discordInviteUrl(client.application.id) : undefined,
    },
    'discord: connected',
  );

  let stopped: Promise<void> | undefined;
  return {
    name: 'discord',
    stop() {
      stopped ??= (async () => {
        runner.abortAll();
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, STOP_GRACE_MS);
        });
        await Promise.race([Promise.allSettled([...handlers]), grace]);
        clearTimeout(timer);
        await client.destroy();
      })();
      return stopped;
    },
  };
}

function loginError(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (/disallowed intents/i.test(message)) {
    return new UserInputError(
      'Discord refused the Message Content intent: enable it for the bot (Developer Portal -> Bot -> Privileged Gateway ' +
        'Intents) or set discord.messageContentIntent: false.',
      'config_invalid',
    );
  }
  if (/token/i.test(message) && /invalid|401/i.test(message)) {
    return new UserInputError('Discord refused DISCORD_TOKEN: copy the bot token again (Developer Portal -> Bot -> Reset Token).', 'config_invalid');
  }
  return error instanceof Error ? error : new Error(message);
}
