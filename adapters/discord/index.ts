/**
 * The Discord surface, as the registry (adapters/index.ts) lists it: on when
 * DISCORD_TOKEN is set; its `discord:` section names the REST base, the hosts
 * images come from, the allow-lists and the Message Content intent. discord.js
 * is loaded by `start` only.
 *
 * The skeleton every surface shares: index.ts (this entry), start.ts (connect,
 * route events to listeners/, stop), incoming.ts (a message or command ->
 * IncomingTurn), conversation.ts (which conversation: reply chains, threads,
 * channels), progress.ts (typing and the status line), outgoing.ts (the
 * answer in Discord's format). Here also: the commands (commands.ts,
 * register.ts), the allow-lists (access.ts), one turn's run (run.ts) and
 * where an answer goes (respond-message.ts, respond-interaction.ts).
 */
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { fields } from '../../src/config/index.js';
import type { SurfaceEntry } from '../surface.js';

const settings = fields.section({
  apiUrl: fields.httpUrl(),
  attachmentHosts: fields.list(fields.hostName()),
  allowedGuilds: fields.list(fields.nonEmpty()),
  allowedRoles: fields.list(fields.nonEmpty()),
  messageContentIntent: fields.bool(),
});

export type DiscordSettings = z.infer<typeof settings>;

declare module '../../src/config/schema.js' {
  interface SurfaceSettings {
    discord: DiscordSettings;
  }
}

export const discord: SurfaceEntry<DiscordSettings> = {
  name: 'discord',
  section: settings,
  defaultsFile: fileURLToPath(new URL('./defaults.yaml', import.meta.url)),
  secrets: ['DISCORD_TOKEN'],
  switchedOnBy: 'DISCORD_TOKEN is set',
  enabled: (config) => Boolean(config.secrets.DISCORD_TOKEN),
  async start(ctx) {
    const { startDiscord } = await import('./start.js');
    return startDiscord(ctx);
  },
};
