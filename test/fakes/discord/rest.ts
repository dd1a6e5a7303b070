/**
 * The fake Discord's REST API (/api/v10) and CDN (/attachments): the routes
 * discord.js uses for this bot, with Discord's status codes and error codes.
 * A 204 carries no content type (discord.js would try to parse it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import sharp from 'sharp';
import type { FakeAttachment, FakeMessage } from './payloads.js';
import { snowflake } from './payloads.js';
import type { FakeDiscordState, InteractionRecord } from './server.js';

export interface RecordedRequest {
  method: string;
  /** The path after /api/v10, e.g. `/channels/1/messages`. */
  path: string;
  query: URLSearchParams;
  body: any;
  files: { field: string; name: string; contentType: string; data: Buffer }[];
  at: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export async function handleHttp(state: FakeDiscordState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://fake');
  const raw = await readBody(req);
  try {
    if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) {
      const file = state.cdn.get(url.pathname);
      if (!file) throw new HttpError(404, 0, 'Not Found');
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': String(file.data.length) });
      res.end(file.data);
      return;
    }
    const match = /^\/api\/v10(\/.*)$/.exec(decodeURIComponent(url.pathname));
    if (!match) throw new HttpError(404, 0, '404: Not Found');
    const request = await parseRequest(req, match[1], url.searchParams, raw);
    state.requests.push(request);
    const result = await route(state, request, req.headers.authorization);
    if (result === undefined) {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result));
    }
  } catch (error) {
    const status = (error as { status?: number }).status ?? 500;
    const code = (error as { code?: number }).code ?? 0;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code, message: (error as Error).message }));
  } finally {
    state.changed();
  }
}

async function route(state: FakeDiscordState, r: RecordedRequest, auth: string | undefined): Promise<unknown> {
  const p = r.path;
  const key = `${r.method} ${p}`;
  const botRoute = !p.startsWith('/interactions/') && !p.startsWith('/webhooks/');
  if (botRoute && auth !== `Bot ${state.token}`) throw new HttpError(401, 0, '401: Unauthorized');
  let m: RegExpExecArray | null;
  if (key === 'GET /gateway/bot') {
    return { url: state.gateway.url, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 } };
  }
  if (key === 'GET /applications/@me') return { id: state.applicationId, name: 'LISA', bot: state.bot, flags: 0 };
  if ((m = /^PUT \/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/.exec(key))) {
    const commands = (r.body as any[]).map((c) => ({ ...c, id: snowflake(), application_id: m![1], version: snowflake(), ...(m![2] ? { guild_id: m![2] } : {}) }));
    state.commands.set(m[2] ?? 'global', commands);
    return commands;
  }
  if ((m = /^GET \/channels\/(\d+)$/.exec(key))) return state.channel(m[1]);
  if ((m = /^POST \/channels\/(\d+)\/typing$/.exec(key))) {
    state.channel(m[1]);
    return undefined;
  }
  if ((m = /^POST \/channels\/(\d+)\/messages$/.exec(key))) {
    state.channel(m[1]);
    return state.postBotMessage(await messageFromBody(state, m[1], r));
  }
  if ((m = /^(GET|PATCH|DELETE) \/channels\/(\d+)\/messages\/(\d+)$/.exec(key))) {
    const message = state.messages.get(m[3]);
    if (!message || message.channel_id !== m[2] || state.deleted.has(m[3])) throw new HttpError(404, 10008, 'Unknown Message');
    if (m[1] === 'GET') return state.visible(message);
    if (message.author.id !== state.bot.id) throw new HttpError(403, 50005, 'Cannot edit a message authored by another user');
    if (m[1] === 'DELETE') return void state.deleteMessage(message);
    return state.editBotMessage(message, await editFromBody(state, message, r));
  }
  if ((m = /^POST \/interactions\/(\d+)\/([^/]+)\/callback$/.exec(key))) {
    const interaction = state.interactions.get(m[1]);
    if (!interaction || interaction.token !== m[2]) throw new HttpError(404, 10062, 'Unknown interaction');
    if (interaction.acknowledged) throw new HttpError(400, 40060, 'Interaction has already been acknowledged.');
    interaction.acknowledged = true;
    interaction.callbacks.push({ type: r.body.type, data: r.body.data, at: r.at });
    if (r.body.type === 4) interaction.original = state.postBotMessage(await interactionMessage(state, interaction, r)).id;
    return r.query.get('with_response') === 'true' ? { interaction: { id: interaction.id, type: interaction.type } } : undefined;
  }
  if ((m = /^(PATCH|GET|DELETE) \/webhooks\/(\d+)\/([^/]+)\/messages\/@original$/.exec(key))) {
    const interaction = liveInteraction(state, m[2], m[3]);
    const original = interaction.original ? state.messages.get(interaction.original) : undefined;
    if (m[1] === 'GET' || m[1] === 'DELETE') {
      if (!original) throw new HttpError(404, 10008, 'Unknown Message');
      return m[1] === 'GET' ? original : void state.deleteMessage(original);
    }
    if (original) return state.editBotMessage(original, await editFromBody(state, original, r));
    const created = state.postBotMessage(await interactionMessage(state, interaction, r));
    interaction.original = created.id;
    return created;
  }
  if ((m = /^POST \/webhooks\/(\d+)\/([^/]+)$/.exec(key))) {
    const interaction = liveInteraction(state, m[1], m[2]);
    const message = await interactionMessage(state, interaction, r);
    message.interaction_metadata = { ...message.interaction_metadata, original_response_message_id: interaction.original };
    return state.postBotMessage(message);
  }
  throw new HttpError(404, 0, `fake discord: no route for ${key}`);
}

