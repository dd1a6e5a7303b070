/**
 * Which conversation a Discord message belongs to. The rules (docs/discord.md):
 *
 * - A mention that replies to nothing starts a conversation keyed by the
 *   channel and that message: `discord:<channel>:<message>`. So does a mention
 *   replying to someone else's message (that message's image is used).
 * - A reply to one of the bot's messages continues that message's conversation.
 * - Every message in a thread belongs to the thread's conversation: the
 *   conversation of the thread's starter message when the thread was opened on
 *   the bot's answer (or on a message that mentions the bot), else
 *   `discord:<thread>:<thread>`.
 * - `/segment`, and plain messages in a DM, use the channel's conversation:
 *   `discord:<channel>:<channel>`.
 * - "Segment with LISA" on a message uses `discord:<channel>:<target message>`.
 *
 * Nothing needs storing: the conversation of a bot message follows from the
 * reply chain it sits in (its reply reference, or the interaction that made
 * it), which survives restarts. Bot messages posted by this process are also
 * remembered in memory, so the chain is walked through the REST API only
 * after a restart.
 */
import { type APIMessage, InteractionType, MessageReferenceType, Routes } from 'discord.js';
import type { REST } from 'discord.js';
import { conversationKey } from '../../src/conversation/keys.js';
import type { Logger } from '../../src/logger.js';
import { errorFields } from './log.js';

/** Replies followed back before giving up (a new conversation starts then). */
const MAX_CHAIN = 64;
const MEMO_SIZE = 20_000;
const FETCH_CACHE_SIZE = 2_000;

/** What the rules need of a message, from discord.js or from the REST API. */
export interface ChainMessage {
  id: string;
  authorId: string;
  referenceId?: string;
  mentions: readonly string[];
  interaction?: { type: number; targetMessageId?: string };
}

export interface Place {
  channelId: string;
  /** DMs: messages that reply to nothing use the channel's conversation. */
  dm: boolean;
}

/** A Discord conversation: the channel and the message that started the reply chain. */
function discordKey(channelId: string, rootMessageId: string): string {
  return conversationKey('discord', { channelId, rootMessageId });
}

export function channelKey(channelId: string): string {
  return discordKey(channelId, channelId);
}

export function targetKey(channelId: string, messageId: string): string {
  return discordKey(channelId, messageId);
}

export class ConversationResolver {
  private readonly memo = new Map<string, string>();
  private readonly fetched = new Map<string, Promise<ChainMessage | undefined>>();
  private readonly threads = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly rest: REST,
    private readonly botId: () => string,
    private readonly logger: Logger,
  ) {}

  /** Records the conversation of messages the bot just posted. */
  remember(messageIds: readonly string[], key: string): void {
    for (const id of messageIds) remember(this.memo, id, key, MEMO_SIZE);
  }

  /** The conversation of a user's message (not in a thread: see `forThread`). */
  async forUserMessage(message: ChainMessage, place: Place): Promise<string> {
    return (await this.ofUser(message, place, 0)) ?? this.fresh(message.id, place);
  }

  /** The conversation of a thread: its starter's when that belongs to the bot's conversations. */
  async forThread(threadId: string, parentId: string | null): Promise<{ key: string; fromStarter: boolean }> {
    let pending = this.threads.get(threadId);
    if (!pending) {
      pending = this.starterKey(threadId, parentId);
      remember(this.threads, threadId, pending, FETCH_CACHE_SIZE);
    }
    const key = await pending;
    return key ? { key, fromStarter: true } : { key: channelKey(threadId), fromStarter: false };
  }

  /** True when `messageId` (in `channelId`) was written by the bot. */
  async isBotMessage(channelId: string, messageId: string): Promise<boolean> {
    if (this.memo.has(messageId)) return true;
    const message = await this.fetch(channelId, messageId);
    return message?.authorId === this.botId();
  }

  private async starterKey(threadId: string, parentId: string | null): Promise<string | undefined> {
    if (!parentId) return undefined;
    // A thread opened on a message has that message's id; the message stays in the parent channel.
    const starter = await this.fetch(parentId, threadId);
    if (!starter) return undefined;
    const place = { channelId: parentId, dm: false };
    if (starter.authorId === this.botId()) return this.ofBot(starter, place, 0);
    if (starter.mentions.includes(this.botId())) return this.forUserMessage(starter, place);
    return undefined;
  }

  private fresh(messageId: string, place: Place): string {
    return place.dm ? channelKey(place.channelId) : targetKey(place.channelId, messageId);
  }

  private async ofUser(message: ChainMessage, place: Place, depth: number): Promise<string | undefined> {
    if (depth > MAX_CHAIN) return undefined;
    if (message.referenceId) {
      const known = this.memo.get(message.referenceId);
      if (known) return known;
      const referenced = await this.fetch(place.channelId, message.referenceId);
      if (referenced?.authorId === this.botId()) {
        const key = await this.ofBot(referenced, place, depth + 1);
        if (key) return key;
      }
    }
    return this.fresh(message.id, place);
  }

  private async ofBot(message: ChainMessage, place: Place, depth: number): Promise<string | undefined> {
    const known = this.memo.get(message.id);
    if (known) return known;
    if (depth > MAX_CHAIN) return undefined;
    let key: string | undefined;
    if (message.referenceId) {
      const referenced = await this.fetch(place.channelId, message.referenceId);
      if (!referenced) {
        // The message it answered is gone; it most likely started the conversation.
        key = this.fresh(message.referenceId, place);
      } else if (referenced.authorId === this.botId()) {
        key = await this.ofBot(referenced, place, depth + 1);
      } else {
        key = await this.ofUser(referenced, place, depth + 1);
      }
    } else if (message.interaction?.targetMessageId) {
      key = targetKey(place.channelId, message.interaction.targetMessageId);
    } else {
      // A /segment answer, in the channel's conversation.
      key = channelKey(place.channelId);
    }
    if (key) remember(this.memo, message.id, key, MEMO_SIZE);
    return key;
  }

  private fetch(channelId: string, messageId: string): Promise<ChainMessage | undefined> {
    const cacheKey = `${channelId}/${messageId}`;
    let pending = this.fetched.get(cacheKey);
    if (!pending) {
      pending = (this.rest.get(Routes.channelMessage(channelId, messageId)) as Promise<APIMessage>).then(
        fromApi,
        (error: unknown) => {
          this.logger.debug({ ...errorFields(error), channelId, messageId }, 'discord: could not fetch a message of a reply chain');
          this.fetched.delete(cacheKey);
          return undefined;
        },
      );
      remember(this.fetched, cacheKey, pending, FETCH_CACHE_SIZE);
    }
    return pending;
  }
}

/** The rule-relevant parts of a REST API message. */
export function fromApi(message: APIMessage): ChainMessage {
  const reference = message.message_reference;
  const meta = message.interaction_metadata;
  let interaction: ChainMessage['interaction'];
  if (meta) {
    const origin =
      meta.type === InteractionType.ModalSubmit && 'triggering_interaction_metadata' in meta
        ? meta.triggering_interaction_metadata
        : meta;
    const target = 'target_message_id' in origin ? origin.target_message_id : undefined;
    interaction = { type: meta.type, ...(target ? { targetMessageId: target } : {}) };
  }
  return {
    id: message.id,
    authorId: message.author.id,
    ...(reference?.message_id && reference.type !== MessageReferenceType.Forward
      ? { referenceId: reference.message_id }
      : {}),
    mentions: message.mentions.map((user) => user.id),
    ...(interaction ? { interaction } : {}),
  };
}

/** Map insertion with oldest-first eviction (a small LRU for caches that are refilled on a miss). */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
