/**
 * A fake Discord on 127.0.0.1 for the real discord.js client: REST API, CDN
 * and gateway on one port. One guild with a text channel, a member role, the
 * bot's managed role; users alice (member), bob (no role) and a second bot.
 * Scenario helpers make users post messages, run commands and submit modals.
 */
import { EventEmitter } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeGateway } from './gateway.js';
import * as p from './payloads.js';
import { type FakeAttachment, type FakeMessage, type FakeUser, snowflake } from './payloads.js';
import { type RecordedRequest, handleHttp } from './rest.js';
import { slashCommand, contextMenuCommand, modalSubmit, type InteractionOptions } from './interactions.js';

const MESSAGE_CONTENT_INTENT = 1 << 15;

export interface InteractionRecord {
  id: string;
  token: string;
  /** 2: application command, 5: modal submit. */
  type: number;
  channelId: string;
  createdAt: number;
  acknowledged: boolean;
  callbacks: { type: number; data: any; at: number }[];
  original?: string;
  /** `interaction_metadata` of the messages that answer it. */
  metadata: Record<string, unknown>;
}

export interface UserMessageOptions {
  content: string;
  author?: FakeUser;
  channelId?: string;
  /** Put `<@bot>` in front and list the bot in mentions. */
  mention?: boolean;
  /** Mention the bot's managed role instead (what Discord's autocomplete sometimes picks for "@LISA"). */
  roleMention?: boolean;
  attachments?: FakeAttachment[];
  replyTo?: string;
  /** Whether a reply pings the replied-to author (Discord's default: yes). */
  ping?: boolean;
}

export class FakeDiscord {
  readonly token = 'fake-bot-token';
  readonly applicationId = snowflake();
  readonly guildId = snowflake();
  readonly channelId = snowflake();
  readonly memberRoleId = snowflake();
  readonly botRoleId = snowflake();
  readonly bot = p.user(this.applicationId, 'LISA', true);
  readonly alice = p.user(snowflake(), 'alice');
  readonly bob = p.user(snowflake(), 'bob');
  readonly otherBot = p.user(snowflake(), 'otherbot', true);
  readonly gateway: FakeGateway;
  readonly messages = new Map<string, FakeMessage>();
  readonly deleted = new Set<string>();
  readonly requests: RecordedRequest[] = [];
  readonly interactions = new Map<string, InteractionRecord>();
  readonly commands = new Map<string, unknown[]>();
  readonly cdn = new Map<string, { data: Buffer; contentType: string }>();
  /** Uploaded bytes by attachment id. */
  readonly files = new Map<string, Buffer>();
  private readonly channels = new Map<string, Record<string, unknown>>();
  private readonly threads: Record<string, unknown>[] = [];
  private readonly events = new EventEmitter();
  private server!: Server;
  private base = '';

  private constructor() {
    this.events.setMaxListeners(100);
    this.channels.set(this.channelId, p.textChannel(this.channelId, this.guildId, 'general'));
    this.gateway = new FakeGateway({ token: this.token, ready: (sessionId, resumeUrl) => this.readyPayloads(sessionId, resumeUrl) });
  }

