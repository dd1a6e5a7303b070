/**
 * The Discord surface end to end: the real discord.js client against the fake
 * Discord (REST + gateway on 127.0.0.1), the real assistant over the toy pack.
 * The toy answers "Sure, it is [SEG]." with the mask of the colour named most
 * recently in the conversation.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeMessage } from './fakes/discord/payloads.js';
import { type Harness, originalResponse, repliesTo, scene, sceneAttachment, startHarness } from './fakes/discord/harness.js';
import { iou, truthMask } from './helpers/toy.js';

/** The pixels the overlay changed against the original scene: the drawn mask. */
async function drawnMask(h: Harness, message: FakeMessage): Promise<Uint8Array> {
  expect(message.attachments).toHaveLength(1);
  const bytes = h.discord.files.get(message.attachments[0].id)!;
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const original = scene();
  expect([info.width, info.height]).toEqual([original.width, original.height]);
  const mask = new Uint8Array(info.width * info.height);
  for (let i = 0; i < mask.length; i++) {
    for (let c = 0; c < 3; c++) if (Math.abs(data[i * 3 + c] - original.data[i * 3 + c]) > 3) mask[i] = 1;
  }
  return mask;
}

async function expectMaskOf(h: Harness, message: FakeMessage, colour: 'red' | 'blue'): Promise<void> {
  expect(iou(await drawnMask(h, message), truthMask(scene(), colour))).toBeGreaterThan(0.95);
}

