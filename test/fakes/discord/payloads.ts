/**
 * Gateway and REST payloads of the fake Discord, shaped like Discord's own
 * (API v10) closely enough for discord.js to build its structures from them.
 */
const DISCORD_EPOCH = 1_420_070_400_000n;
let increment = 0n;

/** A snowflake for `timestamp` (ms): discord.js derives createdTimestamp from it. */
export function snowflake(timestamp = Date.now()): string {
  increment = (increment + 1n) & 0xfffn;
  return (((BigInt(timestamp) - DISCORD_EPOCH) << 22n) | (1n << 17n) | increment).toString();
}

export interface FakeUser {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: null;
  bot?: boolean;
}

export function user(id: string, username: string, bot = false): FakeUser {
  return { id, username, global_name: bot ? null : username, discriminator: '0', avatar: null, ...(bot ? { bot: true } : {}) };
}

export function role(id: string, name: string, extra: Record<string, unknown> = {}) {
  return { id, name, color: 0, colors: { primary_color: 0, secondary_color: null, tertiary_color: null }, hoist: false, icon: null, unicode_emoji: null, position: 0, permissions: '0', managed: false, mentionable: false, flags: 0, ...extra };
}

export function textChannel(id: string, guildId: string, name: string) {
  return { id, type: 0, guild_id: guildId, name, position: 0, permission_overwrites: [], parent_id: null, nsfw: false, topic: null, last_message_id: null, rate_limit_per_user: 0 };
}

export function threadChannel(id: string, guildId: string, parentId: string, ownerId: string, name: string) {
  return {
    id, type: 11, guild_id: guildId, parent_id: parentId, owner_id: ownerId, name, last_message_id: null, rate_limit_per_user: 0,
    message_count: 0, member_count: 1, flags: 0, total_message_sent: 0,
    thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false },
  };
}

export function dmChannel(id: string, recipient: FakeUser) {
  return { id, type: 1, last_message_id: null, recipients: [recipient], flags: 0 };
}

export function member(u: FakeUser, roles: string[]) {
  return { user: u, roles, nick: null, avatar: null, joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0, pending: false, permissions: '2248473465835073' };
}

export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type?: string;
  width?: number;
  height?: number;
}

export interface FakeMessage {
  id: string;
  channel_id: string;
  guild_id?: string;
  author: FakeUser;
  member?: ReturnType<typeof member>;
  content: string;
  timestamp: string;
  edited_timestamp: string | null;
  tts: boolean;
  mention_everyone: boolean;
  mentions: FakeUser[];
  mention_roles: string[];
  attachments: FakeAttachment[];
  embeds: unknown[];
  components: unknown[];
  pinned: boolean;
  type: number;
  flags: number;
  webhook_id?: string;
  message_reference?: { type: 0; message_id: string; channel_id: string; guild_id?: string };
  referenced_message?: FakeMessage | null;
  interaction_metadata?: Record<string, unknown>;
}

export function message(fields: Partial<FakeMessage> & Pick<FakeMessage, 'id' | 'channel_id' | 'author'>): FakeMessage {
  return {
    content: '', timestamp: new Date().toISOString(), edited_timestamp: null, tts: false, mention_everyone: false,
    mentions: [], mention_roles: [], attachments: [], embeds: [], components: [], pinned: false,
    type: fields.message_reference ? 19 : 0, flags: 0, ...fields,
  };
}

/** What an app without the Message Content intent sees of a message it is not mentioned in. */
export function withoutContent(m: FakeMessage): FakeMessage {
  return { ...m, content: '', attachments: [], embeds: [], components: [] };
}

export interface InteractionBase {
  id: string;
  token: string;
  application_id: string;
  channel: Record<string, unknown>;
  guild_id?: string;
  member?: ReturnType<typeof member>;
  user?: FakeUser;
  attachment_size_limit?: number;
}

export function interaction(base: InteractionBase, type: number, data: Record<string, unknown>): Record<string, unknown> {
  return {
    version: 1, type, data, app_permissions: '2248473465835073', locale: 'en-US', entitlements: [],
    authorizing_integration_owners: base.guild_id ? { '0': base.guild_id } : { '1': base.user?.id },
    context: base.guild_id ? 0 : 1, ...(base.guild_id ? { guild_locale: 'en-US' } : {}),
    ...base, channel_id: base.channel.id,
  };
}