  static async start(): Promise<FakeDiscord> {
    const discord = new FakeDiscord();
    discord.server = createServer((req, res) => void handleHttp(discord, req, res));
    discord.server.on('upgrade', (req, socket, head) => discord.gateway.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve) => discord.server.listen(0, '127.0.0.1', resolve));
    const { port } = discord.server.address() as AddressInfo;
    discord.base = `http://127.0.0.1:${port}`;
    discord.gateway.url = `ws://127.0.0.1:${port}/gateway`;
    return discord;
  }

  get apiUrl(): string {
    return `${this.base}/api`;
  }

  async close(): Promise<void> {
    this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- state used by the REST routes -------------------------------------------------

  changed(): void {
    this.events.emit('change');
  }

  channel(id: string): Record<string, unknown> {
    const channel = this.channels.get(id);
    if (!channel) throw Object.assign(new Error('Unknown Channel'), { status: 404, code: 10003 });
    return channel;
  }

  user(id: string): FakeUser {
    return [this.bot, this.alice, this.bob, this.otherBot].find((u) => u.id === id) ?? p.user(id, `user-${id}`);
  }

  newMessage(channelId: string, author: FakeUser, content: string): FakeMessage {
    const channel = this.channel(channelId) as { guild_id?: string };
    return p.message({ id: snowflake(), channel_id: channelId, author, content, ...(channel.guild_id ? { guild_id: channel.guild_id } : {}) });
  }

  addFile(channelId: string, filename: string, data: Buffer, contentType: string, size: { width?: number; height?: number } = {}): FakeAttachment {
    const id = snowflake();
    const path = `/attachments/${channelId}/${id}/${filename}`;
    this.cdn.set(path, { data, contentType });
    this.files.set(id, data);
    return { id, filename, size: data.length, url: `${this.base}${path}`, proxy_url: `${this.base}${path}`, content_type: contentType, ...size };
  }

  /** An attachment as Discord describes it, without serving bytes (for checks that must refuse before downloading). */
  declaredFile(filename: string, size: number, contentType: string, dims: { width?: number; height?: number } = {}): FakeAttachment {
    const id = snowflake();
    const url = `${this.base}/attachments/${this.channelId}/${id}/${filename}`;
    return { id, filename, size, url, proxy_url: url, content_type: contentType, ...dims };
  }

  postBotMessage(message: FakeMessage): FakeMessage {
    this.messages.set(message.id, message);
    this.gateway.dispatch('MESSAGE_CREATE', this.gatewayMessage(message));
    return message;
  }

  editBotMessage(message: FakeMessage, edit: Partial<FakeMessage>): FakeMessage {
    Object.assign(message, edit, { edited_timestamp: new Date().toISOString() });
    this.gateway.dispatch('MESSAGE_UPDATE', this.withMember(message));
    return message;
  }

  deleteMessage(message: FakeMessage): void {
    this.deleted.add(message.id);
    this.gateway.dispatch('MESSAGE_DELETE', { id: message.id, channel_id: message.channel_id, guild_id: message.guild_id });
  }

  /** A message as the bot may read it: without the Message Content intent, others' unmentioning messages are empty. */
  visible(message: FakeMessage): FakeMessage {
    const exempt =
      (this.gateway.intents & MESSAGE_CONTENT_INTENT) !== 0 ||
      message.author.id === this.bot.id ||
      !message.guild_id ||
      message.mentions.some((u) => u.id === this.bot.id) ||
      message.mention_roles.includes(this.botRoleId);
    return exempt ? message : p.withoutContent(message);
  }

  // --- scenario helpers ----------------------------------------------------------------

  /** A user posts a message (stored, then dispatched as MESSAGE_CREATE). */
  userMessage(options: UserMessageOptions): FakeMessage {
    const channelId = options.channelId ?? this.channelId;
    let content = options.content;
    if (options.mention) content = `<@${this.bot.id}> ${content}`;
    if (options.roleMention) content = `<@&${this.botRoleId}> ${content}`;
    const message = this.newMessage(channelId, options.author ?? this.alice, content);
    message.attachments = options.attachments ?? [];
    if (options.mention) message.mentions.push(this.bot);
    if (options.roleMention) message.mention_roles.push(this.botRoleId);
    if (options.replyTo) {
      const referenced = this.messages.get(options.replyTo)!;
      message.type = 19;
      message.message_reference = { type: 0, message_id: referenced.id, channel_id: channelId, ...(message.guild_id ? { guild_id: message.guild_id } : {}) };
      message.referenced_message = this.visible(referenced);
      if (options.ping !== false && !message.mentions.some((u) => u.id === referenced.author.id)) message.mentions.push(referenced.author);
    }
    this.messages.set(message.id, message);
    this.gateway.dispatch('MESSAGE_CREATE', this.gatewayMessage(message));
    return message;
  }

  /** A stored message as MESSAGE_CREATE carries it: as visible to the bot, with member and channel type. */
  gatewayMessage(message: FakeMessage): FakeMessage {
    const channel = this.channel(message.channel_id) as { type: number };
    return { ...this.withMember(this.visible(message)), channel_type: channel.type } as FakeMessage;
  }

  /** The DM channel between the bot and `user`. */
  dmChannel(user = this.alice): string {
    const existing = [...this.channels.values()].find((c) => c.type === 1 && (c.recipients as FakeUser[])[0].id === user.id);
    if (existing) return existing.id as string;
    const id = snowflake();
    this.channels.set(id, p.dmChannel(id, user));
    return id;
  }

  /** Opens a thread on a message of the text channel (the thread gets the message's id). */
  startThread(messageId: string, owner = this.alice): string {
    const thread = p.threadChannel(messageId, this.guildId, this.channelId, owner.id, 'LISA thread');
    this.channels.set(messageId, thread);
    this.threads.push(thread);
    this.gateway.dispatch('THREAD_CREATE', { ...thread, newly_created: true });
    return messageId;
  }

  slash(options: InteractionOptions & { question: string; image?: FakeAttachment }): InteractionRecord {
    return this.interact(slashCommand(this, options), options);
  }

  contextMenu(options: InteractionOptions & { targetId: string }): InteractionRecord {
    return this.interact(contextMenuCommand(this, options), options);
  }

  submitModal(options: InteractionOptions & { from: InteractionRecord; question: string }): InteractionRecord {
    return this.interact(modalSubmit(this, options), options);
  }

  /** Messages the bot has posted and not deleted, oldest first; in one channel when given. */
  botMessages(channelId?: string): FakeMessage[] {
    return [...this.messages.values()].filter(
      (m) => m.author.id === this.bot.id && !this.deleted.has(m.id) && (!channelId || m.channel_id === channelId),
    );
  }

  /** Resolves with the first truthy value of `check`, evaluated after every REST request. */
  async waitFor<T>(check: () => T | undefined | false | null, what = 'a condition', timeoutMs = 20_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const test = () => {
        const value = check();
        if (!value) return false;
        cleanup();
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake discord: timed out waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off('change', test);
      };
      if (!test()) this.events.on('change', test);
    });
  }

  withMember(message: FakeMessage): FakeMessage {
    if (!message.guild_id || message.author.bot) return message;
    const { user: _user, ...member } = p.member(message.author, this.rolesOf(message.author));
    return { ...message, member } as FakeMessage;
  }

  rolesOf(user: FakeUser): string[] {
    return user.id === this.alice.id ? [this.memberRoleId] : [];
  }

  private interact(payload: { record: InteractionRecord; body: Record<string, unknown> }, options: InteractionOptions): InteractionRecord {
    this.interactions.set(payload.record.id, payload.record);
    this.gateway.dispatch('INTERACTION_CREATE', payload.body);
    void options;
    return payload.record;
  }

  private readyPayloads(sessionId: string, resumeUrl: string) {
    const roles = [
      p.role(this.guildId, '@everyone'),
      p.role(this.memberRoleId, 'members'),
      p.role(this.botRoleId, 'LISA', { managed: true, tags: { bot_id: this.bot.id } }),
    ];
    const guild = {
      id: this.guildId, name: 'Fake guild', icon: null, splash: null, discovery_splash: null, owner_id: this.alice.id,
      afk_channel_id: null, afk_timeout: 300, verification_level: 0, default_message_notifications: 0,
      explicit_content_filter: 0, roles, emojis: [], stickers: [], features: [], mfa_level: 0, application_id: null,
      system_channel_id: null, system_channel_flags: 0, rules_channel_id: null, vanity_url_code: null, description: null,
      banner: null, premium_tier: 0, premium_subscription_count: 0, preferred_locale: 'en-US',
      public_updates_channel_id: null, nsfw_level: 0, premium_progress_bar_enabled: false, unavailable: false,
      joined_at: new Date(0).toISOString(), large: false, member_count: 3, voice_states: [], presences: [],
      stage_instances: [], guild_scheduled_events: [],
      members: [p.member(this.bot, [this.botRoleId])],
      channels: [...this.channels.values()].filter((c) => c.type === 0),
      threads: this.threads,
    };
    return {
      ready: {
        v: 10, user: { ...this.bot, verified: true, mfa_enabled: false, flags: 0 }, guilds: [{ id: this.guildId, unavailable: true }],
        session_id: sessionId, resume_gateway_url: resumeUrl, shard: [0, 1], application: { id: this.applicationId, flags: 0 },
        private_channels: [], relationships: [], presences: [], guild_join_requests: [], user_settings: {},
      },
      after: [{ t: 'GUILD_CREATE', d: guild }],
    };
  }
}

export type FakeDiscordState = FakeDiscord;
