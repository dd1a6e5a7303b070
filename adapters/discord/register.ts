/**
 * `lisa-bot discord register [--guild ID]`: registers `/segment` and "Segment
 * with LISA" for the bot's application, globally (may take a while to show
 * everywhere) or in one guild (at once: good for trying it out).
 */
import { type APIApplication, type APIApplicationCommand, PermissionFlagsBits, REST, Routes } from 'discord.js';
import { commandDefinitions } from './commands.js';

/** What the bot needs in a channel: read it, answer (also in threads), upload the overlay, follow reply chains. */
export const BOT_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.ReadMessageHistory;

/** The URL a server admin opens to add the bot with its commands and permissions. */
export function discordInviteUrl(applicationId: string): string {
  const params = new URLSearchParams({
    client_id: applicationId,
    scope: 'bot applications.commands',
    permissions: BOT_PERMISSIONS.toString(),
    integration_type: '0',
  });
  return `https://discord.com/oauth2/authorize?${params.toString()}`;
}

export interface RegisterOptions {
  token: string;
  /** REST base, `discord.apiUrl` (https://discord.com/api). */
  apiUrl: string;
  /** Register in this guild only (shows at once) instead of globally. */
  guildId?: string;
}

export interface RegisterResult {
  applicationId: string;
  applicationName: string;
  scope: 'global' | { guildId: string };
  commands: { id: string; name: string; type: number }[];
  inviteUrl: string;
}

/** Overwrites the application's commands (global or in one guild) with LISA's. */
export async function registerDiscordCommands(options: RegisterOptions): Promise<RegisterResult> {
  const rest = new REST({ api: options.apiUrl }).setToken(options.token);
  const application = (await rest.get(Routes.currentApplication())) as APIApplication;
  const route = options.guildId
    ? Routes.applicationGuildCommands(application.id, options.guildId)
    : Routes.applicationCommands(application.id);
  const registered = (await rest.put(route, { body: commandDefinitions() })) as APIApplicationCommand[];
  return {
    applicationId: application.id,
    applicationName: application.name,
    scope: options.guildId ? { guildId: options.guildId } : 'global',
    commands: registered.map((command) => ({ id: command.id, name: command.name, type: command.type })),
    inviteUrl: discordInviteUrl(application.id),
  };
}
