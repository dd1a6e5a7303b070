/**
 * Which conversation a Discord message continues: reply chains (also after a
 * restart, when nothing is in memory), threads opened on an answer, DMs, and
 * what the Message Content intent adds. Scripted assistant behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedAssistant } from './fakes/discord/assistant.js';
import { type Harness, lastTurn, originalResponse, repliesTo, sceneAttachment, startHarness } from './fakes/discord/harness.js';
import type { FakeMessage } from './fakes/discord/payloads.js';

describe('Discord conversations without the Message Content intent', () => {
  const scripted = new ScriptedAssistant();
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ assistant: scripted });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("says so when a mention replies to someone's image it cannot see (no Message Content intent)", async () => {
    const { discord } = h;
    const photo = discord.userMessage({ author: discord.bob, content: 'look', attachments: [await sceneAttachment(discord)] });
    const asked = discord.userMessage({ content: 'what is red here?', mention: true, replyTo: photo.id });
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.content).toBe(
      'I can\'t see the image of the message you replied to (I only see messages that mention me). ' +
        'Attach the image to your question, or use "Segment with LISA" on that message.',
    );
  });

  it('keeps conversations across a restart: replies to earlier answers (mention, context menu, /segment) find theirs', async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'first', mention: true, attachments: [await sceneAttachment(discord)] });
    const [answer] = await repliesTo(h, asked.id);
    const followUp = discord.userMessage({ content: 'second', replyTo: answer.id });
    const [second] = await repliesTo(h, followUp.id);

    const target = discord.userMessage({ content: 'pic', attachments: [await sceneAttachment(discord)] });
    const menu = discord.contextMenu({ targetId: target.id });
    await discord.waitFor(() => menu.callbacks.length > 0, 'the modal');
    const submit = discord.submitModal({ from: menu, question: 'red?' });
    const menuAnswer = await originalResponse(h, submit);

    const slash = discord.slash({ question: 'blue?', image: await sceneAttachment(discord) });
    const slashAnswer = await originalResponse(h, slash);

    await h.restart();
    const expectations: [FakeMessage, string][] = [
      [second, `discord:${discord.channelId}:${asked.id}`],
      [menuAnswer, `discord:${discord.channelId}:${target.id}`],
      [slashAnswer, `discord:${discord.channelId}:${discord.channelId}`],
    ];
    for (const [botMessage, key] of expectations) {
      const reply = discord.userMessage({ content: 'and now?', replyTo: botMessage.id });
      await repliesTo(h, reply.id);
      expect(lastTurn(h).conversationKey).toBe(key);
    }
  });

  it('continues a conversation in a thread opened on its answer, answering in the thread', async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'red?', mention: true, attachments: [await sceneAttachment(discord)] });
    const [answer] = await repliesTo(h, asked.id);
    const thread = discord.startThread(answer.id);
    const inThread = discord.userMessage({ channelId: thread, content: 'and blue?', mention: true });
    const [reply] = await repliesTo(h, inThread.id);
    expect(reply.channel_id).toBe(thread);
    expect(lastTurn(h)).toMatchObject({ conversationKey: `discord:${discord.channelId}:${asked.id}`, channelId: discord.channelId });
  });

  it('without the Message Content intent, ignores a reply to its answer that does not ping it', async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'red?', mention: true, attachments: [await sceneAttachment(discord)] });
    const [answer] = await repliesTo(h, asked.id);
    const before = h.assistant.received.length;
    discord.userMessage({ content: 'and blue?', replyTo: answer.id, ping: false });
    // A later mention is answered; the silent reply before it never reached the assistant.
    const later = discord.userMessage({ content: 'marker', mention: true });
    await repliesTo(h, later.id);
    expect(h.assistant.received.slice(before).map((r) => r.turn.text)).toEqual(['marker']);
  });

  it("answers a mention of the bot's managed role like a mention of the bot", async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'where is the red thing?', roleMention: true, attachments: [await sceneAttachment(discord)] });
    await repliesTo(h, asked.id);
    expect(lastTurn(h)).toMatchObject({ text: 'where is the red thing?', conversationKey: `discord:${discord.channelId}:${asked.id}` });
  });

  it('answers DMs, in the DM channel conversation', async () => {
    const { discord } = h;
    const dm = discord.dmChannel();
    const asked = discord.userMessage({ channelId: dm, content: 'red?', attachments: [await sceneAttachment(discord, dm)] });
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.channel_id).toBe(dm);
    expect(lastTurn(h)).toMatchObject({ conversationKey: `discord:${dm}:${dm}`, text: 'red?' });
  });
});

describe('Discord conversations with the Message Content intent', () => {
  const scripted = new ScriptedAssistant();
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ assistant: scripted, configure: (c) => ({ ...c, discord: { ...c.discord, messageContentIntent: true } }) });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('identifies with the intent and follows replies without a ping and messages in its thread without a mention', async () => {
    const { discord } = h;
    expect(discord.gateway.intents & (1 << 15)).not.toBe(0);
    const asked = discord.userMessage({ content: 'red?', mention: true, attachments: [await sceneAttachment(discord)] });
    const [answer] = await repliesTo(h, asked.id);
    const silent = discord.userMessage({ content: 'and blue?', replyTo: answer.id, ping: false });
    await repliesTo(h, silent.id);
    expect(lastTurn(h)).toMatchObject({ conversationKey: `discord:${discord.channelId}:${asked.id}`, text: 'and blue?' });
    const thread = discord.startThread(answer.id);
    const inThread = discord.userMessage({ channelId: thread, content: 'and green?' });
    await repliesTo(h, inThread.id);
    expect(lastTurn(h)).toMatchObject({ conversationKey: `discord:${discord.channelId}:${asked.id}`, text: 'and green?' });
  });

  it("uses the image of the message a mention replies to, in a new conversation", async () => {
    const { discord } = h;
    const image = await sceneAttachment(discord);
    const photo = discord.userMessage({ author: discord.bob, content: 'look', attachments: [image] });
    const asked = discord.userMessage({ content: 'what is red here?', mention: true, replyTo: photo.id });
    await repliesTo(h, asked.id);
    expect(lastTurn(h)).toMatchObject({ conversationKey: `discord:${discord.channelId}:${asked.id}`, images: [{ url: image.url }] });
  });

  it('still ignores chatter that is not for it', async () => {
    const { discord } = h;
    const before = h.assistant.received.length;
    discord.userMessage({ content: 'just talking' });
    const later = discord.userMessage({ content: 'marker', mention: true });
    await repliesTo(h, later.id);
    expect(h.assistant.received.slice(before).map((r) => r.turn.text)).toEqual(['marker']);
  });
});
