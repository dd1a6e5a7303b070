/**
 * The Discord-only allow-lists: guilds (servers) and roles. Empty lists allow
 * everything; a non-empty guild or role list keeps the bot out of DMs, where
 * there is neither. Users, channels, rate and queue are the assistant's checks.
 */
import type { APIInteractionGuildMember, GuildMember } from 'discord.js';
import type { Config } from '../../src/config/index.js';

export interface Asker {
  guildId: string | null;
  member: GuildMember | APIInteractionGuildMember | null;
}

/** Why the bot refuses this asker, as a message for them; undefined when allowed. */
export function refusal(asker: Asker, config: Config): string | undefined {
  const { allowedGuilds, allowedRoles } = config.discord;
  if (allowedGuilds.length > 0 && (asker.guildId === null || !allowedGuilds.includes(asker.guildId))) {
    return asker.guildId === null ? 'LISA only answers in the servers it is enabled for, not in DMs.' : 'LISA is not enabled in this server.';
  }
  if (allowedRoles.length > 0) {
    if (asker.guildId === null) return 'LISA only answers in servers, for members with an allowed role.';
    if (!roleIds(asker.member).some((id) => allowedRoles.includes(id))) {
      return "You don't have a role that may use LISA here.";
    }
  }
  return undefined;
}

function roleIds(member: Asker['member']): string[] {
  if (!member) return [];
  // A cached GuildMember has a role manager; a raw interaction member has the ids.
  return Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
}
