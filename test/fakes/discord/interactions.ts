/** INTERACTION_CREATE payloads of the fake Discord: /segment, the message context menu, and its modal. */
import * as p from './payloads.js';
import { type FakeAttachment, type FakeUser, snowflake } from './payloads.js';
import type { FakeDiscord, InteractionRecord } from './server.js';

export interface InteractionOptions {
  user?: FakeUser;
  channelId?: string;
  /** When the interaction was created (its snowflake says so); defaults to now. */
  createdAt?: number;
  attachmentSizeLimit?: number;
}

type Built = { record: InteractionRecord; body: Record<string, unknown> };

function base(discord: FakeDiscord, options: InteractionOptions, type: number, metadata: (id: string, user: FakeUser) => Record<string, unknown>) {
  const createdAt = options.createdAt ?? Date.now();
  const id = snowflake(createdAt);
  const user = options.user ?? discord.alice;
  const channel = discord.channel(options.channelId ?? discord.channelId) as { id: string; guild_id?: string };
  const record: InteractionRecord = {
    id, token: `token-${id}`, type, channelId: channel.id, createdAt, acknowledged: false, callbacks: [],
    metadata: metadata(id, user),
  };
  const body: p.InteractionBase = {
    id, token: record.token, application_id: discord.applicationId, channel,
    ...(channel.guild_id ? { guild_id: channel.guild_id, member: p.member(user, discord.rolesOf(user)) } : { user }),
    attachment_size_limit: options.attachmentSizeLimit ?? 10 * 1024 * 1024,
  };
  return { record, body };
}

function owners(discord: FakeDiscord) {
  return { '0': discord.guildId };
}

export function slashCommand(discord: FakeDiscord, options: InteractionOptions & { question: string; image?: FakeAttachment }): Built {
  const { record, body } = base(discord, options, 2, (id, user) => ({ id, type: 2, user, authorizing_integration_owners: owners(discord) }));
  const commandOptions: Record<string, unknown>[] = [{ name: 'question', type: 3, value: options.question }];
  if (options.image) commandOptions.push({ name: 'image', type: 11, value: options.image.id });
  const data = {
    id: snowflake(), name: 'segment', type: 1, options: commandOptions,
    ...(options.image ? { resolved: { attachments: { [options.image.id]: options.image } } } : {}),
  };
  return { record, body: p.interaction(body, 2, data) };
}

export function contextMenuCommand(discord: FakeDiscord, options: InteractionOptions & { targetId: string }): Built {
  const { record, body } = base(discord, options, 2, (id, user) => ({
    id, type: 2, user, authorizing_integration_owners: owners(discord), target_message_id: options.targetId,
  }));
  // The target arrives whole, Message Content intent or not.
  const target = discord.messages.get(options.targetId)!;
  const data = { id: snowflake(), name: 'Segment with LISA', type: 3, target_id: target.id, resolved: { messages: { [target.id]: target } } };
  return { record, body: p.interaction(body, 2, data) };
}

export function modalSubmit(discord: FakeDiscord, options: InteractionOptions & { from: InteractionRecord; question: string }): Built {
  const modal = options.from.callbacks.find((c) => c.type === 9);
  if (!modal) throw new Error('fake discord: that interaction opened no modal');
  const { record, body } = base(discord, options, 5, (id, user) => ({
    id, type: 5, user, authorizing_integration_owners: owners(discord), triggering_interaction_metadata: options.from.metadata,
  }));
  const input = findTextInput(modal.data.components);
  const data = {
    custom_id: modal.data.custom_id,
    components: [{ type: 18, id: 1, component: { type: 4, id: 2, custom_id: input, value: options.question } }],
  };
  return { record, body: p.interaction(body, 5, data) };
}

/** The custom id of the modal's text input (inside a label, or a legacy action row). */
function findTextInput(components: any[]): string {
  for (const c of components) {
    if (c.component?.type === 4) return c.component.custom_id;
    for (const inner of c.components ?? []) if (inner.type === 4) return inner.custom_id;
  }
  throw new Error('fake discord: the modal has no text input');
}