function liveInteraction(state: FakeDiscordState, applicationId: string, token: string): InteractionRecord {
  const interaction = [...state.interactions.values()].find((i) => i.token === token);
  if (!interaction || applicationId !== state.applicationId || !interaction.acknowledged) throw new HttpError(404, 10015, 'Unknown Webhook');
  if (Date.now() > interaction.createdAt + 15 * 60 * 1000) throw new HttpError(401, 50027, 'Invalid Webhook Token');
  return interaction;
}

async function interactionMessage(state: FakeDiscordState, interaction: InteractionRecord, r: RecordedRequest): Promise<FakeMessage> {
  const body = r.body.type === 4 ? { ...r, body: r.body.data ?? {} } : r;
  const message = await messageFromBody(state, interaction.channelId, body);
  message.webhook_id = state.applicationId;
  message.type = interaction.type === 2 ? 20 : 0;
  message.interaction_metadata = interaction.metadata;
  return message;
}

async function messageFromBody(state: FakeDiscordState, channelId: string, r: Pick<RecordedRequest, 'body' | 'files'>): Promise<FakeMessage> {
  const body = r.body ?? {};
  if (typeof body.content === 'string' && body.content.length > 2000) throw new HttpError(400, 50035, 'Invalid Form Body: content: Must be 2000 or fewer in length.');
  const reference = body.message_reference as { message_id: string; fail_if_not_exists?: boolean } | undefined;
  const referenced = reference ? state.messages.get(reference.message_id) : undefined;
  if (reference && !referenced && reference.fail_if_not_exists !== false) throw new HttpError(400, 50035, 'Unknown message reference');
  const allowed = body.allowed_mentions as { parse?: string[]; users?: string[]; replied_user?: boolean } | undefined;
  const mentions = [];
  if (referenced && allowed?.replied_user !== false) mentions.push(referenced.author);
  for (const id of allowed?.users ?? []) if (String(body.content).includes(`<@${id}>`)) mentions.push(state.user(id));
  const channel = state.channel(channelId) as { guild_id?: string };
  return {
    ...state.newMessage(channelId, state.bot, String(body.content ?? '')),
    mentions,
    mention_everyone: (allowed?.parse ?? ['everyone']).includes('everyone') && /@(everyone|here)/.test(String(body.content)),
    attachments: await uploads(state, channelId, body.attachments ?? [], r.files),
    ...(referenced
      ? { type: 19, message_reference: { type: 0, message_id: referenced.id, channel_id: channelId, ...(channel.guild_id ? { guild_id: channel.guild_id } : {}) }, referenced_message: referenced }
      : {}),
  };
}

async function editFromBody(state: FakeDiscordState, message: FakeMessage, r: RecordedRequest): Promise<Partial<FakeMessage>> {
  const body = r.body ?? {};
  const edit: Partial<FakeMessage> = {};
  if ('content' in body) edit.content = String(body.content ?? '');
  if ('attachments' in body || r.files.length > 0) {
    const kept = message.attachments.filter((a) => (body.attachments ?? []).some((b: { id: string }) => b.id === a.id));
    edit.attachments = [...kept, ...(await uploads(state, message.channel_id, body.attachments ?? [], r.files))];
  }
  return edit;
}

async function uploads(state: FakeDiscordState, channelId: string, declared: { id: string | number; filename?: string }[], files: RecordedRequest['files']): Promise<FakeAttachment[]> {
  const result: FakeAttachment[] = [];
  for (const file of files) {
    const index = /^files\[(\d+)\]$/.exec(file.field)?.[1];
    const entry = declared.find((d) => String(d.id) === index);
    if (!entry && declared.length > 0 && index === undefined) continue;
    const name = entry?.filename ?? file.name;
    const meta = await sharp(file.data).metadata().catch(() => undefined);
    result.push(state.addFile(channelId, name, file.data, file.contentType, meta?.width && meta.height ? { width: meta.width, height: meta.height } : {}));
  }
  return result;
}

async function parseRequest(req: IncomingMessage, path: string, query: URLSearchParams, raw: Buffer): Promise<RecordedRequest> {
  const type = req.headers['content-type'] ?? '';
  const request: RecordedRequest = { method: req.method ?? 'GET', path, query, body: undefined, files: [], at: Date.now() };
  if (type.startsWith('multipart/form-data')) {
    const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
    for (const [field, value] of form.entries()) {
      if (field === 'payload_json') request.body = JSON.parse(String(value));
      else if (typeof value !== 'string') {
        request.files.push({ field, name: value.name, contentType: value.type || 'application/octet-stream', data: Buffer.from(await value.arrayBuffer()) });
      }
    }
  } else if (raw.length > 0) {
    request.body = JSON.parse(raw.toString('utf8'));
  }
  return request;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