describe('Discord with the toy assistant', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('answers a mention with an image in reply to it, with the overlay of the named mask', async () => {
    const { discord } = h;
    const image = await sceneAttachment(discord);
    const asked = discord.userMessage({ content: 'where is the red thing?', mention: true, attachments: [image] });
    const [answer] = await repliesTo(h, asked.id);
    // The red thing is drawn (and marked) in blue: red on red would not show.
    expect(answer.content).toContain('Sure, it is 🟦.');
    expect(answer.content).not.toContain('[SEG]');
    expect(answer.mentions.map((u) => u.id)).toEqual([discord.alice.id]);
    await expectMaskOf(h, answer, 'red');
    expect(discord.requests.some((r) => r.method === 'POST' && r.path === `/channels/${discord.channelId}/typing`)).toBe(true);
    const turn = h.assistant.received.at(-1)!.turn;
    expect(turn).toMatchObject({ conversationKey: `discord:${discord.channelId}:${asked.id}`, text: 'where is the red thing?', requestId: asked.id });
    expect(turn.images[0]).toMatchObject({ kind: 'url', allowedHosts: ['127.0.0.1'], declared: { size: image.size, width: 96, height: 64, contentType: 'image/png' } });
  });

  it('says how to give an image, in Discord terms, when a mention comes without one', async () => {
    const asked = h.discord.userMessage({ content: 'what is this?', mention: true });
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.content).toMatch(/no image to look at yet\. Attach an image \(or reply to a message that has one\)/);
  });

  it('continues the conversation when the answer is replied to: the mask moves to the colour named next', async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'show me the red one', mention: true, attachments: [await sceneAttachment(discord)] });
    const [first] = await repliesTo(h, asked.id);
    await expectMaskOf(h, first, 'red');
    // A plain reply with Discord's default ping: the bot is mentioned by the reply itself.
    const followUp = discord.userMessage({ content: 'and now the blue one?', replyTo: first.id });
    const [second] = await repliesTo(h, followUp.id);
    await expectMaskOf(h, second, 'blue');
    expect(h.assistant.received.at(-1)!.turn).toMatchObject({ conversationKey: `discord:${discord.channelId}:${asked.id}`, images: [] });
  });

  it('/segment defers at once, then edits the deferred reply with the overlay; without an image it uses the channel conversation', async () => {
    const { discord } = h;
    const release = h.assistant.hold();
    const slash = discord.slash({ question: 'where is the blue thing?', image: await sceneAttachment(discord) });
    // Deferred while the assistant has not even been given the turn.
    await discord.waitFor(() => slash.callbacks.length > 0, 'the defer');
    expect(slash.callbacks[0].type).toBe(5);
    release();
    const answer = await originalResponse(h, slash, true);
    expect(answer.content).toContain('Sure, it is');
    expect(answer.interaction_metadata).toMatchObject({ id: slash.id });
    await expectMaskOf(h, answer, 'blue');
    expect(h.assistant.received.at(-1)!.turn.conversationKey).toBe(`discord:${discord.channelId}:${discord.channelId}`);

    const again = discord.slash({ question: 'and the red one?' });
    const second = await originalResponse(h, again, true);
    await expectMaskOf(h, second, 'red');
    expect(h.assistant.received.at(-1)!.turn.images).toEqual([]);
  });

  it('context menu -> modal -> answer about the target message image', async () => {
    const { discord } = h;
    // Without the Message Content intent the bot never sees this message's image, except through the command.
    const target = discord.userMessage({ content: 'my shapes', attachments: [await sceneAttachment(discord)] });
    const menu = discord.contextMenu({ targetId: target.id });
    await discord.waitFor(() => menu.callbacks.length > 0, 'the modal');
    expect(menu.callbacks[0]).toMatchObject({ type: 9, data: { custom_id: `lisa:ask:${target.id}` } });
    const submit = discord.submitModal({ from: menu, question: 'where is the red thing?' });
    const answer = await originalResponse(h, submit, true);
    expect(submit.callbacks[0].type).toBe(5);
    await expectMaskOf(h, answer, 'red');
    expect(h.assistant.received.at(-1)!.turn.conversationKey).toBe(`discord:${discord.channelId}:${target.id}`);
  });

  it('refuses a non-image and an oversized attachment with a clear reply, before the assistant or a download', async () => {
    const { discord } = h;
    const before = h.assistant.received.length;
    const pdf = discord.addFile(discord.channelId, 'notes.pdf', Buffer.from('%PDF-1.4\n'), 'application/pdf');
    const asked = discord.userMessage({ content: 'what is this?', mention: true, attachments: [pdf] });
    const [notImage] = await repliesTo(h, asked.id);
    expect(notImage.content).toBe('"notes.pdf" (application/pdf) is not an image. Attach a picture (JPEG, PNG, WebP or GIF) and ask again.');

    // Declared only: the fake CDN has no bytes for it, so a download would fail differently.
    const huge = discord.declaredFile('huge.png', 25_000_000, 'image/png', { width: 4000, height: 3000 });
    const big = discord.userMessage({ content: 'what is this?', mention: true, attachments: [huge] });
    const [tooLarge] = await repliesTo(h, big.id);
    expect(tooLarge.content).toBe('"huge.png" is 25 MB; the limit is 20 MB. Send a smaller image.');
    expect(h.assistant.received.length).toBe(before);
    expect(notImage.attachments).toEqual([]);
  });

  it('ignores other bots, even when they mention it', async () => {
    const { discord } = h;
    const before = discord.requests.length;
    discord.userMessage({ author: discord.otherBot, content: 'where is the red thing?', mention: true, attachments: [await sceneAttachment(discord)] });
    // A human's message after it is answered; by then the bot's message was long handled.
    const asked = discord.userMessage({ content: 'where is the red thing?', mention: true, attachments: [await sceneAttachment(discord)] });
    await repliesTo(h, asked.id);
    const posted = discord.requests.slice(before).filter((r) => r.method === 'POST' && r.path.startsWith('/channels/'));
    expect(posted.every((r) => r.path.endsWith('/typing') || r.body?.message_reference?.message_id === asked.id)).toBe(true);
    expect(h.assistant.received.filter((r) => r.turn.user.id === discord.otherBot.id)).toEqual([]);
  });

  it('delivers the answer exactly once when the gateway drops mid-job and replays the message on RESUME', async () => {
    const { discord } = h;
    const release = h.assistant.hold();
    const asked = discord.userMessage({ content: 'where is the blue thing?', mention: true, attachments: [await sceneAttachment(discord)] });
    await h.assistant.until(() => h.assistant.received.some((r) => r.turn.requestId === asked.id));
    const identifies = discord.gateway.identifies;
    const reconnected = discord.gateway.waitForReconnect();
    discord.gateway.drop();
    // Sent while the client is away: replayed to it on RESUME, after the answer was posted over REST.
    discord.gateway.redeliver('MESSAGE_CREATE', discord.gatewayMessage(asked));
    release();
    const [answer] = await repliesTo(h, asked.id);
    await reconnected;
    await discord.gateway.caughtUp();
    await expectMaskOf(h, answer, 'blue');
    expect(discord.gateway.resumes).toBeGreaterThanOrEqual(1);
    expect(discord.gateway.identifies).toBe(identifies);
    expect(h.assistant.received.filter((r) => r.turn.requestId === asked.id)).toHaveLength(1);
    expect(discord.botMessages().filter((m) => m.message_reference?.message_id === asked.id)).toHaveLength(1);
  });

  it('does not answer a message again when it is delivered again after a restart', async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'where is the red thing?', mention: true, attachments: [await sceneAttachment(discord)] });
    await repliesTo(h, asked.id);
    await h.restart();
    const eventKey = `discord:event:${asked.id}`;
    discord.gateway.redeliver('MESSAGE_CREATE', discord.gatewayMessage(asked));
    await h.assistant.until(() => h.assistant.deliveries.filter((d) => d.key === eventKey).length >= 2);
    expect(h.assistant.deliveries.filter((d) => d.key === eventKey).map((d) => d.first)).toEqual([true, false]);
    expect(h.assistant.received.filter((r) => r.turn.requestId === asked.id)).toHaveLength(1);
    expect(discord.botMessages().filter((m) => m.message_reference?.message_id === asked.id)).toHaveLength(1);
  });

  it('logged no errors', () => {
    expect(h.logs.filter((line) => JSON.parse(line).level >= 50)).toEqual([]);
  });
});

describe('Discord with a per-user rate limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ configure: (c) => ({ ...c, limits: { ...c.limits, perUserPerMinute: 1 } }) });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('tells a rate-limited user so, in reply to the message', async () => {
    const { discord } = h;
    const first = discord.userMessage({ content: 'where is the red thing?', mention: true, attachments: [await sceneAttachment(discord)] });
    const [answer] = await repliesTo(h, first.id);
    expect(answer.attachments).toHaveLength(1);
    const second = discord.userMessage({ content: 'and the blue one?', replyTo: answer.id });
    const [refused] = await repliesTo(h, second.id);
    expect(refused.content).toMatch(/^You're asking faster than I can answer: at most 1 questions a minute\. Try again in \d+ s\.$/);
    expect(refused.attachments).toEqual([]);
  });
});
