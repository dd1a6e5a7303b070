/**
 * The Discord surface under test: the fake Discord, the real discord.js client
 * (the registry entry's start) pointed at it, and an assistant behind a recorder — the real
 * assistant over a temporary toy pack (test/helpers/assistant.ts), or a
 * scripted one.
 */
import { Writable } from 'node:stream';
import { discord as discordSurface } from '../../../adapters/discord/index.js';
import type { RunningSurface } from '../../../src/assistant/surface.js';
import type { AssistantPort, IncomingTurn } from '../../../src/assistant/types.js';
import { surfaces } from '../../../adapters/index.js';
import { type Config, loadConfig } from '../../../src/config/index.js';
import { createLogger } from '../../../src/logger.js';
import { createToyAssistant } from '../../helpers/assistant.js';
import { drawShapes, encodeImage } from '../../helpers/toy.js';
import { RecordingAssistant } from './assistant.js';
import type { FakeMessage } from './payloads.js';
import { FakeDiscord, type InteractionRecord } from './server.js';

export interface Harness {
  discord: FakeDiscord;
  assistant: RecordingAssistant;
  config: Config;
  /** Log lines at warn and above, as JSON. */
  logs: string[];
  /** Stops the surface and starts a fresh one (empty memory) against the same fake Discord. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** 'toy' (default): the real assistant over a temporary toy pack. */
  assistant?: AssistantPort | 'toy';
  configure?: (config: Config, discord: FakeDiscord) => Config;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const discord = await FakeDiscord.start();
  const cleanups: (() => Promise<void>)[] = [() => discord.close()];
  const logs: string[] = [];
  const logger = createLogger({
    level: 'warn',
    destination: new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk));
        done();
      },
    }),
  });

  const base = loadConfig({ surfaces, env: {} });
  let config: Config = {
    ...base,
    secrets: { DISCORD_TOKEN: discord.token },
    web: { ...base.web, enabled: false },
    discord: { ...base.discord, apiUrl: discord.apiUrl, attachmentHosts: ['127.0.0.1'] },
    limits: { ...base.limits, perUserPerMinute: 100 },
    // Lossless overlays: tests compare their pixels exactly.
    render: { format: 'png' },
  };
  config = options.configure?.(config, discord) ?? config;

  let inner: AssistantPort;
  if (options.assistant === undefined || options.assistant === 'toy') {
    // The real assistant over a temporary toy pack, with the same limits the adapter reads.
    const toy = await createToyAssistant({ limits: config.limits });
    cleanups.unshift(() => toy.close());
    inner = toy.assistant;
  } else {
    inner = options.assistant;
  }
  const assistant = new RecordingAssistant(inner);
  let surface: RunningSurface = await discordSurface.start({ assistant, config, logger });

  return {
    discord,
    assistant,
    config,
    logs,
    async restart() {
      await surface.stop();
      surface = await discordSurface.start({ assistant, config, logger });
    },
    async stop() {
      await surface.stop();
      for (const cleanup of cleanups) await cleanup();
    },
  };
}

/** The toy scene: a red rectangle and a blue rectangle on white, 96x64. */
export function scene() {
  return drawShapes(96, 64, [
    { colour: 'red', kind: 'rect', x: 8, y: 10, w: 30, h: 20 },
    { colour: 'blue', kind: 'rect', x: 50, y: 24, w: 36, h: 30 },
  ]);
}

/** The toy scene as a PNG attachment on the fake CDN. */
export async function sceneAttachment(discord: FakeDiscord, channelId = discord.channelId, name = 'shapes.png') {
  const image = scene();
  const png = await encodeImage(image, 'png');
  return discord.addFile(channelId, name, png, 'image/png', { width: image.width, height: image.height });
}

/** The bot's messages that reply to `messageId`, once there are `count` of them. */
export function repliesTo(h: Harness, messageId: string, count = 1): Promise<FakeMessage[]> {
  return h.discord.waitFor(() => {
    const replies = h.discord.botMessages().filter((m) => m.message_reference?.message_id === messageId);
    return replies.length >= count && replies;
  }, `${count} bot replies to ${messageId}`);
}

/** An interaction's original response, once it exists (and, with `withFile`, carries a file). */
export function originalResponse(h: Harness, interaction: InteractionRecord, withFile = false): Promise<FakeMessage> {
  return h.discord.waitFor(() => {
    const message = interaction.original ? h.discord.messages.get(interaction.original) : undefined;
    return message && (!withFile || message.attachments.length > 0) ? message : undefined;
  }, `the response to interaction ${interaction.id}`);
}

/** The turn the assistant was handed last. */
export function lastTurn(h: Harness): IncomingTurn {
  return h.assistant.received.at(-1)!.turn;
}
