import type { Command } from 'commander';
import { surfaces } from '../../adapters/index.js';
import { loadConfig } from '../config/index.js';
import { UserInputError } from '../errors.js';

/** `lisa-bot discord register`: creates /segment and "Segment with LISA" for the bot in DISCORD_TOKEN. */
export function registerDiscord(program: Command): void {
  const discord = program.command('discord').description('Discord setup');
  discord
    .command('register')
    .description('register /segment and "Segment with LISA" (globally, or in one server with --guild)')
    .option('--guild <id>', 'register in this server only (shows up at once)')
    .option('--config <file>', 'YAML config laid over the defaults (config/default.yaml, adapters/*/defaults.yaml) (for discord.apiUrl)')
    .action(async (options: { guild?: string; config?: string }) => {
      const config = loadConfig({ file: options.config, surfaces });
      const token = config.secrets.DISCORD_TOKEN;
      if (!token) throw new UserInputError('Set DISCORD_TOKEN to the bot token (Developer Portal → Bot → Reset Token).', 'config_invalid');
      // Loaded only here: the core never loads a platform SDK it doesn't use.
      const { registerDiscordCommands } = await import('../../adapters/discord/register.js');
      const result = await registerDiscordCommands({ token, apiUrl: config.discord.apiUrl, guildId: options.guild });
      process.stdout.write(
        `Registered ${result.commands.join(', ')} for ${result.applicationName} (${result.scope}).\n` +
          `Invite the bot with: ${result.inviteUrl}\n`,
      );
    });
}
